"""`LaunchOptions`: what `rolegate serve --workers N` hands its workers survives the trip."""

from __future__ import annotations

from pathlib import Path

from rolegate.config.launch import LaunchOptions


def test_options_round_trip_through_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "rolegate.yaml"
    environ: dict[str, str] = {}
    LaunchOptions(config, "0.0.0.0", 9000, tmp_path / "state", "ab" * 32).export(environ)
    assert LaunchOptions.from_environ(environ) == LaunchOptions(
        config.resolve(), "0.0.0.0", 9000, (tmp_path / "state").resolve(), "ab" * 32)


def test_no_config_and_no_overrides_mean_embedded_defaults(tmp_path: Path) -> None:
    environ: dict[str, str] = {}
    LaunchOptions(None, None, None, tmp_path).export(environ)
    options = LaunchOptions.from_environ(environ)
    assert (options.config, options.host, options.port) == (None, None, None)
    settings = options.settings()
    assert [model.name for model in settings.models] == ["echo"]
    assert settings.auth.dev_issuer.enabled


def test_host_and_port_override_the_file(tmp_path: Path) -> None:
    config = tmp_path / "rolegate.yaml"
    config.write_text("server: {host: 127.0.0.1, port: 8000}\n"
                      "auth: {dev_issuer: {enabled: true}}\n")
    settings = LaunchOptions(config, None, 9001, tmp_path).settings()
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 9001)
