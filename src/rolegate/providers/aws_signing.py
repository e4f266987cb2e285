"""Signing upstream requests for AWS (Signature Version 4) with botocore's signer, and the
credentials to sign with, from the standard AWS credential chain.

`AwsCredentials` finds its credentials once, in a worker thread (the chain may read files or ask
the instance or container metadata service), and again only when they are about to expire
(botocore's `RefreshableCredentials`: web identity, SSO, assumed roles, instance profiles).
Every request in between signs with the copy it holds, so no request waits on the chain.

    credentials = AwsCredentials(lambda: Session(profile=None).get_credentials(), clock)
    headers = sign(url, body, await credentials.current(), region="eu-west-1",
                   service="bedrock")
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials
from botocore.exceptions import BotoCoreError

from rolegate.errors import UpstreamError

JSON = "application/json"


class AwsCredentials:
    """The credentials the gateway signs with: resolved off the event loop, single-flight."""

    def __init__(self, resolve: Callable[[], Credentials | None]) -> None:
        self._resolve = resolve
        self._source: Credentials | None = None
        self._frozen: ReadOnlyCredentials | None = None
        self._lock = asyncio.Lock()

    async def current(self) -> ReadOnlyCredentials:
        if self._frozen is not None and not self._is_expiring():
            return self._frozen
        async with self._lock:  # whoever waited here finds the fresh copy
            if self._frozen is None or self._is_expiring():
                self._frozen = await asyncio.to_thread(self._freeze)
        return self._frozen

    def _is_expiring(self) -> bool:
        # botocore's own advisory window (15 minutes before expiry): requests in flight stay valid.
        return isinstance(self._source, RefreshableCredentials) and self._source.refresh_needed()

    def _freeze(self) -> ReadOnlyCredentials:
        try:
            if self._source is None:
                self._source = self._resolve()
            if self._source is None:
                raise UpstreamError("No AWS credentials were found for the upstream (environment, "
                                    "shared credentials file, web identity, container or "
                                    "instance metadata).", code="upstream_auth_failed")
            return self._source.get_frozen_credentials()
        except BotoCoreError as exc:
            raise UpstreamError(f"The AWS credentials for the upstream could not be obtained "
                                f"({type(exc).__name__}).", code="upstream_auth_failed") from None


def sign(url: str, body: bytes, credentials: ReadOnlyCredentials, *, region: str,
         service: str) -> dict[str, str]:
    """The headers that sign a JSON POST of `body` to `url` (`x-amz-date`, the session token
    when there is one, `authorization`). The host and content type are signed as they are
    sent: `Host` from the URL, `content-type: application/json`."""
    request = AWSRequest(method="POST", url=url, data=body, headers={"content-type": JSON})
    SigV4Auth(credentials, service, region).add_auth(request)
    return {name.lower(): value for name, value in request.headers.items()
            if name.lower() != "content-type"}
