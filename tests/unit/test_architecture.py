"""The package's shape, as the README's architecture section draws it: data flows one way
(config -> core -> sources -> app), the demo stands aside, nothing imports in a circle, and the
benchmarks stand on their own (the tests may import bench, never the reverse)."""

from __future__ import annotations

import ast
from pathlib import Path

import tmi_db_exporter

PACKAGE = Path(tmi_db_exporter.__file__).resolve().parent
ROOT_NAME = tmi_db_exporter.__name__

# Which layers each layer may import (itself always). The entry points (cli, catalog,
# __main__) sit on top and may import anything; the package root only holds the version.
MAY_IMPORT = {
    "config": set(),
    "core": set(),
    "sources": {"config", "core"},
    "app": {"config", "core", "sources"},
    "demo": {"config"},
}
ENTRY_POINTS = {"cli", "catalog", "__main__"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Modules of the package that `path` imports, leaving out `if TYPE_CHECKING:` blocks
    (annotations only: no runtime dependency)."""
    tree = ast.parse(path.read_text(), str(path))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(child) for child in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = node.module
            if base.split(".")[0] == ROOT_NAME:
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    found.add(candidate if _exists(candidate) else base)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == ROOT_NAME}
    return found


def _exists(module: str) -> bool:
    relative = Path(*module.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").exists() or (PACKAGE / relative).is_dir()


def _graph() -> dict[str, set[str]]:
    return {_module_name(path): _imports(path) for path in PACKAGE.rglob("*.py")}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_layer_imports_only_what_it_may() -> None:
    wrong = []
    for module, imported in _graph().items():
        layer = _layer(module)
        if layer in ENTRY_POINTS or not layer:
            continue
        assert layer in MAY_IMPORT, f"{module}: a folder the architecture does not name"
        for target in imported:
            other = _layer(target)
            if other and other != layer and other not in MAY_IMPORT[layer]:
                wrong.append(f"{module} imports {target} ({layer} may not use {other})")
            if other in ENTRY_POINTS:
                wrong.append(f"{module} imports the entry point {target}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles() -> None:
    graph = _graph()
    state: dict[str, str] = {}
    cycles: list[str] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if target not in graph:
                continue
            if state.get(target) == "open":
                cycles.append(" -> ".join([*path[path.index(target):], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(cycles)


def test_the_flow_check_sees_a_wrong_import(tmp_path: Path) -> None:
    """The checks above would pass on an empty graph: make sure they read real imports."""
    graph = _graph()
    assert f"{ROOT_NAME}.core.cache" in graph[f"{ROOT_NAME}.app.target"]
    assert f"{ROOT_NAME}.config.settings" in graph[f"{ROOT_NAME}.sources.postgres.queries"]
    bad = tmp_path / "bad.py"
    bad.write_text("from tmi_db_exporter.app.server import serve\n"
                   "if TYPE_CHECKING:\n    from tmi_db_exporter.cli import main\n")
    assert _imports(bad) == {f"{ROOT_NAME}.app.server"}


def _modules_named_in_imports(path: Path) -> set[str]:
    """Every module `path` imports from, whatever package it belongs to."""
    tree = ast.parse(path.read_text(), str(path))
    return {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    } | {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}


def test_monitoring_reads_only_the_catalog_and_rules_and_dashboards_stay_apart() -> None:
    """The rules and dashboards build from thresholds alone; of the exporter they read only the
    metric registry (through the catalog), and neither imports the other."""
    root = PACKAGE.parent / "monitoring"
    for path in root.rglob("*.py"):
        modules = _modules_named_in_imports(path)
        exporter = {m for m in modules if m.split(".")[0] == ROOT_NAME}
        assert exporter <= {f"{ROOT_NAME}.catalog"}, f"{path}: {exporter}"
        area = path.relative_to(root).parts[0]
        other = {"rules": "monitoring.dashboards", "dashboards": "monitoring.rules"}.get(area)
        if other:
            assert not any(m.startswith(other) for m in modules), f"{path} imports {other}"


def test_bench_never_imports_the_tests_nor_patches_the_import_path() -> None:
    """The benchmarks run as `python -m bench.run` from the repository root; the tests may use
    bench's fault kit and exposition parser, never the other way round."""
    bench = sorted((PACKAGE.parent / "bench").rglob("*.py"))
    assert bench, "no bench/ next to the package"
    for path in bench:
        tests = {m for m in _modules_named_in_imports(path) if m.split(".")[0] == "tests"}
        assert not tests, f"{path} imports {tests}"
        assert "sys.path" not in path.read_text(), f"{path} changes the import path"
