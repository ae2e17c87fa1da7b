"""Resolving an organization reference for the operator commands (the money parsing is common.cli)."""

from __future__ import annotations

from django.core.management.base import CommandError

from common.cli import EXIT_NOT_FOUND
from organizations.models import Organization
from organizations.selectors import organization_resolve


def org_from_ref(ref: str) -> Organization:
    """ORG is the organization's slug, numeric id or public UUID."""
    try:
        return organization_resolve(ref.strip())
    except Organization.DoesNotExist as exc:
        raise CommandError(f"unknown organization: {ref}", returncode=EXIT_NOT_FOUND) from exc
