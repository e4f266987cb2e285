"""LiteLLM's `model_list` and `router_settings` as rolegate `models` and `routing`: each entry's
`litellm_params.model` prefix names the provider; entries sharing a `model_name` become the
deployments of one model; fallbacks, retries, timeouts and the routing strategy are carried over
where rolegate has them."""

from __future__ import annotations

from typing import Any

from rolegate.config.litellm.report import Report, plain, secret

OPENAI_BASE = "https://api.openai.com/v1"
ANTHROPIC_BASE = "https://api.anthropic.com/v1"
OLLAMA_BASE = "http://localhost:11434/v1"
AZURE_API_VERSION = "2024-10-21"
STRATEGIES = {"simple-shuffle": "weighted-round-robin", "least-busy": "least-in-flight",
              "latency-based-routing": "latency"}
# litellm_params keys each provider reads, and the rolegate key each becomes.
_COMMON = {"rpm": "rpm", "tpm": "tpm", "weight": "weight", "timeout": "timeout"}
_PROVIDER_KEYS = {
    "openai": {"api_base": "api_base", "api_key": "api_key"},
    "openai-compatible": {"api_base": "api_base", "api_key": "api_key"},
    "azure": {"api_base": "api_base", "api_key": "api_key", "api_version": "api_version"},
    "anthropic": {"api_base": "api_base", "api_key": "api_key"},
    "bedrock": {"aws_region_name": "region", "aws_access_key_id": "aws_access_key_id",
                "aws_secret_access_key": "aws_secret_access_key",
                "aws_session_token": "aws_session_token", "aws_profile_name": "aws_profile",
                "api_base": "api_base"},
    "gemini": {"api_key": "api_key", "api_base": "api_base"},
    "vertex": {"vertex_project": "project", "vertex_location": "location",
               "vertex_credentials": "credentials_file", "api_base": "api_base"},
}
_SECRETS = frozenset({"api_key", "aws_access_key_id", "aws_secret_access_key",
                      "aws_session_token"})
_PREFIXES = {"openai": "openai", "azure": "azure", "anthropic": "anthropic",
             "bedrock": "bedrock", "vertex_ai": "vertex", "gemini": "gemini",
             "ollama": "openai-compatible", "ollama_chat": "openai-compatible",
             "hosted_vllm": "openai-compatible"}
_COSTS = {"input_cost_per_token": "input_cost_per_1k", "output_cost_per_token":
          "output_cost_per_1k"}


def import_models(model_list: Any, router: dict[str, Any],
                  report: Report) -> list[dict[str, Any]]:
    """The rolegate `models` for `model_list`, in the order names first appear."""
    models: dict[str, dict[str, Any]] = {}
    for index, entry in enumerate(model_list if isinstance(model_list, list) else ()):
        source = f"model_list[{index}]"
        name = entry.get("model_name") if isinstance(entry, dict) else None
        params = entry.get("litellm_params") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not isinstance(params, dict):
            report.unmapped(source, "needs model_name and litellm_params")
            continue
        found = _deployment(params, f"{source} ({name})", report, router.get("timeout"))
        if found is None:
            continue
        model = models.setdefault(name, {"name": name, "deployments": []})
        model["deployments"].append(found)
        _costs(model, entry, f"{source} ({name})", report)
        report.mapped(f"{source} ({name}) {params.get('model')}",
                      f"models[{name}].deployments[{len(model['deployments']) - 1}] "
                      f"(provider {found['provider']})")
    return list(models.values())


