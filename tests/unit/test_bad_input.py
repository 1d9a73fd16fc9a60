"""Bad input: malformed or hostile settings and queries files give a clear error naming file,
line and field, never a traceback; also through the CLI (`check-config`, exit 2). Property-based
tests (hypothesis) feed the loaders arbitrary text and structures: the only exception they may
raise is ConfigError.
"""

from __future__ import annotations

import os
import string
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tmi_db_exporter.cli import main as cli_main
from tmi_db_exporter.config.loading import load_settings, setting_infos
from tmi_db_exporter.config.yamlfile import MAX_DEPTH, MAX_FILE_BYTES, ConfigError, parse_yaml
from tmi_db_exporter.sources.postgres.queries import default_queries_path, load_queries

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("TMI_TEST_HYPOTHESIS_EXAMPLES", "300"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a busy CI machine is slow, not wrong
    database=None,  # no .hypothesis/ directory in the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

GOOD_ENTRY = """\
q_ok:
  help: Fine.
  sql: SELECT 1 AS x
  metrics:
    - {column: x, type: gauge, help: X.}
"""


def problems_of(exc: ConfigError) -> list[str]:
    return [str(p) for p in exc.problems]


def load_queries_text(tmp_path: Path, text: str | bytes, name: str = "q.yaml") -> Any:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return load_queries([path])


def queries_error(tmp_path: Path, text: str | bytes) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_queries_text(tmp_path, text)
    problems = problems_of(caught.value)
    assert problems and all(p.startswith(str(tmp_path / "q.yaml")) for p in problems), problems
    return problems


# --- queries files -----------------------------------------------------------------------------

BILLION_LAUGHS = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""

# (name, file text, a fragment the message must contain: "file:line: field: what")
BAD_QUERIES: list[tuple[str, str | bytes, str]] = [
    ("wrong type", GOOD_ENTRY.replace("type: gauge", "type: histogram"),
     "q.yaml:5: q_ok.metrics[0].type: Input should be 'gauge' or 'counter'"),
    ("duration as words", GOOD_ENTRY + "  timeout: very long\n",
     "q.yaml:6: q_ok.timeout: Value error, expected a duration"),
    ("infinite timeout", GOOD_ENTRY + "  timeout: .inf\n",
     "q.yaml:6: q_ok.timeout: Value error, expected a finite duration"),
    ("infinite version", GOOD_ENTRY + "  min_version: .inf\n",
     "q.yaml:6: q_ok.min_version: Input should be a finite number"),
    ("limit beyond SQL", GOOD_ENTRY + "  limit: 99999999999999999999\n",
     "q.yaml:6: q_ok.limit: Input should be less than or equal to 2147483647"),
    ("unknown field", GOOD_ENTRY + "  colour: red\n",
     "q.yaml:6: q_ok.colour: Extra inputs are not permitted"),
    ("list instead of entry", "q_list:\n  - 1\n  - 2\n",
     "q.yaml:1: q_list: expected a mapping"),
    ("not a mapping", "- just\n- a list\n", "q.yaml:1: expected a mapping"),
    ("empty", "", "q.yaml:1: file is empty"),
    ("duplicate key", GOOD_ENTRY + GOOD_ENTRY, "q.yaml:6: q_ok: duplicate key"),
    ("duplicate metric", GOOD_ENTRY + GOOD_ENTRY.replace("q_ok:", "q_two:").replace(
        "{column: x,", "{column: x, name: q_ok_x,"),
     "q.yaml:6: q_two.metrics: metric q_ok_x is already defined by q_ok at"),
    ("billion laughs", BILLION_LAUGHS, "q.yaml:2: invalid YAML: aliases (*name) are not allowed"),
    ("deep nesting", "q: " + "[" * 10_000 + "]" * 10_000,
     f"q.yaml:1: invalid YAML: nested deeper than {MAX_DEPTH} levels"),
    ("list as key", "? [a, b]\n: {help: x}\n",
     "q.yaml:1: invalid YAML: a key must be a plain value"),
    ("int of 5000 digits", GOOD_ENTRY + "  limit: " + "9" * 5000 + "\n",
     "q.yaml:6: invalid YAML: invalid int value"),
    ("impossible date", GOOD_ENTRY + "  help2: 2024-02-30\n",
     "q.yaml:6: invalid YAML: invalid timestamp value"),
    ("python object tag", "q: !!python/object/apply:os.system ['true']\n",
     "q.yaml:1: invalid YAML: could not determine a constructor"),
    ("control character", GOOD_ENTRY + "  help: bell\x07\n",
     "q.yaml:6: invalid YAML: character #x0007 is not allowed"),
    ("tab indentation", "q:\n\t- help\n", "q.yaml:2: invalid YAML"),
    ("two documents", GOOD_ENTRY + "---\n" + GOOD_ENTRY, "q.yaml:6: invalid YAML"),
    ("binary junk", bytes(range(256)) * 8, "q.yaml: cannot read file"),
    ("huge file", "# padding\n" * (MAX_FILE_BYTES // 10 + 1), "q.yaml: file too large"),
    ("unknown placeholder", GOOD_ENTRY.replace("SELECT 1", "SELECT {nope}"),
     "q.yaml:1: q_ok: Value error, unknown placeholder(s) in sql: nope"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in BAD_QUERIES],
                         ids=[c[0] for c in BAD_QUERIES])
def test_bad_queries_file_names_file_line_and_field(
    tmp_path: Path, text: str | bytes, expected: str
) -> None:
    problems = queries_error(tmp_path, text)
    assert any(expected in p for p in problems), problems


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD_ENTRY)
    (tmp_path / "b.yaml").write_text("# another file\n" + GOOD_ENTRY)
    with pytest.raises(ConfigError) as caught:
        load_queries([tmp_path / "a.yaml", tmp_path / "b.yaml"])
    assert problems_of(caught.value) == [
        f"{tmp_path / 'b.yaml'}:2: q_ok: query name already used at {tmp_path / 'a.yaml'}:1"
    ]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = GOOD_ENTRY + "  colour: red\n" + GOOD_ENTRY.replace("q_ok", "q_b").replace(
        "gauge", "histogram")
    problems = queries_error(tmp_path, text)
    assert len(problems) == 2


# --- settings files ----------------------------------------------------------------------------

BAD_SETTINGS: list[tuple[str, str, str]] = [
    ("wrong type", "listen_port: lots\n", "s.yaml:1: listen_port: Input should be a valid"),
    ("out of range", "listen_port: 70000\n", "s.yaml:1: listen_port: Input should be less"),
    ("infinite port", "listen_port: .inf\n", "s.yaml:1: listen_port: Input should be a finite"),
    ("unknown field", "postgres:\n  hostt: db\n",
     "s.yaml:2: postgres.hostt: Extra inputs are not permitted"),
    ("section as text", "redis: yes please\n", "s.yaml:1: redis: Input should be a valid"),
    ("secret file missing", "postgres:\n  password_file: /nonexistent/pw\n",
     "postgres.password: cannot read: No such file or directory"),
    ("bad key group", "redis:\n  key_groups: ['no equals sign']\n",
     "s.yaml:2: redis.key_groups: Value error"),
    ("top level list", "- a\n", "s.yaml:1: expected a mapping of settings"),
    ("billion laughs", BILLION_LAUGHS, "s.yaml:2: invalid YAML: aliases (*name) are not allowed"),
    ("deep nesting", "postgres: " + "{a: " * 200 + "1" + "}" * 200,
     f"s.yaml:1: invalid YAML: nested deeper than {MAX_DEPTH} levels"),
    ("duplicate key", "listen_port: 1\nlisten_port: 2\n", "s.yaml:2: listen_port: duplicate key"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in BAD_SETTINGS],
                         ids=[c[0] for c in BAD_SETTINGS])
def test_bad_settings_file_names_file_line_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {}, {})
    problems = problems_of(caught.value)
    assert any(expected in p for p in problems), problems


# Found by the property test below before config.py and durations.py refused them.
CONFIG_MISTAKES = [
    ("NUL in a secret file name", 'postgres:\n  password_file: "a\\0b"\n'),
    ("redis URL that is not a URL", "redis:\n  url: 'redis://[::1'\n"),
    ("redis URL with an impossible port", "redis:\n  url: 'redis://h:99999999/0'\n"),
    ("infinite scrape timeout", "scrape_timeout: .inf\n"),
]


@pytest.mark.parametrize(
    "text", [c[1] for c in CONFIG_MISTAKES], ids=[c[0] for c in CONFIG_MISTAKES]
)
def test_config_mistakes_name_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {}, {})
    assert str(path) in str(caught.value)


