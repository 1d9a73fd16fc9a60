"""TLS contexts from the web config's Go names (crypto/tls), made with Python's ssl module.

The exporter-toolkit names versions, cipher suites and curves as Go does; OpenSSL has names of
its own. The tables here translate, and hold only what Go itself accepts.
"""

from __future__ import annotations

import os
import ssl
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tmi_db_exporter.app.webconfig import TLSServerConfig

TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# Go's crypto/tls CipherSuites() for TLS 1.2 and below (the ones Go calls secure; the toolkit
# refuses any other name), with OpenSSL's name of each.
TLS12_CIPHER_SUITES = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
# Go accepts these names in cipher_suites but, as its documentation says, does not let them
# choose anything; OpenSSL (through Python) cannot be told either. Accepted, without effect.
TLS13_CIPHER_SUITES = frozenset(
    {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
)
KNOWN = "Go's names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
CURVES = {
    "CurveP256": "prime256v1",
    "CurveP384": "secp384r1",
    "CurveP521": "secp521r1",
    "X25519": "X25519",
}
# RequestClientCert: Go asks for a certificate, then neither checks nor uses it. Python's ssl
# cannot ask without checking what comes; since nothing here reads an unchecked certificate, not
# asking lets in exactly the clients Go lets in. (RequireAnyClientCert is refused when loading.)
CLIENT_CERT_MODES = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# OpenSSL 3 negotiates TLS 1.0 and 1.1 only at security level 0; an operator who sets
# min_version TLS10 or TLS11 asks for those clients, as Go would serve them.
LEGACY_SECURITY_LEVEL = "@SECLEVEL=0"


def version_order(name: str) -> int:
    return list(TLS_VERSIONS).index(name)


def allows_legacy_versions(minimum: str) -> bool:
    return version_order(minimum) < version_order("TLS12")


def set_versions(context: ssl.SSLContext, minimum: str, maximum: str) -> None:
    with warnings.catch_warnings():
        # Python deprecates TLS 1.0/1.1; asking for them is the operator's explicit choice.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = TLS_VERSIONS[minimum]
        context.maximum_version = TLS_VERSIONS[maximum]
    if allows_legacy_versions(minimum):
        context.set_ciphers("DEFAULT:" + LEGACY_SECURITY_LEVEL)


def server_context(config: TLSServerConfig) -> ssl.SSLContext:
    """A server context as the toolkit would configure Go's tls.Config from `config`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    set_versions(context, config.min_version, config.max_version)
    suites = [TLS12_CIPHER_SUITES[n] for n in config.cipher_suites if n in TLS12_CIPHER_SUITES]
    if suites:
        legacy = [LEGACY_SECURITY_LEVEL] if allows_legacy_versions(config.min_version) else []
        context.set_ciphers(":".join(suites + legacy))
    if config.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    if config.curve_preferences:
        context.set_ecdh_curve(CURVES[config.curve_preferences[0]])
    key = config.key.get_secret_value() if config.key is not None else None
    with ExitStack() as files:
        cert_path = config.cert_file or files.enter_context(_readable_path(config.cert or ""))
        key_path = config.key_file or files.enter_context(_readable_path(key or ""))
        context.load_cert_chain(cert_path, key_path)
    context.verify_mode = CLIENT_CERT_MODES[config.client_auth_type]
    if config.client_ca_file is not None:
        context.load_verify_locations(cafile=config.client_ca_file)
    elif config.client_ca is not None:
        context.load_verify_locations(cadata=config.client_ca)
    return context


def probe_context(config: TLSServerConfig | None) -> ssl.SSLContext:
    """A client context for a liveness probe of our own server: it accepts the server's
    certificate unchecked. The probe asks whether the process answers; the certificate names
    the service as others reach it, not 127.0.0.1, so checking it would turn a name mismatch or
    an expired certificate into a restart loop (certificate expiry is worth an alert, not a
    restart)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if config is not None:
        set_versions(context, config.min_version, config.max_version)
    return context


@contextmanager
def _readable_path(pem: str) -> Iterator[Path]:
    """A path OpenSSL can read an inline PEM from (load_cert_chain takes file names only): in
    memory where the system has memfd, so that an inline private key never lands on a disk,
    and in a private temporary directory elsewhere."""
    if hasattr(os, "memfd_create"):
        descriptor = os.memfd_create("tmi-db-exporter-pem")
        try:
            with open(descriptor, "w", encoding="utf-8", closefd=False) as handle:
                handle.write(pem)
            yield Path(f"/proc/self/fd/{descriptor}")
        finally:
            os.close(descriptor)
        return
    with tempfile.TemporaryDirectory() as directory:  # created mode 0700: ours alone
        path = Path(directory) / "inline.pem"
        path.write_text(pem, encoding="utf-8")
        yield path
