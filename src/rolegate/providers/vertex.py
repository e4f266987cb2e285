"""Google Vertex AI's Gemini models: `https://{location}-aiplatform.googleapis.com/v1/projects/
{project}/locations/{location}/publishers/google/models/{model}:{method}` (or under `api_base`),
signed in with an OAuth 2.0 access token from `google-auth` (the `vertex` extra): a
service-account key file (`credentials_file`), else the application default credentials.

The token is refreshed before it expires (google-auth counts it invalid a few minutes early),
by one caller at a time, in a worker thread: google-auth's refresh is blocking HTTP and must
not hold up the event loop. Vertex serves the Gemini calls and chat completions as
`gemini.py` does; embeddings there are another API (`predict`) and are refused.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from rolegate.config.load import ConfigError
from rolegate.config.model import DeploymentConfig
from rolegate.errors import UpstreamError

SCOPE = "https://www.googleapis.com/auth/cloud-platform"

try:  # the `vertex` extra
    import google.auth
    import google.auth.exceptions
    import google.auth.transport.requests
    from google.oauth2 import service_account
    HAS_GOOGLE_AUTH = True
except ImportError:  # pragma: no cover - exercised when the extra is not installed
    HAS_GOOGLE_AUTH = False


class GoogleToken:
    """An access token from google-auth credentials, refreshed off the event loop.

    >>> headers = {"authorization": await GoogleToken(credentials).authorization()}"""

    def __init__(self, credentials: Any) -> None:
        self._credentials = credentials
        self._lock = asyncio.Lock()

    async def authorization(self) -> str:
        credentials = self._credentials
        if not credentials.valid:
            async with self._lock:  # one refresh, however many requests wait for it
                if not credentials.valid:
                    await asyncio.to_thread(self._refresh)
        return f"Bearer {credentials.token}"

    def _refresh(self) -> None:
        try:
            self._credentials.refresh(google.auth.transport.requests.Request())
        except google.auth.exceptions.GoogleAuthError as exc:
            raise UpstreamError(f"Could not get a Vertex AI access token: {exc}",
                                code="upstream_auth_failed") from None


def load_credentials(config: DeploymentConfig) -> Any:
    """The deployment's google-auth credentials, at start-up; ConfigError when they cannot be
    loaded or the `vertex` extra is missing."""
    where = f"deployment {config.id or config.model or 'vertex'}"
    if not HAS_GOOGLE_AUTH:
        raise ConfigError(where, ["provider vertex needs google-auth: "
                                  "pip install 'rolegate[vertex]'"])
    try:
        if config.credentials_file is not None:
            return service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                config.credentials_file, scopes=[SCOPE])
        credentials, _project = google.auth.default(scopes=[SCOPE])
        return credentials
    except (OSError, ValueError, google.auth.exceptions.GoogleAuthError) as exc:
        raise ConfigError(where, [f"cannot load Google credentials: {exc}"]) from None


class VertexEndpoint:
    """Vertex AI's publisher-model URLs, signed in with a `GoogleToken`."""

    is_embedding = False

    def __init__(self, config: DeploymentConfig, token: GoogleToken) -> None:
        location = config.location or ""
        base = config.api_base or f"https://{location}-aiplatform.googleapis.com/v1"
        self._base = (f"{base.rstrip('/')}/projects/{config.project}/locations/{location}"
                      "/publishers/google/models")
        self._token = token

    def url(self, model: str, method: str) -> str:
        return f"{self._base}/{quote(model, safe='')}:{method}"

    async def headers(self) -> dict[str, str]:
        return {"authorization": await self._token.authorization()}
