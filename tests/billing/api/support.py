"""Helpers for the account-API tests: a bearer-key JSON client and a settled Generation factory."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.test import Client
from django.utils import timezone

from billing.models import Generation
from organizations.models import ApiKey, Organization


class ApiClient:
    """A Django test client that speaks JSON with a bearer key."""

    def __init__(self, key: str | None) -> None:
        self.client = Client()
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, params, **self.headers)

    def post(self, path: str, body: Any) -> Any:
        return self.client.post(path, body, content_type="application/json", **self.headers)

    def patch(self, path: str, body: Any) -> Any:
        return self.client.patch(path, body, content_type="application/json", **self.headers)

    def delete(self, path: str) -> Any:
        return self.client.delete(path, **self.headers)


def make_generation(
    org: Organization, api_key: ApiKey | None, generation_id: str, *, created_at: datetime | None = None, **fields: Any
) -> Generation:
    values: dict[str, Any] = {
        "model": "openai/gpt-4o-mini",
        "provider_slug": "openai",
        "provider_name": "OpenAI",
        "tokens_prompt": 10,
        "tokens_completion": 20,
        "cost_nanos": 1_500_000,
        "list_cost_nanos": 1_500_000,
    }
    values.update(fields)
    return Generation.objects.create(
        generation_id=generation_id,
        organization=org,
        api_key=api_key,
        created_at=created_at or timezone.now(),
        **values,
    )