# --- the CLI -----------------------------------------------------------------------------------


def check_config(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tmi_db_exporter", "check-config", *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )


@pytest.mark.parametrize(("flag", "name", "text", "expected"), [
    ("--queries-file", "bomb.yaml", BILLION_LAUGHS, "bomb.yaml:2: invalid YAML: aliases"),
    ("--queries-file", "junk.yaml", bytes(range(256)).decode("latin-1"), "junk.yaml:1:"),
    ("--queries-file", "deep.yaml", "q: " + "[" * 5000 + "]" * 5000, "deep.yaml:1:"),
    ("--config", "settings.yaml", "postgres:\n  port: many\n  hostt: x\n",
     "settings.yaml:2: postgres.port:"),
], ids=["yaml bomb", "control characters", "deep nesting", "wrong type and unknown field"])
def test_check_config_exits_2_with_the_problem_and_no_traceback(
    tmp_path: Path, flag: str, name: str, text: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = check_config(flag, str(path))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert expected in result.stderr


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in BAD_QUERIES],
                         ids=[c[0] for c in BAD_QUERIES])
def test_check_config_in_process_for_every_bad_queries_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | bytes, expected: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):  # only the file under test configures anything
        if name.startswith(("POSTGRES_", "REDIS_", "TMI_EXPORTER_")):
            monkeypatch.delenv(name)
    path = tmp_path / "q.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert cli_main(["check-config", "--queries-file", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