def _deployment(params: dict[str, Any], source: str, report: Report,
                router_timeout: Any) -> dict[str, Any] | None:
    model = str(params.get("model", ""))
    prefix, _, rest = model.partition("/")
    if not rest:
        prefix, rest = "openai", model
    provider = _PREFIXES.get(prefix)
    if provider is None:
        report.unmapped(source, f"provider prefix {prefix!r}/ has no rolegate provider "
                        f"(known: {', '.join(_PREFIXES)}); the deployment was left out")
        return None
    if provider == "bedrock":
        rest = rest.removeprefix("converse/")
    result: dict[str, Any] = {"provider": provider}
    keys = {**_PROVIDER_KEYS[provider], **_COMMON}
    for key, value in params.items():
        if key == "model":
            continue
        if key not in keys:
            report.unmapped(f"{source}.litellm_params.{key}", "rolegate has no such setting "
                            "for this provider (it never changes a caller's request body)")
            continue
        target = keys[key]
        result[target] = (secret(value, f"{source}.litellm_params.{key}", report)
                          if key in _SECRETS else plain(value))
    if provider == "azure":
        result["deployment"] = rest
        if "api_version" not in result:
            result["api_version"] = AZURE_API_VERSION
            report.note(source, f"no api_version: {AZURE_API_VERSION} was written; set the "
                        "one your resource serves")
    else:
        result["model"] = rest
    _default_base(result, prefix, source, report)
    if "timeout" not in result and router_timeout is not None:
        result["timeout"] = router_timeout
    return result


def _default_base(result: dict[str, Any], prefix: str, source: str, report: Report) -> None:
    provider = result["provider"]
    if provider == "openai" and result.get("api_base") not in (None, OPENAI_BASE):
        # LiteLLM's openai/ with a base of its own is an OpenAI-compatible server
        result["provider"] = "openai-compatible"
    elif provider == "openai":
        result["api_base"] = OPENAI_BASE
    elif provider == "anthropic":
        result.setdefault("api_base", ANTHROPIC_BASE)
    elif prefix in ("ollama", "ollama_chat"):
        base = str(result.get("api_base", OLLAMA_BASE)).rstrip("/")
        result["api_base"] = base if base.endswith("/v1") else f"{base}/v1"
        report.note(source, f"Ollama is reached through its OpenAI-compatible API at "
                    f"{result['api_base']}")
    elif provider == "openai-compatible" and "api_base" not in result:
        report.unmapped(source, "hosted_vllm needs api_base; the written deployment fails "
                        "`rolegate check` until it has one")


def _costs(model: dict[str, Any], entry: dict[str, Any], source: str, report: Report) -> None:
    for holder in ("litellm_params", "model_info"):
        values = entry.get(holder)
        for key, target in _COSTS.items():
            if isinstance(values, dict) and isinstance(values.get(key), (int, float)):
                model[target] = values[key] * 1000
                report.mapped(f"{source}.{holder}.{key}", f"models[{model['name']}].{target}")


def import_routing(router: dict[str, Any], models: list[dict[str, Any]],
                   report: Report) -> dict[str, Any]:
    """The `routing` section, with each model's strategy and fallbacks set on `models`."""
    routing: dict[str, Any] = {}
    for key, value in router.items():
        source = f"router_settings.{key}"
        if key == "routing_strategy":
            strategy = STRATEGIES.get(str(value))
            if strategy is None:
                report.unmapped(source, f"{value!r} has no rolegate strategy; "
                                "weighted-round-robin is used, within each deployment's rpm/tpm")
                continue
            for model in models:
                model["strategy"] = strategy
            report.mapped(source, f"models[*].strategy: {strategy}")
        elif key == "num_retries" and isinstance(value, int):
            routing["retries"] = {"max_attempts": max(1, min(value + 1, 20))}
            report.mapped(source, f"routing.retries.max_attempts: {value + 1} (first attempt "
                          "included)")
        elif key == "timeout":
            report.mapped(source, "each deployment's timeout (unless its litellm_params set one)")
        elif key in ("fallbacks", "context_window_fallbacks"):
            _fallbacks(key, value, models, report)
        else:
            report.unmapped(source, "no rolegate equivalent")
    return routing


def _fallbacks(key: str, value: Any, models: list[dict[str, Any]], report: Report) -> None:
    names = {model["name"]: model for model in models}
    for index, item in enumerate(value if isinstance(value, list) else ()):
        for name, targets in (item.items() if isinstance(item, dict) else ()):
            source = f"router_settings.{key}[{index}].{name}"
            known = [target for target in targets or () if target in names and target != name]
            dropped = [target for target in targets or () if target not in known]
            if name not in names:
                report.unmapped(source, f"{name!r} is not a model of model_list")
                continue
            if known:
                names[name][key] = known
                report.mapped(source, f"models[{name}].{key}: {known}")
            if dropped:
                report.unmapped(source, f"{dropped} name no other model of model_list")
