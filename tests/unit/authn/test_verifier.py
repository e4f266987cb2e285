"""JwtVerifier: what it accepts, and a specific 401 for every way a token can be wrong."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from rolegate.authn.verifier import MAX_TOKEN_CACHE, JwtVerifier, TrustedIssuer
from rolegate.config.model import IssuerConfig
from rolegate.errors import ServiceUnavailable, Unauthenticated
from tests.support.clock import FakeClock
from tests.support.fetch import FakeKeySource
from tests.support.keys import OTHER_TENANT, TENANT, KeyPair, claims, jwks
from tests.support.tokens import b64url, hmac_signed, segment, unsigned, with_payload

ISS = "https://idp.example.com/"
AUD = "api://rolegate"
JWKS_URL = "https://idp.example.com/keys"
ATTACKER_URL = "https://attacker.example/jwks.json"

Verifier = Callable[..., JwtVerifier]


def issuer_config(**overrides: Any) -> IssuerConfig:
    data: dict[str, Any] = {"name": "idp", "issuer": ISS, "jwks_url": JWKS_URL,
                            "audiences": [AUD], **overrides}
    return IssuerConfig.model_validate(data)


@pytest.fixture(scope="module")
def ps_key() -> KeyPair:
    return KeyPair.rsa("ps-1", alg="PS256")


@pytest.fixture(scope="module")
def attacker_key() -> KeyPair:
    return KeyPair.rsa("attacker-1")


@pytest.fixture
def published(key_source: FakeKeySource, rsa_key: KeyPair, ec_key: KeyPair,
              ps_key: KeyPair) -> FakeKeySource:
    key_source.documents[JWKS_URL] = jwks(rsa_key, ec_key, ps_key)
    return key_source


@pytest.fixture
def verifier_for(published: FakeKeySource, clock: FakeClock) -> Verifier:
    def make(*configs: IssuerConfig) -> JwtVerifier:
        trusted = [TrustedIssuer.build(config, published, clock)
                   for config in (configs or (issuer_config(),))]
        return JwtVerifier(trusted, clock)
    return make


@pytest.fixture
def verifier(verifier_for: Verifier) -> JwtVerifier:
    return verifier_for()


def good_claims(clock: FakeClock, *, exp_in: float = 3600, **overrides: Any) -> dict[str, Any]:
    return {**claims(ISS, AUD, now=clock.now, exp_in=exp_in), **overrides}


def signed_raw(key: KeyPair, body: dict[str, Any], **headers: Any) -> str:
    """Signed without PyJWT's claim checks, so claims of any JSON type can be sent."""
    return jwt.api_jws.encode(json.dumps(body).encode(), key.private_key, algorithm=key.alg,
                              headers={"kid": key.kid, **headers})


async def refused(verifier: JwtVerifier, token: str) -> str:
    """The code of the 401 the verifier answers `token` with."""
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(token)
    assert caught.value.status == 401
    return caught.value.code


# --- accepted tokens ---------------------------------------------------------------------------

@pytest.mark.parametrize("key_name", ["rsa_key", "ec_key", "ps_key"],
                         ids=["RS256", "ES256", "PS256"])
async def test_token_signed_by_a_published_key_is_accepted(key_name, request, verifier, clock):
    key: KeyPair = request.getfixturevalue(key_name)
    token = key.sign(good_claims(clock, roles=["reader"], sub="svc-1"))

    principal = await verifier.verify(token)

    assert principal.issuer == "idp"
    assert principal.subject == "svc-1"
    assert principal.roles == frozenset({"reader"})


async def test_the_claim_paths_asked_for_are_read_into_the_principal(published, rsa_key, clock):
    """Per-claim limits and usage dimensions read these (`Settings.claim_paths`)."""
    verifier = JwtVerifier([TrustedIssuer.build(issuer_config(), published, clock,
                                                attributes=("department", "org.teams"))], clock)
    token = rsa_key.sign(good_claims(clock, department="sales", org={"teams": ["b", "a"]}))

    principal = await verifier.verify(token)

    assert principal.attribute("department") == ("sales",)
    assert principal.attribute("org.teams") == ("a", "b")


async def test_audience_list_containing_ours_is_accepted(verifier, rsa_key, clock):
    token = rsa_key.sign(good_claims(clock, aud=["https://other.example", AUD]))
    assert (await verifier.verify(token)).subject == "subject-1"


async def test_token_expired_within_the_leeway_is_accepted(verifier, rsa_key, clock):
    token = rsa_key.sign(good_claims(clock, exp_in=-30))
    assert (await verifier.verify(token)).subject == "subject-1"


async def test_nbf_and_iat_slightly_in_the_future_are_accepted_within_leeway(
        verifier, rsa_key, clock):
    token = rsa_key.sign(good_claims(clock, nbf=int(clock.now) + 30, iat=int(clock.now) + 30))
    assert (await verifier.verify(token)).subject == "subject-1"


async def test_typ_with_application_prefix_matches_a_required_at_jwt(
        verifier_for, rsa_key, clock):
    verifier = verifier_for(issuer_config(token_types=["at+jwt"]))
    token = rsa_key.sign(good_claims(clock), {"typ": "application/at+jwt"})
    assert (await verifier.verify(token)).subject == "subject-1"


# --- algorithm attacks -------------------------------------------------------------------------

async def test_alg_none_is_refused_before_any_key_is_fetched(verifier, published, clock):
    token = unsigned({"alg": "none", "typ": "JWT"}, good_claims(clock, roles=["admin"]))

    assert await refused(verifier, token) == "algorithm_not_allowed"
    assert published.fetches == []


