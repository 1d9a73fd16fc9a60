"""The web config as the exporter-toolkit defines it: its refusals with file and line, TLS policy
that takes effect on real handshakes, client SANs, response headers, rotation of certificates and
users without a restart, and /healthz for liveness probes (the exemption and the healthcheck
command)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import bcrypt
import pytest

from tests.support.certs import Certs, make_certs
from tests.support.serving import run_cli, running
from tmi_db_exporter.app.webconfig import load_web_config
from tmi_db_exporter.app.webwatch import RECHECK_INTERVAL
from tmi_db_exporter.config.yamlfile import ConfigError
from tmi_db_exporter.demo.servers import free_port


def htpasswd(password: str) -> str:
    """A bcrypt hash as `htpasswd -nB` writes it ($2y$), with cheap rounds."""
    return "$2y$" + bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()[4:]


def credentials(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def tls_lines(certs: Certs, *extra: str) -> str:
    lines = [f"cert_file: {certs.cert}", f"key_file: {certs.key}", *extra]
    return "tls_server_config:\n" + "".join(f"  {line}\n" for line in lines)


def issue_client_certificate(authority: Certs, san: str, name: str) -> tuple[Path, Path]:
    """A client certificate with the given subjectAltName, signed by `authority`'s CA."""
    folder = authority.ca.parent
    key, csr, cert, ext = (folder / f"{name}.{suffix}" for suffix in ("key", "csr", "crt", "ext"))
    ext.write_text(f"subjectAltName = {san}\n")
    ca_key = authority.ca.with_name(authority.ca.name.replace(".crt", ".key"))
    commands = [
        ["req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", key, "-out",
         csr],
        ["x509", "-req", "-in", csr, "-CA", authority.ca, "-CAkey", ca_key, "-CAcreateserial",
         "-days", "2", "-extfile", ext, "-out", cert],
    ]
    for command in commands:
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True)
    return cert, key


def client_context(certs: Certs, *, client: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certs.ca)
    if client is not None:
        context.load_cert_chain(*client)
    return context


def der(certs: Certs) -> bytes:
    return ssl.PEM_cert_to_DER_cert(certs.cert.read_text())


async def handshake(base: str, context: ssl.SSLContext) -> tuple[str, str, bytes]:
    """Version, cipher and certificate (DER) that a new connection gets; raises if refused."""
    _, writer = await asyncio.open_connection("127.0.0.1", urlsplit(base).port, ssl=context)
    session = writer.get_extra_info("ssl_object")
    seen = (session.version(), session.cipher()[0], session.getpeercert(binary_form=True))
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
    return seen


