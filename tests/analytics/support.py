"""Seeding settled generations for the analytics tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from billing.models import Generation
from organizations.models import Organization
from organizations.services import IssuedKey


def settled(org: Organization, n: int, at: datetime, *, key: IssuedKey | None = None, **extra: Any) -> Generation:
    """One generation at `at`; prompt 10, completion 5, $0.000001 unless `extra` says otherwise."""
    values: dict[str, Any] = {
        "model": "a/one",
        "provider_slug": "prov",
        "provider_name": "Prov",
        "endpoint_tag": "prov",
        "tokens_prompt": 10,
        "tokens_completion": 5,
        "cost_nanos": 1_000,
        "latency_ms": 100,
    } | extra
    return Generation.objects.create(
        generation_id=f"gen-{org.pk}-{n}",
        organization=org,
        api_key=key.api_key if key else None,
        user=key.api_key.created_by if key else None,
        created_at=at,
        **values,
    )