@pytest.mark.parametrize("alg", ["None", "NONE", "nOnE"])
async def test_alg_none_in_any_case_is_refused(alg, verifier, clock):
    token = unsigned({"alg": alg}, good_claims(clock), b64url(b"x"))
    assert await refused(verifier, token) == "algorithm_not_allowed"


async def test_hs256_signed_with_the_rsa_public_key_is_refused(verifier, rsa_key, published,
                                                                clock):
    pem = rsa_key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    token = hmac_signed({"alg": "HS256", "typ": "JWT", "kid": rsa_key.kid},
                        good_claims(clock, roles=["admin"]), pem)

    assert await refused(verifier, token) == "algorithm_not_allowed"
    assert published.fetches == []


async def test_algorithm_outside_the_issuer_allow_list_is_refused(verifier_for, ec_key, clock):
    verifier = verifier_for(issuer_config(algorithms=["RS256"]))
    assert await refused(verifier, ec_key.sign(good_claims(clock))) == "algorithm_not_allowed"


@pytest.mark.parametrize("alg", [None, 256, ["RS256"]], ids=["missing", "number", "list"])
async def test_alg_header_that_is_not_a_string_is_refused(alg, verifier, clock):
    header = {"kid": "rsa-1"} if alg is None else {"alg": alg, "kid": "rsa-1"}
    token = unsigned(header, good_claims(clock), b64url(b"sig"))
    assert await refused(verifier, token) == "algorithm_not_allowed"


async def test_rs256_header_on_an_ec_key_id_finds_no_key(verifier, ec_key, rsa_key, clock):
    """The key named by kid must itself be able to verify the header's alg."""
    token = rsa_key.sign(good_claims(clock), {"kid": ec_key.kid})
    assert await refused(verifier, token) == "unknown_signing_key"


# --- keys named by the token -------------------------------------------------------------------

async def test_unknown_kid_refreshes_the_key_set_once_then_is_refused(verifier, attacker_key,
                                                                       published, clock):
    token = attacker_key.sign(good_claims(clock))

    assert await refused(verifier, token) == "unknown_signing_key"
    assert published.fetches == [JWKS_URL, JWKS_URL]


@pytest.mark.parametrize("header", ["jku", "x5u"])
async def test_key_url_header_is_never_fetched(header, verifier, attacker_key, published, clock):
    token = attacker_key.sign(good_claims(clock, roles=["admin"]), {header: ATTACKER_URL})

    assert await refused(verifier, token) == "unknown_signing_key"
    assert ATTACKER_URL not in published.fetches
    assert set(published.fetches) == {JWKS_URL}


async def test_key_url_header_with_our_kid_but_attacker_signature_is_refused(
        verifier, attacker_key, rsa_key, published, clock):
    token = attacker_key.sign(good_claims(clock), {"kid": rsa_key.kid, "jku": ATTACKER_URL})

    assert await refused(verifier, token) == "invalid_signature"
    assert ATTACKER_URL not in published.fetches


@pytest.mark.parametrize("kid_of", ["attacker", "ours"])
async def test_embedded_jwk_header_is_not_trusted(kid_of, verifier, attacker_key, rsa_key, clock):
    kid = attacker_key.kid if kid_of == "attacker" else rsa_key.kid
    token = attacker_key.sign(good_claims(clock, roles=["admin"]),
                              {"kid": kid, "jwk": attacker_key.public_jwk()})
    code = await refused(verifier, token)
    assert code == ("unknown_signing_key" if kid_of == "attacker" else "invalid_signature")


async def test_x5c_header_is_not_trusted(verifier, attacker_key, rsa_key, clock):
    der = attacker_key.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    token = attacker_key.sign(good_claims(clock), {"kid": rsa_key.kid,
                                                   "x5c": [b64url(der)]})
    assert await refused(verifier, token) == "invalid_signature"


@pytest.mark.parametrize("kid", [
    "' OR '1'='1", "1; DROP TABLE keys; --", "*)(uid=*))(|(uid=*", "a\nb", "a\x00b",
    "k" * 257, "ключ", "",
], ids=["sql-quote", "sql-drop", "ldap", "newline", "nul", "too-long", "unicode", "empty"])
async def test_kid_with_unexpected_characters_is_refused_without_fetching(
        kid, verifier, rsa_key, published, clock):
    token = rsa_key.sign(good_claims(clock), {"kid": kid})

    assert await refused(verifier, token) == "invalid_token"
    assert published.fetches == []


@pytest.mark.parametrize("kid", [7, ["rsa-1"], {"k": "rsa-1"}, True])
async def test_kid_that_is_not_a_string_is_refused_without_fetching(kid, verifier, rsa_key,
                                                                     published, clock):
    token = unsigned({"alg": "RS256", "kid": kid}, good_claims(clock), b64url(b"sig"))
    assert await refused(verifier, token) == "invalid_token"
    assert published.fetches == []


async def test_unknown_critical_header_extension_is_refused(verifier, rsa_key, clock):
    token = rsa_key.sign(good_claims(clock), {"crit": ["urn:example:ext"],
                                              "urn:example:ext": 1})
    assert await refused(verifier, token) == "invalid_token"


# --- time --------------------------------------------------------------------------------------

async def test_token_expired_beyond_the_leeway_is_refused(verifier, rsa_key, clock):
    token = rsa_key.sign(good_claims(clock, exp_in=-61))
    assert await refused(verifier, token) == "token_expired"


