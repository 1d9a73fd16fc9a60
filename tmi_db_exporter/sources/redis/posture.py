"""The `redis_posture` collector (every `posture_interval`): the security posture the operations
guide checks by hand (authentication required, dangerous commands renamed or disabled, protected
mode) and the slowlog settings.

The new name of a renamed command is never learned or shown: it is as secret as a password.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, RedisError, ResponseError

from tmi_db_exporter.config.settings import RedisSettings
from tmi_db_exporter.core.contract import Unavailable
from tmi_db_exporter.core.exposition import Family
from tmi_db_exporter.core.metrics import MetricGroup
from tmi_db_exporter.core.reachability import Reachability
from tmi_db_exporter.sources.redis.client import CommandAccess, make_client
from tmi_db_exporter.sources.redis.info import parse_number

METRICS = MetricGroup("Redis COMMAND INFO/LIST, CONFIG GET, PING without credentials", __name__)
AUTH_REQUIRED = METRICS.define(
    "redis_security_auth_required",
    "1 if a connection without credentials is refused (requirepass, or the ACL default user "
    "off or with a password), 0 if anyone who reaches the port can run commands.",
)
COMMAND_RENAMED = METRICS.define(
    "redis_security_command_renamed",
    "1 if the dangerous command cannot be called by its own name (rename-command, to another "
    "name or to \"\"), else 0; seen with COMMAND INFO, without calling it.",
    labels=("command",),
)
COMMAND_DISABLED = METRICS.define(
    "redis_security_command_disabled",
    "1 if the dangerous command is disabled altogether (rename-command to \"\"), else 0; "
    "Redis 7+ (COMMAND LIST).",
    labels=("command",),
)
PROTECTED_MODE = METRICS.define(
    "redis_security_protected_mode", "1 if protected-mode is on (CONFIG GET), else 0."
)
CONFIG_SLOWLOG_THRESHOLD = METRICS.define(
    "redis_config_slowlog_log_slower_than_seconds",
    "slowlog-log-slower-than in seconds (-1: slowlog off).",
)
CONFIG_SLOWLOG_MAX_LEN = METRICS.define("redis_config_slowlog_max_len", "slowlog-max-len setting.")


class PostureCollector:
    """`redis_posture`: what someone who reaches the server could do with it."""

    def __init__(
        self,
        client: aioredis.Redis,
        settings: RedisSettings,
        *,
        access: CommandAccess,
        reachability: Reachability,
    ) -> None:
        self.client = client  # from make_client: raw replies
        self.settings = settings  # dangerous_commands, config_command; the connection options
        self.access = access
        self.reachability = reachability

    async def collect(self) -> list[Family]:
        if self.reachability.known_down:
            raise Unavailable
        families: list[Family] = []
        callable_: dict[str, bool] = {}
        if self.access.may_try("COMMAND"):
            families, callable_ = await self._command_families()
        families += await self._config_families(callable_.get("CONFIG"))
        families += await self._auth_families()
        return families

    async def _command_families(self) -> tuple[list[Family], dict[str, bool]]:
        """Renamed and disabled commands, detected without calling them, and which of them can
        be called by their own name.

        `COMMAND INFO name` answers nil once `rename-command` moved a command away from its
        name, and `COMMAND LIST` still lists a renamed command under its original name but no
        longer lists one renamed to "" (disabled)."""
        dangerous = sorted({c.upper() for c in self.settings.dangerous_commands})
        checked = sorted({*dangerous, "CONFIG"})
        pipe = self.client.pipeline(transaction=False)
        pipe.execute_command("COMMAND", "INFO", *checked)
        pipe.execute_command("COMMAND", "LIST")
        try:
            info, listed = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError):
            raise Unavailable from None
        self.access.report("COMMAND", info if isinstance(info, ResponseError) else None)
        if isinstance(info, ResponseError):
            return [], {}
        callable_ = {name: bool(entry) for name, entry in zip(checked, info, strict=True)}
        renamed, disabled = COMMAND_RENAMED.family(), COMMAND_DISABLED.family()
        names = None if isinstance(listed, ResponseError) else {n.lower() for n in listed}
        for name in dangerous:
            label = (("command", name),)
            renamed.add(0.0 if callable_[name] else 1.0, label)
            if names is not None:  # COMMAND LIST: Redis 7+
                disabled.add(0.0 if name.lower() in names else 1.0, label)
        return [renamed, disabled], callable_

    async def _config_families(self, config_callable: bool | None) -> list[Family]:
        """CONFIG GET of a few settings, unless CONFIG is known to be renamed away (then only
        by the name given in the settings) or was refused lately."""
        renamed_to = self.settings.config_command
        if renamed_to is None and config_callable is False:
            self.access.report("CONFIG", "renamed or disabled with rename-command; set "
                               "REDIS_CONFIG_COMMAND to let the exporter use the new name")
            return []
        if not self.access.may_try("CONFIG"):
            return []
        command = renamed_to.get_secret_value() if renamed_to is not None else "CONFIG"
        params = ("protected-mode", "slowlog-log-slower-than", "slowlog-max-len")
        pipe = self.client.pipeline(transaction=False)
        for param in params:  # one parameter per CONFIG GET works on every version
            pipe.execute_command(command, "GET", param)
        try:
            replies = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError):
            raise Unavailable from None
        error = next((r for r in replies if isinstance(r, ResponseError)), None)
        self.access.report("CONFIG", error)
        if error is not None:
            return []
        values = {param: (reply[1] if len(reply) == 2 else None)
                  for param, reply in zip(params, replies, strict=True)}
        return _config_values_families(values)

    async def _auth_families(self) -> list[Family]:
        """A PING on a fresh connection without credentials, as anyone on the network could:
        whether authentication is required, seen the way an attacker would see it."""
        probe = make_client(self.settings, None, credentials=False, retries=0)
        required = AUTH_REQUIRED.family()
        try:
            await probe.execute_command("PING")
            required.add(0)
        except AuthenticationError:  # NOAUTH
            required.add(1)
        except ResponseError as exc:  # e.g. NOPERM: let in as the default user, just not PING
            required.add(1.0 if str(exc).startswith("NOAUTH") else 0.0)
        except (RedisError, OSError):
            pass  # cannot tell; redis_up shows whether the server is there at all
        finally:
            await probe.aclose()
        return [required]


def _config_values_families(values: dict[str, str | None]) -> list[Family]:
    """The CONFIG GET answers (None: not given) as metrics in base units."""
    protected, threshold, max_len = (
        PROTECTED_MODE.family(), CONFIG_SLOWLOG_THRESHOLD.family(),
        CONFIG_SLOWLOG_MAX_LEN.family(),
    )
    if values["protected-mode"] is not None:
        protected.add(1.0 if values["protected-mode"] == "yes" else 0.0)
    micros = parse_number(values["slowlog-log-slower-than"])
    if micros is not None:
        threshold.add(micros / 1e6 if micros >= 0 else -1.0)
    length = parse_number(values["slowlog-max-len"])
    if length is not None:
        max_len.add(length)
    return [protected, threshold, max_len]
