"""Build our catalog file from the public snapshots (OpenRouter /models, /providers, per-model endpoints).

    python -m proxy.catalog.build [--snapshots DIR] [--out FILE]

Pure and deterministic: the same snapshots always give byte-identical output, so a newer snapshot is
one command and one reviewable diff away. The rules (which row becomes which endpoint, how prices are
converted, which provider a model without rows falls back to) are documented in docs/catalog.md.

Each entry may carry `quality` beside its record: the auto router's figures (proxy/catalog/quality.py);
an endpoint may carry `published`: its uptime, latency and throughput as published (proxy/catalog/published.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

from proxy.catalog.published import published_stats
from proxy.catalog.quality import quality_of

FORMAT = "openrouter-site-catalog/1"
DEFAULT_SNAPSHOTS = Path(__file__).resolve().parents[3] / "shared" / "data"
DEFAULT_OUT = Path(__file__).resolve().parent / "catalog.json"

MODELS_GLOB = "openrouter-models-*.json"
PROVIDERS_GLOB = "openrouter-providers-*.json"
ENDPOINTS_GLOB = "openrouter-endpoints-by-model-*.json"
MODELS_DEV_GLOB = "models-dev-api-*.json"

# Where a model with no provider row is served when its author has no first-party provider:
# OpenRouter itself, which accepts every id it lists (set OPENROUTER_API_KEY to use it).
FALLBACK_PROVIDER = "openrouter"
EXTRA_PROVIDERS = {"openrouter": "OpenRouter"}

# The author's own API, for models that have no provider row (author id as in the model id).
FIRST_PARTY: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "google-ai-studio",
    "mistralai": "mistral",
    "x-ai": "xai",
    "qwen": "alibaba",
    "meta-llama": "meta",
    "bytedance-seed": "seed",
    "amazon": "amazon-nova",
    "stepfun-ai": "stepfun",
    "aion-labs": "aion-labs",
}
# Providers that serve a closed model under the author's own name (gpt-4o, claude-sonnet-4.5).
CLOSED_NAME_HOSTS = {"azure", "amazon-bedrock", "google-vertex", "claude-on-aws"}

ADAPTERS = {
    "anthropic": "anthropic",
    "claude-on-aws": "anthropic",
    "google-ai-studio": "gemini",
    "google-vertex": "gemini",
}

# Public base URLs we know; the rest come from models.dev's `api` field, else stay blank
# (then <SLUG>_BASE_URL must be set before the provider can serve).
BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com/v1",
    "google-ai-studio": "https://generativelanguage.googleapis.com/v1beta",
    "groq": "https://api.groq.com/openai/v1",
    "together": "https://api.together.xyz/v1",
    "deepinfra": "https://api.deepinfra.com/v1/openai",
    "mistral": "https://api.mistral.ai/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "fireworks": "https://api.fireworks.ai/inference/v1",
    "xai": "https://api.x.ai/v1",
    "cerebras": "https://api.cerebras.ai/v1",
    "novita": "https://api.novita.ai/v3/openai",
    "openrouter": "https://openrouter.ai/api/v1",
    "perplexity": "https://api.perplexity.ai",
    "minimax": "https://api.minimax.io/v1",
    "cohere": "https://api.cohere.ai/compatibility/v1",
    "sambanova": "https://api.sambanova.ai/v1",
    "hyperbolic": "https://api.hyperbolic.xyz/v1",
    "parasail": "https://api.parasail.io/v1",
    "featherless": "https://api.featherless.ai/v1",
}
# Our provider slug -> models.dev provider id, where they differ.
MODELS_DEV_IDS = {
    "fireworks": "fireworks-ai",
    "novita": "novita-ai",
    "together": "togetherai",
    "z-ai": "zai",
    "wafer": "wafer.ai",
    "inference-net": "inference",
    "google-ai-studio": "google",
}

# Display names in the endpoints snapshot that are not a provider's /providers name.
NAME_ALIASES = {
    "novitaai": "novita",
    "nebius token factory": "nebius",
    "google vertex": "google-vertex",
    "alibaba cloud int.": "alibaba",
    "baidu qianfan": "baidu",
    "modelrun [by modular]": "modelrun",
    "spacexai": "xai",
    "reka ai": "reka",
    "io.net": "io-net",
    "tencent cloud": "tencent",
}
_DISPLAY_SUFFIX = re.compile(r"\s*\(.*\)$|\s+(Fast|Turbo|Highspeed|Ultra)$")

NANOS_PER_USD = Decimal(1_000_000_000)
PER_TOKEN_TO_PER_MTOK = NANOS_PER_USD * 1_000_000
# Synthesized records (endpoint-snapshot models missing from /models) get the parameters every host accepts.
BASIC_PARAMETERS = ["max_tokens", "stop", "temperature", "top_p"]


@dataclass(frozen=True)
class Snapshots:
    models: list[dict[str, Any]]
    providers: list[dict[str, Any]]
    endpoints: list[dict[str, Any]]
    models_dev: dict[str, Any]
    sources: dict[str, str]  # file name -> sha256


def _newest(directory: Path, pattern: str) -> Path:
    files = sorted(directory.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no {pattern} in {directory}")
    return files[-1]  # names carry ISO dates or versions, so the last sorts newest


def snapshots_read(directory: Path) -> Snapshots:
    paths = {
        "models": _newest(directory, MODELS_GLOB),
        "providers": _newest(directory, PROVIDERS_GLOB),
        "endpoints": _newest(directory, ENDPOINTS_GLOB),
        "models_dev": _newest(directory, MODELS_DEV_GLOB),
    }
    raw = {name: path.read_bytes() for name, path in paths.items()}
    loaded = {name: json.loads(data) for name, data in raw.items()}
    return Snapshots(
        models=loaded["models"]["data"],
        providers=loaded["providers"]["data"],
        endpoints=loaded["endpoints"]["models"],
        models_dev=loaded["models_dev"],
        sources={paths[n].name: hashlib.sha256(raw[n]).hexdigest() for n in paths},
    )


# --- prices ----------------------------------------------------------------------------------------


def _ceil(value: Decimal) -> int:
    """Prices never round in our favour's opposite: a fraction of a nano-dollar is rounded up."""
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def usd_per_mtok_to_nanos(value: float | int | str) -> int:
    """File-3 list prices (USD per 1M tokens, JSON floats) -> nano-dollars per 1M tokens, via the decimal text."""
    return _ceil(Decimal(str(value)) * NANOS_PER_USD)