async def test_zero_leeway_refuses_a_token_one_second_past_exp(verifier_for, rsa_key, clock):
    verifier = verifier_for(issuer_config(leeway=0))
    assert await refused(verifier, rsa_key.sign(good_claims(clock, exp_in=-1))) == \
        "token_expired"


async def test_nbf_beyond_the_leeway_is_refused(verifier, rsa_key, clock):
    token = rsa_key.sign(good_claims(clock, nbf=int(clock.now) + 120))
    assert await refused(verifier, token) == "token_not_yet_valid"


async def test_iat_beyond_the_leeway_is_refused(verifier, rsa_key, clock):
    token = rsa_key.sign(good_claims(clock, iat=int(clock.now) + 120))
    assert await refused(verifier, token) == "invalid_token"


async def test_missing_exp_is_refused(verifier, rsa_key, clock):
    body = good_claims(clock)
    del body["exp"]
    assert await refused(verifier, rsa_key.sign(body)) == "missing_claim"


@pytest.mark.parametrize("exp", ["99999999999", True, None, [1], {"t": 1}, 10**400],
                         ids=["string", "bool", "null", "list", "object", "huge-int"])
async def test_exp_that_is_not_a_finite_number_is_refused(exp, verifier, rsa_key, clock):
    token = rsa_key.sign(good_claims(clock, exp=exp))
    assert await refused(verifier, token) in {"invalid_token", "missing_claim"}


@pytest.mark.parametrize("literal", ["1e400", "Infinity", "NaN", "-Infinity"])
async def test_exp_that_overflows_to_infinity_is_refused(literal, verifier, rsa_key, clock):
    body = json.dumps(good_claims(clock)).replace(
        f'"exp": {int(clock.now) + 3600}', f'"exp": {literal}').encode()
    assert literal.encode() in body
    token = jwt.api_jws.encode(body, rsa_key.private_key, algorithm="RS256",
                               headers={"kid": rsa_key.kid})
    assert await refused(verifier, token) == "invalid_token"


@pytest.mark.parametrize("claim", ["nbf", "iat"])
async def test_nbf_or_iat_that_is_not_a_number_is_refused(claim, verifier, rsa_key, clock):
    token = rsa_key.sign(good_claims(clock, **{claim: "yesterday"}))
    assert await refused(verifier, token) in {"invalid_token", "token_not_yet_valid"}


# --- audience, issuer, tenant, claims ----------------------------------------------------------

@pytest.mark.parametrize("aud", ["api://someone-else", ["a", "b"], [], 42, [42]],
                         ids=["other", "list-without-ours", "empty-list", "number", "list-number"])
async def test_token_for_another_audience_is_refused(aud, verifier, rsa_key, clock):
    # PyJWT counts an empty list as no audience at all.
    expected = "missing_claim" if aud == [] else "invalid_audience"
    assert await refused(verifier, rsa_key.sign(good_claims(clock, aud=aud))) == expected


async def test_token_without_aud_is_refused(verifier, rsa_key, clock):
    body = good_claims(clock)
    del body["aud"]
    assert await refused(verifier, rsa_key.sign(body)) == "missing_claim"


@pytest.mark.parametrize("iss", ["https://evil.example/", "https://idp.example.com",
                                 "https://IDP.example.com/", None, ["https://idp.example.com/"]],
                         ids=["other", "no-trailing-slash", "case", "null", "list"])
async def test_token_of_an_untrusted_issuer_is_refused_before_any_fetch(iss, verifier, rsa_key,
                                                                         published, clock):
    assert await refused(verifier, signed_raw(rsa_key, good_claims(clock, iss=iss))) == \
        "unknown_issuer"
    assert published.fetches == []


async def test_token_without_iss_is_refused(verifier, rsa_key, clock):
    body = good_claims(clock)
    del body["iss"]
    assert await refused(verifier, rsa_key.sign(body)) == "unknown_issuer"


async def test_tampered_payload_fails_the_signature(verifier, rsa_key, clock):
    token = rsa_key.sign(good_claims(clock, roles=["reader"]))
    forged = with_payload(token, good_claims(clock, roles=["admin"]))
    assert await refused(verifier, forged) == "invalid_signature"


async def test_signature_of_another_token_is_refused(verifier, rsa_key, clock):
    first = rsa_key.sign(good_claims(clock, sub="a"))
    second = rsa_key.sign(good_claims(clock, sub="b"))
    spliced = first.rsplit(".", 1)[0] + "." + second.rsplit(".", 1)[1]
    assert await refused(verifier, spliced) == "invalid_signature"


async def test_required_claim_missing_is_refused(verifier_for, rsa_key, clock):
    verifier = verifier_for(issuer_config(required_claims=["azp"]))
    assert await refused(verifier, rsa_key.sign(good_claims(clock))) == "missing_claim"
    assert (await verifier.verify(rsa_key.sign(good_claims(clock, azp="c1")))).client_id == "c1"


@pytest.mark.parametrize("typ", ["JWT", "jwt", None, "at+jwt+extra", 1],
                         ids=["JWT", "lower-jwt", "missing", "suffix", "number"])
async def test_token_type_other_than_at_jwt_is_refused_when_required(typ, verifier_for, rsa_key,
                                                                     clock):
    verifier = verifier_for(issuer_config(token_types=["at+jwt"]))
    header = {"typ": typ} if typ is not None else {}
    if typ is None:  # PyJWT adds `typ: JWT` unless told not to
        header = {"typ": None}
    token = signed_raw(rsa_key, good_claims(clock), **header)
    assert jwt.get_unverified_header(token).get("typ") == typ
    assert await refused(verifier, token) == "invalid_token_type"


