"""What the egress tests need on loopback: a certificate authority made at run time, an upstream
that speaks TLS (optionally demanding a client certificate), and a real forward proxy
(Debian's `tinyproxy`) whose log says which tunnels it opened."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import subprocess
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.binaries import system_program
from tests.support.faulty import FaultyUpstream


class TestCa:
    """A CA whose certificates are written as PEM files under `directory`."""

    __test__ = False

    def __init__(self, directory: Path, name: str = "rolegate test CA") -> None:
        self.directory = directory
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = (
            self._builder(self._name, self._key.public_key(), days=1)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256()))
        self.cert_file = self._write(f"{name}.pem".replace(" ", "-"), self.certificate)

    def issue(self, common_name: str, *, is_server: bool) -> tuple[Path, Path]:
        """A certificate for 127.0.0.1/localhost (server) or a client; (cert file, key file)."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        usage = ExtendedKeyUsageOID.SERVER_AUTH if is_server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (self._builder(subject, key.public_key(), days=1)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if is_server:
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
        certificate = builder.sign(self._key, hashes.SHA256())
        key_file = self.directory / f"{common_name}.key"
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return self._write(f"{common_name}.pem", certificate), key_file

    def _builder(self, subject: x509.Name, public_key: Any, days: int) -> x509.CertificateBuilder:
        now = datetime.datetime.now(datetime.UTC)
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(self._name)
                .public_key(public_key).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=days)))

    def _write(self, name: str, certificate: x509.Certificate) -> Path:
        path = self.directory / name
        path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return path


class TlsUpstream(FaultyUpstream):
    """The recording upstream over TLS with a certificate from `ca`; with `client_ca`, a client
    certificate that CA signed is required. `client_subjects` lists each request's."""

    def __init__(self, ca: TestCa, *, client_ca: TestCa | None = None) -> None:
        super().__init__("tls")
        cert, key = ca.issue("upstream", is_server=True)
        self.ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ssl_context.load_cert_chain(cert, key)
        if client_ca is not None:
            self.ssl_context.verify_mode = ssl.CERT_REQUIRED
            self.ssl_context.load_verify_locations(client_ca.cert_file)
        self.client_subjects: list[str | None] = []
        self.app.middlewares.append(self._note_client)

    @web.middleware
    async def _note_client(self, request: web.Request, handler: Any) -> web.StreamResponse:
        assert request.transport is not None
        peer = request.transport.get_extra_info("peercert")
        self.client_subjects.append(
            None if not peer else dict(item[0] for item in peer["subject"])["commonName"])
        response: web.StreamResponse = await handler(request)
        return response

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> TlsUpstream:
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, ssl_context=self.ssl_context)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self


def tinyproxy_or_skip() -> str:
    """tinyproxy's path; skips when it is not installed, unless REQUIRE_EGRESS=1 (CI)."""
    return system_program("tinyproxy", required_by="REQUIRE_EGRESS")


class Tinyproxy:
    """tinyproxy in the foreground on a free loopback port; `connects()` reads its log."""

    def __init__(self, binary: str, directory: Path, *, extra: str = "") -> None:
        self.directory = directory
        self.log = directory / "tinyproxy.log"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = directory / "tinyproxy.conf"
        config.write_text(f'Port {self.port}\nListen 127.0.0.1\nTimeout 30\nLogLevel Info\n'
                          f'LogFile "{self.log}"\nMaxClients 50\n{extra}')
        directory.chmod(0o777)  # tinyproxy started as root writes its log as nobody
        self._process = subprocess.Popen([binary, "-d", "-c", str(config)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self) -> Tinyproxy:
        for _ in range(200):
            if self._process.poll() is not None:
                assert self._process.stderr is not None
                raise RuntimeError(f"tinyproxy exited: {self._process.stderr.read().decode()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            return self
        raise RuntimeError("tinyproxy did not start listening")

    def lines(self, word: str) -> list[str]:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [line for line in text.splitlines() if word in line]

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stderr is not None:
            self._process.stderr.close()