def per_token_str_to_nanos(value: str | None) -> int | None:
    """An OpenRouter per-token price string -> nano-dollars per 1M tokens; negative ("-1" = dynamic) -> None."""
    if value in (None, ""):
        return None
    amount = Decimal(str(value))
    return None if amount < 0 else _ceil(amount * PER_TOKEN_TO_PER_MTOK)


def per_unit_str_to_nanos(value: str | None) -> int:
    if value in (None, ""):
        return 0
    amount = Decimal(str(value))
    return 0 if amount < 0 else _ceil(amount * NANOS_PER_USD)


def headline_price(pricing: dict[str, Any]) -> dict[str, int | None]:
    """The model's headline card as endpoint prices (used where the endpoint matches it, or has no row)."""
    return {
        "prompt": per_token_str_to_nanos(pricing.get("prompt")) or 0,
        "completion": per_token_str_to_nanos(pricing.get("completion")) or 0,
        "cache_read": per_token_str_to_nanos(pricing.get("input_cache_read")),
        "cache_write": per_token_str_to_nanos(pricing.get("input_cache_write")),
        "reasoning": per_token_str_to_nanos(pricing.get("internal_reasoning")),
        "request": per_unit_str_to_nanos(pricing.get("request")),
        "image": per_unit_str_to_nanos(pricing.get("image")),
    }


def _is_dynamic(pricing: dict[str, Any]) -> bool:
    """Router pseudo-models (openrouter/auto) price at the routed model: OpenRouter shows "-1"."""
    return str(pricing.get("prompt", "0")).startswith("-")


# --- providers -------------------------------------------------------------------------------------


def _models_dev_base_url(slug: str, models_dev: dict[str, Any]) -> str:
    entry = models_dev.get(MODELS_DEV_IDS.get(slug, slug)) or {}
    api = entry.get("api") or ""
    # Templated URLs need per-account values, and /anthropic paths are not OpenAI-compatible.
    if not api.startswith("https://") or "${" in api or "/anthropic" in api:
        return ""
    return str(api).rstrip("/")


