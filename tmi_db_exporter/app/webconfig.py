"""The web config file of the Prometheus exporter-toolkit: TLS, basic auth and response headers.

Operators already write this file for node_exporter and friends, so the same file works here:

    tls_server_config:
      cert_file: /etc/tmi-db-exporter/server.crt
      key_file: /etc/tmi-db-exporter/server.key
      client_ca_file: /etc/tmi-db-exporter/ca.crt          # optional
      client_auth_type: RequireAndVerifyClientCert          # optional
      min_version: TLS12                                    # optional
    http_server_config:
      headers: {X-Frame-Options: deny}                      # optional
    basic_auth_users:
      prometheus: $2y$10$...                                # bcrypt hash, never the password

Every field of the toolkit's schema is either honoured or refused with its file and line: a
setting that was silently ignored would leave an operator believing in a protection that is not
there. What the toolkit refuses is refused too, and a few combinations it lets through that
would not do what they say.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
)

from tmi_db_exporter.app import tls
from tmi_db_exporter.config.durations import Duration
from tmi_db_exporter.config.yamlfile import ConfigError, Problem, YamlDocument, load_yaml_file


def _blank_is_none(value: Any) -> Any:
    """The toolkit reads `cert_file: ""` as not given (Path("") would be the current directory)."""
    return None if value == "" else value


def _null_is_empty(value: Any) -> Any:
    """`basic_auth_users:` with nothing under it is an empty mapping to the toolkit too."""
    return {} if value is None else value


def _client_auth_default(value: Any) -> Any:
    return "NoClientCert" if value in ("", None) else value


OptionalText = Annotated[str | None, BeforeValidator(_blank_is_none)]
OptionalPath = Annotated[Path | None, BeforeValidator(_blank_is_none)]
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_blank_is_none)]
StringMap = Annotated[dict[str, str], BeforeValidator(_null_is_empty)]
TLSVersionName = Literal["TLS10", "TLS11", "TLS12", "TLS13"]
ClientAuthType = Literal[
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "RequireClientCert",  # the toolkit's old name of RequireAnyClientCert
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
]
VERIFYING_CLIENT_AUTH = ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert")
UNVERIFIED_CLIENT_CERT = ("RequireAnyClientCert", "RequireClientCert")

# The toolkit lets these response headers be set and no others, "to ensure consistency in the
# Prometheus ecosystem"; a header with a list only takes one of its values, exactly as written.
ALLOWED_HEADERS: dict[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}
BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
NOT_SUPPORTED = "is not supported by tmi-db-exporter"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TLSServerConfig(_Strict):
    cert: OptionalText = None
    key: OptionalSecret = None
    client_ca: OptionalText = None
    cert_file: OptionalPath = None
    key_file: OptionalPath = None
    client_auth_type: Annotated[ClientAuthType, BeforeValidator(_client_auth_default)] = (
        "NoClientCert"
    )
    client_ca_file: OptionalPath = None
    client_allowed_sans: list[str] | None = None
    min_version: TLSVersionName = "TLS12"
    max_version: TLSVersionName = "TLS13"
    cipher_suites: list[str] = []
    prefer_server_cipher_suites: bool = True
    curve_preferences: list[str] = []

    def named_files(self) -> list[Path]:
        return [p for p in (self.cert_file, self.key_file, self.client_ca_file) if p is not None]

    def relative_to(self, directory: Path) -> TLSServerConfig:
        """Relative file names are read from the web config's own directory, as in the toolkit."""
        update = {
            name: directory / path
            for name in ("cert_file", "key_file", "client_ca_file")
            if (path := getattr(self, name)) is not None and not path.is_absolute()
        }
        return self.model_copy(update=update) if update else self


class HTTPServerConfig(_Strict):
    # aiohttp speaks HTTP/1.1 only. A client that offers HTTP/2 falls back to it, so `true` (the
    # toolkit's default) is accepted and logged rather than refused.
    http2: bool = True
    headers: StringMap = {}


class RateLimit(_Strict):
    interval: Duration = 0.0
    burst: int = 0


