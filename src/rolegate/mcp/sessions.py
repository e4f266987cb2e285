"""`SessionBinder`: a 2025-11-25 MCP session (`Mcp-Session-Id`) belongs to the caller who opened
it, on every worker and replica, with nothing stored.

The id handed to the client is the server's own id with a MAC over (server, issuer, subject,
id) appended: `<server id>.<mac>`. On each request the MAC is checked against the caller
presenting it, and only the server's id is sent on. Another caller presenting the id, a
tampered id, or an id signed with another key is told the session does not exist (404): the
same answer as an unknown session, so ids cannot be probed. Every worker of `serve --workers N`
shares the key (the parent hands it over); replicas share `mcp.session_secret`.

>>> client_id = binder.bind("forge", who, "abc123")
>>> binder.server_id("forge", who, client_id)
'abc123'
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from rolegate.authn.principal import Principal
from rolegate.errors import NotFound

MAC_BYTES = 18  # 144 bits, 24 characters in base64url


class SessionBinder:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def bind(self, server: str, who: Principal, session: str) -> str:
        return f"{session}.{self._mac(server, who, session)}"

    def server_id(self, server: str, who: Principal, presented: str) -> str:
        """The server's session id in `presented`, if `who` opened it on `server`."""
        session, _, mac = presented.rpartition(".")
        if not session or not hmac.compare_digest(mac, self._mac(server, who, session)):
            raise NotFound("No such MCP session.", code="unknown_mcp_session")
        return session

    def _mac(self, server: str, who: Principal, session: str) -> str:
        message = "\0".join(("mcp-session", server, who.issuer, who.subject, session))
        digest = hmac.new(self._key, message.encode("utf-8", "surrogatepass"),
                          hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:MAC_BYTES]).decode()
