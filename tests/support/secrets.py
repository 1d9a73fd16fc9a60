"""The test passwords and the search for them: raw, URL-encoded, quoted or as repr() shows them,
none may appear in anything the exporter writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
PG_SECRET = "pg-S3cr3t:@/ 'q' x7f3a"
REDIS_SECRET = "redis-S3cr3t:@/x51b2"


def forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote(secret), repr(secret)[1:-1]}


def assert_no_secret(text: str, where: str, secrets: tuple[str, ...]) -> None:
    for secret in secrets:
        for form in forms(secret):
            assert form not in text, f"{where} shows a secret ({form!r})"


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m tmi_db_exporter ARGS` with exactly `env`: no secret of this process leaks in."""
    return subprocess.run([sys.executable, "-m", "tmi_db_exporter", *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env=env)
