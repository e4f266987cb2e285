"""JwksCache: TTL, single-flight, the unknown-kid refresh budget, stale-if-error, and which keys
of a key set are usable at all."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from rolegate.authn.jwks import MAX_KEYS, JwksCache, KeySourceUnavailable, SigningKey, parse_key_set
from rolegate.errors import ServiceUnavailable, Unauthenticated
from tests.support.clock import FakeClock
from tests.support.fetch import FakeKeySource
from tests.support.keys import KeyPair, jwks

ISS = "https://idp.example.com"
JWKS_URL = f"{ISS}/keys"
DISCOVERY_URL = f"{ISS}/.well-known/openid-configuration"


def cache_for(source: FakeKeySource, clock: FakeClock, **options: Any) -> JwksCache:
    options.setdefault("jwks_url", JWKS_URL)
    return JwksCache("idp", fetch=source, clock=clock, **options)


def key_set(*entries: dict[str, Any]) -> bytes:
    return json.dumps({"keys": list(entries)}).encode()


@pytest.fixture
def source(key_source: FakeKeySource, rsa_key: KeyPair, ec_key: KeyPair) -> FakeKeySource:
    key_source.documents[JWKS_URL] = jwks(rsa_key, ec_key)
    return key_source


async def unknown_key(cache: JwksCache, kid: str | None, alg: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        await cache.key_for(kid, alg)
    assert caught.value.code == "unknown_signing_key"


async def unavailable(cache: JwksCache, kid: str | None = "rsa-1", alg: str = "RS256") -> None:
    with pytest.raises(ServiceUnavailable) as caught:
        await cache.key_for(kid, alg)
    assert caught.value.status == 503
    assert caught.value.code == "jwks_unavailable"


# --- TTL and single-flight ---------------------------------------------------------------------

async def test_keys_are_not_refetched_before_the_ttl(source, clock):
    cache = cache_for(source, clock, ttl=600)
    await cache.key_for("rsa-1", "RS256")
    clock.advance(599)
    await cache.key_for("rsa-1", "RS256")
    await cache.key_for("ec-1", "ES256")
    assert source.fetches == [JWKS_URL]


async def test_keys_are_refetched_once_the_ttl_passes(source, clock):
    cache = cache_for(source, clock, ttl=600)
    await cache.key_for("rsa-1", "RS256")
    clock.advance(600)
    await cache.key_for("rsa-1", "RS256")
    await cache.key_for("rsa-1", "RS256")
    assert source.fetches == [JWKS_URL, JWKS_URL]


async def test_concurrent_lookups_during_a_slow_fetch_share_one_fetch(rsa_key, clock):
    slow = FakeKeySource({JWKS_URL: jwks(rsa_key)}, delay=0.05)
    cache = cache_for(slow, clock)

    keys = await asyncio.gather(*(cache.key_for("rsa-1", "RS256") for _ in range(100)))

    assert slow.fetches == [JWKS_URL]
    assert len({id(key) for key in keys}) == 1


async def test_concurrent_lookups_during_a_failing_fetch_share_one_fetch_and_all_get_503(clock):
    slow = FakeKeySource(delay=0.05)
    slow.is_down = True
    cache = cache_for(slow, clock)

    results = await asyncio.gather(*(cache.key_for("rsa-1", "RS256") for _ in range(50)),
                                   return_exceptions=True)

    assert slow.fetches == [JWKS_URL]
    assert all(isinstance(result, ServiceUnavailable) for result in results)


# --- unknown kid -------------------------------------------------------------------------------

async def test_a_key_rotated_in_after_the_fetch_is_found_at_once(source, clock, rsa_key_2,
                                                                 rsa_key):
    cache = cache_for(source, clock)
    await cache.key_for("rsa-1", "RS256")
    source.documents[JWKS_URL] = jwks(rsa_key, rsa_key_2)

    key = await cache.key_for("rsa-2", "RS256")

    assert key.kid == "rsa-2"
    assert source.fetches == [JWKS_URL, JWKS_URL]


async def test_a_flood_of_unknown_kids_causes_at_most_three_refreshes(source, clock):
    cache = cache_for(source, clock)
    await cache.key_for("rsa-1", "RS256")

    for index in range(200):
        await unknown_key(cache, f"forged-{index}", "RS256")

    assert len(source.fetches) == 1 + 3


async def test_the_refresh_budget_refills_over_a_minute(source, clock):
    cache = cache_for(source, clock)
    for index in range(10):
        await unknown_key(cache, f"forged-{index}", "RS256")
    assert len(source.fetches) == 1 + 3

    clock.advance(20)  # a third of the budget
    for index in range(10):
        await unknown_key(cache, f"again-{index}", "RS256")
    assert len(source.fetches) == 1 + 3 + 1

    clock.advance(60)
    for index in range(10):
        await unknown_key(cache, f"later-{index}", "RS256")
    assert len(source.fetches) == 1 + 3 + 1 + 3


async def test_the_refresh_budget_is_configurable(source, clock):
    cache = cache_for(source, clock, refreshes_per_minute=1)
    for index in range(20):
        await unknown_key(cache, f"forged-{index}", "RS256")
    assert len(source.fetches) == 1 + 1


# --- stale-if-error ----------------------------------------------------------------------------

async def test_cached_keys_keep_serving_while_the_idp_is_down_within_max_stale(source, clock):
    cache = cache_for(source, clock, ttl=600, max_stale=1800)
    first = await cache.key_for("rsa-1", "RS256")
    source.is_down = True

    clock.advance(600 + 1799)

    assert await cache.key_for("rsa-1", "RS256") is first
    assert len(source.fetches) == 2  # the refresh was tried


async def test_cached_keys_stop_serving_past_ttl_plus_max_stale(source, clock):
    cache = cache_for(source, clock, ttl=600, max_stale=1800)
    await cache.key_for("rsa-1", "RS256")
    source.is_down = True

    clock.advance(600 + 1800)

    await unavailable(cache)


async def test_max_stale_zero_fails_closed_right_at_the_ttl(source, clock):
    cache = cache_for(source, clock, ttl=600, max_stale=0)
    await cache.key_for("rsa-1", "RS256")
    source.is_down = True

    clock.advance(599)
    assert (await cache.key_for("rsa-1", "RS256")).kid == "rsa-1"
    clock.advance(1)
    await unavailable(cache)


async def test_a_failed_fetch_is_not_retried_on_every_request(source, clock):
    cache = cache_for(source, clock, ttl=600)
    await cache.key_for("rsa-1", "RS256")
    source.is_down = True
    clock.advance(601)

    for _ in range(50):
        await cache.key_for("rsa-1", "RS256")

    assert len(source.fetches) == 2


async def test_the_cache_recovers_when_the_idp_comes_back(source, clock, rsa_key_2):
    cache = cache_for(source, clock, ttl=600)
    await cache.key_for("rsa-1", "RS256")
    source.is_down = True
    clock.advance(601)
    await cache.key_for("rsa-1", "RS256")

    source.is_down = False
    source.documents[JWKS_URL] = jwks(rsa_key_2)
    clock.advance(10)

    assert (await cache.key_for("rsa-2", "RS256")).kid == "rsa-2"
    await unknown_key(cache, "rsa-1", "RS256")


async def test_never_loaded_and_idp_down_is_503(clock):
    down = FakeKeySource()
    down.is_down = True
    cache = cache_for(down, clock)

    await unavailable(cache)
    assert not cache.is_loaded


async def test_never_loaded_idp_is_retried_after_the_failure_backoff(source, clock):
    source.is_down = True
    cache = cache_for(source, clock)
    await unavailable(cache)
    await unavailable(cache)
    assert len(source.fetches) == 1

    source.is_down = False
    clock.advance(5)

    assert (await cache.key_for("rsa-1", "RS256")).kid == "rsa-1"


async def test_warm_logs_a_failure_instead_of_raising(clock, caplog):
    down = FakeKeySource()
    down.is_down = True
    cache = cache_for(down, clock)
    with caplog.at_level(logging.WARNING, logger="rolegate.jwks"):
        await cache.warm()
    assert not cache.is_loaded
    assert "fetching the keys of issuer idp failed" in caplog.text


# --- which keys count --------------------------------------------------------------------------

async def test_symmetric_keys_in_the_key_set_are_dropped(clock, rsa_key):
    oct_key = {"kty": "oct", "kid": "shared", "k": "c2VjcmV0", "alg": "HS256"}
    source = FakeKeySource({JWKS_URL: key_set(oct_key, rsa_key.public_jwk())})
    cache = cache_for(source, clock)

    await unknown_key(cache, "shared", "HS256")
    await unknown_key(cache, "shared", "RS256")
    assert (await cache.key_for("rsa-1", "RS256")).kid == "rsa-1"


async def test_encryption_keys_are_dropped(clock, rsa_key):
    source = FakeKeySource({JWKS_URL: key_set({**rsa_key.public_jwk(), "use": "enc"})})
    await unknown_key(cache_for(source, clock), "rsa-1", "RS256")


async def test_entries_carrying_private_key_members_are_dropped(clock, rsa_key, caplog):
    private = json.loads(RSAAlgorithm.to_jwk(rsa_key.private_key))
    private.update(kid="leaky", alg="RS256", use="sig")
    source = FakeKeySource({JWKS_URL: key_set(private, rsa_key.public_jwk())})
    cache = cache_for(source, clock)

    with caplog.at_level(logging.WARNING, logger="rolegate.jwks"):
        await unknown_key(cache, "leaky", "RS256")
    assert "private key members" in caplog.text
    assert (await cache.key_for("rsa-1", "RS256")).kid == "rsa-1"


async def test_rsa_key_does_not_verify_es256(source, clock):
    await unknown_key(cache_for(source, clock), "rsa-1", "ES256")


async def test_rsa_key_marked_rs256_does_not_verify_ps256(source, clock):
    await unknown_key(cache_for(source, clock), "rsa-1", "PS256")


async def test_rsa_key_without_alg_verifies_rs_and_ps_families(clock, rsa_key):
    entry = rsa_key.public_jwk()
    del entry["alg"]
    cache = cache_for(FakeKeySource({JWKS_URL: key_set(entry)}), clock)
    for alg in ("RS256", "RS512", "PS256"):
        assert (await cache.key_for("rsa-1", alg)).kid == "rsa-1"
    for alg in ("ES256", "EdDSA", "HS256"):
        await unknown_key(cache, "rsa-1", alg)


async def test_ec_key_without_alg_verifies_only_the_algorithm_of_its_curve(clock):
    p256, p384 = KeyPair.ec("p256"), KeyPair.ec("p384", alg="ES384")
    entries = [p256.public_jwk(), p384.public_jwk()]
    for entry in entries:
        del entry["alg"]
    cache = cache_for(FakeKeySource({JWKS_URL: key_set(*entries)}), clock)

    assert (await cache.key_for("p256", "ES256")).kid == "p256"
    assert (await cache.key_for("p384", "ES384")).kid == "p384"
    await unknown_key(cache, "p256", "ES384")
    await unknown_key(cache, "p384", "ES256")
    await unknown_key(cache, "p256", "RS256")


async def test_token_without_kid_uses_the_only_key_that_fits(source, clock):
    cache = cache_for(source, clock)
    assert (await cache.key_for(None, "RS256")).kid == "rsa-1"
    assert (await cache.key_for(None, "ES256")).kid == "ec-1"


async def test_token_without_kid_is_refused_when_two_keys_fit(clock, rsa_key, rsa_key_2):
    cache = cache_for(FakeKeySource({JWKS_URL: jwks(rsa_key, rsa_key_2)}), clock)
    await unknown_key(cache, None, "RS256")


async def test_more_than_max_keys_only_the_first_are_used(clock, caplog):
    keys = [KeyPair.ec(f"ec-{index}") for index in range(MAX_KEYS + 2)]
    cache = cache_for(FakeKeySource({JWKS_URL: jwks(*keys)}), clock)

    with caplog.at_level(logging.WARNING, logger="rolegate.jwks"):
        assert (await cache.key_for("ec-0", "ES256")).kid == "ec-0"
    assert (await cache.key_for(f"ec-{MAX_KEYS - 1}", "ES256")).kid == f"ec-{MAX_KEYS - 1}"
    await unknown_key(cache, f"ec-{MAX_KEYS}", "ES256")
    assert f"only the first {MAX_KEYS} are used" in caplog.text


@pytest.mark.parametrize("entry", [
    {"kty": "RSA", "kid": "bad", "alg": "HS256", "n": "AQAB", "e": "AQAB"},
    {"kty": "RSA", "kid": "bad", "alg": "none", "n": "AQAB", "e": "AQAB"},
    {"kty": "RSA", "kid": "bad", "alg": "ES256", "n": "AQAB", "e": "AQAB"},
    {"kty": "RSA", "kid": "bad", "n": "!!!", "e": "AQAB"},
    {"kty": "RSA", "kid": "bad"},
    {"kty": "EC", "kid": "bad", "crv": "P-999", "x": "a", "y": "b"},
    {"kty": "OKP", "kid": "bad", "crv": "Ed25519", "x": "zz"},
    {"kty": "RSA", "kid": 7, "n": "AQAB", "e": "AQAB"},
    {"kty": "RSA", "kid": "bad", "alg": ["RS256"]},
    {"kty": "XYZ", "kid": "bad"},
    {"kid": "bad"},
    "a string", 42, None, [],
], ids=["rsa-marked-hs256", "rsa-marked-none", "rsa-marked-es256", "rsa-bad-modulus",
        "rsa-no-numbers", "ec-unknown-curve", "okp-bad-x", "kid-number", "alg-list",
        "unknown-kty", "no-kty", "string", "number", "null", "list"])
async def test_a_malformed_key_is_dropped_and_the_rest_of_the_set_still_works(
        entry, clock, rsa_key):
    cache = cache_for(FakeKeySource({JWKS_URL: key_set(entry, rsa_key.public_jwk())}), clock)

    assert (await cache.key_for("rsa-1", "RS256")).kid == "rsa-1"
    await unknown_key(cache, "bad", "RS256")
    assert [key.kid for key in parse_key_set(key_set(entry, rsa_key.public_jwk()))] == ["rsa-1"]


@pytest.mark.parametrize("document", [
    b"<html>not json</html>", b"", b"[]", b'"keys"', b"{}", b'{"keys": {"kty": "RSA"}}',
    b'{"keys": null}',
], ids=["html", "empty", "array", "string", "no-keys", "keys-object", "keys-null"])
def test_unusable_key_set_document_is_a_fetch_failure(document):
    with pytest.raises(KeySourceUnavailable):
        parse_key_set(document)


@pytest.mark.parametrize("document", [b"<html>", b"{}", b'{"keys": 1}'])
async def test_unusable_key_set_never_loaded_is_503(document, clock):
    await unavailable(cache_for(FakeKeySource({JWKS_URL: document}), clock))


async def test_unusable_key_set_after_a_good_one_keeps_the_good_keys(source, clock):
    cache = cache_for(source, clock, ttl=600)
    await cache.key_for("rsa-1", "RS256")
    source.documents[JWKS_URL] = b"<html>maintenance</html>"
    clock.advance(601)

    assert (await cache.key_for("rsa-1", "RS256")).kid == "rsa-1"


def test_empty_key_set_parses_to_no_keys():
    assert parse_key_set(b'{"keys": []}') == ()


# --- discovery ---------------------------------------------------------------------------------

def discovery(issuer: str = ISS, jwks_uri: Any = JWKS_URL) -> bytes:
    return json.dumps({"issuer": issuer, "jwks_uri": jwks_uri}).encode()


async def test_discovery_takes_the_key_set_url_from_the_document(source, clock):
    source.documents[DISCOVERY_URL] = discovery()
    cache = cache_for(source, clock, jwks_url=None, discovery_url=DISCOVERY_URL,
                      expected_issuer=ISS)

    assert (await cache.key_for("rsa-1", "RS256")).kid == "rsa-1"
    clock.advance(601)
    await cache.key_for("rsa-1", "RS256")

    assert source.fetches == [DISCOVERY_URL, JWKS_URL, JWKS_URL]


@pytest.mark.parametrize("document", [
    discovery(issuer="https://evil.example"),
    discovery(issuer=ISS + "/"),
    discovery(jwks_uri=None),
    discovery(jwks_uri="file:///etc/passwd"),
    discovery(jwks_uri=["https://idp.example.com/keys"]),
    b"not json", b"[]",
], ids=["other-issuer", "issuer-trailing-slash", "no-jwks-uri", "file-uri", "jwks-uri-list",
        "not-json", "array"])
async def test_unusable_discovery_document_is_refused(document, source, clock):
    source.documents[DISCOVERY_URL] = document
    cache = cache_for(source, clock, jwks_url=None, discovery_url=DISCOVERY_URL,
                      expected_issuer=ISS)

    await unavailable(cache)
    assert JWKS_URL not in source.fetches


# --- private key material, of every key type ---------------------------------------------------

def okp_public_and_private() -> tuple[dict[str, Any], dict[str, Any]]:
    private_key = ed25519.Ed25519PrivateKey.generate()
    public = json.loads(OKPAlgorithm.to_jwk(private_key.public_key()))
    private = json.loads(OKPAlgorithm.to_jwk(private_key))
    return public, private


def private_entry(kind: str, rsa_key: KeyPair, ec_key: KeyPair) -> dict[str, Any]:
    """A key-set entry of `kind` that carries private members, under kid `leaky`."""
    if kind == "ec-d":
        entry = json.loads(ECAlgorithm.to_jwk(ec_key.private_key))
    elif kind == "okp-d":
        entry = okp_public_and_private()[1]
    else:  # an RSA public key with one private member added: that one alone must disqualify it
        member = kind.removeprefix("rsa-")
        entry = {**rsa_key.public_jwk(), member: "AQAB" if member != "oth" else [{"r": "AQAB"}]}
    assert entry.get("d") or kind.startswith("rsa-")
    entry.update(kid="leaky", use="sig")
    entry.pop("alg", None)
    return entry


@pytest.mark.parametrize("kind", ["ec-d", "okp-d", "rsa-d", "rsa-p", "rsa-q", "rsa-dp", "rsa-dq",
                                  "rsa-qi", "rsa-oth", "rsa-k"])
async def test_an_entry_with_any_private_member_is_dropped_with_a_warning(
        kind, clock, rsa_key, ec_key, caplog):
    entry = private_entry(kind, rsa_key, ec_key)
    public = {**entry}
    for member in ("d", "p", "q", "dp", "dq", "qi", "oth", "k"):
        public.pop(member, None)
    assert parse_key_set(key_set(public))[0].kid == "leaky"  # usable without its secrets

    with caplog.at_level(logging.WARNING, logger="rolegate.jwks"):
        keys = parse_key_set(key_set(entry, rsa_key.public_jwk()))

    assert [key.kid for key in keys] == ["rsa-1"]
    assert [r.getMessage() for r in caplog.records] == [
        "a key set entry carries private key members; it is ignored"]


async def test_an_okp_key_verifies_eddsa_only(clock):
    public, _ = okp_public_and_private()
    public.update(kid="ed-1")
    cache = cache_for(FakeKeySource({JWKS_URL: key_set(public)}), clock)

    key = await cache.key_for("ed-1", "EdDSA")

    assert (key.kty, key.alg, key.curve) == ("OKP", None, "Ed25519")
    for alg in ("RS256", "ES256", "PS256"):
        await unknown_key(cache, "ed-1", alg)


# --- keys published without kid, use or alg ----------------------------------------------------

def bare(key: KeyPair, *without: str) -> dict[str, Any]:
    entry = key.public_jwk()
    for member in without:
        del entry[member]
    return entry


async def test_a_key_without_kid_serves_a_token_without_kid(clock, rsa_key):
    cache = cache_for(FakeKeySource({JWKS_URL: key_set(bare(rsa_key, "kid"))}), clock)

    key = await cache.key_for(None, "RS256")

    assert (key.kid, key.kty, key.alg) == (None, "RSA", "RS256")


async def test_a_key_without_kid_does_not_serve_a_token_that_names_a_kid(clock, rsa_key):
    cache = cache_for(FakeKeySource({JWKS_URL: key_set(bare(rsa_key, "kid"))}), clock)
    await unknown_key(cache, "rsa-1", "RS256")


async def test_a_token_without_kid_ignores_keys_of_another_family(clock, rsa_key, ec_key):
    cache = cache_for(FakeKeySource({JWKS_URL: key_set(bare(rsa_key, "kid"),
                                                       bare(ec_key, "kid"))}), clock)
    assert (await cache.key_for(None, "ES256")).kty == "EC"
    assert (await cache.key_for(None, "RS256")).kty == "RSA"


async def test_a_key_without_use_is_a_signing_key(clock, rsa_key):
    cache = cache_for(FakeKeySource({JWKS_URL: key_set(bare(rsa_key, "use"))}), clock)
    assert (await cache.key_for("rsa-1", "RS256")).kid == "rsa-1"


async def test_a_key_without_kid_use_or_alg_serves_its_family(clock, rsa_key):
    entry = bare(rsa_key, "kid", "use", "alg")
    cache = cache_for(FakeKeySource({JWKS_URL: key_set(entry)}), clock)

    key = await cache.key_for(None, "PS384")

    assert (key.kid, key.alg) == (None, None)
    await unknown_key(cache, None, "ES256")


@pytest.mark.parametrize("use", ["enc", "SIG", "", None, 1],
                         ids=["enc", "upper-case", "empty", "null", "number"])
async def test_a_key_whose_use_is_not_sig_is_dropped(use, clock, ec_key, rsa_key):
    entry = {**ec_key.public_jwk(), "use": use}
    cache = cache_for(FakeKeySource({JWKS_URL: key_set(entry, rsa_key.public_jwk())}), clock)

    await unknown_key(cache, "ec-1", "ES256")
    assert (await cache.key_for("rsa-1", "RS256")).kid == "rsa-1"


async def test_a_key_marked_with_one_algorithm_verifies_no_other(clock, rsa_key):
    entry = {**rsa_key.public_jwk(), "alg": "RS384"}
    cache = cache_for(FakeKeySource({JWKS_URL: key_set(entry)}), clock)

    assert (await cache.key_for("rsa-1", "RS384")).alg == "RS384"
    for alg in ("RS256", "RS512", "PS384"):
        await unknown_key(cache, "rsa-1", alg)


async def test_an_ec_key_marked_es256_does_not_verify_es384(clock, ec_key):
    cache = cache_for(FakeKeySource({JWKS_URL: key_set(ec_key.public_jwk())}), clock)
    await unknown_key(cache, "ec-1", "ES384")


@pytest.mark.parametrize(("curve", "alg"), [("P-256", "ES256"), ("P-384", "ES384"),
                                            ("P-521", "ES512")])
def test_an_ec_key_without_alg_is_read_with_the_algorithm_of_its_curve(curve, alg):
    key = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}[curve]
    entry = json.loads(ECAlgorithm.to_jwk(ec.generate_private_key(key).public_key()))
    entry.update(kid="k")

    (parsed,) = parse_key_set(key_set(entry))

    assert (parsed.curve, parsed.alg) == (curve, None)
    assert parsed.can_verify(alg)
    assert not any(parsed.can_verify(other) for other in ("ES256", "ES384", "ES512")
                   if other != alg)


# --- what the cache reports and logs -----------------------------------------------------------

async def test_an_unknown_key_is_refused_with_a_message_that_names_no_key(source, clock):
    cache = cache_for(source, clock)
    with pytest.raises(Unauthenticated) as caught:
        await cache.key_for("forged", "RS256")
    assert str(caught.value) == "The token was signed with a key this issuer does not publish."


async def test_an_unreachable_key_set_is_refused_with_a_message_naming_the_issuer(clock):
    down = FakeKeySource()
    down.is_down = True
    with pytest.raises(ServiceUnavailable) as caught:
        await cache_for(down, clock).key_for("rsa-1", "RS256")
    assert str(caught.value) == "The signing keys of issuer 'idp' cannot be fetched right now."


async def test_a_failed_fetch_is_logged_with_the_issuer_and_the_reason(clock, caplog):
    down = FakeKeySource()
    down.is_down = True
    with caplog.at_level(logging.WARNING, logger="rolegate.jwks"):
        await cache_for(down, clock).warm()
    assert [r.getMessage() for r in caplog.records] == [
        f"fetching the keys of issuer idp failed (1 time(s) in a row; next logged at 2): "
        f"GET {JWKS_URL} failed"]


async def test_a_loaded_key_set_is_logged_with_its_size(source, clock, caplog):
    with caplog.at_level(logging.INFO, logger="rolegate.jwks"):
        await cache_for(source, clock).warm()
    assert [r.getMessage() for r in caplog.records] == ["loaded 2 signing key(s) for issuer idp"]


async def test_fetch_counters_and_load_time_follow_each_fetch(source, clock):
    cache = cache_for(source, clock, ttl=600)
    assert (cache.fetch_count, cache.fetch_successes, cache.fetch_failures) == (0, 0, 0)
    assert (cache.loaded_at, cache.key_count, cache.is_loaded) == (None, 0, False)

    await cache.warm()
    await cache.warm()
    loaded = clock.now
    source.is_down = True
    clock.advance(10)
    await cache.warm()
    await cache.warm()

    assert (cache.fetch_count, cache.fetch_successes, cache.fetch_failures) == (4, 2, 2)
    assert (cache.loaded_at, cache.key_count, cache.is_loaded) == (loaded, 2, True)


async def test_the_default_ttl_is_ten_minutes_and_stale_keys_serve_half_an_hour(source, clock):
    cache = JwksCache("idp", fetch=source, clock=clock, jwks_url=JWKS_URL)
    await cache.key_for("rsa-1", "RS256")
    clock.advance(599.5)
    await cache.key_for("rsa-1", "RS256")
    assert len(source.fetches) == 1

    clock.advance(0.5)
    source.is_down = True
    await cache.key_for("rsa-1", "RS256")
    assert len(source.fetches) == 2
    clock.advance(1799.5)
    assert (await cache.key_for("rsa-1", "RS256")).kid == "rsa-1"
    clock.advance(0.5)
    await unavailable(cache)


@pytest.mark.parametrize(("document", "message"), [
    (b"<html>", "key set is not JSON"),
    (b"[]", "key set is not a JSON object"),
    (b'{"keys": {}}', "key set has no `keys` array"),
], ids=["not-json", "not-an-object", "no-keys-array"])
def test_an_unusable_key_set_says_what_is_wrong_with_it(document, message):
    with pytest.raises(KeySourceUnavailable) as caught:
        parse_key_set(document)
    assert str(caught.value) == message


@pytest.mark.parametrize(("document", "message"), [
    (b"not json", "discovery document is not JSON"),
    (b"[]", "discovery document is not a JSON object"),
    (json.dumps({"issuer": "https://evil.example", "jwks_uri": JWKS_URL}).encode(),
     "discovery names issuer 'https://evil.example', expected 'https://idp.example.com'"),
    (json.dumps({"issuer": ISS, "jwks_uri": "ftp://idp/keys"}).encode(),
     "discovery document has no usable jwks_uri"),
], ids=["not-json", "not-an-object", "other-issuer", "bad-jwks-uri"])
async def test_an_unusable_discovery_document_is_logged_saying_what_is_wrong(
        document, message, source, clock, caplog):
    source.documents[DISCOVERY_URL] = document
    cache = cache_for(source, clock, jwks_url=None, discovery_url=DISCOVERY_URL,
                      expected_issuer=ISS)
    with caplog.at_level(logging.WARNING, logger="rolegate.jwks"):
        await cache.warm()
    assert [r.getMessage() for r in caplog.records] == [
        "fetching the keys of issuer idp failed (1 time(s) in a row; next logged at 2): "
        f"{message}"]


async def test_a_discovered_plain_http_key_set_url_is_used(source, clock):
    """Local identity providers (a Keycloak in a container) publish http:// URLs."""
    plain = "http://keycloak.local/keys"
    source.documents[plain] = source.documents[JWKS_URL]
    source.documents[DISCOVERY_URL] = discovery(jwks_uri=plain)
    cache = cache_for(source, clock, jwks_url=None, discovery_url=DISCOVERY_URL,
                      expected_issuer=ISS)

    assert (await cache.key_for("rsa-1", "RS256")).kid == "rsa-1"
    assert source.fetches == [DISCOVERY_URL, plain]


