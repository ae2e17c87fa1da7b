"""Settlement: queued usage events become Generation rows and ledger entries, each exactly once.

The gate's finish() appends every finished request to the usage queue (billing.gate.queue: a Redis
Stream, or the embedded gate's in-process queue). A worker claims a batch, writes it in ONE
database transaction, and only after the commit acknowledges the messages, which lowers the
unsettled counters (guarded by generation id). A worker killed anywhere in between leaves its
messages pending; the next claim re-reads them and the unique generation id and the ledger
idempotency key ("usage:<generation_id>") make the replay a no-op.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Q

from accounts.models import User
from billing.gate import usage_queue
from billing.gate.queue import UsageQueue
from billing.ledger import EntrySpec, Leg, ledger_post_many
from billing.models import Generation, LedgerAccount, LedgerEntry
from billing.usage import UsageEvent
from organizations.models import ApiKey, Organization

log = logging.getLogger(__name__)

# Larger batches amortize the commit (fsync); the revenue account stays locked for one batch.
BATCH_SIZE = 1000


def settle_batch(queue: UsageQueue, *, max_events: int = BATCH_SIZE) -> int:
    """Claim up to max_events, post them in one transaction, then ack. Returns how many were handled."""
    items = queue.claim(max_events)
    if not items:
        return 0
    with transaction.atomic():
        usage_events_post([item.event for item in items])
    queue.ack(items)
    return len(items)


def settle_pending(queue: UsageQueue | None = None, *, max_events: int = BATCH_SIZE, time_budget_s: float = 5.0) -> int:
    """Drain the queue in batches until it is empty or the time budget is spent (the beat re-runs us)."""
    queue = queue or usage_queue()
    deadline = time.monotonic() + time_budget_s
    total = 0
    while time.monotonic() < deadline:
        done = settle_batch(queue, max_events=max_events)
        total += done
        if done < max_events:
            break
    return total


def usage_events_post(events: Sequence[UsageEvent]) -> int:
    """Write Generation rows and usage ledger entries; replays of the same generation change nothing.

    Call inside a transaction. References that vanished (a deleted key or user) are dropped rather
    than failing the batch forever; an event for an unknown organization is logged and skipped.
    """
    unique = list({e.generation_id: e for e in reversed(events)}.values())
    orgs = Organization.objects.in_bulk({e.organization_id for e in unique})
    keys = set(
        ApiKey.objects.filter(pk__in={e.api_key_id for e in unique if e.api_key_id}).values_list("pk", flat=True)
    )
    users = set(User.objects.filter(pk__in={e.user_id for e in unique if e.user_id}).values_list("pk", flat=True))
    known = [e for e in unique if e.organization_id in orgs]
    for e in unique:
        if e.organization_id not in orgs:
            log.error("usage event %s names unknown organization %s", e.generation_id, e.organization_id)
    Generation.objects.bulk_create(
        [_generation(e, e.api_key_id in keys, e.user_id in users) for e in known], ignore_conflicts=True
    )
    ledger_post_many([_usage_entry(e, orgs[e.organization_id]) for e in known if e.cost_nanos > 0])
    _keys_touch(known, keys)
    return len(known)


def _keys_touch(events: Sequence[UsageEvent], keys: set[int]) -> None:
    """Keep ApiKey.last_used_at here, off the request path: one UPDATE per key per batch.

    The filter on the stored value makes a replayed (older) batch a no-op.
    """
    latest: dict[int, float] = {}
    for e in events:
        if e.api_key_id in keys:
            latest[e.api_key_id] = max(latest.get(e.api_key_id, 0.0), e.created_at)
    for key_id, ts in latest.items():
        when = datetime.fromtimestamp(ts, tz=UTC)
        ApiKey.objects.filter(pk=key_id).filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=when)).update(
            last_used_at=when
        )


def _usage_entry(e: UsageEvent, org: Organization) -> EntrySpec:
    revenue = LedgerAccount.Kind.FEE_REVENUE if e.is_byok else LedgerAccount.Kind.USAGE_REVENUE
    return EntrySpec(
        idempotency_key=f"usage:{e.generation_id}",
        kind=LedgerEntry.Kind.USAGE,
        organization=org,
        legs=[Leg(LedgerAccount.Kind.ORG_CREDITS, -e.cost_nanos, org), Leg(revenue, e.cost_nanos)],
        memo=f"{e.model} via {e.provider_slug}"[:500],
    )


def _generation(e: UsageEvent, key_ok: bool, user_ok: bool) -> Generation:
    return Generation(
        generation_id=e.generation_id,
        organization_id=e.organization_id,
        api_key_id=e.api_key_id if key_ok else None,
        user_id=e.user_id if user_ok else None,
        model=e.model,
        provider_slug=e.provider_slug,
        provider_name=e.provider_name,
        endpoint_tag=e.endpoint_tag,
        upstream_id=e.upstream_id,
        api_type=e.api_type,
        router=e.router,
        tokens_prompt=e.prompt_tokens,
        tokens_completion=e.completion_tokens,
        tokens_reasoning=e.reasoning_tokens,
        tokens_cached=e.cached_tokens,
        tokens_cache_write=e.cache_write_tokens,
        usage_estimated=e.usage_estimated,
        cost_nanos=e.cost_nanos,
        list_cost_nanos=e.list_cost_nanos,
        is_byok=e.is_byok,
        latency_ms=e.latency_ms,
        ttft_ms=e.ttft_ms,
        generation_time_ms=e.generation_time_ms,
        finish_reason=e.finish_reason,
        native_finish_reason=e.native_finish_reason,
        streamed=e.streamed,
        cancelled=e.cancelled,
        http_referer=e.http_referer[:500],
        app_title=e.app_title[:200],
        external_user=e.external_user[:256],
        provider_responses=e.provider_responses,
        created_at=datetime.fromtimestamp(e.created_at, UTC),
    )
