"""Project hygiene: README sections generated from the code, CI runs the README's test command,
the Dockerfile keeps its promises, ruff is clean, modules and functions stay short enough to
read."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

from tmi_db_exporter.catalog import refresh
from tmi_db_exporter.config.settings import DEFAULT_PORT

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 100
# Modules of the package allowed past MAX_MODULE_LINES although they hold code, by path, each
# with the reason. (Modules that only declare data pass without being listed.)
LONG_MODULES: dict[str, str] = {}


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


def _declarations_only(tree: ast.Module) -> bool:
    """Nothing at module level but a docstring, imports and assignments: data, not logic."""
    return all(
        isinstance(node, ast.Import | ast.ImportFrom | ast.Assign | ast.AnnAssign)
        or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        for node in tree.body
    )


def _long_functions(source: str, name: str) -> list[str]:
    """`name:line function: lines` of every function (methods and nested ones too) that is
    longer than MAX_FUNCTION_LINES, decorators left out."""
    tree = ast.parse(source, name)
    return [
        f"{name}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1}"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]


def test_modules_stay_under_400_lines_unless_they_declare_data() -> None:
    too_long = []
    for path in sorted((ROOT / "tmi_db_exporter").rglob("*.py")):
        text, name = path.read_text(), str(path.relative_to(ROOT))
        lines = len(text.splitlines())
        exempt = name in LONG_MODULES or _declarations_only(ast.parse(text, name))
        if lines > MAX_MODULE_LINES and not exempt:
            too_long.append(f"{name}: {lines} lines")
    assert too_long == [], "split these by responsibility: " + ", ".join(too_long)


def test_functions_stay_under_100_lines() -> None:
    too_long = [
        line
        for folder in ("tmi_db_exporter", "monitoring")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line in _long_functions(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert too_long == [], "split these: " + ", ".join(too_long)


def test_the_size_checks_tell_code_from_data() -> None:
    """The checks above would pass on nothing: make sure they see what they look for."""
    assert _declarations_only(ast.parse('"""Doc."""\nimport os\nX: int = 1\nY = {"a": (1, 2)}\n'))
    assert not _declarations_only(ast.parse("X = 1\ndef f() -> None:\n    pass\n"))
    body = "    x = 1\n" * MAX_FUNCTION_LINES
    nested = "class C:\n    def method(self) -> None:\n" + body.replace("    ", "        ")
    assert _long_functions("def f() -> None:\n" + body, "m.py") == ["m.py:1 f: 101"]
    assert _long_functions(nested, "m.py") == ["m.py:2 method: 101"]
    assert _long_functions("def f() -> None:\n" + body[10:], "m.py") == []
