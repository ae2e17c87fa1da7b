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
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from analytics import selectors
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


def _common(request: OrgRequest, *, choices: bool = True) -> dict[str, Any]:
    range_key = _choice(request, "range", selectors.RANGES, "7d")
    window = selectors.activity_window(range_key)
    filters = _filters(request)
    query = request.GET.copy()
    query.pop("page", None)
    return {
        "organization": request.organization,
        "membership": request.membership,
        "active_nav": "activity",
        "range": range_key,
        "ranges": [(key, selectors.RANGE_LABELS[key]) for key in selectors.RANGES],
        "window": window,
        "filters": filters,
        "choices": (
            selectors.activity_filter_choices(organization=request.organization, since=window.since) if choices else {}
        ),
        "query": query.urlencode(),
    }


@org_page()
@require_GET
def activity(request: OrgRequest) -> HttpResponse:
    context = _common(request)
    group = _choice(request, "group", selectors.GROUPS, "model")
    metric = _choice(request, "metric", selectors.METRICS, "requests")
    since, filters = context["window"].since, context["filters"]
    organization = request.organization
    context |= {
        "group": group,
        "groups": list(selectors.GROUPS),
        "metric": metric,
        "metrics": selectors.METRICS,
        "totals": selectors.activity_totals(organization=organization, since=since, filters=filters),
        "grouped": selectors.activity_grouped(organization=organization, since=since, group=group, filters=filters),
        "recent": selectors.generation_list(organization=organization, since=since, filters=filters)[:10],
    }
    return render(request, "analytics/activity.html", context)


@org_page()
@require_GET
def activity_series(request: OrgRequest) -> JsonResponse:
    """The chart's JSON, loaded by htmx from the activity page (same parameters as the page)."""
    window = selectors.activity_window(_choice(request, "range", selectors.RANGES, "7d"))
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
    context = _common(request)
    rows = selectors.generation_list(
        organization=request.organization, since=context["window"].since, filters=context["filters"]
    )
    page = Paginator(rows, selectors.PAGE_SIZE).get_page(request.GET.get("page"))
    context |= {"page": page, "generations": page.object_list}
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
def generations_export(request: OrgRequest) -> StreamingHttpResponse:
    """CSV of the window's generations, streamed: under ASGI an async iterator is sent chunk by chunk
    (a sync one would be buffered whole by Django), and each chunk is one keyset query."""
    context = _common(request, choices=False)
    chunks = selectors.generation_export_chunks(
        organization=request.organization, since=context["window"].since, filters=context["filters"]
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