async def test_discovery_without_an_expected_issuer_accepts_any_issuer(source, clock):
    source.documents[DISCOVERY_URL] = discovery(issuer="https://login.example/{tenantid}/v2.0")
    cache = cache_for(source, clock, jwks_url=None, discovery_url=DISCOVERY_URL)
    assert (await cache.key_for("rsa-1", "RS256")).kid == "rsa-1"


async def test_exactly_max_keys_are_all_used_without_a_warning(clock, caplog):
    keys = [KeyPair.ec(f"ec-{index}") for index in range(MAX_KEYS)]
    with caplog.at_level(logging.WARNING, logger="rolegate.jwks"):
        parsed = parse_key_set(jwks(*keys))
    assert len(parsed) == MAX_KEYS
    assert caplog.records == []


def test_more_than_max_keys_logs_how_many_were_sent(caplog):
    keys = [KeyPair.ec(f"ec-{index}") for index in range(MAX_KEYS + 1)]
    with caplog.at_level(logging.WARNING, logger="rolegate.jwks"):
        parse_key_set(jwks(*keys))
    assert [r.getMessage() for r in caplog.records] == [
        f"key set has {MAX_KEYS + 1} keys; only the first {MAX_KEYS} are used"]


def test_the_parsed_key_is_the_published_public_key(rsa_key, ec_key):
    rsa_parsed, ec_parsed = parse_key_set(jwks(rsa_key, ec_key))
    assert rsa_parsed.key.public_numbers() == rsa_key.private_key.public_key().public_numbers()
    assert ec_parsed.key.public_numbers() == ec_key.private_key.public_key().public_numbers()
    assert (rsa_parsed.kty, rsa_parsed.curve, ec_parsed.kty, ec_parsed.curve) == (
        "RSA", None, "EC", "P-256")


