"""Activity: an organization's spend, tokens and requests over time, its generations and their export.

Thin views: parameters are read and defaulted here, every read is a selector scoped to the
organization `org_page` resolved (outsiders get 404 before any of this runs).
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from asgiref.sync import sync_to_async
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from analytics import selectors
from analytics.overview import activity_overview
from analytics.prompt_logs import prompt_log_display
from billing.prompt_log import prompt_log_get
from common.money import nanos_to_usd
from organizations.access import OrgRequest, org_page


def _choice(request: OrgRequest, name: str, allowed: Any, default: str) -> str:
    value = request.GET.get(name, default)
    return value if value in allowed else default


def _filters(request: OrgRequest) -> selectors.Filters:
    key = request.GET.get("key", "").strip()
    try:
        key = str(UUID(key)) if key else ""
    except ValueError:
        key = "00000000-0000-0000-0000-000000000000"  # a malformed key id matches nothing, not everything
    return selectors.Filters(
        model=request.GET.get("model", "").strip()[:200],
        provider=request.GET.get("provider", "").strip()[:100],
        key=key,
        app=request.GET.get("app", "").strip()[:200],
    )


def _window(request: OrgRequest) -> tuple[selectors.Window, str]:
    """The range asked for, and an error message for a custom range that cannot be served (the page then
    shows the default 7 days, says why, and answers 400)."""
    if request.GET.get("range") == selectors.CUSTOM:
        try:
            return selectors.custom_window(request.GET.get("from", "")[:20], request.GET.get("to", "")[:20]), ""
        except selectors.RangeError as error:
            return selectors.activity_window("7d"), str(error)
    return selectors.activity_window(_choice(request, "range", selectors.RANGES, "7d")), ""


def _common(request: OrgRequest, *, choices: bool = True) -> dict[str, Any]:
    window, range_error = _window(request)
    filters = _filters(request)
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("before", None)
    return {
        "organization": request.organization,
        "membership": request.membership,
        "active_nav": "activity",
        "range": selectors.CUSTOM if range_error else window.range_key,
        "range_error": range_error,
        "date_from": request.GET.get("from", "")[:20],
        "date_to": request.GET.get("to", "")[:20],
        "ranges": list(selectors.RANGE_LABELS.items()),
        "window": window,
        "filters": filters,
        "choices": (
            selectors.activity_filter_choices(organization=request.organization, since=window.since, until=window.until)
            if choices
            else {}
        ),
        "query": query.urlencode(),
    }


@org_page()
@require_GET
def activity(request: OrgRequest) -> HttpResponse:
    context = _common(request, choices=False)
    group = _choice(request, "group", selectors.GROUPS, "model")
    metric = _choice(request, "metric", selectors.METRICS, "requests")
    window, filters = context["window"], context["filters"]
    scope = {"organization": request.organization, "since": window.since, "until": window.until, "filters": filters}
    overview = activity_overview(group=group, **scope)  # one rollup read for totals, table and choices
    context |= {
        "group": group,
        "groups": list(selectors.GROUPS),
        "metric": metric,
        "metrics": selectors.METRICS,
        "totals": overview.totals,
        "grouped": overview.grouped,
        "choices": overview.choices,
        "recent": selectors.generation_list(**scope)[:10],
    }
    return render(request, "analytics/activity.html", context, status=400 if context["range_error"] else 200)


@org_page()
@require_GET
def activity_series(request: OrgRequest) -> JsonResponse:
    """The chart's JSON, loaded by htmx from the activity page (same parameters as the page)."""
    window, range_error = _window(request)
    if range_error:
        return JsonResponse({"error": range_error}, status=400)
    data = selectors.activity_series(
        organization=request.organization,
        window=window,
        metric=_choice(request, "metric", selectors.METRICS, "requests"),
        group=_choice(request, "group", selectors.GROUPS, "model"),
        filters=_filters(request),
    )
    response = JsonResponse(data)
    response["Cache-Control"] = "private, no-store"
    return response


@org_page()
@require_GET
def generations(request: OrgRequest) -> HttpResponse:
    context = _common(request, choices=False)
    window = context["window"]
    scope = {
        "organization": request.organization,
        "since": window.since,
        "until": window.until,
        "filters": context["filters"],
    }
    before = selectors.cursor_parse(request.GET.get("before", "")[:80])
    rows, next_cursor = selectors.generation_page(before=before, **scope)
    overview = activity_overview(group="model", **scope)
    context |= {
        "generations": rows,
        "next_cursor": next_cursor,
        "paged": before is not None,
        "choices": overview.choices,
        # The count comes from the rollups (exact, like the activity totals), not a COUNT(*) of raw rows.
        "total": overview.totals.requests,
    }
    return render(request, "analytics/generations.html", context)


