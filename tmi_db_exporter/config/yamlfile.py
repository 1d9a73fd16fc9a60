"""YAML loading that remembers where each value came from, and the one error type for bad input.

Operators fix a broken file faster when told `queries.yaml:42: pg_stat_activity.metrics[0].type`
than when handed a traceback, so every loader here reports file, line and field, all mistakes at
once. Anchors/aliases are refused: they are the vehicle of "billion laughs" YAML bombs and a
monitoring config has no need of them. So are nesting deeper than MAX_DEPTH (it would exhaust
the stack), keys that are lists or mappings, and files over MAX_FILE_BYTES (the pure-Python
parser reads about 100 kB/s of dense YAML: a megabyte is ten seconds).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

Location = tuple[str | int, ...]

MAX_FILE_BYTES = 1024 * 1024  # the built-in queries.yaml is ~30 kB
MAX_DEPTH = 64


@dataclass(frozen=True)
class Problem:
    where: str  # "file:line" or a setting's name
    field: str  # dotted path inside the document, may be empty
    message: str

    def __str__(self) -> str:
        field = f" {self.field}:" if self.field else ""
        return f"{self.where}:{field} {self.message}"


class ConfigError(Exception):
    """Invalid configuration or queries file; carries every problem found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class YamlDocument:
    data: Any
    source: str
    lines: dict[Location, int]

    def line_of(self, loc: Sequence[str | int]) -> int:
        """Line of the deepest known prefix of `loc` (a missing field points at its parent)."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), 1)

    def problem(self, loc: Sequence[str | int], message: str) -> Problem:
        return Problem(f"{self.source}:{self.line_of(loc)}", dotted(loc), message)

    def problems_from(self, error: ValidationError, prefix: Location = ()) -> list[Problem]:
        """Translate pydantic errors into file:line problems, never echoing the input value."""
        return [
            self.problem(prefix + tuple(e["loc"]), e["msg"])
            for e in error.errors(include_url=False, include_input=False)
        ]


def dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Loader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(
                None, None, "aliases (*name) are not allowed", event.start_mark
            )
        if self._depth >= MAX_DEPTH:
            raise yaml.MarkedYAMLError(
                None, None, f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """A value that PyYAML's constructors cannot make (an int of 5,000 digits, the date
        2024-02-30, `!!int ''`, `!!timestamp x`) is a mistake at this node's line, not a crash."""
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # ValueError, IndexError, AttributeError, ... of a constructor
            kind = str(node.tag).rsplit(":", 1)[-1]
            raise yaml.MarkedYAMLError(
                None, None, f"invalid {kind} value ({type(exc).__name__})", node.start_mark
            ) from None


Duplicates = list[tuple[int, Location]]


def _walk(node: yaml.Node, loc: Location, lines: dict[Location, int], dups: Duplicates) -> None:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.MarkedYAMLError(
                    None, None, "a key must be a plain value, not a list or mapping",
                    key_node.start_mark,
                )
            key = key_node.value
            if key in seen:
                dups.append((key_node.start_mark.line + 1, (*loc, key)))
            seen.add(key)
            _walk(value_node, (*loc, key), lines, dups)
            lines[(*loc, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*loc, i), lines, dups)


def parse_yaml(text: str, source: str) -> YamlDocument:
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # (checks for control characters already)
        node = loader.get_single_node()
        if node is None:
            return YamlDocument(None, source, {(): 1})
        lines: dict[Location, int] = {}
        duplicates: Duplicates = []
        _walk(node, (), lines, duplicates)
        if duplicates:
            raise ConfigError(
                Problem(f"{source}:{line}", dotted(loc), "duplicate key")
                for line, loc in duplicates
            )
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = Problem(f"{source}:{line}", "", f"invalid YAML: {exc.problem}")
        raise ConfigError([problem]) from None
    except yaml.reader.ReaderError as exc:  # a control character: no mark, a position
        line = text.count("\n", 0, exc.position) + 1
        problem = f"invalid YAML: character #x{exc.character:04x} is not allowed"
        raise ConfigError([Problem(f"{source}:{line}", "", problem)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(source, "", f"invalid YAML: {exc}")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return YamlDocument(data, source, lines)


def load_yaml_file(path: Path) -> YamlDocument:
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError([Problem(source, "", f"file too large ({size} bytes)")])
        text = path.read_text(encoding="utf-8")
    except ConfigError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([Problem(source, "", f"cannot read file: {reason}")]) from None
    return parse_yaml(text, source)
