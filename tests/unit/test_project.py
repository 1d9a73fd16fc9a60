"""Project hygiene: README sections generated from the code, CI runs the README's test command,
the Dockerfile keeps its promises, ruff is clean."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tmi_db_exporter.catalog import refresh
from tmi_db_exporter.config.settings import DEFAULT_PORT

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_generated_sections_are_current() -> None:
    assert refresh(README) == README, "run: python -m tmi_db_exporter.catalog --write README.md"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.DOTALL)
    commands = [line.strip() for block in blocks for line in block.splitlines()]
    assert "tmi-db-exporter demo" in commands
    assert "python -m pytest" in commands
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    runs = [line.strip() for line in ci if line.strip() and not line.strip().startswith("#")]
    assert runs[-1] == "python -m pytest"
    assert any("apt-get update" in line for line in runs)


def test_dockerfile_runs_unprivileged_with_healthcheck() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*?/healthz", dockerfile, flags=re.MULTILINE | re.DOTALL)
    assert f"EXPOSE {DEFAULT_PORT}" in dockerfile
    for source in re.findall(r"^COPY\s+(.+?)\s+\S+$", dockerfile, flags=re.MULTILINE):
        for path in source.split():
            assert (ROOT / path).exists(), f"Dockerfile copies missing {path}"


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff")
    assert ruff, "ruff comes with the test extra: pip install -e '.[test]'"
    result = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_systemd_unit_runs_the_exporter_hardened() -> None:
    unit = (ROOT / "deploy" / "tmi-db-exporter.service").read_text()
    settings = dict(
        line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#")
    )
    assert settings["ExecStart"].split()[1] == "run"
    assert settings["ExecReload"] == "/bin/kill -HUP $MAINPID"
    for key, value in {"DynamicUser": "yes", "ProtectSystem": "strict", "NoNewPrivileges": "yes",
                       "CapabilityBoundingSet": ""}.items():
        assert settings[key] == value, key
    analyze = shutil.which("systemd-analyze")
    if analyze:  # the only complaint allowed: the binary is not installed on this machine
        result = subprocess.run([analyze, "verify", "--man=no", str(ROOT / "deploy" /
                                 "tmi-db-exporter.service")], capture_output=True, text=True)
        problems = [line for line in result.stderr.splitlines() if "is not executable" not in line]
        assert problems == [], problems


def test_compose_runs_the_exporter_read_only_and_unprivileged() -> None:
    import yaml

    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    exporter = compose["services"]["exporter"]
    assert exporter["read_only"] is True
    assert exporter["cap_drop"] == ["ALL"]
