"""Settings: precedence, the guide's environment names, *_FILE secrets, errors that name the
setting and never echo a secret."""

from pathlib import Path

import pytest

from tmi_db_exporter.config.loading import load_settings, setting_infos
from tmi_db_exporter.config.settings import DEFAULT_PORT, redact_url
from tmi_db_exporter.config.yamlfile import ConfigError


def test_guide_environment_names_are_understood() -> None:
    settings = load_settings(
        env={
            "POSTGRES_HOST": "db.internal",
            "POSTGRES_PORT": "6543",
            "POSTGRES_USER": "tmi_user",
            "POSTGRES_PASSWORD": "pw",
            "POSTGRES_DATABASE": "tmi",
            "POSTGRES_SSL_MODE": "require",
            "REDIS_HOST": "cache.internal",
            "REDIS_PORT": "6380",
            "REDIS_PASSWORD": "rpw",
            "REDIS_DB": "2",
        }
    )
    pg, redis = settings.postgres, settings.redis
    assert (pg.host, pg.port, pg.user, pg.database, pg.ssl_mode) == (
        "db.internal", 6543, "tmi_user", "tmi", "require",
    )
    assert pg.password.get_secret_value() == "pw"
    assert (redis.host, redis.port, redis.db) == ("cache.internal", 6380, 2)
    assert redis.password.get_secret_value() == "rpw"


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("postgres:\n  host: from-file\n  port: 1111\n  user: file-user\n")
    env = {"POSTGRES_PORT": "2222", "POSTGRES_USER": "env-user"}
    settings = load_settings(config, env, {"postgres.user": "flag-user"})
    assert settings.postgres.host == "from-file"
    assert settings.postgres.port == 2222
    assert settings.postgres.user == "flag-user"
    assert settings.postgres.database == "postgres"  # default
    assert settings.listen_port == DEFAULT_PORT not in (9187, 9121)


def test_either_database_may_be_left_out() -> None:
    only_redis = load_settings(env={"REDIS_URL": "redis://localhost:6379/0"})
    assert only_redis.postgres is None and only_redis.redis is not None
    only_pg = load_settings(env={"POSTGRES_HOST": "x"})
    assert only_pg.redis is None and only_pg.postgres is not None
    nothing = load_settings(env={})
    assert nothing.postgres is None and nothing.redis is None


def test_secret_files_from_env_flag_and_config(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-a-file\n")
    by_env = load_settings(env={"POSTGRES_PASSWORD_FILE": str(secret)})
    assert by_env.postgres.password.get_secret_value() == "from-a-file"
    by_flag = load_settings(flags={"redis.password_file": str(secret)})
    assert by_flag.redis.password.get_secret_value() == "from-a-file"
    url = tmp_path / "url"
    url.write_text("redis://:pw@cache:6379/0\n")
    config = tmp_path / "c.yaml"
    config.write_text(f"redis:\n  url_file: {url}\n")
    assert load_settings(config).redis.url.get_secret_value() == "redis://:pw@cache:6379/0"


def test_a_redis_url_that_is_not_one_is_refused_without_repeating_it() -> None:
    for bad in ("redis://:hunter2@[::1", "redis://:hunter2@h:99999999/0", "http://:hunter2@h/"):
        with pytest.raises(ConfigError) as err:
            load_settings(env={"REDIS_URL": bad})
        assert "environment variable REDIS_URL: redis.url:" in str(err.value)
        assert "hunter2" not in str(err.value)


def test_unreadable_secret_file_names_the_variable() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env={"POSTGRES_PASSWORD_FILE": "/nonexistent/pw"})
    assert "POSTGRES_PASSWORD_FILE" in str(err.value)
    assert "No such file" in str(err.value)


def test_errors_name_setting_and_source_but_never_the_secret() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(
            env={
                "POSTGRES_PORT": "not-a-port",
                "POSTGRES_PASSWORD": "hunter2-secret",
                "POSTGRES_SSL_MODE": "sometimes",
                "REDIS_DB": "-1",
            }
        )
    text = str(err.value)
    assert "environment variable POSTGRES_PORT: postgres.port:" in text
    assert "environment variable POSTGRES_SSL_MODE: postgres.ssl_mode:" in text
    assert "environment variable REDIS_DB: redis.db:" in text
    assert len(err.value.problems) == 3
    assert "hunter2" not in text and "not-a-port" not in text


def test_config_file_errors_give_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("listen_port: 9000\npostgres:\n  host: x\n  port: nope\n  colour: blue\n")
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    assert f"{config}:4: postgres.port:" in str(err.value)
    assert f"{config}:5: postgres.colour: Extra inputs are not permitted" in str(err.value)


