"""Shared fixtures: the healthchecks-style triad (owner, member, outsider) and keys.

Tests run on the machine's real PostgreSQL and Redis (the test command sets DATABASE_URL and
REDIS_URL). A missing service fails the run; nothing is mocked away.
"""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from pytest_django.fixtures import Settings

from accounts.models import User
from organizations.models import Membership
from organizations.services import IssuedKey, api_key_create, organization_create
from tests.support import Triad, block_outbound_network

# Before any fixture runs: a test that would reach past loopback fails instead of leaving the machine.
block_outbound_network()


@pytest.fixture(scope="session", autouse=True)
def _real_services_required() -> None:
    """In CI the suite must run on PostgreSQL and Redis, never silently on SQLite or memory."""
    if os.environ.get("CI"):
        assert settings.DATABASES["default"]["ENGINE"].endswith("postgresql"), "CI needs DATABASE_URL (PostgreSQL)"
        assert settings.REDIS_URL, "CI needs REDIS_URL"


# Tests run with a prompt-log key so organizations can opt in; tests of the "no key" refusal clear it.
TEST_PROMPT_LOG_KEY = "vv9U3KgzuGzk698PPpm5s0xOISqBOjwaE2Uow--tvNw="


@pytest.fixture(autouse=True)
def _prompt_log_key(settings: Settings) -> None:
    settings.PROMPT_LOG_ENCRYPTION_KEYS = [TEST_PROMPT_LOG_KEY]


@pytest.fixture(autouse=True)
def _clean_redis() -> None:
    if settings.REDIS_URL:
        import redis

        redis.Redis.from_url(settings.REDIS_URL).flushdb()
    from django.core.cache import cache

    cache.clear()
    # Per-process copies keyed on Redis state (the catalog version) would outlive the flush: a later
    # test with the same version number would be served an earlier test's catalog.
    from proxy.selectors import catalog_cache_clear

    catalog_cache_clear()


@pytest.fixture
def triad(db: None) -> Triad:
    owner = User.objects.create_user("alice@example.com", "correct horse battery")
    admin = User.objects.create_user("dana@example.com", "correct horse battery")
    member = User.objects.create_user("bob@example.com", "correct horse battery")
    outsider = User.objects.create_user("charlie@example.com", "correct horse battery")
    org = organization_create(name="Acme", owner=owner)
    Membership.objects.create(organization=org, user=admin, role=Membership.Role.ADMIN)
    Membership.objects.create(organization=org, user=member, role=Membership.Role.MEMBER)
    outsider_org = organization_create(name="Other Corp", owner=outsider)
    return Triad(org=org, owner=owner, admin=admin, member=member, outsider=outsider, outsider_org=outsider_org)


@pytest.fixture
def api_key(triad: Triad) -> IssuedKey:
    return api_key_create(organization=triad.org, name="test key", created_by=triad.owner)


@pytest.fixture
def management_key(triad: Triad) -> IssuedKey:
    return api_key_create(organization=triad.org, name="mgmt", created_by=triad.owner, is_management=True)