async def request(
    url: str, context: ssl.SSLContext | None = None, **headers: str
) -> tuple[int, dict[str, str]]:
    """Status and headers, over a connection of its own (a pooled one would skip handshakes)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, ssl=context if context is not None else True, headers=headers) as answer,
    ):
        await answer.read()
        return answer.status, dict(answer.headers)


def web_config_file(folder: Path, text: str) -> Path:
    path = folder / "web.yml"
    path.write_text(text)
    return path


# --- refusals, each with file, line and field --------------------------------------------------

CERTS = "tls_server_config:\n  cert_file: /x/server.crt\n  key_file: /x/server.key\n"
REFUSALS = {
    "client CA without client_auth_type": (
        CERTS + "  client_ca_file: /x/ca.crt\n",
        4, "tls_server_config.client_ca_file", "client CA given without client_auth_type",
    ),
    "verifying without a CA": (
        CERTS + "  client_auth_type: RequireAndVerifyClientCert\n",
        4, "tls_server_config.client_auth_type", "RequireAndVerifyClientCert needs client_ca_file",
    ),
    "verifying if given without a CA": (
        CERTS + "  client_auth_type: VerifyClientCertIfGiven\n",
        4, "tls_server_config.client_auth_type", "VerifyClientCertIfGiven needs client_ca_file",
    ),
    "SANs without a required, verified certificate": (
        CERTS + "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: /x/ca.crt\n"
        "  client_allowed_sans: [prometheus]\n",
        6, "tls_server_config.client_allowed_sans", "needs client_auth_type: RequireAndVerify",
    ),
    "no SAN allowed at all": (
        CERTS + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: /x/ca.crt\n"
        "  client_allowed_sans: []\n",
        6, "tls_server_config.client_allowed_sans", "empty: no client could connect",
    ),
    "a certificate required but not verified": (
        CERTS + "  client_auth_type: RequireAnyClientCert\n",
        4, "tls_server_config.client_auth_type",
        "RequireAnyClientCert is not supported by tmi-db-exporter",
    ),
    "an unknown cipher suite": (
        CERTS + "  cipher_suites:\n    - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n"
        "    - TLS_RSA_WITH_RC4_128_SHA\n",
        6, "tls_server_config.cipher_suites[1]", "unknown cipher suite TLS_RSA_WITH_RC4_128_SHA",
    ),
    "TLS 1.3 suites only": (
        CERTS + "  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
        4, "tls_server_config.cipher_suites", "lists no TLS 1.2 suite",
    ),
    "versions the wrong way round": (
        CERTS + "  min_version: TLS13\n  max_version: TLS12\n",
        4, "tls_server_config.min_version", "above max_version TLS12",
    ),
    "an unknown version": (
        CERTS + "  max_version: TLS14\n", 4, "tls_server_config.max_version", "Input should be",
    ),
    "an unknown curve": (
        CERTS + "  curve_preferences: [CurveP256, P-256]\n",
        4, "tls_server_config.curve_preferences[1]", "unknown curve P-256",
    ),
    "several curves": (
        CERTS + "  curve_preferences: [X25519, CurveP256]\n",
        4, "tls_server_config.curve_preferences", "more than one curve is not supported",
    ),
    "a certificate given twice": (
        CERTS + "  cert: inline\n", 2, "tls_server_config.cert_file", "give cert or cert_file",
    ),
    "no key": (
        "tls_server_config:\n  cert_file: /x/server.crt\n  min_version: TLS13\n",
        1, "tls_server_config.key_file", "missing one of key or key_file",
    ),
    "a header the toolkit does not allow": (
        "http_server_config:\n  headers:\n    Server: tmi\n",
        3, "http_server_config.headers.Server", "this header can not be configured",
    ),
    "a header value the toolkit does not allow": (
        "http_server_config:\n  headers:\n    X-Frame-Options: DENY\n",
        3, "http_server_config.headers.X-Frame-Options", "expected one of: deny, sameorigin",
    ),
    "a rate limit": (
        "rate_limit:\n  interval: 1s\n  burst: 5\n",
        1, "rate_limit", "rate_limit is not supported by tmi-db-exporter",
    ),
    "a field of an unreleased toolkit": (
        "auth_excluded_paths: [/healthz]\n", 1, "auth_excluded_paths", "Extra inputs",
    ),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_refusals_name_file_line_and_field(tmp_path: Path, case: str) -> None:
    text, line, field, message = REFUSALS[case]
    path = web_config_file(tmp_path, text)
    with pytest.raises(ConfigError) as refused:
        load_web_config(path)
    assert f"{path}:{line}: {field}: {message}" in str(refused.value)


def test_check_config_refuses_a_client_ca_that_checks_nothing(tmp_path: Path) -> None:
    path = web_config_file(tmp_path, REFUSALS["client CA without client_auth_type"][0])
    result = run_cli("check-config", "--web-config-file", str(path), env={})
    assert result.returncode == 2, result.stderr
    assert f"{path}:4: tls_server_config.client_ca_file: client CA given" in result.stderr


def test_accepted_as_the_toolkit_means_it(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    relative = tls_lines(certs).replace(str(tmp_path) + "/", "")  # read next to the web config
    path = web_config_file(
        tmp_path,
        relative + "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "
        "TLS_AES_128_GCM_SHA256]\n  prefer_server_cipher_suites: false\n"
        "  client_auth_type: ''\nhttp_server_config:\n  http2: true\n"
        "  headers: {Content-Security-Policy: ''}\nrate_limit: {interval: 0s}\n"
        "basic_auth_users:\n",
    )
    config = load_web_config(path)
    assert config.tls is not None and config.tls.cert_file == certs.cert
    assert config.asks_for_http2 and config.response_headers == {}
    assert load_web_config(web_config_file(tmp_path, "tls_server_config: {}\n")).tls is None


# --- TLS policy on real handshakes --------------------------------------------------------------


async def test_cipher_suites_versions_and_curve_take_effect(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    path = web_config_file(tmp_path, tls_lines(
        certs, "cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]", "max_version: TLS12",
        "curve_preferences: [X25519]",
    ))
    async with running({}, web_config=load_web_config(path), scheme="https") as base:
        version, cipher, _ = await handshake(base, client_context(certs))
        assert (version, cipher) == ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256")
        other_suite = client_context(certs)
        other_suite.set_ciphers("ECDHE-RSA-AES256-GCM-SHA384")
        newer_only = client_context(certs)
        newer_only.minimum_version = ssl.TLSVersion.TLSv1_3
        other_curve = client_context(certs)
        other_curve.set_ecdh_curve("prime256v1")
        for refused in (other_suite, newer_only, other_curve):
            with pytest.raises((ssl.SSLError, ConnectionError)):
                await handshake(base, refused)

    path.write_text(tls_lines(certs, "min_version: TLS13"))
    async with running({}, web_config=load_web_config(path), scheme="https") as base:
        assert (await handshake(base, client_context(certs)))[0] == "TLSv1.3"
        older_only = client_context(certs)
        older_only.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await handshake(base, older_only)


async def test_inline_certificate_key_and_client_ca(tmp_path: Path) -> None:
    certs, clients = make_certs(tmp_path / "server"), make_certs(tmp_path / "clients", "client")

    def block(name: str, pem: Path) -> str:
        return f"  {name}: |\n" + "".join(f"    {line}\n" for line in pem.read_text().splitlines())

    path = web_config_file(
        tmp_path,
        "tls_server_config:\n" + block("cert", certs.cert) + block("key", certs.key)
        + block("client_ca", clients.ca) + "  client_auth_type: RequireAndVerifyClientCert\n",
    )
    async with running({}, web_config=load_web_config(path), scheme="https") as base:
        accepted = client_context(certs, client=(clients.cert, clients.key))
        assert (await request(base + "/healthz", accepted))[0] == 200
        assert (await handshake(base, accepted))[2] == der(certs)


# --- client SANs, response headers, the /healthz exemption ---------------------------------------


async def test_client_allowed_sans_let_in_only_the_named_clients(tmp_path: Path) -> None:
    certs, clients = make_certs(tmp_path / "server"), make_certs(tmp_path / "clients", "client")
    stranger = issue_client_certificate(clients, "DNS:intruder.example", "stranger")
    path = web_config_file(tmp_path, tls_lines(
        certs, "client_auth_type: RequireAndVerifyClientCert", f"client_ca_file: {clients.ca}",
        "client_allowed_sans: [prometheus.example, localhost]",
    ))
    async with running({}, web_config=load_web_config(path), scheme="https") as base:
        named = client_context(certs, client=(clients.cert, clients.key))
        assert (await request(base + "/metrics", named))[0] == 200
        unnamed = client_context(certs, client=stranger)
        assert (await request(base + "/metrics", unnamed))[0] == 403
        with pytest.raises(aiohttp.ClientError):  # no certificate: the handshake refuses
            await request(base + "/metrics", client_context(certs))


async def test_configured_headers_are_on_every_response(tmp_path: Path) -> None:
    path = web_config_file(
        tmp_path,
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
        "    X-Content-Type-Options: nosniff\n    Strict-Transport-Security: max-age=31536000\n"
        "    Content-Security-Policy: ''\n"
        f"basic_auth_users:\n  prometheus: '{htpasswd('pw')}'\n",
    )
    expected = {
        "X-Frame-Options": "deny",
        "X-Content-Type-Options": "nosniff",
        "Strict-Transport-Security": "max-age=31536000",
    }
    async with running({}, web_config=load_web_config(path)) as base:
        for path_and_auth, status in (
            (("/metrics", credentials("prometheus", "pw")), 200),  # streamed block by block
            (("/metrics", {}), 401),
            (("/nowhere", credentials("prometheus", "pw")), 404),
        ):
            url, auth = path_and_auth
            got, headers = await request(base + url, **auth)
            assert got == status
            assert expected.items() <= headers.items(), url
            assert "Content-Security-Policy" not in headers  # blank: left out


@pytest.mark.parametrize("exempt", [True, False])
async def test_healthz_without_auth_exempts_healthz_only(tmp_path: Path, exempt: bool) -> None:
    path = web_config_file(tmp_path, f"basic_auth_users:\n  prometheus: '{htpasswd('pw')}'\n")
    flags = {"healthz_without_auth": str(exempt).lower()}
    async with running({}, flags, web_config=load_web_config(path)) as base:
        assert (await request(base + "/healthz"))[0] == (200 if exempt else 401)
        assert (await request(base + "/metrics"))[0] == 401
        assert (await request(base + "/", **credentials("prometheus", "pw")))[0] == 200


# --- rotation without a restart ------------------------------------------------------------------


async def test_certificates_and_users_rotate_and_a_broken_file_keeps_the_last_good_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tmi_db_exporter.app.webwatch")
    first, second = make_certs(tmp_path / "first"), make_certs(tmp_path / "second")
    served = Certs(ca=first.ca, cert=tmp_path / "served.crt", key=tmp_path / "served.key")
    served.cert.write_bytes(first.cert.read_bytes())
    served.key.write_bytes(first.key.read_bytes())

    def users(password: str) -> str:
        return f"basic_auth_users:\n  prometheus: '{htpasswd(password)}'\n"

    path = web_config_file(tmp_path, tls_lines(served) + users("old"))
    wait = RECHECK_INTERVAL + 0.2
    async with running({}, web_config=load_web_config(path), scheme="https") as base:
        trusts_first, trusts_second = client_context(first), client_context(second)
        assert (await handshake(base, trusts_first))[2] == der(first)
        old_user = credentials("prometheus", "old")
        assert (await request(base + "/", trusts_first, **old_user))[0] == 200

        served.key.write_bytes(second.key.read_bytes())
        served.cert.write_bytes(second.cert.read_bytes())
        path.write_text(tls_lines(served) + users("new"))
        await asyncio.sleep(wait)
        assert (await handshake(base, trusts_second))[2] == der(second)
        url = base + "/metrics"
        assert (await request(url, trusts_second, **credentials("prometheus", "new")))[0] == 200
        assert (await request(url, trusts_second, **credentials("prometheus", "old")))[0] == 401

        path.write_text("tls_server_config: [not, a, mapping\n")
        for _ in range(2):  # two re-checks of the same broken file: one log line
            await asyncio.sleep(wait)
            assert (await request(url, trusts_second, **credentials("prometheus", "new")))[0] == 200
    invalid = [r for r in caplog.records if "web config is invalid" in r.getMessage()]
    assert len(invalid) == 1, [r.getMessage() for r in caplog.records]
    assert f"{path}:2: invalid YAML" in invalid[0].getMessage()


# --- the healthcheck command -------------------------------------------------------------------


async def healthcheck(base: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The command in a thread: the server under test runs on this event loop."""
    where = ["--listen-address", "127.0.0.1", "--listen-port", str(urlsplit(base).port)]
    return await asyncio.to_thread(run_cli, "healthcheck", *where, *args, env={})