async def test_tenant_allow_list_refuses_a_token_of_another_tenant(verifier_for, rsa_key, clock):
    verifier = verifier_for(issuer_config(tenants=[TENANT]))
    assert await refused(verifier, rsa_key.sign(good_claims(clock, tid=OTHER_TENANT))) == \
        "invalid_tenant"
    assert await refused(verifier, rsa_key.sign(good_claims(clock))) == "invalid_tenant"
    assert (await verifier.verify(rsa_key.sign(good_claims(clock, tid=TENANT)))).subject


TEMPLATE = "https://login.microsoftonline.com/{tenantid}/v2.0"


def tenant_claims(clock: FakeClock, iss_tenant: str, tid: Any) -> dict[str, Any]:
    body = claims(TEMPLATE.replace("{tenantid}", iss_tenant), AUD, now=clock.now)
    if tid is not None:
        body["tid"] = tid
    return body


@pytest.mark.parametrize(("iss_tenant", "tid", "allowed", "code"), [
    (TENANT, TENANT, [TENANT], None),
    (OTHER_TENANT, OTHER_TENANT, [TENANT], "invalid_tenant"),
    (OTHER_TENANT, TENANT, ["*"], "invalid_tenant"),
    (TENANT, OTHER_TENANT, ["*"], "invalid_tenant"),
    (TENANT, None, ["*"], "invalid_tenant"),
    (OTHER_TENANT, OTHER_TENANT, ["*"], None),
], ids=["own-tenant", "tenant-not-allowed", "iss-other-tid-ours", "iss-ours-tid-other",
        "no-tid", "any-tenant"])
async def test_issuer_template_requires_iss_to_name_the_allowed_tid(
        iss_tenant, tid, allowed, code, verifier_for, rsa_key, clock):
    verifier = verifier_for(issuer_config(issuer=TEMPLATE, tenants=allowed))
    token = rsa_key.sign(tenant_claims(clock, iss_tenant, tid))
    if code is None:
        assert (await verifier.verify(token)).tenant == tid
    else:
        assert await refused(verifier, token) == code


async def test_issuer_template_does_not_match_a_tenant_with_a_slash(verifier_for, rsa_key, clock):
    verifier = verifier_for(issuer_config(issuer=TEMPLATE, tenants=["*"]))
    body = tenant_claims(clock, "evil.example/x", "evil.example/x")
    assert await refused(verifier, rsa_key.sign(body)) == "unknown_issuer"


async def test_exact_issuer_wins_over_a_template_and_keeps_its_own_rules(
        verifier_for, rsa_key, clock):
    exact = issuer_config(name="exact", issuer=TEMPLATE.replace("{tenantid}", TENANT),
                          audiences=["exact-aud"])
    template = issuer_config(name="any", issuer=TEMPLATE, tenants=["*"])
    verifier = verifier_for(exact, template)
    token = rsa_key.sign(tenant_claims(clock, TENANT, TENANT))
    assert await refused(verifier, token) == "invalid_audience"


# --- garbage -----------------------------------------------------------------------------------

NESTED = ("[" * 100_000 + "]" * 100_000).encode()


@pytest.mark.parametrize("token", [
    "", "abc", "a.b", "a.b.c.d", "...", "!!!.###.$$$",
    unsigned(b"not json", {"iss": ISS}),
    unsigned(["alg", "RS256"], {"iss": ISS}),
    unsigned({"alg": "RS256"}, b"not json"),
    unsigned({"alg": "RS256"}, ["iss", ISS]),
    unsigned({"alg": "RS256"}, "a string"),
    unsigned({"alg": "RS256"}, NESTED),
    unsigned(NESTED, {"iss": ISS}),
    unsigned({"alg": "RS256"}, b'{"exp": 1' + b"0" * 5000 + b"}"),
    unsigned({"alg": "RS256"}, b"\xff\xfe\x00garbage"),
    "ünïcødé.tøkén.sïg",
    segment({"alg": "RS256"}) + "." + segment({"iss": ISS}) + ".%%%",
], ids=["empty", "one-segment", "two-segments", "four-segments", "dots-only", "bad-base64",
        "header-not-json", "header-array", "payload-not-json", "payload-array", "payload-string",
        "payload-deeply-nested", "header-deeply-nested", "payload-huge-number",
        "payload-not-utf8", "unicode", "signature-bad-base64"])
async def test_garbage_token_is_refused_as_invalid(token, verifier, published):
    code = await refused(verifier, token)
    assert code in {"invalid_token", "unknown_issuer", "invalid_signature"}
    assert published.fetches == [] or code == "invalid_signature"


# --- the verified-token cache ------------------------------------------------------------------

async def test_second_verification_returns_the_cached_principal_without_fetching(
        verifier, rsa_key, published, clock):
    token = rsa_key.sign(good_claims(clock, roles=["reader"]))
    first = await verifier.verify(token)
    fetches = list(published.fetches)

    second = await verifier.verify(token)

    assert second is first
    assert published.fetches == fetches


async def test_cached_token_is_refused_once_the_clock_passes_exp(verifier, rsa_key, clock):
    token = rsa_key.sign(good_claims(clock, exp_in=120))
    await verifier.verify(token)

    clock.advance(120 + 60 + 1)

    assert await refused(verifier, token) == "token_expired"


