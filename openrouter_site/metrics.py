"""GET /metrics: Prometheus exposition for operators, summed across every worker process.

Who may read it: a loopback client that did not come through a proxy (a request carrying
X-Forwarded-For or Forwarded was relayed for someone else), and anyone presenting
`Authorization: Bearer <METRICS_TOKEN>` when that setting is set. Everyone else gets a 404, as if
there were no such page.

What it shows: the counters and histograms every process records (common.metrics; several processes
through PROMETHEUS_MULTIPROC_DIR), plus gauges read at scrape time from where the truth lives, so no
worker's stale copy can lie: usage queue depth and settlement lag (the Redis stream), dead-lettered
usage events and payments processed (PostgreSQL), circuit-breaker states (the health hashes in Redis).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections.abc import Iterable, Iterator

from django.apps import apps
from django.conf import settings
from django.db.models import Count, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from billing.gate import keys as gate_keys
from common import redis as shared_redis
from proxy.health import keys as health_keys

logger = logging.getLogger(__name__)

NANOS_PER_USD = 1_000_000_000


def _is_loopback(request: HttpRequest) -> bool:
    if "HTTP_X_FORWARDED_FOR" in request.META or "HTTP_FORWARDED" in request.META:
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def _has_token(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if not token:
        return False
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


class ScrapeTimeCollector(Collector):
    """Gauges and totals read from Redis and PostgreSQL when scraped. A source that is down is skipped
    (logged), so the in-process metrics are still served."""

    def collect(self) -> Iterator[Metric]:
        for part in (self._queue, self._breakers, self._dead_letters, self._payments):
            try:
                yield from part()
            except Exception:
                logger.exception("metrics: %s could not be read", part.__name__)

    def _queue(self) -> Iterable[Metric]:
        if not shared_redis.configured():
            return []
        client = shared_redis.sync_redis()
        depth = GaugeMetricFamily("usage_queue_depth", "Usage events waiting for settlement (the Redis stream)")
        lag = GaugeMetricFamily("settlement_lag_seconds", "Age of the oldest usage event not yet settled (0: none)")
        # One stream per gate shard (billing.gate.keys), read here, written only by the gate.
        pipe = client.pipeline(transaction=False)
        for stream in gate_keys.streams():
            pipe.xlen(stream)
            pipe.xrange(stream, "-", "+", count=1)
        replies = pipe.execute()
        depth.add_metric([], float(sum(replies[0::2])))
        oldest = 0.0
        for first in replies[1::2]:
            if first:
                msg_id = first[0][0]
                ms = int((msg_id.decode() if isinstance(msg_id, bytes) else str(msg_id)).split("-", 1)[0])
                oldest = max(oldest, time.time() - ms / 1000)
        lag.add_metric([], oldest)
        return [depth, lag]

    def _breakers(self) -> Iterable[Metric]:
        if not shared_redis.configured():
            return []
        client = shared_redis.sync_redis()
        # One state hash per endpoint (proxy.health.keys), `o` = open until (ms); its side keys skipped.
        keys = [
            k
            for k in client.scan_iter(match=health_keys.PATTERN, count=1000)
            if health_keys.endpoint_of(k.decode() if isinstance(k, bytes) else k) is not None
        ]
        counts = {"closed": 0, "open": 0, "half_open": 0}
        if keys:
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.hget(key, "o")
            now_ms = time.time() * 1000
            for raw in pipe.execute():
                open_until = float(raw or 0)
                if not open_until:
                    counts["closed"] += 1
                elif now_ms < open_until:
                    counts["open"] += 1
                else:
                    counts["half_open"] += 1  # cooled down: the next request is the probe
        family = GaugeMetricFamily(
            "circuit_breakers", "Endpoints with recent traffic, by circuit-breaker state", labels=["state"]
        )
        for state, n in counts.items():
            family.add_metric([state], float(n))
        return [family]

    def _dead_letters(self) -> Iterable[Metric]:
        try:
            model = apps.get_model("billing", "UsageDeadLetter")
        except LookupError:
            return []
        family = GaugeMetricFamily("usage_dead_letters", "Usage events settlement could not post, not yet resolved")
        family.add_metric([], float(model.objects.filter(resolved_at__isnull=True).count()))
        return [family]

    def _payments(self) -> Iterable[Metric]:
        """Payments, counted from the rows themselves. Settled payments are never deleted or un-settled,
        so `payments_processed_total` only grows; the by-status gauge includes pending and failed ones."""
        processed = CounterMetricFamily("payments_processed", "Settled payments, by method", labels=["method"])
        credited = CounterMetricFamily("payments_credited_usd", "Credit bought by settled payments", labels=["method"])
        by_status = GaugeMetricFamily("payments", "Payments by method and status", labels=["method", "status"])
        rows: list[tuple[str, str, int, int]] = []
        topup = apps.get_model("billing", "TopUp")
        for row in topup.objects.values("source", "status").annotate(n=Count("id"), credit=Sum("credit_nanos")):
            rows.append((f"card_{row['source']}", row["status"], row["n"], row["credit"] or 0))
        deposit = apps.get_model("billing", "CryptoDeposit")
        for dep in deposit.objects.values("status").annotate(n=Count("id"), amount=Sum("amount_nanos")):
            rows.append(("crypto", dep["status"], dep["n"], dep["amount"] or 0))
        for method, status, n, nanos in rows:
            by_status.add_metric([method, status], float(n))
            if status in ("paid", "credited"):
                processed.add_metric([method], float(n))
                credited.add_metric([method], nanos / NANOS_PER_USD)
        return [processed, credited, by_status]


def registry() -> CollectorRegistry:
    """A fresh registry per scrape in multiprocess mode (the files are re-read); the process's own otherwise."""
    if settings.PROMETHEUS_MULTIPROC_DIR:
        reg = CollectorRegistry()
        MultiProcessCollector(reg, path=settings.PROMETHEUS_MULTIPROC_DIR)  # type: ignore[no-untyped-call]
    else:
        reg = CollectorRegistry()
        reg.register(_ProcessRegistry())
    reg.register(ScrapeTimeCollector())
    return reg


class _ProcessRegistry(Collector):
    """This process's default registry, as one collector alongside the scrape-time one."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not (_is_loopback(request) or _has_token(request)):
        raise Http404("No such page")
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