async def test_the_only_key_with_a_kid_that_is_not_a_string_is_not_used_for_a_token_without_kid(
        clock, rsa_key):
    entry = {**rsa_key.public_jwk(), "kid": 7}
    cache = cache_for(FakeKeySource({JWKS_URL: key_set(entry)}), clock)
    await unknown_key(cache, None, "RS256")


def test_a_key_of_a_type_without_a_signature_family_verifies_nothing(rsa_key):
    (parsed,) = parse_key_set(jwks(rsa_key))
    orphan = SigningKey(kid="k", kty="oct", alg=None, curve=None, key=parsed.key)
    assert not any(orphan.can_verify(alg) for alg in ("HS256", "RS256", "ES256", "EdDSA"))


async def test_a_fetch_cancelled_in_flight_logs_no_error_and_the_next_fetch_runs(
        rsa_key, clock, caplog):
    """The event loop cancels a fetch still in flight when the gateway shuts down."""
    slow = FakeKeySource({JWKS_URL: jwks(rsa_key)}, delay=0.05)
    cache = cache_for(slow, clock)
    waiting = asyncio.ensure_future(cache.refresh())
    await asyncio.sleep(0.01)

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        cache._inflight.cancel()  # type: ignore[union-attr]  # as the loop does at shutdown
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.sleep(0)

    assert caplog.records == []
    assert (await cache.key_for("rsa-1", "RS256")).kid == "rsa-1"
    assert slow.fetches == [JWKS_URL, JWKS_URL]


@pytest.mark.parametrize("alg", ["HS256", "ES256", "EdDSA", "none"])
def test_a_real_rsa_key_marked_with_an_algorithm_of_another_family_is_dropped(alg, rsa_key):
    """A valid RSA public key published as `alg: HS256` must never be kept as a key for HMAC
    (RS/HS confusion), nor under any other family's algorithm."""
    entry = {**rsa_key.public_jwk(), "alg": alg}
    assert parse_key_set(key_set(entry)) == ()
    assert len(parse_key_set(key_set({**entry, "alg": "RS256"}))) == 1
