"""Bad path and query parameters get a 400 (or 404) in the API's envelope, never a 500."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from organizations.services import api_key_create, organization_create


@pytest.fixture
def keys(db: None) -> dict[str, str]:
    owner = User.objects.create_user("guard@example.com", "correct horse battery")
    org = organization_create(name="Guard", owner=owner)
    return {
        "management": api_key_create(organization=org, name="m", is_management=True).key,
        "inference": api_key_create(organization=org, name="i").key,
        "none": "",
    }


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/api/v1/models/%00/%00/endpoints", "none"),
        ("/api/v1/model/%00/x", "none"),
        ("/api/v1/models?category=%00", "none"),
        ("/api/v1/generation?id=%00", "inference"),
        ("/api/v1/keys/%00", "management"),
        ("/api/v1/keys?offset=" + "9" * 30, "management"),
        ("/api/v1/keys?offset=%C2%B2", "management"),
    ],
)
def test_bad_parameters_are_refused_in_the_envelope(keys: dict[str, str], path: str, key: str) -> None:
    client = Client(raise_request_exception=False)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {keys[key]}"} if keys[key] else {}
    res = client.get(path, **headers)
    assert res.status_code == 400, (path, res.status_code, res.content[:200])
    assert res.json()["error"]["code"] == 400


def test_a_nul_byte_on_a_page_is_a_plain_400(db: None) -> None:
    res = Client(raise_request_exception=False).get("/models?q=%00")
    assert res.status_code == 400
