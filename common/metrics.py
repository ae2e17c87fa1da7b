"""Every Prometheus metric the processes record, in one place (exposed at /metrics by openrouter_site.metrics).

Multiprocess: with `PROMETHEUS_MULTIPROC_DIR` set in the environment of every uvicorn and Celery
worker, prometheus_client keeps each process's values in files there and the /metrics view sums them.
The directory must be emptied when the whole deployment (re)starts, never while workers run. Only
counters and histograms are recorded in process; gauges (queue depth, breaker states, dead letters)
are read from Redis and PostgreSQL when scraped, so a dead worker leaves no stale value behind.

Labels are bounded: API names, HTTP statuses, provider names from the catalog, refusal reasons from a
fixed table, Celery task names. Never a key, an organization, a user or a model: those are unbounded.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Seconds: a completion takes from tens of milliseconds (an error) to minutes (a long stream).
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32)
ATTEMPT_BUCKETS = (1, 2, 3, 4, 6, 8)

REQUESTS = Counter(
    "gateway_requests",
    "Completion requests answered, by API, HTTP status and the provider that answered (none if none did)",
    ["api", "status", "provider"],
)
REQUEST_LATENCY = Histogram(
    "gateway_request_duration_seconds",
    "Arrival to the last byte sent, by API",
    ["api"],
    buckets=LATENCY_BUCKETS,
)
TTFT = Histogram(
    "gateway_time_to_first_token_seconds",
    "Arrival to the first token from the upstream, by provider",
    ["provider"],
    buckets=TTFT_BUCKETS,
)
UPSTREAM_ATTEMPTS = Histogram(
    "gateway_upstream_attempts",
    "Upstream attempts one admitted request made (1 = no failover)",
    ["api"],
    buckets=ATTEMPT_BUCKETS,
)
UPSTREAM_ATTEMPT_LATENCY = Histogram(
    "gateway_upstream_attempt_duration_seconds",
    "One upstream attempt, by provider and outcome (ok, or the status that failed it)",
    ["provider", "outcome"],
    buckets=LATENCY_BUCKETS,
)
FAILOVERS = Counter(
    "gateway_failovers",
    "Failed upstream attempts after which the request went on to another endpoint, by the failed provider",
    ["provider"],
)
ADMISSIONS = Counter(
    "gateway_admissions",
    "Admission decisions: admitted, or refused with the reason (the error type of the refusal)",
    ["result", "reason"],
)
CELERY_TASKS = Counter(
    "celery_tasks",
    "Celery tasks finished, by task name and state",
    ["task", "state"],
)


def _task_finished(sender: object = None, state: str | None = None, **_: object) -> None:
    CELERY_TASKS.labels(str(getattr(sender, "name", "unknown")), state or "unknown").inc()


def connect_celery() -> None:
    """Count every finished task (the Celery app calls this once; workers inherit it across the fork)."""
    from celery.signals import task_postrun

    task_postrun.connect(_task_finished, weak=False, dispatch_uid="common.metrics.task_finished")