def provider_entry(slug: str, name: str, info: dict[str, Any] | None, models_dev: dict[str, Any]) -> dict[str, Any]:
    info = info or {}
    return {
        "slug": slug,
        "name": info.get("name") or name,
        "adapter": ADAPTERS.get(slug, "openai"),
        "base_url": BASE_URLS.get(slug) or _models_dev_base_url(slug, models_dev),
        # No snapshot carries data policies; unknown is treated as retaining and training (contract 13.2).
        "retains_prompts": True,
        "trains_on_prompts": True,
        "zdr": False,
        "privacy_policy_url": info.get("privacy_policy_url"),
        "terms_of_service_url": info.get("terms_of_service_url"),
        "status_page_url": info.get("status_page_url"),
        "headquarters": info.get("headquarters"),
        "datacenters": info.get("datacenters") or [],
    }


def _name_index(snap: Snapshots) -> dict[str, str]:
    """Provider display name (lower case) -> slug, from /providers and from tagged endpoint rows."""
    index = {p["name"].lower(): p["slug"] for p in snap.providers}
    for model in snap.endpoints:
        for row in model["providers"]:
            if row.get("tag"):
                index.setdefault(row["provider"].lower(), row["tag"].split("/")[0])
    index.update(NAME_ALIASES)
    return index


def slug_from_display_name(name: str, index: dict[str, str]) -> str | None:
    """'Google Vertex (US)' -> google-vertex, 'Fireworks Fast' -> fireworks; None when unknown."""
    lowered = name.lower()
    if lowered in index:
        return index[lowered]
    base = _DISPLAY_SUFFIX.sub("", name).strip().lower()
    return index.get(base)


# --- endpoints -------------------------------------------------------------------------------------


def _variant(model_id: str) -> str:
    return model_id.split(":", 1)[1] if ":" in model_id else "standard"


def _author(model_id: str) -> str:
    return model_id.split("/", 1)[0].lstrip("~")


def upstream_model_name(record: dict[str, Any], provider: str) -> str:
    """The name the provider's API expects. Editable in the admin; these are defaults.

    OpenRouter takes its own ids. The author's first-party API, and hosts reselling a closed model,
    take the id without the author (openai/gpt-4o -> gpt-4o). Open-weight hosts take the Hugging Face id.
    """
    model_id = record["id"]
    target = (record.get("alias_target") or {}).get("slug") or model_id
    bare = target.split(":", 1)[0]
    if provider == FALLBACK_PROVIDER:
        return model_id
    first_party = FIRST_PARTY.get(_author(bare), _author(bare)) == provider
    hf_id = record.get("hugging_face_id")
    if first_party or provider in CLOSED_NAME_HOSTS or not hf_id:
        return bare.split("/", 1)[1]
    return str(hf_id)


def _endpoint(
    record: dict[str, Any],
    *,
    provider: str,
    tag: str,
    price: dict[str, int | None],
    context: int | None,
    quantization: str | None,
    source: str,
) -> dict[str, Any]:
    top = record.get("top_provider") or {}
    context_length = int(context or top.get("context_length") or record.get("context_length") or 0)
    max_completion = top.get("max_completion_tokens")
    if max_completion is not None and context_length:
        max_completion = min(int(max_completion), context_length)
    return {
        "provider": provider,
        "tag": tag,
        "upstream_model": upstream_model_name(record, provider),
        "variant": "router" if source == "router" else _variant(record["id"]),
        "quantization": quantization,
        "context_length": context_length,
        "max_completion_tokens": max_completion,
        "max_prompt_tokens": None,
        "pricing": price,
        "source": source,
    }


