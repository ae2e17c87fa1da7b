"""provider_add: put a self-hosted OpenAI-compatible server (vLLM, Ollama, llama.cpp ...) in the catalog.

    manage.py provider_add --slug local-vllm --base-url http://127.0.0.1:8001/v1 \\
        [--model NAME ...] [--price-in USD --price-out USD] [--name "My vLLM"]

Without --model it asks the server (GET <base-url>/models) what it serves. Prices are USD per million
tokens (default 0). Re-running updates the provider and prices; catalog_load leaves it alone.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.text import slugify

from common.cli import EXIT_USAGE
from common.money import usd_to_nanos
from proxy.catalog.self_hosted import SelfHostedError, ServedModel, self_hosted_provider_add, served_models_discover
from proxy.catalog.services import CatalogError, catalog_provider_slugs
from proxy.credentials import provider_env, provider_env_prefix


def _price(raw: str, flag: str) -> int:
    """USD per million tokens, zero allowed (your own hardware), as nano-dollars per million tokens."""
    try:
        value = Decimal(raw.strip())
        if not value.is_finite() or value < 0:
            raise InvalidOperation
        return usd_to_nanos(value)
    except (InvalidOperation, ValueError) as exc:
        raise CommandError(
            f"{flag} must be USD per million tokens (0 or more), got {raw!r}", returncode=EXIT_USAGE
        ) from exc


class Command(BaseCommand):
    requires_system_checks: list[str] = []
    help = "Add (or update) a self-hosted OpenAI-compatible server as a provider, with its models."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--slug", required=True, help="provider slug, e.g. local-vllm")
        parser.add_argument(
            "--base-url", required=True, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8001/v1"
        )
        parser.add_argument(
            "--model", action="append", default=[], help="served model name (repeat); default: discover"
        )
        parser.add_argument("--name", default="", help="display name (default: the slug)")
        parser.add_argument("--price-in", default="0", help="USD per million prompt tokens (default 0)")
        parser.add_argument("--price-out", default="0", help="USD per million completion tokens (default 0)")
        parser.add_argument("--context-length", type=int, default=None, help="when the server does not say")

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["slug"].strip()
        if not slug or slugify(slug) != slug:
            raise CommandError(
                f"--slug must be lower-case letters, digits and '-', got {slug!r}", returncode=EXIT_USAGE
            )
        base_url = options["base_url"].strip().rstrip("/")
        if not base_url.startswith(("http://", "https://")):
            raise CommandError(f"--base-url must be an http(s) URL, got {base_url!r}", returncode=EXIT_USAGE)
        prompt, completion = _price(options["price_in"], "--price-in"), _price(options["price_out"], "--price-out")
        try:
            if slug in catalog_provider_slugs():
                raise CommandError(
                    f"{slug} is a catalog provider: point it elsewhere with "
                    f"{provider_env_prefix(slug)}_BASE_URL instead"
                )
        except CatalogError as exc:
            raise CommandError(str(exc)) from exc
        api_key, _ = provider_env(slug)
        if options["model"]:
            served = [ServedModel(id=m.strip(), context_length=options["context_length"]) for m in options["model"]]
        else:
            try:
                served = served_models_discover(base_url, api_key)
            except SelfHostedError as exc:
                raise CommandError(f"{exc} (start the server, or name the models with --model)") from exc
            if not served:
                raise CommandError(f"{base_url}/models lists no models; name them with --model")
            if options["context_length"]:
                served = [ServedModel(id=s.id, context_length=options["context_length"]) for s in served]
        added = self_hosted_provider_add(
            slug=slug,
            base_url=base_url,
            models=served,
            name=options["name"].strip(),
            prompt_nanos_per_mtok=prompt,
            completion_nanos_per_mtok=completion,
        )
        self.stdout.write(f"provider {slug} -> {base_url}")
        for model in added:
            note = "" if model.created else "  (also served by the catalog's providers)"
            self.stdout.write(f"  {model.slug}  (upstream model {model.upstream_model}){note}")
        self.stdout.write(
            f"Use the model ids above with /api/v1/chat/completions. If the server needs a key, set "
            f"{provider_env_prefix(slug)}_API_KEY (e.g. in .env) and restart."
        )