async def test_healthcheck_over_http_follows_a_wildcard_address() -> None:
    async with running({}, {"listen_address": "0.0.0.0"}) as base:
        result = await healthcheck(base, "--listen-address", "0.0.0.0")
    assert result.returncode == 0, result.stderr
    assert f"http://127.0.0.1:{urlsplit(base).port}/healthz answered 200" in result.stdout
    nobody = await healthcheck(f"http://127.0.0.1:{free_port()}")
    assert nobody.returncode == 1 and "unhealthy:" in nobody.stderr


async def test_healthcheck_over_https_with_and_without_the_exemption(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    plain_tls = web_config_file(tmp_path, tls_lines(certs))
    async with running({}, web_config=load_web_config(plain_tls), scheme="https") as base:
        result = await healthcheck(base, "--web-config-file", str(plain_tls))
    assert result.returncode == 0, result.stderr
    assert "https://127.0.0.1:" in result.stdout

    with_auth = web_config_file(tmp_path, tls_lines(certs) + (
        f"basic_auth_users:\n  prometheus: '{htpasswd('pw')}'\n"
    ))
    flags = {"healthz_without_auth": "true"}
    async with running({}, flags, web_config=load_web_config(with_auth), scheme="https") as base:
        exempt = await healthcheck(base, "--web-config-file", str(with_auth),
                                   "--healthz-without-auth")
        not_exempt = await healthcheck(base, "--web-config-file", str(with_auth))
    assert exempt.returncode == 0, exempt.stderr
    assert not_exempt.returncode == 1
    assert "/healthz asks for basic auth" in not_exempt.stderr
    assert "healthz_without_auth: true" in not_exempt.stderr
    assert "Traceback" not in not_exempt.stderr


@pytest.mark.parametrize("version", ["TLS12", "TLS13"])  # refused in or after the handshake
async def test_healthcheck_when_a_client_certificate_is_required(
    tmp_path: Path, version: str
) -> None:
    certs, clients = make_certs(tmp_path / "server"), make_certs(tmp_path / "clients", "client")
    path = web_config_file(tmp_path, tls_lines(
        certs, "client_auth_type: RequireAndVerifyClientCert", f"client_ca_file: {clients.ca}",
        f"max_version: {version}",
    ))
    async with running({}, web_config=load_web_config(path), scheme="https") as base:
        result = await healthcheck(base, "--web-config-file", str(path))
    assert result.returncode == 0, result.stderr
    assert "answered a TLS ClientHello" in result.stdout
