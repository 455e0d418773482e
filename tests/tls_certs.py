"""TLS certificates for wss tests, made with the openssl CLI (argv lists only)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path


def make_self_signed_cert(directory: Path, *, common_name: str = "127.0.0.1", days: int = 30) -> tuple[Path, Path]:
    """Create a self-signed certificate (SAN 127.0.0.1/localhost) with the ``openssl`` CLI: (certfile, keyfile)."""
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl CLI not found: apt-get install openssl")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    argv = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert)]
    argv += ["-days", str(days), "-subj", f"/CN={common_name}"]
    argv += ["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]
    subprocess.run(argv, check=True, capture_output=True)
    return cert, key


_CA_CONFIG = """[ ca ]
default_ca = CA_default
[ CA_default ]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = policy_any
copy_extensions = copy
unique_subject = no
[ policy_any ]
commonName = supplied
"""


def make_expired_cert(directory: Path, *, common_name: str = "alibaba") -> tuple[Path, Path]:
    """Like the FunASR docker image's certificate: self-signed, CN=alibaba, expired 2024-06-17 (via ``openssl ca``)."""
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl CLI not found: apt-get install openssl")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.cnf").write_text(_CA_CONFIG, encoding="ascii")
    (directory / "index.txt").write_text("", encoding="ascii")
    (directory / "serial").write_text("01\n", encoding="ascii")
    cert, key = directory / "expired-cert.pem", directory / "expired-key.pem"
    req = ["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", "req.csr"]
    req += ["-subj", f"/CN={common_name}", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]
    subprocess.run(req, check=True, capture_output=True, cwd=directory)
    sign = ["openssl", "ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", str(key), "-in", "req.csr"]
    sign += ["-out", str(cert), "-startdate", "20230617000000Z", "-enddate", "20240617000000Z"]
    subprocess.run(sign, check=True, capture_output=True, cwd=directory)
    return cert, key


def server_ssl_context(certfile: Path, keyfile: Path) -> ssl.SSLContext:
    """A server-side TLS context for ``FunasrTestServer(ssl_context=...)``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certfile, keyfile)
    return ctx
