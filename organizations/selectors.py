"""Reads, always scoped to what the caller may see. An outsider gets 404, never 403."""

from __future__ import annotations

import hashlib
import uuid

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from organizations.models import ApiKey, Invitation, Membership, Organization


def organization_list_for_user(*, user: User) -> QuerySet[Organization]:
    return Organization.objects.filter(memberships__user=user).order_by("-is_personal", "name")


def membership_get(*, user: User, organization: Organization) -> Membership:
    try:
        return Membership.objects.select_related("organization").get(user=user, organization=organization)
    except Membership.DoesNotExist as exc:
        raise Http404("No such organization") from exc


def organization_get_for_user(*, user: User, slug: str) -> tuple[Organization, Membership]:
    """The organization with this slug if `user` belongs to it, with their membership; else 404."""
    try:
        membership = Membership.objects.select_related("organization").get(user=user, organization__slug=slug)
    except Membership.DoesNotExist as exc:
        raise Http404("No such organization") from exc
    return membership.organization, membership


def organization_resolve(ref: str) -> Organization:
    """Operator lookup (CLI, admin tooling): a slug, a numeric id or a public UUID."""
    qs = Organization.objects.all()
    org = qs.filter(slug=ref).first()
    if org is None and ref.isdigit():
        org = qs.filter(pk=int(ref)).first()
    if org is None:
        try:
            org = qs.filter(public_id=uuid.UUID(ref)).first()
        except ValueError:
            org = None
    if org is None:
        raise Organization.DoesNotExist(f"Unknown organization: {ref}")
    return org


def api_key_list(*, organization: Organization, include_disabled: bool = True) -> QuerySet[ApiKey]:
    qs = ApiKey.objects.filter(organization=organization).select_related("created_by")
    return qs if include_disabled else qs.filter(disabled=False)


def api_key_get(*, organization: Organization, public_id: str) -> ApiKey:
    try:
        return ApiKey.objects.get(organization=organization, public_id=public_id)
    except (ApiKey.DoesNotExist, ValueError) as exc:
        raise Http404("No such key") from exc


def api_key_get_by_hash(*, organization: Organization, key_hash: str) -> ApiKey:
    try:
        return ApiKey.objects.get(organization=organization, hash=key_hash)
    except ApiKey.DoesNotExist as exc:
        raise Http404("No such key") from exc


def membership_list(*, organization: Organization) -> QuerySet[Membership]:
    return Membership.objects.filter(organization=organization).select_related("user").order_by("created_at", "pk")


def membership_get_in_organization(*, organization: Organization, membership_id: int) -> Membership:
    try:
        return Membership.objects.select_related("user", "organization").get(
            organization=organization, pk=membership_id
        )
    except Membership.DoesNotExist as exc:
        raise Http404("No such member") from exc


def invitation_list_open(*, organization: Organization) -> QuerySet[Invitation]:
    return Invitation.objects.filter(
        organization=organization, accepted_at__isnull=True, expires_at__gt=timezone.now()
    ).order_by("-created_at")


def invitation_get(*, organization: Organization, public_id: str) -> Invitation:
    try:
        return Invitation.objects.get(organization=organization, public_id=public_id)
    except (Invitation.DoesNotExist, ValueError, ValidationError) as exc:
        raise Http404("No such invitation") from exc


def invitation_get_by_token(*, token: str) -> Invitation | None:
    """The invitation an emailed link points at (open or not); None for an unknown token."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    return Invitation.objects.select_related("organization").filter(token_hash=digest).first()
