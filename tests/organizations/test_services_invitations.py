"""The services the browser pages added: invite-and-email, revoke, the privacy switch."""

from __future__ import annotations

import pytest
from django.core import mail

from organizations.models import Invitation, Membership
from organizations.selectors import invitation_get_by_token, invitation_list_open
from organizations.services import (
    OrganizationError,
    invitation_create_and_send,
    invitation_revoke,
    organization_set_log_prompts,
)
from tests.support import Triad


def _actor(triad: Triad, user: object) -> Membership:
    return Membership.objects.select_related("organization", "user").get(organization=triad.org, user=user)


def test_it_rolls_the_invitation_back_when_the_email_cannot_be_sent(triad: Triad) -> None:
    def broken_url(token: str) -> str:
        raise RuntimeError("mail system down")

    with pytest.raises(RuntimeError):
        invitation_create_and_send(
            actor=_actor(triad, triad.owner), email="x@example.com", role="member", accept_url_for=broken_url
        )
    assert not Invitation.objects.exists()
    assert len(mail.outbox) == 0


def test_it_finds_an_invitation_by_its_emailed_token_only(triad: Triad) -> None:
    issued = invitation_create_and_send(
        actor=_actor(triad, triad.owner),
        email="x@example.com",
        role="member",
        accept_url_for=lambda token: f"https://example.test/invitations/{token}/",
    )
    assert issued.token in mail.outbox[0].body
    assert invitation_get_by_token(token=issued.token) == issued.invitation
    assert invitation_get_by_token(token=issued.invitation.token_hash) is None
    assert list(invitation_list_open(organization=triad.org)) == [issued.invitation]
    assert list(invitation_list_open(organization=triad.outsider_org)) == []


def test_it_refuses_a_revoke_by_a_member_or_from_another_organization(triad: Triad) -> None:
    issued = invitation_create_and_send(
        actor=_actor(triad, triad.owner), email="x@example.com", role="member", accept_url_for=str
    )
    with pytest.raises(OrganizationError):
        invitation_revoke(actor=_actor(triad, triad.member), invitation=issued.invitation)
    outsider = Membership.objects.get(organization=triad.outsider_org, user=triad.outsider)
    with pytest.raises(OrganizationError):
        invitation_revoke(actor=outsider, invitation=issued.invitation)
    assert Invitation.objects.count() == 1
    invitation_revoke(actor=_actor(triad, triad.admin), invitation=issued.invitation)
    assert not Invitation.objects.exists()


def test_it_switches_prompt_logging_for_managers_only(triad: Triad) -> None:
    with pytest.raises(OrganizationError):
        organization_set_log_prompts(actor=_actor(triad, triad.member), enabled=True)
    triad.org.refresh_from_db()
    assert not triad.org.log_prompts
    organization_set_log_prompts(actor=_actor(triad, triad.admin), enabled=True)
    triad.org.refresh_from_db()
    assert triad.org.log_prompts
