"""A broken web config is reported with its file and line, by the loader and by `check-config`
(TLS and basic auth on a running server: tests/integration/test_web.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tmi_db_exporter.app.webconfig import load_web_config
from tmi_db_exporter.config.yamlfile import ConfigError


def test_broken_web_config_is_reported_with_file_and_line(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text(
        "tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n"
        "basic_auth_users:\n  prometheus: plain-text-password\n"
    )
    with pytest.raises(ConfigError) as err:
        load_web_config(web)
    text = str(err.value)
    assert f"{web}:5: basic_auth_users.prometheus: expected a bcrypt hash" in text
    assert f"{web}:1: tls_server_config: cannot load TLS files" in text
    assert "plain-text-password" not in text
    result = subprocess.run(
        [sys.executable, "-m", "tmi_db_exporter", "check-config", "--web-config-file", str(web)],
        capture_output=True, text=True, env={"PATH": os.environ["PATH"]},
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "expected a bcrypt hash" in result.stderr