async def test_cached_token_is_refused_after_its_key_leaves_the_key_set(
        verifier, rsa_key, rsa_key_2, published, clock):
    token = rsa_key.sign(good_claims(clock))
    await verifier.verify(token)
    published.documents[JWKS_URL] = jwks(rsa_key_2)

    clock.advance(601)  # past the key-set TTL: the next look-up refetches

    assert await refused(verifier, token) == "unknown_signing_key"


async def test_cached_token_stays_valid_across_a_key_set_refresh_that_keeps_its_key(
        verifier, rsa_key, rsa_key_2, published, clock):
    token = rsa_key.sign(good_claims(clock))
    first = await verifier.verify(token)
    published.documents[JWKS_URL] = jwks(rsa_key, rsa_key_2)

    clock.advance(601)

    assert (await verifier.verify(token)).subject == first.subject


async def test_refused_token_is_not_cached(verifier, rsa_key, clock):
    token = rsa_key.sign(good_claims(clock, aud="someone-else"))
    assert await refused(verifier, token) == "invalid_audience"
    assert await refused(verifier, token) == "invalid_audience"


@pytest.mark.parametrize("extension", [{"crit": ["exp"]}, {"b64": False, "crit": ["b64"]}],
                         ids=["crit", "b64-false"])
async def test_jws_extensions_in_the_header_are_refused(extension, verifier, rsa_key, clock):
    token = signed_raw(rsa_key, good_claims(clock), **extension)
    assert await refused(verifier, token) == "invalid_token"


@pytest.mark.parametrize("payload", [[1], "claims", 7, None], ids=["array", "string", "number",
                                                                    "null"])
async def test_a_payload_that_is_not_a_json_object_is_refused(payload, verifier, published):
    token = unsigned({"alg": "RS256", "kid": "rsa-1"}, payload, b64url(b"sig"))

    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(token)

    assert caught.value.code == "invalid_token"
    assert str(caught.value) == "The bearer token is not a well-formed JWT."
    assert published.fetches == []  # refused before any key is fetched


async def test_a_jws_extension_pyjwt_understands_is_still_refused(verifier, rsa_key, clock):
    """`b64: true` is the default encoding and PyJWT accepts it as critical (RFC 7797); the
    gateway accepts no JWS extension at all."""
    header = {"alg": "RS256", "kid": rsa_key.kid, "b64": True, "crit": ["b64"]}
    token = unsigned(header, good_claims(clock), b64url(b"sig"))  # refused before the signature

    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(token)

    assert caught.value.code == "invalid_token"
    assert str(caught.value) == "The token uses a JWS extension this gateway does not accept."


async def test_the_verified_token_cache_is_bounded_and_drops_the_oldest(verifier, ec_key, clock):
    tokens = [ec_key.sign(good_claims(clock, jti=str(n))) for n in range(MAX_TOKEN_CACHE + 1)]

    for token in tokens:
        await verifier.verify(token)

    cached = verifier._verified  # the bound is on memory, which no response shows
    assert len(cached) == MAX_TOKEN_CACHE
    assert tokens[0] not in cached
    assert tokens[1] in cached and tokens[-1] in cached
    assert (await verifier.verify(tokens[0])).subject == "subject-1"  # verified afresh


# --- time at the exact boundary second ---------------------------------------------------------

NOW = 1_800_000_000


def at_second(clock: FakeClock, verifier_for: Verifier, leeway: float) -> JwtVerifier:
    """A verifier whose clock reads exactly NOW, so boundaries fall on whole seconds."""
    clock.now = float(NOW)
    return verifier_for(issuer_config(leeway=leeway))


def timed_claims(**times: int) -> dict[str, Any]:
    body = {k: v for k, v in claims(ISS, AUD, now=NOW).items() if k not in ("nbf", "iat")}
    return {**body, **times}


@pytest.mark.parametrize("leeway", [0, 60])
@pytest.mark.parametrize(("past_exp", "code"), [(-1, None), (-0.5, None), (0, "token_expired"),
                                                (0.5, "token_expired")],
                         ids=["one-second-before", "half-a-second-before", "at-exp",
                              "half-a-second-after"])
async def test_exp_is_accepted_until_exp_plus_leeway_and_refused_from_that_instant(
        leeway, past_exp, code, verifier_for, rsa_key, clock):
    """RFC 7519 §4.1.4: the token must not be accepted on or after `exp` (with the leeway)."""
    verifier = at_second(clock, verifier_for, leeway)
    token = rsa_key.sign(timed_claims(exp=NOW))
    clock.now = NOW + leeway + past_exp

    if code is None:
        assert (await verifier.verify(token)).subject == "subject-1"
    else:
        assert await refused(verifier, token) == code


@pytest.mark.parametrize("leeway", [0, 60])
@pytest.mark.parametrize(("claim", "code"), [("nbf", "token_not_yet_valid"),
                                             ("iat", "invalid_token")])
@pytest.mark.parametrize(("early", "accepted"), [(0, True), (0.5, False), (1, False)],
                         ids=["at-the-first-second", "half-a-second-before", "one-second-before"])
async def test_nbf_and_iat_are_accepted_from_the_claim_minus_leeway_and_refused_before(
        leeway, claim, code, early, accepted, verifier_for, rsa_key, clock):
    verifier = at_second(clock, verifier_for, leeway)
    token = rsa_key.sign(timed_claims(**{claim: NOW + 100}))
    clock.now = NOW + 100 - leeway - early

    if accepted:
        assert (await verifier.verify(token)).subject == "subject-1"
    else:
        assert await refused(verifier, token) == code


