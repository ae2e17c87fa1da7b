"""The SSO_AUTO_JOIN rules: verified addresses at a domain join that organization, once, never as owner."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from pytest_django.fixtures import Settings

from accounts.models import User
from organizations.models import Membership
from organizations.services import organization_create
from organizations.sso import auto_join_rules, membership_auto_join


def test_rules_parse_and_refuse_what_they_cannot_grant(settings: Settings) -> None:
    settings.SSO_AUTO_JOIN = ["acme.test=acme:admin", "Beta.TEST=beta", "evil.test=acme:owner", "nonsense"]
    assert auto_join_rules() == {"acme.test": ("acme", "admin"), "beta.test": ("beta", "member")}


@pytest.mark.django_db
def test_only_verified_addresses_join_and_only_once(settings: Settings) -> None:
    owner = User.objects.create_user("boss@acme.test", "correct horse battery")
    acme = organization_create(name="Acme", owner=owner)
    settings.SSO_AUTO_JOIN = [f"acme.test={acme.slug}:member"]
    user = User.objects.create_user("sam@acme.test", "correct horse battery")
    address = EmailAddress.objects.create(user=user, email=user.email, verified=False, primary=True)

    assert membership_auto_join(user=user) == []
    address.verified = True
    address.save()
    [joined] = membership_auto_join(user=user)
    assert (joined.organization, joined.role) == (acme, "member")
    assert membership_auto_join(user=user) == []
    assert list(Membership.objects.filter(user=user, organization=acme)) == [joined]


@pytest.mark.django_db
def test_an_existing_membership_is_never_changed(settings: Settings) -> None:
    owner = User.objects.create_user("boss@acme.test", "correct horse battery")
    acme = organization_create(name="Acme", owner=owner)
    EmailAddress.objects.create(user=owner, email=owner.email, verified=True, primary=True)
    settings.SSO_AUTO_JOIN = [f"acme.test={acme.slug}:member"]
    assert membership_auto_join(user=owner) == []
    assert Membership.objects.get(organization=acme, user=owner).role == "owner"
