"""Helpers to run the local OpenID provider fixture (provider.mjs) from tests.

Dependencies: the standard library, ``cryptography`` and PyJWT. Node.js and
``npm ci --prefix tests/interop`` are needed to actually run the provider; use
:func:`node_available` and :func:`provider_installed` to skip tests otherwise.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from collections.abc import Iterator

HERE = Path(__file__).resolve().parent
PROVIDER_SCRIPT = HERE / "provider.mjs"
PROVIDER_PACKAGE = HERE / "node_modules" / "oidc-provider"

DEFAULT_RESOURCE = "api://rolegate"
OTHER_RESOURCE = "api://other"

READY_TIMEOUT = 20.0


class ProviderError(RuntimeError):
    """The provider process failed to start or a token request failed."""


def node_available() -> bool:
    """True when a ``node`` executable is on PATH."""
    return shutil.which("node") is not None


def provider_installed() -> bool:
    """True when ``npm ci --prefix tests/interop`` has installed oidc-provider."""
    return (PROVIDER_PACKAGE / "package.json").is_file()


def write_rsa_jwks(path: str | os.PathLike[str], kid: str) -> None:
    """Write a JWK Set with one new RSA 2048 private signing key to ``path``."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key))
    jwk.pop("key_ops", None)
    jwk.update(kid=kid, alg="RS256", use="sig")
    Path(path).write_text(json.dumps({"keys": [jwk]}))


def _pump(stream, lines: queue.Queue[str | None]) -> None:
    for line in iter(stream.readline, ""):
        lines.put(line)
    lines.put(None)


@contextlib.contextmanager
def run_provider(
    port: int = 0,
    keys_path: str | os.PathLike[str] | None = None,
    *,
    timeout: float = READY_TIMEOUT,
    console_redirect: str | None = None,
) -> Iterator[str]:
    """Run provider.mjs and yield its issuer URL (``http://127.0.0.1:PORT``).

    ``port=0`` lets the provider pick a free port. ``keys_path`` is a JWK Set
    file as written by :func:`write_rsa_jwks`; without it the provider
    generates a key. With ``console_redirect`` it also signs people in for
    rolegate's console, redirecting back to that URI (see provider.mjs). The
    process is terminated when the block exits.
    """
    if not node_available():
        raise ProviderError("node is not installed")
    if not provider_installed():
        raise ProviderError("oidc-provider is not installed: run `npm ci --prefix tests/interop`")

    cmd = ["node", str(PROVIDER_SCRIPT), "--port", str(port)]
    if keys_path is not None:
        cmd += ["--keys", os.path.abspath(keys_path)]
    if console_redirect is not None:
        cmd += ["--console-redirect", console_redirect]

    stderr_file = _TempText()
    proc = subprocess.Popen(
        cmd,
        cwd=HERE,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr_file.handle,
        text=True,
    )
    try:
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()

        issuer = None
        deadline = time.monotonic() + timeout
        while issuer is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProviderError(
                    f"provider not ready after {timeout:g}s; stderr:\n{stderr_file.read()}"
                )
            try:
                line = lines.get(timeout=min(remaining, 0.2))
            except queue.Empty:
                continue
            if line is None:
                proc.wait(timeout=5)
                raise ProviderError(
                    f"provider exited with code {proc.returncode} before READY; "
                    f"stderr:\n{stderr_file.read()}"
                )
            if line.startswith("READY "):
                issuer = line.split(" ", 1)[1].strip()

        yield issuer
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        stderr_file.close()


class _TempText:
    """A temporary file collecting a child's stderr, readable at any time."""

    def __init__(self) -> None:
        import tempfile

        # Open for the child's lifetime, so not a `with` block; close() closes it.
        self.handle = tempfile.TemporaryFile(  # noqa: SIM115
            mode="w+", encoding="utf-8", errors="replace")

    def read(self) -> str:
        self.handle.flush()
        self.handle.seek(0)
        return self.handle.read()

    def close(self) -> None:
        self.handle.close()


def _get_json(url: str, timeout: float = 10.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.load(resp)


def discovery(issuer: str) -> dict:
    """The provider's OpenID configuration document."""
    return _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")


def jwks(issuer: str) -> dict:
    """The provider's public JWK Set."""
    return _get_json(discovery(issuer)["jwks_uri"])


def client_credentials_token(
    issuer: str,
    client_id: str,
    secret: str,
    scope: str | None = None,
    resource: str | None = DEFAULT_RESOURCE,
    *,
    timeout: float = 10.0,
) -> str:
    """Request an access token with the client_credentials grant.

    Authenticates with client_secret_basic. Returns the access token (a JWT).
    Raises :class:`ProviderError` with the OAuth error body on failure.
    """
    form = {"grant_type": "client_credentials"}
    if scope is not None:
        form["scope"] = scope
    if resource is not None:
        form["resource"] = resource
    # RFC 6749 section 2.3.1: form-urlencode id and secret before base64.
    user = urllib.parse.quote_plus(client_id)
    password = urllib.parse.quote_plus(secret)
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(
        issuer.rstrip("/") + "/token",
        data=urllib.parse.urlencode(form).encode(),
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            body = json.load(resp)
    except urllib.error.HTTPError as err:
        detail = err.read().decode("utf-8", "replace")
        raise ProviderError(f"token request failed: HTTP {err.code}: {detail}") from None
    return body["access_token"]