async def test_refusals_for_time_say_which_claim(verifier_for, rsa_key, clock):
    verifier = at_second(clock, verifier_for, 0)
    messages = {}
    for claim, body in [("exp", timed_claims(exp=NOW - 1)),
                        ("nbf", timed_claims(nbf=NOW + 1)),
                        ("iat", timed_claims(iat=NOW + 1)),
                        ("no-exp", {**timed_claims(), "exp": "soon"})]:
        with pytest.raises(Unauthenticated) as caught:
            await verifier.verify(rsa_key.sign(body))
        messages[claim] = str(caught.value)

    assert messages == {"exp": "The token has expired.",
                        "nbf": "The token is not valid yet (`nbf`).",
                        "iat": "The token was issued in the future (`iat`).",
                        "no-exp": "The token has no valid `exp` claim."}


async def test_a_token_without_nbf_or_iat_is_accepted(verifier_for, rsa_key, clock):
    verifier = at_second(clock, verifier_for, 0)
    assert (await verifier.verify(rsa_key.sign(timed_claims(exp=NOW + 1)))).subject == \
        "subject-1"


@pytest.mark.parametrize("claim", ["nbf", "iat"])
@pytest.mark.parametrize("value", [None, True, "1800000000", [NOW]],
                         ids=["null", "bool", "string", "list"])
async def test_nbf_or_iat_present_but_not_a_number_is_refused_whatever_the_time(
        claim, value, verifier_for, rsa_key, clock):
    verifier = at_second(clock, verifier_for, 60)
    code = "token_not_yet_valid" if claim == "nbf" else "invalid_token"
    assert await refused(verifier, signed_raw(rsa_key, timed_claims(**{claim: value}))) == code


async def test_a_fractional_exp_is_compared_exactly(verifier_for, rsa_key, clock):
    verifier = at_second(clock, verifier_for, 0)
    token = signed_raw(rsa_key, {**timed_claims(), "exp": NOW + 0.25})
    clock.now = NOW + 0.2
    assert (await verifier.verify(token)).subject == "subject-1"
    clock.now = NOW + 0.25
    assert await refused(verifier, token) == "token_expired"


async def test_a_cached_token_is_served_until_exp_plus_leeway_and_refused_from_then(
        verifier_for, rsa_key, clock):
    verifier = at_second(clock, verifier_for, 60)
    token = rsa_key.sign(timed_claims(exp=NOW + 10))
    first = await verifier.verify(token)

    clock.now = NOW + 10 + 59.5
    assert await verifier.verify(token) is first

    clock.now = NOW + 10 + 60
    assert await refused(verifier, token) == "token_expired"


# --- replay protection, as the verifier wires it -----------------------------------------------

def respelled(token: str) -> str:
    """The same token with base64 padding on its signature: it verifies, but is another string,
    so it misses the verified-token cache and only the jti seen-set can catch it."""
    padded = token + "=" * (-len(token.rsplit(".", 1)[1]) % 4)
    assert padded != token
    return padded


async def test_a_one_time_token_is_refused_the_second_time_without_a_key_lookup(
        verifier_for, rsa_key, published, clock):
    verifier = verifier_for(issuer_config(replay_protection=True))
    token = rsa_key.sign(good_claims(clock, jti="j-1"))
    await verifier.verify(token)
    fetches = list(published.fetches)

    assert await refused(verifier, token) == "token_replayed"
    assert published.fetches == fetches


async def test_a_one_time_token_stays_refused_until_exp_plus_leeway(verifier_for, rsa_key, clock):
    """The jti must outlive every moment at which the token would pass the time checks."""
    clock.now = float(NOW)
    verifier = verifier_for(issuer_config(replay_protection=True, leeway=60))
    token = rsa_key.sign(timed_claims(exp=NOW + 10, jti="j-2"))
    await verifier.verify(token)

    clock.now = NOW + 10 + 59.5  # the token's time still passes: only its jti stops it

    assert await refused(verifier, respelled(token)) == "token_replayed"
    clock.now = NOW + 10 + 60
    assert await refused(verifier, respelled(token)) == "token_expired"


async def test_without_replay_protection_a_token_is_reusable(verifier, rsa_key, clock):
    token = rsa_key.sign(good_claims(clock, jti="j-3"))
    first = await verifier.verify(token)
    assert await verifier.verify(token) is first
    assert (await verifier.verify(respelled(token))).subject == first.subject


async def test_a_one_time_token_without_jti_is_refused(verifier_for, rsa_key, clock):
    verifier = verifier_for(issuer_config(replay_protection=True))
    assert await refused(verifier, rsa_key.sign(good_claims(clock))) == "missing_claim"


async def test_a_refused_one_time_token_does_not_use_up_its_jti(verifier_for, rsa_key, clock):
    verifier = verifier_for(issuer_config(replay_protection=True, tenants=[TENANT]))
    wrong_tenant = rsa_key.sign(good_claims(clock, jti="j-4", tid=OTHER_TENANT))
    assert await refused(verifier, wrong_tenant) == "invalid_tenant"

    assert (await verifier.verify(rsa_key.sign(good_claims(clock, jti="j-4",
                                                           tid=TENANT)))).tenant == TENANT


# --- the key cache each issuer is built with ---------------------------------------------------

DISCOVERY_URL = "https://idp.example.com/.well-known/openid-configuration"


def discovery(issuer: str) -> bytes:
    return json.dumps({"issuer": issuer, "jwks_uri": JWKS_URL}).encode()


