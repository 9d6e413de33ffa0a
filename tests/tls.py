"""A throwaway certificate authority and a server certificate it signed, for TLS on loopback
(the `openssl` command line: nothing to install)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

#: Names the server certificate is valid for (clients check them: hostname verification on).
SERVER_NAMES = ("IP:127.0.0.1", "DNS:localhost")


@dataclass(frozen=True)
class TlsFiles:
    #: The CA's certificate: what clients trust (KAFKA_SSL_CAFILE).
    ca_cert: Path
    #: The server's certificate and the CA's after it (a chain), and its key (PKCS#8, not
    #: encrypted), each in PEM.
    server_chain: Path
    server_key: Path
    #: The key and the chain in one PEM file: what a Kafka listener reads with
    #: `ssl.keystore.type=PEM` and `ssl.keystore.location`.
    server_keystore: Path


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                            timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed:\n{result.stderr}")


def make_server_certificate(directory: Path, names: tuple[str, ...] = SERVER_NAMES,
                            days: int = 2) -> TlsFiles:
    """A new CA and a server certificate for `names` (subjectAltName entries), in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.ext").write_text(
        "basicConstraints=critical,CA:TRUE\n"
        "keyUsage=critical,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier=hash\n"
    )
    (directory / "server.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={','.join(names)}\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    for key in ("ca.key", "server.key"):
        _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                 "-out", key, cwd=directory)
    _openssl("req", "-new", "-key", "ca.key", "-subj", "/CN=inbox test CA", "-out", "ca.csr",
             cwd=directory)
    _openssl("x509", "-req", "-in", "ca.csr", "-signkey", "ca.key", "-days", str(days),
             "-extfile", "ca.ext", "-out", "ca.pem", cwd=directory)
    _openssl("req", "-new", "-key", "server.key", "-subj", "/CN=127.0.0.1", "-out", "server.csr",
             cwd=directory)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-set_serial", "2", "-days", str(days), "-extfile", "server.ext",
             "-out", "server.pem", cwd=directory)
    chain = directory / "server-chain.pem"
    chain.write_text((directory / "server.pem").read_text() + (directory / "ca.pem").read_text())
    keystore = directory / "server-keystore.pem"
    keystore.write_text((directory / "server.key").read_text() + chain.read_text())
    return TlsFiles(directory / "ca.pem", chain, directory / "server.key", keystore)