class WebConfig(_Strict):
    tls_server_config: TLSServerConfig | None = None
    http_server_config: HTTPServerConfig | None = None
    rate_limit: RateLimit | None = None
    basic_auth_users: StringMap = Field(default_factory=dict)
    _source: Path | None = PrivateAttr(None)

    @property
    def source(self) -> Path | None:
        """The file this was read from, so that it can be read again when it changes."""
        return self._source

    @property
    def tls(self) -> TLSServerConfig | None:
        """The TLS settings, or None for plain HTTP (also for an empty `tls_server_config`)."""
        tls_config = self.tls_server_config
        return tls_config if tls_config is not None and tls_config.model_fields_set else None

    @property
    def response_headers(self) -> dict[str, str]:
        """Headers added to every response; a blank value leaves the header out."""
        http = self.http_server_config
        return {name: value for name, value in (http.headers if http else {}).items() if value}

    @property
    def asks_for_http2(self) -> bool:
        http = self.http_server_config
        return http is not None and "http2" in http.model_fields_set and http.http2

    @property
    def requires_client_certificate(self) -> bool:
        return self.tls is not None and self.tls.client_auth_type == "RequireAndVerifyClientCert"

    def named_files(self) -> list[Path]:
        """Files besides this one whose change changes what is served."""
        return self.tls.named_files() if self.tls else []

    def ssl_context(self) -> ssl.SSLContext | None:
        """A fresh server context from the files as they are now; None without TLS."""
        return tls.server_context(self.tls) if self.tls else None


def parse_web_config(path: Path) -> tuple[WebConfig, YamlDocument]:
    """The file's schema only: enough to know the scheme and who must authenticate."""
    doc = load_yaml_file(path)
    try:
        config = WebConfig.model_validate(doc.data or {})
    except ValidationError as exc:
        raise ConfigError(doc.problems_from(exc)) from None
    if config.tls_server_config is not None:
        config = config.model_copy(
            update={"tls_server_config": config.tls_server_config.relative_to(path.parent)}
        )
    config._source = path
    return config, doc


def check_web_config(config: WebConfig, doc: YamlDocument) -> ssl.SSLContext | None:
    """Every problem at once, the files it names loaded; the server context made on the way."""
    problems = _user_problems(config, doc) + _header_problems(config, doc)
    if config.rate_limit is not None and config.rate_limit.interval > 0:
        problems.append(doc.problem(("rate_limit",), f"rate_limit {NOT_SUPPORTED}"))
    tls_problems = _tls_problems(config.tls, _Pointer(doc)) if config.tls else []
    context = None
    if not tls_problems:  # the files are worth loading once the settings make sense
        try:
            context = config.ssl_context()
        except (OSError, ssl.SSLError, ValueError) as exc:
            reason = _unreadable(config.named_files()) or getattr(exc, "strerror", None) or str(exc)
            problems.append(
                doc.problem(("tls_server_config",), f"cannot load TLS files: {reason}")
            )
    if problems or tls_problems:
        raise ConfigError(problems + tls_problems)
    return context


def _unreadable(paths: list[Path]) -> str | None:
    """Which file cannot be read, and why: OpenSSL's error names neither."""
    for path in paths:
        try:
            path.open("rb").close()
        except OSError as exc:
            return f"{path}: {exc.strerror}"
    return None


def load_web_config(path: Path) -> WebConfig:
    """Validate the file and the files it names (certificates load, hashes are bcrypt)."""
    config, doc = parse_web_config(path)
    check_web_config(config, doc)
    return config


def _user_problems(config: WebConfig, doc: YamlDocument) -> list[Problem]:
    return [
        doc.problem(("basic_auth_users", user), "expected a bcrypt hash ($2y$...)")
        for user, hashed in config.basic_auth_users.items()
        if not hashed.startswith(BCRYPT_PREFIXES)
    ]


def _header_problems(config: WebConfig, doc: YamlDocument) -> list[Problem]:
    problems = []
    headers = config.http_server_config.headers if config.http_server_config else {}
    for name, value in headers.items():
        where = ("http_server_config", "headers", name)
        allowed = ALLOWED_HEADERS.get(name)
        if allowed is None:
            known = ", ".join(ALLOWED_HEADERS)
            problems.append(doc.problem(where, f"this header can not be configured ({known})"))
        elif allowed and value not in allowed:
            problems.append(doc.problem(where, f"expected one of: {', '.join(allowed)}"))
        elif "\n" in value or "\r" in value:
            problems.append(doc.problem(where, "a header value is one line"))
    return problems