async def test_discovery_naming_another_issuer_is_refused_and_its_keys_never_fetched(
        verifier_for, published, rsa_key, clock):
    published.documents[DISCOVERY_URL] = discovery("https://evil.example/")
    verifier = verifier_for(issuer_config(jwks_url=None, discovery_url=DISCOVERY_URL))

    with pytest.raises(ServiceUnavailable) as caught:
        await verifier.verify(rsa_key.sign(good_claims(clock)))

    assert caught.value.code == "jwks_unavailable"
    assert str(caught.value) == "The signing keys of issuer 'idp' cannot be fetched right now."
    assert published.fetches == [DISCOVERY_URL]


async def test_discovery_naming_the_configured_issuer_leads_to_its_keys(
        verifier_for, published, rsa_key, clock):
    published.documents[DISCOVERY_URL] = discovery(ISS)
    verifier = verifier_for(issuer_config(jwks_url=None, discovery_url=DISCOVERY_URL))

    assert (await verifier.verify(rsa_key.sign(good_claims(clock)))).subject == "subject-1"
    assert published.fetches == [DISCOVERY_URL, JWKS_URL]


async def test_discovery_for_an_issuer_template_is_not_held_to_one_issuer(
        verifier_for, published, rsa_key, clock):
    """A tenant's own discovery document names that tenant's issuer, not the template: the
    issuer check applies to exact issuers only."""
    published.documents[DISCOVERY_URL] = discovery(TEMPLATE.replace("{tenantid}", TENANT))
    verifier = verifier_for(issuer_config(issuer=TEMPLATE, tenants=["*"], jwks_url=None,
                                          discovery_url=DISCOVERY_URL))

    token = rsa_key.sign(tenant_claims(clock, TENANT, TENANT))

    assert (await verifier.verify(token)).tenant == TENANT


async def test_the_issuer_key_cache_uses_the_configured_ttl(verifier_for, published, rsa_key,
                                                            clock):
    verifier = verifier_for(issuer_config(jwks_ttl=30))
    await verifier.verify(rsa_key.sign(good_claims(clock, jti="a")))
    clock.advance(29)
    await verifier.verify(rsa_key.sign(good_claims(clock, jti="b")))
    assert published.fetches == [JWKS_URL]

    clock.advance(1)
    await verifier.verify(rsa_key.sign(good_claims(clock, jti="c")))
    assert published.fetches == [JWKS_URL, JWKS_URL]


async def test_the_issuer_key_cache_serves_stale_keys_for_the_configured_time(
        verifier_for, published, rsa_key, clock):
    verifier = verifier_for(issuer_config(jwks_ttl=30, jwks_max_stale=100))
    await verifier.verify(rsa_key.sign(good_claims(clock, jti="a")))
    published.is_down = True

    clock.advance(129)
    assert (await verifier.verify(rsa_key.sign(good_claims(clock, jti="b")))).subject

    clock.advance(1)
    with pytest.raises(ServiceUnavailable):
        await verifier.verify(rsa_key.sign(good_claims(clock, jti="c")))


async def test_the_issuer_key_cache_uses_the_configured_refresh_budget(
        verifier_for, published, attacker_key, clock):
    verifier = verifier_for(issuer_config(jwks_refreshes_per_minute=2))
    for n in range(5):
        assert await refused(verifier, attacker_key.sign(good_claims(clock, jti=str(n)))) == \
            "unknown_signing_key"
    assert len(published.fetches) == 1 + 2


# --- what each refusal says --------------------------------------------------------------------

def refusals(clock: FakeClock, rsa_key: KeyPair, attacker_key: KeyPair) -> list[Any]:
    body = good_claims(clock)
    no_aud = {k: v for k, v in body.items() if k != "aud"}
    return [
        ("not-a-jwt", "a.b", "invalid_token", "The bearer token is not a JWT."),
        ("garbage", "a.b.c", "invalid_token", "The bearer token is not a well-formed JWT."),
        ("untrusted-issuer", rsa_key.sign({**body, "iss": "https://evil.example/"}),
         "unknown_issuer", "The token's issuer is not trusted by this gateway."),
        ("alg-not-allowed", unsigned({"alg": "none"}, body), "algorithm_not_allowed",
         "The token's signing algorithm is not accepted."),
        ("bad-kid", rsa_key.sign(body, {"kid": "a b"}), "invalid_token",
         "The token's `kid` header is malformed."),
        ("unknown-key", attacker_key.sign(body), "unknown_signing_key",
         "The token was signed with a key this issuer does not publish."),
        ("bad-signature", attacker_key.sign(body, {"kid": rsa_key.kid}), "invalid_signature",
         "The token's signature does not verify."),
        ("other-audience", rsa_key.sign({**body, "aud": "someone-else"}), "invalid_audience",
         "The token is not meant for this gateway (`aud`)."),
        ("no-audience", rsa_key.sign(no_aud), "missing_claim",
         "The token lacks a required claim."),
    ]


async def test_each_refusal_has_its_own_code_and_message(verifier, rsa_key, attacker_key,
                                                        clock):
    for name, token, code, message in refusals(clock, rsa_key, attacker_key):
        with pytest.raises(Unauthenticated) as caught:
            await verifier.verify(token)
        assert (name, caught.value.code, str(caught.value)) == (name, code, message)


async def test_a_refused_typ_says_so(verifier_for, rsa_key, clock):
    verifier = verifier_for(issuer_config(token_types=["at+jwt"]))
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(rsa_key.sign(good_claims(clock), {"typ": "JWT"}))
    assert str(caught.value) == "The token's `typ` header is not accepted."