@org_page()
@require_GET
def generation_detail(request: OrgRequest, generation_id: str) -> HttpResponse:
    generation = selectors.generation_get(organization=request.organization, generation_id=generation_id)
    if generation is None:
        raise Http404("No such generation in this organization")
    throughput = None
    if generation.generation_time_ms and generation.tokens_completion:
        throughput = generation.tokens_completion * 1000 / generation.generation_time_ms
    context = {
        "organization": request.organization,
        "membership": request.membership,
        "active_nav": "activity",
        "gen": generation,
        "app": selectors.app_label(generation.app_title, generation.http_referer),
        "throughput": throughput,
        "attempts": generation.provider_responses if isinstance(generation.provider_responses, list) else [],
        # Stored bodies (opted-in organizations only) are for owners and admins, never members.
        "prompt_log": prompt_log_display(
            prompt_log_get(organization=request.organization, generation_id=generation.generation_id)
        )
        if request.membership.can_manage
        else None,
    }
    return render(request, "analytics/generation_detail.html", context)


class _Line:
    """csv.writer's file: hands back each formatted line instead of storing it."""

    def write(self, value: str) -> str:
        return value


EXPORT_HEADER = (
    "created_at",
    "generation_id",
    "model",
    "provider",
    "key",
    "app",
    "tokens_prompt",
    "tokens_completion",
    "tokens_reasoning",
    "tokens_cached",
    "cost_usd",
    "byok",
    "latency_ms",
    "ttft_ms",
    "finish_reason",
    "cancelled",
    "usage_estimated",
)


def _export_cells(row: tuple[Any, ...]) -> list[Any]:
    (created, gen_id, model, provider, key, title, referer, prompt, completion, reasoning, cached, cost, byok) = row[
        :13
    ]
    latency, ttft, finish, cancelled, estimated = row[13:]
    return [
        created.astimezone(UTC).isoformat(),
        gen_id,
        model,
        provider,
        key or "",
        selectors.app_label(title, referer),
        prompt,
        completion,
        reasoning,
        cached,
        format(nanos_to_usd(cost).normalize(), "f"),  # exact: spreadsheets sum it without float drift
        "true" if byok else "false",
        "" if latency is None else latency,
        "" if ttft is None else ttft,
        finish,
        "true" if cancelled else "false",
        "true" if estimated else "false",
    ]


@org_page()
@require_GET
def generations_export(request: OrgRequest) -> HttpResponse | StreamingHttpResponse:
    """CSV of the window's generations, streamed: under ASGI an async iterator is sent chunk by chunk
    (a sync one would be buffered whole by Django), and each chunk is one keyset query."""
    context = _common(request, choices=False)
    if context["range_error"]:
        return HttpResponse(context["range_error"], status=400, content_type="text/plain; charset=utf-8")
    window = context["window"]
    chunks = selectors.generation_export_chunks(
        organization=request.organization, since=window.since, until=window.until, filters=context["filters"]
    )
    writer = csv.writer(_Line())
    next_chunk = sync_to_async(lambda: next(chunks, None), thread_sensitive=True)

    async def lines() -> AsyncIterator[str]:
        yield writer.writerow(EXPORT_HEADER)
        while (chunk := await next_chunk()) is not None:
            yield "".join(writer.writerow(_export_cells(row)) for row in chunk)

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{request.organization.slug}-generations-{context["range"]}-{stamp}.csv"'
    )
    response["Cache-Control"] = "private, no-store"
    return response


AGGREGATE_HEADER = (
    "bucket_start",
    "group",
    "requests",
    "tokens_prompt",
    "tokens_completion",
    "tokens_reasoning",
    "cost_usd",
)


@org_page()
@require_GET
def aggregates_export(request: OrgRequest) -> HttpResponse | StreamingHttpResponse:
    """CSV of the chart's numbers (same range, filters and grouping): one row per bucket x group, every
    group rather than the charted top 8, streamed row by row. The rows come from one rollup read, so
    their number is bounded by buckets x groups, not by the traffic."""
    context = _common(request, choices=False)
    if context["range_error"]:
        return HttpResponse(context["range_error"], status=400, content_type="text/plain; charset=utf-8")
    group = _choice(request, "group", selectors.GROUPS, "model")
    window = context["window"]
    writer = csv.writer(_Line())
    fetch = sync_to_async(selectors.activity_aggregates, thread_sensitive=True)

    async def lines() -> AsyncIterator[str]:
        yield writer.writerow((*AGGREGATE_HEADER[:1], group, *AGGREGATE_HEADER[2:]))
        rows = await fetch(organization=request.organization, window=window, group=group, filters=context["filters"])
        for row in rows:
            yield writer.writerow(
                (
                    row["bucket"].astimezone(UTC).isoformat(),
                    row["label"],
                    row["requests"],
                    row["prompt"],
                    row["completion"],
                    row["reasoning"],
                    format(nanos_to_usd(row["spend_nanos"]).normalize(), "f"),
                )
            )

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{request.organization.slug}-activity-{context["range"]}-by-{group}-{stamp}.csv"'
    )
    response["Cache-Control"] = "private, no-store"
    return response
