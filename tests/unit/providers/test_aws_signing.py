"""`AwsCredentials`: the credential chain is asked once, off the event loop, and again only when
its credentials are about to expire; `sign` adds SigV4 headers botocore computes."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest
from botocore.credentials import Credentials, RefreshableCredentials

from rolegate.errors import UpstreamError
from rolegate.providers.aws_signing import AwsCredentials, sign


def _metadata(key: str, minutes: int) -> dict[str, str]:
    expiry = datetime.now(UTC) + timedelta(minutes=minutes)
    return {"access_key": key, "secret_key": f"{key}-secret", "token": f"{key}-token",
            "expiry_time": expiry.isoformat()}


async def test_the_chain_is_asked_once_off_the_event_loop_for_concurrent_requests():
    threads: list[threading.Thread] = []

    def resolve() -> Credentials:
        threads.append(threading.current_thread())
        return Credentials("AKID", "secret")
    credentials = AwsCredentials(resolve)

    found = await asyncio.gather(*(credentials.current() for _ in range(20)))

    assert {item.access_key for item in found} == {"AKID"}
    assert threads != [] and len(threads) == 1
    assert threads[0] is not threading.main_thread()


async def test_credentials_about_to_expire_are_refreshed_and_fresh_ones_are_kept():
    issued = iter(["FIRST", "SECOND", "THIRD"])
    refreshes: list[str] = []

    def refresh() -> dict[str, str]:
        key = next(issued)
        refreshes.append(key)
        return _metadata(key, 5 if key == "FIRST" else 60)  # FIRST expires within 15 minutes
    source = RefreshableCredentials.create_from_metadata(_metadata("INITIAL", 60), refresh,
                                                        "test")
    credentials = AwsCredentials(lambda: source)

    first = await credentials.current()
    assert first.access_key == "INITIAL" and refreshes == []
    source._expiry_time = datetime.now(UTC) + timedelta(minutes=5)  # time passes
    second = await credentials.current()
    third = await credentials.current()

    assert second.access_key != "INITIAL" and second.token.endswith("-token")
    assert third.access_key == "SECOND" and refreshes == ["FIRST", "SECOND"]


async def test_no_credentials_anywhere_is_an_upstream_sign_in_failure():
    with pytest.raises(UpstreamError) as failed:
        await AwsCredentials(lambda: None).current()

    assert failed.value.code == "upstream_auth_failed"


def test_a_session_token_is_sent_and_signed():
    frozen = Credentials("AKID", "secret", "session-token").get_frozen_credentials()
    headers = sign("https://bedrock-runtime.eu-west-1.amazonaws.com/model/m%3A0/converse",
                   b"{}", frozen, region="eu-west-1", service="bedrock")

    assert headers["x-amz-security-token"] == "session-token"
    assert "/eu-west-1/bedrock/aws4_request" in headers["authorization"]
    assert "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token" in \
        headers["authorization"]
    assert "content-type" not in headers  # sent once, by the transport
