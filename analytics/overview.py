"""The activity page's numbers in one read: totals, the top-N table and the filter choices.

Each of those used to be its own rollup read (four for the choices alone), each split into raw, day and
hour queries: about twenty queries a page. Here one `usage_rows` call at the finest dimensions the page
shows (model, provider, key, app) returns a few hundred rows at most, and everything is derived from them
in Python: the choices from all rows, the totals and the table from the rows the filters match.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from analytics.selectors import GROUPS, Filters, Totals, choices_from, grouped_from
from analytics.usage import usage_rows, usage_totals
from organizations.models import Organization

PAGE_DIMS = (
    "model",
    "provider_slug",
    "provider_name",
    "api_key__public_id",
    "api_key__name",
    "app_title",
    "http_referer",
)


@dataclass(frozen=True)
class Overview:
    totals: Totals
    grouped: list[dict[str, Any]]
    choices: dict[str, list[Any]]


def activity_overview(
    *, organization: Organization, since: datetime, until: datetime | None, filters: Filters, group: str
) -> Overview:
    rows = usage_rows(organization=organization, since=since, until=until, dims=PAGE_DIMS)

    def used(*dims: str) -> set[tuple[Any, ...]]:
        return {tuple(row[d] for d in dims) for row in rows if row["requests"]}

    chosen = [row for row in rows if filters.matches(row)]
    sums = usage_totals(chosen)
    return Overview(
        totals=Totals(sums["requests"], sums["spend_nanos"], sums["prompt"], sums["completion"], sums["reasoning"]),
        grouped=grouped_from(chosen, group if group in GROUPS else "model"),
        choices=choices_from(used),
    )
