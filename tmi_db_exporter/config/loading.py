"""Settings from flags, environment, a YAML file and defaults, in that order of precedence.

The environment names are the ones the TMI operations guide already uses (`POSTGRES_HOST`, ...),
so the exporter can share the application's environment. Secrets come with a `*_FILE` variant
and are never accepted as flags (visible in `ps`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BeforeValidator, ValidationError

from tmi_db_exporter.config.durations import format_duration, parse_duration
from tmi_db_exporter.config.settings import (
    ENV_PREFIX,
    SECTION_ENV_PREFIX,
    PostgresSettings,
    RedisSettings,
    Settings,
)
from tmi_db_exporter.config.yamlfile import (
    ConfigError,
    Problem,
    YamlDocument,
    dotted,
    load_yaml_file,
)


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
    is_bool: bool = False
    is_duration: bool = False
    choices: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return ".".join(self.path)

    @property
    def shown_default(self) -> str:
        """The default as a user would type it (`5s`, `true`, `a,b`); empty when none."""
        if self.default is None or self.default == []:
            return ""
        if self.is_duration:
            return format_duration(self.default)
        if self.is_bool:
            return "true" if self.default else "false"
        if self.is_list:
            return ",".join(str(item) for item in self.default)
        return str(self.default)

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
    literal = get_origin(field.annotation) is Literal
    return SettingInfo(
        path=path,
        env=env,
        flag=flag,
        secret=secret,
        description=field.description or "",
        default=field.default,
        is_list="list[" in annotation,
        is_bool=field.annotation is bool,
        is_duration=any(
            isinstance(m, BeforeValidator) and m.func is parse_duration for m in field.metadata
        ),
        choices=tuple(get_args(field.annotation)) if literal else (),
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


@dataclass(frozen=True)
class _Given:
    """One value given for a setting: the value itself, or the name of a file holding it."""

    raw: Any
    where: str  # shown in errors: "flag --x", "environment variable X", "file.yaml:12"
    from_file: bool = False


def _given_in_file(
    info: SettingInfo, tree: dict[str, Any], doc: YamlDocument | None
) -> list[_Given]:
    """A secret in the config file: `<name>` and/or `<name>_file` (taken out of the tree)."""
    section = tree.get(info.path[0], {}) if len(info.path) > 1 else tree
    if not isinstance(section, dict) or doc is None:
        return []
    given = []
    name = info.path[-1]
    if name in section:
        line = doc.line_of(info.path)
        given.append(_Given(section.pop(name), f"{doc.source}:{line}: {info.key}"))
    if f"{name}_file" in section:
        line = doc.line_of((*info.path[:-1], f"{name}_file"))
        given.append(
            _Given(section.pop(f"{name}_file"), f"{doc.source}:{line}: {info.key}_file", True)
        )
    return given


def _secret_sources(
    info: SettingInfo,
    tree: dict[str, Any],
    doc: YamlDocument | None,
    env: Mapping[str, str],
    flags: Mapping[str, Any],
) -> list[list[_Given]]:
    """What was given for a secret, per source, in rising precedence: file, environment, flag."""
    in_env = []
    if info.env in env:
        in_env.append(_Given(env[info.env], f"environment variable {info.env}"))
    if env.get(info.env + "_FILE"):
        in_env.append(
            _Given(env[info.env + "_FILE"], f"environment variable {info.env}_FILE", True)
        )
    in_flags = []
    if flags.get(info.key + "_file"):
        in_flags.append(_Given(flags[info.key + "_file"], f"flag {info.file_flag}", True))
    return [_given_in_file(info, tree, doc), in_env, in_flags]


def _secret_value(
    info: SettingInfo, sources: list[list[_Given]]
) -> tuple[_Given | None, list[Problem]]:
    """The secret from the source of highest precedence, read from its file if it names one.
    Two values in one source (say POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE) are a mistake,
    not a choice: neither is guessed."""
    problems = [
        Problem(" and ".join(g.where for g in given), info.key, "given twice; keep one")
        for given in sources
        if len(given) > 1
    ]
    chosen = next((given[0] for given in reversed(sources) if len(given) == 1), None)
    if problems or chosen is None or not chosen.from_file:
        return chosen, problems
    try:
        return _Given(_read_secret_file(str(chosen.raw)), chosen.where), []
    except OSError as exc:
        return None, [Problem(chosen.where, info.key, f"cannot read: {exc.strerror}")]
    except ValueError:  # e.g. a NUL byte in the path
        return None, [Problem(chosen.where, info.key, "not a usable file name")]


def load_settings(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge defaults < config file < environment < flags, then validate everything at once.

    `flags` maps a setting key (`postgres.port`, or `postgres.password_file` for a secret file)
    to the value given on the command line. Every problem is reported together: unreadable
    secret files as well as invalid values, each with where it was given.
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
        if info.secret:
            chosen, secret_problems = _secret_value(
                info, _secret_sources(info, tree, doc, env, flags)
            )
            problems += secret_problems
            if chosen is not None:
                apply(info, chosen.raw, chosen.where)
            continue
        if info.env in env:
            apply(info, env[info.env], f"environment variable {info.env}")
        if info.key in flags and flags[info.key] is not None:
            apply(info, flags[info.key], f"flag {info.flag}")

    try:
        settings = Settings.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(problems + _explain(exc, origin, doc)) from None
    if problems:
        raise ConfigError(problems)
    return settings


def _explain(exc: ValidationError, origin: dict[Any, str], doc: Any) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = tuple(error["loc"])
        where = origin.get(loc[:2]) or origin.get(loc[:1])
        if where is None and doc is not None:
            where = f"{doc.source}:{doc.line_of(loc)}"
        problems.append(Problem(where or "defaults", dotted(loc), error["msg"]))
    return problems
