"""How upstream connections leave the gateway: `Egress`, the proxy and TLS material one
deployment's connections use, resolved once at start-up from its config, the `egress` section and
the standard proxy variables (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`).

The proxy variables are read here, by `environment_egress(environ)`, which `load.py` calls with
the environment it was given; nothing under `providers/` reads the environment.

    egress = egress_for(deployment, settings.egress)   # None: straight to the upstream
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from rolegate.config.model import DeploymentConfig, EgressConfig

DIRECT = "direct"  # a deployment's `proxy: direct`: never through a proxy
# Loopback never goes through a proxy taken from the environment (as Go's net/http decides):
# a sidecar or a model server on the same host is not behind the corporate proxy.
LOOPBACK = ("localhost", "127.0.0.0/8", "::1")
_VARIABLES = (("https_proxy", "HTTPS_PROXY"), ("http_proxy", "HTTP_PROXY"),
              ("no_proxy", "NO_PROXY"))


@dataclass(frozen=True, slots=True)
class Proxy:
    """An HTTP forward proxy: CONNECT tunnels for https upstreams, absolute-form requests for
    plain http ones. `authorization` is the `Proxy-Authorization` value from the URL's user
    info (RFC 9110 §11.7.1), if any."""

    host: str
    port: int
    authorization: str | None = None

    def __repr__(self) -> str:  # never print the credentials
        return f"Proxy({self.host}:{self.port})"


@dataclass(frozen=True, slots=True)
class Egress:
    """What a deployment's connections need beyond host and port. Hashable: the connection pool
    keeps idle connections apart per origin and egress."""

    proxy: Proxy | None = None
    ca_bundle_file: str | None = None
    client_cert_file: str | None = None
    client_key_file: str | None = None

    @property
    def has_tls_material(self) -> bool:
        return any((self.ca_bundle_file, self.client_cert_file, self.client_key_file))


def parse_proxy(url: str) -> Proxy:
    """`http://[user:password@]host[:port]` (no scheme means http, as curl reads it); raises
    ValueError for anything else."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http":
        raise ValueError(f"a proxy URL must start with http:// (got {parts.scheme}://); "
                         "TLS to the proxy itself is not supported")
    if not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise ValueError("a proxy URL is http://[user:password@]host[:port]")
    port = parts.port or 80  # raises ValueError on a port out of range
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    return Proxy(parts.hostname, port, authorization)


def is_bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether `no_proxy` (comma- or space-separated) names this destination: `*`, a domain and
    its subdomains (`example.com`, `.example.com`, `*.example.com`), an address or network
    (`10.0.0.0/8`), each optionally with `:port`."""
    host = host.lower().strip("[]")
    for entry in no_proxy.replace(" ", ",").split(","):
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        name, _, entry_port = entry.rpartition(":") if _has_port(entry) else (entry, "", "")
        if entry_port and entry_port != str(port):
            continue
        if _matches(host, name.strip("[]")):
            return True
    return False


def _has_port(entry: str) -> bool:
    if entry.startswith("["):
        return "]:" in entry
    return entry.count(":") == 1


def _matches(host: str, name: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        domain = name.removeprefix("*").removeprefix(".")
        return host == domain or host.endswith("." + domain)
    try:
        return address in ipaddress.ip_network(name, strict=False)
    except ValueError:
        return False


def environment_egress(environ: Mapping[str, str]) -> dict[str, str]:
    """The `egress` keys the standard proxy variables give (lower case wins, as curl and Python
    read them); with a proxy, `no_proxy` also names loopback."""
    found = {}
    for key, upper in _VARIABLES:
        value = environ.get(key) or environ.get(upper)
        if value:
            found[key] = value.strip()
    if "https_proxy" in found or "http_proxy" in found:
        found["no_proxy"] = ",".join(filter(None, (found.get("no_proxy"), *LOOPBACK)))
    return found


def with_environment_egress(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """`data` with the proxy variables filled into `egress` where the file sets nothing."""
    found = environment_egress(environ)
    egress = data.get("egress", {})
    if not found or not isinstance(egress, dict):
        return data
    return {**data, "egress": {**found, **egress}}


def egress_for(deployment: DeploymentConfig, config: EgressConfig) -> Egress | None:
    """The egress of `deployment`'s connections; None when they go straight out with the
    system's trust store (the common case, which costs the request path nothing)."""
    proxy = _proxy_url(deployment, config)
    egress = Egress(
        proxy=parse_proxy(proxy) if proxy and proxy != DIRECT else None,
        ca_bundle_file=deployment.ca_bundle_file or config.ca_bundle_file,
        client_cert_file=deployment.client_cert_file,
        client_key_file=deployment.client_key_file)
    return None if egress == Egress() else egress


def _proxy_url(deployment: DeploymentConfig, config: EgressConfig) -> str | None:
    if deployment.proxy is not None:
        return deployment.proxy
    url = deployment.api_base
    if url is None and deployment.provider == "bedrock":  # its AWS endpoint is https
        url = f"https://bedrock-runtime.{deployment.region or 'us-east-1'}.amazonaws.com"
    return None if url is None else proxy_for_url(url, config)


def proxy_for_url(url: str, config: EgressConfig) -> str | None:
    """The proxy `egress` names for `url`'s scheme, unless `no_proxy` lets it go direct."""
    parts = urlsplit(url)
    proxy = config.https_proxy if parts.scheme == "https" else config.http_proxy
    if proxy is None or not parts.hostname:
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return None if is_bypassed(parts.hostname, port, config.no_proxy or "") else proxy
