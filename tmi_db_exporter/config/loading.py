"""Settings from flags, environment, a YAML file and defaults, in that order of precedence.

The environment names are the ones the TMI operations guide already uses (`POSTGRES_HOST`, ...),
so the exporter can share the application's environment. Secrets come with a `*_FILE` variant
and are never accepted as flags (visible in `ps`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tmi_db_exporter.config.settings import (
    ENV_PREFIX,
    SECTION_ENV_PREFIX,
    PostgresSettings,
    RedisSettings,
    Settings,
)
from tmi_db_exporter.config.yamlfile import ConfigError, Problem, dotted, load_yaml_file


@dataclass(frozen=True)
class SettingInfo:
    """One tunable, with every way to set it."""

    path: tuple[str, ...]
    env: str
    flag: str | None  # None for secrets: a flag would show in `ps`
    secret: bool
    description: str
    default: Any
    is_list: bool

    @property
    def key(self) -> str:
        return ".".join(self.path)

    @property
    def file_flag(self) -> str:
        """For secrets: the flag naming a file that holds the value."""
        return "--" + "-".join(self.path).replace("_", "-") + "-file"


def setting_infos() -> Iterator[SettingInfo]:
    """All leaf settings, derived from the models (sections first-level only)."""
    for name, field in Settings.model_fields.items():
        if (field.json_schema_extra or {}).get("file_only"):
            continue
        if name in SECTION_ENV_PREFIX:
            model = PostgresSettings if name == "postgres" else RedisSettings
            for sub, sub_field in model.model_fields.items():
                yield _info((name, sub), SECTION_ENV_PREFIX[name] + sub.upper(), sub_field)
        else:
            yield _info((name,), ENV_PREFIX + name.upper(), field)


def _info(path: tuple[str, ...], env: str, field: Any) -> SettingInfo:
    annotation = str(field.annotation)
    secret = "SecretStr" in annotation
    flag = None if secret else "--" + "-".join(path).replace("_", "-")
    return SettingInfo(
        path=path,
        env=env,
        flag=flag,
        secret=secret,
        description=field.description or "",
        default=field.default,
        is_list="list[" in annotation,
    )


def _set(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        node = tree.setdefault(part, {})
        if not isinstance(node, dict):  # e.g. `postgres: yes` in the file; validation reports it
            node = tree[part] = {}
        tree = node
    tree[path[-1]] = value


def _read_secret_file(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read().rstrip("\r\n")


def load_settings(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge defaults < config file < environment < flags, then validate everything at once.

    `flags` maps a setting key (`postgres.port`, or `postgres.password_file` for a secret file)
    to the value given on the command line.
    """
    env = env or {}
    flags = flags or {}
    tree: dict[str, Any] = {}
    origin: dict[tuple[str | int, ...], str] = {}
    problems: list[Problem] = []
    doc = None
    if config_file is not None:
        doc = load_yaml_file(config_file)
        if doc.data is not None and not isinstance(doc.data, dict):
            raise ConfigError([doc.problem((), "expected a mapping of settings")])
        tree = dict(doc.data or {})
        for section in SECTION_ENV_PREFIX:
            if isinstance(tree.get(section), dict):
                tree[section] = dict(tree[section])

    def apply(info: SettingInfo, raw: Any, where: str) -> None:
        if info.is_list and isinstance(raw, str):
            raw = [item.strip() for item in raw.split(",") if item.strip()]
        _set(tree, info.path, raw)
        origin[info.path] = where

    for info in setting_infos():
        # *_FILE secrets: from the file's key `<name>_file`, the env var or the flag.
        if info.secret:
            file_path = tree.get(info.path[0], {}) if len(info.path) > 1 else tree
            sources = [
                (
                    file_path.pop(f"{info.path[-1]}_file", None)
                    if isinstance(file_path, dict)
                    else None,
                    f"{config_file}: {info.key}_file",
                ),
                (env.get(info.env + "_FILE"), f"environment variable {info.env}_FILE"),
                (flags.get(info.key + "_file"), f"flag {info.file_flag}"),
            ]
            for secret_path, where in sources:
                if secret_path:
                    try:
                        apply(info, _read_secret_file(str(secret_path)), where)
                    except OSError as exc:
                        problems.append(Problem(where, info.key, f"cannot read: {exc.strerror}"))
                    except ValueError:  # e.g. a NUL byte in the path
                        problems.append(Problem(where, info.key, "not a usable file name"))
        if info.env in env:
            apply(info, env[info.env], f"environment variable {info.env}")
        if info.key in flags and flags[info.key] is not None:
            apply(info, flags[info.key], f"flag {info.flag}")

    if problems:
        raise ConfigError(problems)
    try:
        return Settings.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, origin, doc)) from None


def _explain(exc: ValidationError, origin: dict[Any, str], doc: Any) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = tuple(error["loc"])
        where = origin.get(loc[:2]) or origin.get(loc[:1])
        if where is None and doc is not None:
            where = f"{doc.source}:{doc.line_of(loc)}"
        problems.append(Problem(where or "defaults", dotted(loc), error["msg"]))
    return problems