def endpoints_for(
    record: dict[str, Any], rows: list[dict[str, Any]], providers: set[str], index: dict[str, str]
) -> list[dict[str, Any]]:
    """Every tagged row becomes an endpoint; untagged rows only when the model has no tagged row."""
    headline = headline_price(record["pricing"])
    # Two rows with one tag (2 cases) are one routable endpoint: keep the dearer, never undercharge.
    by_tag: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row.get("tag") and row.get("in") is not None and row.get("out") is not None:
            kept = by_tag.get(row["tag"])
            if kept is None or (row["in"], row["out"]) > (kept["in"], kept["out"]):
                by_tag[row["tag"]] = row
    out: list[dict[str, Any]] = []
    seen: set[str] = set(by_tag)
    for row in by_tag.values():
        price: dict[str, int | None] = {
            **dict.fromkeys(("cache_read", "cache_write", "reasoning")),
            "request": 0,
            "image": 0,
            "prompt": usd_per_mtok_to_nanos(row["in"]),
            "completion": usd_per_mtok_to_nanos(row["out"]),
        }
        if (price["prompt"], price["completion"]) == (headline["prompt"], headline["completion"]):
            price = dict(headline)  # this is the headline endpoint: its cache/request/image prices are known
        endpoint = _endpoint(
            record,
            provider=row["tag"].split("/")[0],
            tag=row["tag"],
            price=price,
            context=row.get("context"),
            quantization=row.get("quantization"),
            source="list",
        )
        if published := published_stats(row):
            endpoint["published"] = published
        out.append(endpoint)
    # Effective-price rows are traffic stats of the tagged endpoints (under other display names) or,
    # on :free/:batch variants, of the base model's permaslug; they add an endpoint only to a base model
    # that has no tagged row at all.
    if not out and ":" not in record["id"]:
        for row in rows:
            slug = slug_from_display_name(row["provider"], index)
            if slug is None or slug in seen or row.get("eff_in") is None or row.get("eff_out") is None:
                continue
            seen.add(slug)
            price = {**headline, "prompt": usd_per_mtok_to_nanos(row["eff_in"])}
            price["completion"] = usd_per_mtok_to_nanos(row["eff_out"])
            out.append(
                _endpoint(
                    record, provider=slug, tag=slug, price=price, context=None, quantization=None, source="effective"
                )
            )
    if not out:
        author = _author(record["id"])
        provider = FIRST_PARTY.get(author, author)
        if provider not in providers or provider == "openrouter":
            provider = FALLBACK_PROVIDER
        source = "router" if _is_dynamic(record["pricing"]) else "headline"
        out.append(
            _endpoint(
                record, provider=provider, tag=provider, price=headline, context=None, quantization=None, source=source
            )
        )
    return out


def models_dev_fill(endpoint: dict[str, Any], record: dict[str, Any], offers: dict[str, dict[str, Any]]) -> None:
    """Fill an endpoint's missing cache/reasoning prices and output limit from models.dev's entry for
    the same provider and model, but only when models.dev lists the same prompt and completion prices
    (otherwise it describes a different offering and its numbers would be guesses)."""
    bare = record["id"].split(":", 1)[0]
    keys = (endpoint["upstream_model"], bare.split("/", 1)[-1], bare)
    entry = next((offers[k.lower()] for k in keys if k.lower() in offers), None)
    cost = (entry or {}).get("cost") or {}
    if entry is None or cost.get("input") is None or cost.get("output") is None:
        return
    price = endpoint["pricing"]
    if (usd_per_mtok_to_nanos(cost["input"]), usd_per_mtok_to_nanos(cost["output"])) != (
        price["prompt"],
        price["completion"],
    ):
        return
    for key in ("cache_read", "cache_write", "reasoning"):
        if price[key] is None and isinstance(cost.get(key), int | float):
            price[key] = usd_per_mtok_to_nanos(cost[key])
    output_limit = (entry.get("limit") or {}).get("output")
    if isinstance(output_limit, int) and output_limit > 0:
        endpoint["max_completion_tokens"] = min(output_limit, endpoint["context_length"] or output_limit)


def _models_dev_offers(slug: str, models_dev: dict[str, Any]) -> dict[str, dict[str, Any]]:
    provider = models_dev.get(MODELS_DEV_IDS.get(slug, slug)) or {}
    return {str(k).lower(): v for k, v in (provider.get("models") or {}).items()}


