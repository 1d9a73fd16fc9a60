"""Secrets in bad settings: `check-config` names the field, never the secret (the running
exporter on real servers: tests/integration/test_secrets.py)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.secrets import PG_SECRET, REDIS_SECRET, assert_no_secret, cli


@pytest.mark.parametrize("text", [
    # A secret where it does not belong, or next to a mistake: the error names the field only.
    f"postgres:\n  password: {{nested: \"{PG_SECRET}\"}}\n",
    f"postgres:\n  password: \"{PG_SECRET}\"\n  port: not-a-port\n",
    f"redis:\n  url: \"redis://:{quote(REDIS_SECRET, safe='')}@host:notaport/0\"\n",
    f"redis:\n  url: \"redis://:{quote(REDIS_SECRET, safe='')}@[::1/0\"\n",
    f"targets:\n  x:\n    redis:\n      password: [\"{REDIS_SECRET}\"]\n",
], ids=["secret as a mapping", "secret next to a wrong port", "URL with a bad port",
        "URL that does not parse", "probe target secret as a list"])
def test_bad_settings_never_echo_a_secret(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    result = cli("check-config", "--config", str(path),
                 env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                      "POSTGRES_PASSWORD": PG_SECRET})
    assert_no_secret(result.stdout + result.stderr, "check-config", (PG_SECRET, REDIS_SECRET))
