"""`GET /api/v1/activity`: an organization's daily usage per model and endpoint, for management keys.

OpenRouter's shape (contract section 14): the last 30 completed UTC days, optionally one `date`, narrowed
by `api_key_hash` or `user_id`. Thin: parse, one selector, render. The organization is always the
key's own, so no parameter can reach another organization's rows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db.models import Q
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import selectors
from billing.api.serializers import user_public_id_from_ref
from billing.api.views import IsManagementKey
from common.money import nanos_to_usd_number
from organizations.models import ApiKey


def _day(raw: str, today: datetime) -> datetime:
    try:
        day = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise exceptions.ValidationError({"date": "must be a date as YYYY-MM-DD."}) from None
    if not today - timedelta(days=selectors.API_DAYS) <= day < today:
        raise exceptions.ValidationError({"date": f"must be one of the last {selectors.API_DAYS} completed UTC days."})
    return day


def _where(request: Request) -> Q:
    q = Q()
    if key_hash := request.query_params.get("api_key_hash", "").strip():
        q &= Q(api_key__hash=key_hash[:128])
    if user_ref := request.query_params.get("user_id", "").strip():
        public_id = user_public_id_from_ref(user_ref)
        if public_id is None:
            raise exceptions.ValidationError({"user_id": "is not a user id."})
        q &= Q(user__public_id=public_id)
    return q


class ActivityView(APIView):
    permission_classes = [IsManagementKey]

    def get(self, request: Request) -> Response:
        api_key = request.auth
        assert isinstance(api_key, ApiKey)  # guaranteed by IsManagementKey
        today = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        raw_date = request.query_params.get("date", "").strip()
        rows = selectors.activity_daily(
            organization=api_key.organization,
            today=today,
            day=_day(raw_date, today) if raw_date else None,
            where=_where(request),
        )
        return Response(
            {
                "data": [
                    {
                        "date": row["bucket"].strftime("%Y-%m-%d"),
                        "model": row["model"],
                        "model_permaslug": row["model"],
                        "endpoint_id": row["endpoint_tag"],
                        "provider_name": row["provider_name"],
                        "usage": nanos_to_usd_number(row["spend_nanos"]),
                        "byok_usage_inference": nanos_to_usd_number(row["byok_nanos"]),
                        "requests": row["requests"],
                        "prompt_tokens": row["prompt"],
                        "completion_tokens": row["completion"],
                        "reasoning_tokens": row["reasoning"],
                    }
                    for row in rows
                ]
            }
        )
