"""Settlement: queued usage events become Generation rows and ledger entries, each exactly once.

The gate's finish() appends every finished request to the usage queue (billing.gate.queue: a Redis
Stream, or the embedded gate's in-process queue). A worker claims a batch, writes it in ONE
database transaction, and only after the commit acknowledges the messages, which lowers the
unsettled counters (guarded by generation id). A worker killed anywhere in between leaves its
messages pending; the next claim re-reads them and the unique generation id and the ledger
idempotency key ("usage:<generation_id>") make the replay a no-op.

One bad event never stops settlement (docs/billing-policy.md, "Poison events"): text is made storable
before it is written (NUL removed, lengths bounded, a cut marked with "…"), a batch that still fails
is retried one event per savepoint so the rest post, and an event that fails on its own goes to the
dead-letter table (`UsageDeadLetter`, in the admin) with its error, off the queue but still counted
as spent by the gate; `manage.py usage_deadletter_retry` posts it after a fix.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import InterfaceError, OperationalError, models, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from accounts.models import User
from billing.gate import get_gate, usage_queue
from billing.gate.queue import QueuedEvent, UsageQueue
from billing.ledger import EntrySpec, Leg, ledger_post_many
from billing.models import Generation, LedgerAccount, LedgerEntry, ReconciliationRun, UsageDeadLetter
from billing.prompt_log import prompt_logs_write
from billing.selectors import usage_posted_by_org
from billing.usage import UsageEvent
from organizations.models import ApiKey, Organization

log = logging.getLogger(__name__)

# Larger batches amortize the commit (fsync); the revenue account stays locked for one batch.
BATCH_SIZE = 1000


def settle_batch(queue: UsageQueue, *, max_events: int = BATCH_SIZE) -> int:
    """Claim up to max_events, post them in one transaction, then ack. Returns how many were handled.

    If the batch fails for anything but a lost database, each event is retried in its own savepoint:
    the good ones post, the ones that fail alone are dead-lettered, and the queue moves on.
    """
    items = queue.claim(max_events)
    if not items:
        return 0
    try:
        with transaction.atomic():
            usage_events_post([item.event for item in items])
    except Exception as exc:
        if _is_outage(exc):
            raise
        log.warning("settlement batch of %d failed (%s); isolating events", len(items), exc)
        posted, dead = _settle_one_by_one(items)
        queue.ack(posted)
        queue.drop(dead)
        return len(items)
    queue.ack(items)
    return len(items)


def _is_outage(exc: BaseException) -> bool:
    """A lost or unusable connection says nothing about the events: keep them queued, retry later."""
    return isinstance(exc, OperationalError | InterfaceError)


def _settle_one_by_one(items: Sequence[QueuedEvent]) -> tuple[list[QueuedEvent], list[QueuedEvent]]:
    posted: list[QueuedEvent] = []
    dead: list[QueuedEvent] = []
    for item in items:
        try:
            with transaction.atomic():
                usage_events_post([item.event])
        except Exception as exc:
            if _is_outage(exc):
                raise
            usage_deadletter_put(item, exc)
            dead.append(item)
        else:
            posted.append(item)
    return posted, dead


def usage_deadletter_put(item: QueuedEvent, exc: BaseException) -> UsageDeadLetter:
    """Record an event that cannot be posted (idempotent per generation: a re-claim counts an attempt)."""
    log.error("usage event %s dead-lettered: %s", item.event.generation_id, exc)
    gen_id = storable_text(item.event.generation_id, 200)
    error = storable_text(f"{type(exc).__name__}: {exc}", 4000)
    letter, created = UsageDeadLetter.objects.get_or_create(
        generation_id=gen_id,
        defaults={
            "organization_id": item.event.organization_id,
            "msg_id": item.msg_id,
            "charge_nanos": item.charge_nanos,
            "payload": item.event.to_json(),
            "error": error,
        },
    )
    if not created:
        UsageDeadLetter.objects.filter(pk=letter.pk).update(error=error, attempts=F("attempts") + 1)
    return letter


def usage_deadletters_retry(queue: UsageQueue | None = None) -> tuple[int, int]:
    """Post every open dead letter that now succeeds; returns (posted, still failing).

    A posted letter is acked on the queue by its original message, which lowers the gate's unsettled
    counter once (guarded by generation id, like any settlement ack).
    """
    queue = queue or usage_queue()
    posted = failed = 0
    for letter in UsageDeadLetter.objects.filter(resolved_at__isnull=True).order_by("pk"):
        event = UsageEvent.from_json(bytes(letter.payload))
        event.cost_nanos = letter.charge_nanos
        try:
            with transaction.atomic():
                usage_events_post([event])
                UsageDeadLetter.objects.filter(pk=letter.pk).update(resolved_at=timezone.now())
        except Exception as exc:
            if _is_outage(exc):
                raise
            error = storable_text(f"{type(exc).__name__}: {exc}", 4000)
            UsageDeadLetter.objects.filter(pk=letter.pk).update(error=error, attempts=F("attempts") + 1)
            failed += 1
            continue
        queue.ack([QueuedEvent(msg_id=letter.msg_id, charge_nanos=letter.charge_nanos, event=event)])
        posted += 1
    return posted, failed


@dataclass(frozen=True, slots=True)
class UsageGap:
    """One organization whose gate charges and ledger postings disagree (see `usage_reconcile`)."""

    organization_id: int
    settled_in_gate: int  # spent - unsettled: what the gate believes the ledger holds
    posted: int  # usage charged to the org's credits on the ledger
    unsettled: int  # what the gate still expects to reach the ledger
    queued: int  # charges waiting in the usage queue
    dead_lettered: int  # charges parked in the dead-letter table

    def describe(self) -> str:
        parts = []
        if self.posted != self.settled_in_gate:
            parts.append(f"ledger posted {self.posted} but the gate settled {self.settled_in_gate}")
        missing = self.unsettled - self.queued - self.dead_lettered
        if missing:
            parts.append(f"{missing} charged by the gate is neither queued nor dead-lettered (lost usage)")
        return f"org {self.organization_id}: " + "; ".join(parts)


def usage_reconcile(gate: Any = None, *, recheck_s: float = 1.0) -> list[UsageGap]:
    """Compare what the gate charged with what the ledger posted, per organization.

    For each organization the gate has loaded: spent - unsettled must equal its usage postings (else a
    charge was posted twice or posted without the gate), and unsettled must equal what waits in the
    usage queue plus the dead-letter table (else usage was lost, e.g. a deleted stream). Settlement
    moves between the reads, so a gap is reported only if a second look `recheck_s` later agrees.
    """
    gate = gate or get_gate()
    gaps = _usage_gaps(gate)
    if gaps and recheck_s > 0:
        time.sleep(recheck_s)
        again = {g.organization_id: g for g in _usage_gaps(gate)}
        gaps = [g for g in gaps if again.get(g.organization_id) == g]
    return gaps


def _usage_gaps(gate: Any) -> list[UsageGap]:
    counters = gate.usage_counters()
    queued = gate.queued_charges()
    posted = usage_posted_by_org()
    dead: dict[int, int] = dict(
        UsageDeadLetter.objects.filter(resolved_at__isnull=True)
        .values_list("organization_id")
        .annotate(total=Sum("charge_nanos"))
        .order_by()
    )
    gaps = []
    for org_id, (spent, uns) in sorted(counters.items()):
        gap = UsageGap(org_id, spent - uns, posted.get(org_id, 0), uns, queued.get(org_id, 0), dead.get(org_id, 0))
        if gap.posted != gap.settled_in_gate or gap.unsettled != gap.queued + gap.dead_lettered:
            gaps.append(gap)
    return gaps


def reconciliation_run_record(gate: Any = None, *, recheck_s: float = 1.0, keep_days: int = 30) -> ReconciliationRun:
    """Reconcile, keep the result for the admin, and forget runs older than `keep_days`."""
    gaps = usage_reconcile(gate, recheck_s=recheck_s)
    run = ReconciliationRun.objects.create(
        gaps=[{**dataclasses.asdict(g), "detail": g.describe()} for g in gaps],
        dead_lettered=usage_deadletters_open(),
    )
    ReconciliationRun.objects.filter(created_at__lt=run.created_at - timedelta(days=keep_days)).delete()
    return run


def usage_deadletters_open() -> int:
    """How many usage events wait in the dead-letter table (ledger_verify reports them as unposted)."""
    return UsageDeadLetter.objects.filter(resolved_at__isnull=True).count()


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
    unique = list({e.generation_id: e for e in reversed([storable_event(e) for e in events])}.values())
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
    ledger_post_many([_usage_entry(e, orgs[e.organization_id]) for e in known if e.cost_nanos > 0 or _loss(e) > 0])
    prompt_logs_write(known, orgs)  # opted-in organizations only; the payload is already encrypted
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


def _loss(e: UsageEvent) -> int:
    """What the upstream consumed beyond the hold: the gate capped the charge, the platform pays the rest."""
    return 0 if e.is_byok else max(e.list_cost_nanos + e.plugin_cost_nanos - e.cost_nanos, 0)


def _usage_entry(e: UsageEvent, org: Organization) -> EntrySpec:
    revenue = LedgerAccount.Kind.FEE_REVENUE if e.is_byok else LedgerAccount.Kind.USAGE_REVENUE
    loss = _loss(e)
    legs = [Leg(LedgerAccount.Kind.ORG_CREDITS, -e.cost_nanos, org)] if e.cost_nanos else []
    if loss:
        # Flag the endpoint: an upstream that ignored the request's bounds (max_tokens) cost us this.
        log.warning(
            "endpoint %s served %s past its hold: %d nanos to the loss account", e.endpoint_tag, e.generation_id, loss
        )
        legs.append(Leg(LedgerAccount.Kind.USAGE_LOSS, -loss))
    legs.append(Leg(revenue, e.cost_nanos + loss))
    return EntrySpec(
        idempotency_key=f"usage:{e.generation_id}",
        kind=LedgerEntry.Kind.USAGE,
        organization=org,
        legs=legs,
        memo=storable_text(f"{e.model} via {e.provider_slug}", 500),
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
        web_search_engine=e.web_search_engine[:32],
        num_search_results=e.search_results,
        latency_ms=e.latency_ms,
        ttft_ms=e.ttft_ms,
        generation_time_ms=e.generation_time_ms,
        finish_reason=e.finish_reason,
        native_finish_reason=e.native_finish_reason,
        streamed=e.streamed,
        cancelled=e.cancelled,
        http_referer=e.http_referer,
        app_title=e.app_title,
        external_user=e.external_user,
        provider_responses=e.provider_responses,
        created_at=datetime.fromtimestamp(e.created_at, UTC),
    )


# --- Storable values: what PostgreSQL would refuse, made safe before the write ---------------------

TRUNCATED = "…"  # ends a value that was cut to its column, so the cut is visible
# Every text field of the event that lands in a bounded column, with its limit (from the model).
_TEXT_LIMITS = {
    f.name: int(f.max_length)
    for f in Generation._meta.concrete_fields
    if isinstance(f, models.CharField) and f.max_length and f.name in {x.name for x in dataclasses.fields(UsageEvent)}
}


def storable_text(value: str, max_length: int | None = None) -> str:
    """PostgreSQL text cannot hold NUL or lone surrogates; a bounded column cannot hold more than its length."""
    clean = value.replace("\x00", "")
    try:
        clean.encode("utf-8")
    except UnicodeEncodeError:
        clean = clean.encode("utf-8", "replace").decode("utf-8")
    if max_length is not None and len(clean) > max_length:
        return clean[: max_length - len(TRUNCATED)] + TRUNCATED
    return clean


def _storable_json(value: Any) -> Any:
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, list):
        return [_storable_json(v) for v in value]
    if isinstance(value, dict):
        return {storable_text(str(k)): _storable_json(v) for k, v in value.items()}
    return value


def storable_event(e: UsageEvent) -> UsageEvent:
    """The event with every text value cleaned and bounded to its column (charge and counts untouched)."""
    changes: dict[str, Any] = {}
    for name, limit in _TEXT_LIMITS.items():
        value = getattr(e, name)
        if isinstance(value, str):
            clean = storable_text(value, limit)
            if clean != value:
                changes[name] = clean
    responses = _storable_json(e.provider_responses)
    if responses != e.provider_responses:
        changes["provider_responses"] = responses
    if not changes:
        return e
    log.warning("usage event %s: cleaned %s to store it", e.generation_id, sorted(changes))
    return dataclasses.replace(e, **changes)