# --- property-based ----------------------------------------------------------------------------

YAML_TOKENS = [
    "a", "q", "help", "sql", "metrics", "column", "type", "gauge", "x", ":", ": ", " ", "  ",
    "\n", "- ", "[", "]", "{", "}", ",", "&a ", "*a", "!!", "!!binary ", "!!python/object ",
    "!!int ", "!!timestamp ", "? ", "'", '"', "\\", "\t", "#", "|", ">", "---", "...", "<<: ",
    "0x", "1e400", ".inf", ".nan", "2024-02-30", "9" * 30, "null", "~", "yes", "ü", "🚀",
    "\x00", "\x07", "\x85", "\ufeff", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "=", "{limit}",
]
yaml_like = st.lists(st.sampled_from(YAML_TOKENS), max_size=60).map("".join)
any_text = st.text(max_size=300)
scalars = (st.none() | st.booleans() | st.integers() | st.floats()
           | st.text(max_size=20) | st.sampled_from(["30s", "5m", "1e400", "-1", "", "gauge"]))
structures = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10) | st.sampled_from(
        ["help", "sql", "metrics", "column", "type", "scope", "ttl", "timeout", "limit",
         "labels", "variants", "min_version", "max_version", "unit", "scale", "name"]),
        children, max_size=5),
    max_leaves=25,
)


def dump(data: Any) -> str:
    try:
        return yaml.safe_dump(data, allow_unicode=True)
    except (yaml.YAMLError, ValueError):  # (e.g. a surrogate in a generated string)
        return ""


@PROPERTY
@given(text=st.one_of(any_text, yaml_like))
def test_parse_yaml_raises_only_config_error(text: str) -> None:
    try:
        doc = parse_yaml(text, "t.yaml")
    except ConfigError as exc:
        assert exc.problems and all(p.where.startswith("t.yaml") for p in exc.problems)
        return
    assert doc.source == "t.yaml"


@PROPERTY
@given(data=st.one_of(
    any_text, yaml_like, structures.map(dump),
    st.dictionaries(st.from_regex(r"\A[a-z_]{1,8}\Z"), structures, max_size=3).map(dump),
))
def test_load_queries_raises_only_config_error(tmp_path: Path, data: str) -> None:
    path = tmp_path / "q.yaml"
    path.write_text(data, encoding="utf-8", errors="surrogatepass")
    try:
        specs = load_queries([path])
    except ConfigError as exc:
        assert exc.problems
        assert all(p.where.startswith(str(path)) for p in exc.problems), exc.problems
        return
    assert all(s.source.startswith(f"{path}:") for s in specs)


ENV_NAMES = [info.env for info in setting_infos()]


@PROPERTY
@given(
    file_data=st.one_of(any_text, yaml_like, structures.map(dump),
                        st.dictionaries(st.sampled_from(["postgres", "redis", "listen_port",
                                                         "scrape_timeout", "log_level"]),
                                        structures, max_size=3).map(dump)),
    env=st.dictionaries(st.sampled_from(ENV_NAMES),
                        st.text(alphabet=string.printable, max_size=30), max_size=4),
)
def test_load_settings_raises_only_config_error(
    tmp_path: Path, file_data: str, env: dict[str, str]
) -> None:
    env = {k: v for k, v in env.items() if not k.endswith("_FILE")}  # (no arbitrary paths)
    path = tmp_path / "s.yaml"
    path.write_text(file_data, encoding="utf-8", errors="surrogatepass")
    try:
        load_settings(path, env, {})
    except ConfigError as exc:
        assert exc.problems and all(p.where for p in exc.problems)


def test_the_built_in_queries_still_load() -> None:
    """(The limits above, depth and size, leave the shipped file well inside them.)"""
    path = default_queries_path()
    assert path.stat().st_size < MAX_FILE_BYTES / 10
    assert len(load_queries([path])) > 10