class _Pointer:
    """Problems inside tls_server_config, each at the line of its field (or list item)."""

    def __init__(self, doc: YamlDocument) -> None:
        self.doc = doc

    def __call__(self, field: str, message: str, *index: int) -> Problem:
        return self.doc.problem(("tls_server_config", field, *index), message)


def _tls_problems(config: TLSServerConfig, at: _Pointer) -> list[Problem]:
    return (
        _pem_source_problems(config, at)
        + _client_auth_problems(config, at)
        + _version_and_suite_problems(config, at)
    )


def _pem_source_problems(config: TLSServerConfig, at: _Pointer) -> list[Problem]:
    """Each of certificate, key and client CA comes inline or from a file, never both."""
    problems = []
    for inline in ("cert", "key", "client_ca"):
        file = f"{inline}_file"
        given_inline, given_file = getattr(config, inline), getattr(config, file)
        if given_inline is not None and given_file is not None:
            problems.append(at(file, f"give {inline} or {file}, not both"))
        elif given_inline is None and given_file is None and inline != "client_ca":
            problems.append(at(file, f"missing one of {inline} or {file}"))
    return problems


def _client_auth_problems(config: TLSServerConfig, at: _Pointer) -> list[Problem]:
    problems = []
    auth = config.client_auth_type
    has_ca = config.client_ca is not None or config.client_ca_file is not None
    if auth in UNVERIFIED_CLIENT_CERT:
        problems.append(at(
            "client_auth_type",
            f"{auth} {NOT_SUPPORTED}: Python's ssl module cannot require a certificate without "
            "verifying it; use RequireAndVerifyClientCert with client_ca_file",
        ))
    elif auth in VERIFYING_CLIENT_AUTH and not has_ca:
        # Go would verify against the system's CAs: any publicly issued certificate would pass.
        problems.append(at("client_auth_type", f"{auth} needs client_ca_file (or client_ca)"))
    if has_ca and auth == "NoClientCert":
        problems.append(at(
            "client_ca_file" if config.client_ca_file is not None else "client_ca",
            "client CA given without client_auth_type, so client certificates would not be "
            "checked; set client_auth_type: RequireAndVerifyClientCert",
        ))
    if config.client_allowed_sans is not None and auth != "RequireAndVerifyClientCert":
        problems.append(at(
            "client_allowed_sans",
            "needs client_auth_type: RequireAndVerifyClientCert (otherwise a client may connect "
            "without a certificate, leaving no SAN to check)",
        ))
    elif config.client_allowed_sans == []:
        problems.append(at("client_allowed_sans", "empty: no client could connect"))
    return problems


def _version_and_suite_problems(config: TLSServerConfig, at: _Pointer) -> list[Problem]:
    problems = []
    if tls.version_order(config.min_version) > tls.version_order(config.max_version):
        problems.append(at("min_version", f"above max_version {config.max_version}"))
    for index, name in enumerate(config.cipher_suites):
        if name not in tls.TLS12_CIPHER_SUITES and name not in tls.TLS13_CIPHER_SUITES:
            message = f"unknown cipher suite {name} ({tls.KNOWN})"
            problems.append(at("cipher_suites", message, index))
    if config.cipher_suites and not set(config.cipher_suites) & set(tls.TLS12_CIPHER_SUITES):
        problems.append(at(
            "cipher_suites",
            "lists no TLS 1.2 suite; TLS 1.3 suites cannot be configured (neither Go nor OpenSSL "
            "take them from this list): list TLS 1.2 suites, or leave it out",
        ))
    curves = ", ".join(tls.CURVES)
    for index, name in enumerate(config.curve_preferences):
        if name not in tls.CURVES:
            problems.append(at("curve_preferences", f"unknown curve {name} ({curves})", index))
    if len(config.curve_preferences) > 1:
        problems.append(at(
            "curve_preferences",
            f"more than one curve {NOT_SUPPORTED}: Python's ssl module sets a single one",
        ))
    return problems
