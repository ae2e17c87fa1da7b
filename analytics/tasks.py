"""Thin task wrappers; the work is in analytics.rollup."""

from __future__ import annotations

from celery import shared_task

from analytics.rollup import rollup_run


@shared_task(name="analytics.rollup_usage", ignore_result=True)
def rollup_usage() -> dict[str, object]:
    result = rollup_run()
    return {"through": result.through.isoformat(), "hours": result.hours_rebuilt, "days": result.days_rebuilt}
