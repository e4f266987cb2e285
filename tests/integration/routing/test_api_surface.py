"""Audio and image pass-through, and unknown routes."""

from __future__ import annotations

import pytest

from tests.integration.routing.conftest import deployment

BOUNDARY = "rolegate-test-boundary"
AUDIO = b"RIFF\x00\x01binary audio\r\n--not-a-boundary"


def form(model: str, **fields: str) -> bytes:
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="model"\r\n\r\n{model}\r\n']
    parts += [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
              for name, value in fields.items()]
    head = "".join(parts).encode()
    file_part = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
                 f'filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n').encode()
    return head + file_part + AUDIO + f"\r\n--{BOUNDARY}--\r\n".encode()


FORM_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def as_sent(request) -> bytes:
    """The recorded form with its boundary put back to ours: the gateway rebuilds every form
    under a fresh boundary."""
    content_type = request.headers["Content-Type"]
    assert content_type.startswith("multipart/form-data; boundary=rolegate-")
    return request.body.replace(content_type.split("=", 1)[1].encode(), BOUNDARY.encode())


@pytest.fixture
async def whisper(upstreams, routing_settings, client_for):
    (a,) = await upstreams("a")
    policy = [{"name": "users", "when": {"roles": ["user"]},
               "allow": {"routes": ["inference"], "models": ["whisper-1", "dall-e-3", "tts-1"]}}]
    models = [{"name": name, **deployment(a, id=f"a-{name}")}
              for name in ("whisper-1", "dall-e-3", "tts-1", "secret-model")]
    return a, client_for(routing_settings(models, policy=policy))


async def test_transcription_form_is_rebuilt_with_every_field_and_file_byte(whisper, auth_for):
    upstream, client = whisper
    body = form("whisper-1", language="en")

    response = await client.post("/v1/audio/transcriptions", content=body,
                                 headers={**auth_for("user"), "content-type": FORM_TYPE})

    assert response.status_code == 200
    assert upstream.requests[0].path == "/v1/audio/transcriptions"
    assert as_sent(upstream.requests[0]) == body
    assert upstream.requests[0].headers["Content-Type"] != FORM_TYPE


async def test_a_deployment_with_its_own_model_name_gets_it_in_the_form(
        upstreams, routing_settings, client_for, auth_for):
    (a,) = await upstreams("a")
    policy = [{"name": "users", "when": {"roles": ["user"]},
               "allow": {"routes": ["inference"], "models": ["whisper-1"]}}]
    client = client_for(routing_settings(
        [{"name": "whisper-1", **deployment(a, model="whisper-large-v3")}], policy=policy))

    response = await client.post("/v1/audio/transcriptions", content=form("whisper-1"),
                                 headers={**auth_for("user"), "content-type": FORM_TYPE})

    assert response.status_code == 200
    assert as_sent(a.requests[0]) == form("whisper-large-v3")  # the audio byte for byte


async def test_form_naming_a_model_the_caller_may_not_use_is_403_and_unsent(whisper, auth_for):
    upstream, client = whisper

    response = await client.post("/v1/audio/translations", content=form("secret-model"),
                                 headers={**auth_for("user"), "content-type": FORM_TYPE})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "model_not_allowed"
    assert upstream.requests == []


async def test_form_without_a_model_is_400(whisper, auth_for):
    upstream, client = whisper
    body = form("whisper-1").replace(b'name="model"', b'name="language"')

    response = await client.post("/v1/audio/transcriptions", content=body,
                                 headers={**auth_for("user"), "content-type": FORM_TYPE})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "missing_model"
    assert upstream.requests == []


async def test_malformed_form_is_400(whisper, auth_for):
    upstream, client = whisper

    response = await client.post("/v1/audio/transcriptions", content=b"--nope",
                                 headers={**auth_for("user"), "content-type": FORM_TYPE})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_body"
    assert upstream.requests == []


async def test_form_on_a_json_route_is_400(whisper, auth_for):
    upstream, client = whisper

    response = await client.post("/v1/chat/completions", content=form("whisper-1"),
                                 headers={**auth_for("user"), "content-type": FORM_TYPE})

    assert response.status_code == 400
    assert upstream.requests == []


@pytest.mark.parametrize(("path", "model"), [("/v1/images/generations", "dall-e-3"),
                                             ("/v1/audio/speech", "tts-1")])
async def test_json_image_and_speech_requests_reach_the_upstream(path, model, whisper, auth_for):
    upstream, client = whisper

    response = await client.post(path, json={"model": model, "input": "x", "prompt": "a cat"},
                                 headers=auth_for("user"))

    assert response.status_code == 200
    assert upstream.requests[0].path == path
    assert response.headers["x-rolegate-deployment"] == f"a-{model}"


async def test_unknown_v1_route_is_404_in_openai_form(whisper, auth_for):
    _upstream, client = whisper

    response = await client.post("/v1/audio/unknown", json={"model": "tts-1"},
                                 headers=auth_for("user"))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_route"
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_unknown_v1_route_without_a_token_is_401_first(whisper):
    upstream, client = whisper

    response = await client.post("/v1/audio/unknown", json={"model": "tts-1"})

    assert response.status_code == 401
    assert upstream.requests == []


async def test_mock_model_refuses_audio_with_a_clear_400(routing_settings, client_for, auth_for):
    client = client_for(routing_settings([{"name": "echo", "provider": "mock"}]))

    response = await client.post("/v1/audio/speech", json={"model": "echo", "input": "hi"},
                                 headers=auth_for("user"))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsupported_operation"
