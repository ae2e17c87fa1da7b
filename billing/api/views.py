"""The account JSON API: /keys (management keys), /key, /auth/key, /credits, /generation.

Thin DRF views: authenticate (proxy.api.drf.BearerKeyAuthentication puts the ApiKey on
`request.auth`), validate, call one service or selector, render. Errors use the shared envelope.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from billing.api import selectors
from billing.api.selectors import credits_summary
from billing.api.serializers import (
    KeyCreateInput,
    KeyUpdateInput,
    current_key_json,
    generation_json,
    key_json,
    user_public_id_from_ref,
)
from common.money import nanos_to_usd_number
from organizations.models import ApiKey
from organizations.services import OrganizationError, api_key_create, api_key_delete, api_key_update

PAGE_SIZE = 100

# The published OpenAPI document (/api/v1/openapi.json); these views render plain dicts, not serializers.
_OBJ = OpenApiTypes.OBJECT


def _key(request: Request) -> ApiKey:
    api_key = request.auth
    assert isinstance(api_key, ApiKey)  # guaranteed by the permission classes
    return api_key


class HasApiKey(BasePermission):
    """Any valid key of the organization, inference or management."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not isinstance(request.auth, ApiKey):
            raise exceptions.NotAuthenticated("No auth credentials found")
        if request.auth.expires_at is not None and request.auth.expires_at <= timezone.now():
            raise exceptions.AuthenticationFailed("This API key has expired.")
        return True


class IsManagementKey(HasApiKey):
    message = "Only management keys can perform this operation"

    def has_permission(self, request: Request, view: APIView) -> bool:
        super().has_permission(request, view)
        return bool(_key(request).is_management)


def _bool_param(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").strip().lower() in ("1", "true", "yes")


def _offset_param(request: Request) -> int:
    raw = request.query_params.get("offset", "0").strip() or "0"
    # isdecimal, not isdigit: "²" is a digit that int() refuses. The bound keeps it inside bigint.
    if not raw.isdecimal() or len(raw) > 9:
        raise exceptions.ValidationError({"offset": "must be a whole number of keys to skip, below 10^9."})
    return int(raw)


class KeysView(APIView):
    permission_classes = [IsManagementKey]

    @extend_schema(
        parameters=[
            OpenApiParameter("offset", OpenApiTypes.INT),
            OpenApiParameter("include_disabled", OpenApiTypes.BOOL),
        ],
        responses={200: _OBJ},
    )
    def get(self, request: Request) -> Response:
        org = _key(request).organization
        keys = selectors.api_key_page(
            organization=org,
            offset=_offset_param(request),
            include_disabled=_bool_param(request, "include_disabled"),
            limit=PAGE_SIZE,
        )
        usage = selectors.key_usage_many(keys)
        return Response({"data": [key_json(k, usage[k.pk]) for k in keys]})

    @extend_schema(request=KeyCreateInput, responses={201: _OBJ})
    def post(self, request: Request) -> Response:
        mgmt = _key(request)
        data = KeyCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        creator = _creator(mgmt, values.get("creator_user_id"))
        try:
            issued = api_key_create(
                organization=mgmt.organization,
                name=values["name"],
                created_by=creator,
                limit_nanos=values.get("limit"),
                limit_reset=values.get("limit_reset"),
                include_byok_in_limit=values.get("include_byok_in_limit", False),
                expires_at=values.get("expires_at"),
            )
        except OrganizationError as exc:
            raise exceptions.ValidationError(str(exc)) from exc
        body = {"data": key_json(issued.api_key, selectors.KeyUsage()), "key": issued.key}
        return Response(body, status=status.HTTP_201_CREATED)


def _creator(mgmt: ApiKey, ref: str | None) -> User | None:
    """The member a new key is attributed to: the one named, else whoever created the management key."""
    if not ref:
        return mgmt.created_by
    public_id = user_public_id_from_ref(ref)
    user = selectors.member_get(organization=mgmt.organization, public_id=public_id) if public_id else None
    if user is None:
        raise exceptions.ValidationError({"creator_user_id": "is not a member of this organization."})
    return user


class KeyDetailView(APIView):
    permission_classes = [IsManagementKey]

    def _get(self, request: Request, key_hash: str) -> ApiKey:
        api_key = selectors.api_key_get_managed(organization=_key(request).organization, key_hash=key_hash)
        if api_key is None:
            raise exceptions.NotFound("Key not found")
        return api_key

    @extend_schema(responses={200: _OBJ})
    def get(self, request: Request, key_hash: str) -> Response:
        api_key = self._get(request, key_hash)
        return Response({"data": key_json(api_key, selectors.key_usage(api_key))})

    @extend_schema(request=KeyUpdateInput, responses={200: _OBJ})
    def patch(self, request: Request, key_hash: str) -> Response:
        api_key = self._get(request, key_hash)
        data = KeyUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        # Only what the client sent is passed on; the service treats an absent limit as "unchanged".
        changes: dict[str, Any] = {k: values[k] for k in ("name", "disabled", "include_byok_in_limit") if k in values}
        if "limit" in values:
            changes["limit_nanos"] = values["limit"]
        if "limit_reset" in values:
            changes["limit_reset"] = values["limit_reset"]
        try:
            api_key = api_key_update(api_key=api_key, **changes)
        except OrganizationError as exc:
            raise exceptions.ValidationError(str(exc)) from exc
        return Response({"data": key_json(api_key, selectors.key_usage(api_key))})

    @extend_schema(responses={200: _OBJ})
    def delete(self, request: Request, key_hash: str) -> Response:
        api_key_delete(api_key=self._get(request, key_hash))
        return Response({"deleted": True})


class CurrentKeyView(APIView):
    """GET /key and the legacy GET /auth/key: the calling key's limits and usage."""

    permission_classes = [HasApiKey]

    @extend_schema(responses={200: _OBJ})
    def get(self, request: Request) -> Response:
        api_key = _key(request)
        org = api_key.organization
        data = current_key_json(
            api_key,
            selectors.key_usage(api_key),
            is_free_tier=selectors.organization_is_free_tier(organization=org),
            free_model_daily_requests=selectors.free_model_daily_requests(org),
        )
        return Response({"data": data})


class CreditsView(APIView):
    """GET /credits. OpenRouter requires a management key; we also accept the org's inference keys."""

    permission_classes = [HasApiKey]

    @extend_schema(responses={200: _OBJ})
    def get(self, request: Request) -> Response:
        summary = credits_summary(organization=_key(request).organization)
        return Response(
            {
                "data": {
                    "total_credits": nanos_to_usd_number(summary.total_credits_nanos),
                    "total_usage": nanos_to_usd_number(summary.total_usage_nanos),
                }
            }
        )


class GenerationView(APIView):
    """GET /generation?id=gen-...: 404 until settlement has recorded it (about a second), or for other orgs."""

    permission_classes = [HasApiKey]

    @extend_schema(parameters=[OpenApiParameter("id", OpenApiTypes.STR, required=True)], responses={200: _OBJ})
    def get(self, request: Request) -> Response:
        generation_id = request.query_params.get("id", "").strip()
        if not generation_id:
            raise exceptions.ValidationError({"id": "is required."})
        gen = selectors.generation_get(organization=_key(request).organization, generation_id=generation_id)
        if gen is None:
            raise exceptions.NotFound(f"Generation {generation_id} not found")
        return Response({"data": generation_json(gen)})
