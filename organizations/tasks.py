"""Periodic work for organizations: the audit log's retention purge."""

from __future__ import annotations

from celery import shared_task

from organizations.audit import audit_purge


@shared_task(name="organizations.audit_purge")
def audit_purge_task() -> int:
    return audit_purge()