def test_secret_does_not_show_in_repr_or_description() -> None:
    settings = load_settings(env={"POSTGRES_PASSWORD": "s3cr3t", "REDIS_URL": "redis://u:s3cr3t@h:1/0"})
    assert "s3cr3t" not in repr(settings)
    assert "s3cr3t" not in settings.postgres.describe()
    assert settings.redis.describe() == "redis://u:***@h:1/0"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"


def test_every_setting_has_env_and_description_and_secrets_have_no_flag() -> None:
    infos = list(setting_infos())
    assert {"POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_PASSWORD",
            "POSTGRES_DATABASE", "POSTGRES_SSL_MODE", "REDIS_HOST", "REDIS_PORT",
            "REDIS_PASSWORD", "REDIS_DB", "REDIS_URL"} <= {i.env for i in infos}
    for info in infos:
        assert info.description, info.key
        assert (info.flag is None) == info.secret, info.key


def test_a_secret_file_flag_beats_the_secret_in_the_environment(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-flag-file\n")
    config = tmp_path / "config.yaml"
    config.write_text("postgres:\n  password: from-config\n")
    env = {"POSTGRES_PASSWORD": "from-env"}
    settings = load_settings(config, env, {"postgres.password_file": str(secret)})
    assert settings.postgres.password.get_secret_value() == "from-flag-file"
    assert load_settings(config, env).postgres.password.get_secret_value() == "from-env"
    assert load_settings(config).postgres.password.get_secret_value() == "from-config"


def test_a_secret_given_twice_in_one_place_is_an_error_naming_both(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("hunter2-file")
    env = {"POSTGRES_PASSWORD": "hunter2-env", "POSTGRES_PASSWORD_FILE": str(secret)}
    with pytest.raises(ConfigError) as err:
        load_settings(env=env)
    message = str(err.value)
    assert "POSTGRES_PASSWORD and environment variable POSTGRES_PASSWORD_FILE" in message
    assert "hunter2" not in message
    config = tmp_path / "config.yaml"
    config.write_text(f"redis:\n  password: x\n  password_file: {secret}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    assert f"{config}:2: redis.password and {config}:3: redis.password_file" in str(err.value)


def test_an_unreadable_secret_file_is_reported_with_every_other_problem(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "postgres:\n  port: many\n  password_file: /nonexistent/pw\nredis:\n  db: minus one\n"
    )
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    lines = [str(p) for p in err.value.problems]
    assert any(line.startswith(f"{config}:3: postgres.password_file:") for line in lines), lines
    assert any(line.startswith(f"{config}:2: postgres.port:") for line in lines), lines
    assert any(line.startswith(f"{config}:5: redis.db:") for line in lines), lines


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h30m", 5400), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200), ("45", 45), ("5 s", 5)],
)
def test_durations_take_go_style_text(text: str, seconds: float) -> None:
    settings = load_settings(env={"REDIS_HOST": "x", "REDIS_KEY_CENSUS_INTERVAL": text})
    assert settings.redis.key_census_interval == seconds


@pytest.mark.parametrize("text", ["1x", "h", "-5s", "1h-30m"])
def test_a_bad_duration_names_the_accepted_forms(text: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env={"REDIS_HOST": "x", "REDIS_TIMEOUT": text})
    assert "1h30m" in str(err.value) and "REDIS_TIMEOUT" in str(err.value)


@pytest.mark.parametrize(("given", "level"), [("warn", "warning"), ("WARN", "warning"),
                                              ("Debug", "debug"), ("error", "error")])
def test_log_levels_as_other_exporters_spell_them(given: str, level: str) -> None:
    assert load_settings(env={"TMI_EXPORTER_LOG_LEVEL": given}).log_level == level


def test_boolean_flags_work_bare_and_help_shows_choices_and_typed_defaults() -> None:
    from tmi_db_exporter.cli import _flags, build_parser

    parser = build_parser()
    args = parser.parse_args(["run", "--redis-tls", "--redis-host", "h"])
    assert load_settings(flags=_flags(args)).redis.tls is True
    args = parser.parse_args(["run", "--redis-tls", "false", "--redis-host", "h"])
    assert load_settings(flags=_flags(args)).redis.tls is False
    help_text = " ".join(parser._subparsers._group_actions[0].choices["run"].format_help().split())
    assert "--redis-timeout VALUE Connect and command timeout (env REDIS_TIMEOUT; default: 5s)" \
        in help_text
    assert "one of debug, info, warning, error; default: info" in help_text
    assert "REDIS_KEY_CENSUS_INTERVAL; default: 5m" in help_text