def synthesized_record(entry: dict[str, Any]) -> dict[str, Any]:
    """A /models-shaped record for a model that only the endpoints snapshot knows (priced from its default row)."""
    rows = [r for r in entry["providers"] if r.get("tag") and r.get("in") is not None]
    default = next((r for r in rows if r.get("is_default")), rows[0])
    context = int(entry.get("context") or default.get("context") or 0)
    return {
        "id": entry["id"],
        "canonical_slug": entry.get("canonical_slug") or entry["id"],
        "hugging_face_id": None,
        "name": entry.get("name") or entry["id"],
        "created": 0,
        "description": "",
        "context_length": context,
        "architecture": {
            "modality": "text->text",
            "input_modalities": ["text"],
            "output_modalities": ["text"],
            "tokenizer": "Other",
            "instruct_type": None,
        },
        "pricing": {
            "prompt": _per_token_str(usd_per_mtok_to_nanos(default["in"])),
            "completion": _per_token_str(usd_per_mtok_to_nanos(default["out"])),
        },
        "top_provider": {"context_length": context, "max_completion_tokens": None, "is_moderated": False},
        "per_request_limits": None,
        "supported_parameters": list(BASIC_PARAMETERS),
        "default_parameters": None,
        "supported_voices": None,
        "knowledge_cutoff": None,
        "expiration_date": None,
        "links": {"details": f"/api/v1/models/{entry.get('canonical_slug') or entry['id']}/endpoints"},
    }


def _per_token_str(nanos_per_mtok: int) -> str:
    if nanos_per_mtok == 0:
        return "0"
    return format((Decimal(nanos_per_mtok) / PER_TOKEN_TO_PER_MTOK).normalize(), "f")


def catalog_build(snap: Snapshots) -> dict[str, Any]:
    provider_info = {p["slug"]: p for p in snap.providers}
    display: dict[str, str] = dict(EXTRA_PROVIDERS)
    for model in snap.endpoints:
        for row in model["providers"]:
            if row.get("tag"):
                display.setdefault(row["tag"].split("/")[0], row["provider"])
    known = set(provider_info) | set(display)
    index = _name_index(snap)
    rows_by_model = {m["id"]: m["providers"] for m in snap.endpoints}

    entries_by_model = {m["id"]: m for m in snap.endpoints}
    records = list(snap.models)
    listed = {r["id"] for r in records}
    for entry in snap.endpoints:
        if entry["id"] not in listed and any(r.get("tag") and r.get("in") is not None for r in entry["providers"]):
            records.append(synthesized_record(entry))

    endpoints = {r["id"]: endpoints_for(r, rows_by_model.get(r["id"], []), known, index) for r in records}
    offers: dict[str, dict[str, dict[str, Any]]] = {}
    for record in records:
        for ep in endpoints[record["id"]]:
            if ep["source"] == "list":
                if ep["provider"] not in offers:
                    offers[ep["provider"]] = _models_dev_offers(ep["provider"], snap.models_dev)
                models_dev_fill(ep, record, offers[ep["provider"]])
    qualities = {r["id"]: quality_of(r, entries_by_model.get(r["id"])) for r in records}
    models = [
        {"record": r, "endpoints": endpoints[r["id"]], **({"quality": q} if (q := qualities[r["id"]]) else {})}
        for r in records
    ]
    used = sorted({e["provider"] for eps in endpoints.values() for e in eps} | set(provider_info))
    providers = [provider_entry(s, display.get(s, s), provider_info.get(s), snap.models_dev) for s in used]
    return {"format": FORMAT, "sources": dict(sorted(snap.sources.items())), "providers": providers, "models": models}


def catalog_dumps(catalog: dict[str, Any]) -> str:
    return json.dumps(catalog, ensure_ascii=False, indent=1) + "\n"


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the model catalog file from the public snapshots.")
    parser.add_argument("--snapshots", type=Path, default=DEFAULT_SNAPSHOTS, help="directory of snapshot JSON files")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="catalog file to write")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        catalog = catalog_build(snapshots_read(args.snapshots))
    except (OSError, ValueError, KeyError) as exc:
        print(f"catalog build failed: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    args.out.write_text(catalog_dumps(catalog), encoding="utf-8")
    endpoints = sum(len(m["endpoints"]) for m in catalog["models"])
    print(f"{args.out}: {len(catalog['models'])} models, {endpoints} endpoints, {len(catalog['providers'])} providers")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