@pytest.mark.parametrize("configured", ["application/at+jwt", "Application/AT+JWT"])
@pytest.mark.parametrize("sent", ["at+jwt", "application/at+jwt", "AT+JWT"])
async def test_a_configured_typ_with_application_prefix_accepts_every_spelling(
        configured, sent, verifier_for, rsa_key, clock):
    """RFC 7515 §4.1.9: `typ` is a media type, compared without case and with the
    `application/` prefix optional."""
    verifier = verifier_for(issuer_config(token_types=[configured]))
    token = rsa_key.sign(good_claims(clock), {"typ": sent})
    assert (await verifier.verify(token)).subject == "subject-1"


async def test_a_b64_header_without_crit_is_refused_though_its_signature_verifies(
        verifier, rsa_key, clock):
    """PyJWT drops `b64: true` when it signs and accepts it when it verifies (it is the default
    encoding); the gateway accepts no JWS extension header at all (RFC 7797)."""
    def signed(header: dict[str, Any]) -> str:
        signing_input = f"{segment(header)}.{segment(good_claims(clock))}"
        signature = rsa_key.private_key.sign(signing_input.encode(), padding.PKCS1v15(),
                                             hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"

    plain = {"alg": "RS256", "kid": rsa_key.kid}
    assert (await verifier.verify(signed(plain))).subject == "subject-1"
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(signed({**plain, "b64": True}))

    assert str(caught.value) == "The token uses a JWS extension this gateway does not accept."


@pytest.mark.parametrize(("iss_tenant", "tid", "allowed", "message"), [
    (TENANT, OTHER_TENANT, ["*"], "The token's `iss` does not name its tenant (`tid`)."),
    (OTHER_TENANT, OTHER_TENANT, [TENANT], "The token's tenant is not allowed."),
], ids=["iss-and-tid-differ", "tenant-not-allowed"])
async def test_tenant_refusals_say_which_check_failed(iss_tenant, tid, allowed, message,
                                                      verifier_for, rsa_key, clock):
    verifier = verifier_for(issuer_config(issuer=TEMPLATE, tenants=allowed))
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(rsa_key.sign(tenant_claims(clock, iss_tenant, tid)))
    assert str(caught.value) == message


async def test_a_key_whose_alg_names_another_curve_verifies_nothing(
        verifier_for, published, clock):
    """A P-256 key published as `ES384` (RFC 7518 §3.4 pairs ES384 with P-384): the key set
    keeps it, and a token it signed is refused whatever its header says."""
    mislabelled = KeyPair.ec("ec-odd", alg="ES256")
    entry = {**mislabelled.public_jwk(), "alg": "ES384"}
    published.documents[JWKS_URL] = json.dumps({"keys": [entry]}).encode()
    verifier = verifier_for(issuer_config(algorithms=["ES256", "ES384"]))
    body = good_claims(clock)

    as_es256 = mislabelled.sign(body)
    header = {"alg": "ES384", "kid": "ec-odd", "typ": "JWT"}
    as_es384 = unsigned(header, body, as_es256.rsplit(".", 1)[1])

    assert await refused(verifier, as_es256) == "unknown_signing_key"
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(as_es384)
    assert (caught.value.code, str(caught.value)) == ("invalid_token",
                                                      "The token was rejected.")


async def test_an_expired_token_leaves_the_verified_token_cache(verifier, rsa_key, clock):
    token = rsa_key.sign(good_claims(clock, exp_in=10))
    await verifier.verify(token)
    clock.advance(10 + 60 + 1)

    assert await refused(verifier, token) == "token_expired"
    assert token not in verifier._verified  # memory: nothing in a response shows it


async def test_concurrent_requests_with_a_cached_token_whose_key_was_replaced_are_all_refused(
        rsa_key, clock):
    """The identity provider publishes a new key under the old `kid`. Both requests find the
    token cached and wait on the same key-set refresh; each must get a 401, whichever of them
    drops the cache entry first."""
    slow = FakeKeySource({JWKS_URL: jwks(rsa_key)}, delay=0.02)
    verifier = JwtVerifier([TrustedIssuer.build(issuer_config(), slow, clock)], clock)
    token = rsa_key.sign(good_claims(clock))
    await verifier.verify(token)
    slow.documents[JWKS_URL] = jwks(KeyPair.rsa(rsa_key.kid))
    clock.advance(601)

    outcomes = await asyncio.gather(verifier.verify(token), verifier.verify(token),
                                    return_exceptions=True)

    assert [getattr(o, "code", repr(o)) for o in outcomes] == ["invalid_signature"] * 2


async def test_a_one_time_issuer_keeps_its_jtis_in_the_replay_set_it_is_given(
        published, rsa_key, clock):
    """With Redis configured the app hands `build` a replay set per issuer (shared by
    processes): the accepted jti goes there, with the instant its token is refused anyway."""
    given: list[tuple[str, object, float]] = []

    class Recording:
        def __init__(self, config: IssuerConfig) -> None:
            self.config = config

        async def claim_once(self, jti: object, expires: float) -> None:
            given.append((self.config.name, jti, expires))

    config = issuer_config(replay_protection=True)
    verifier = JwtVerifier([TrustedIssuer.build(config, published, clock,
                                                replay_set=Recording)], clock)
    signed = good_claims(clock, jti="j-shared")

    await verifier.verify(rsa_key.sign(signed))

    assert given == [(config.name, "j-shared", signed["exp"] + config.leeway)]
