"""Who may change or remove whom (issue 11, case 10): every actor role against every target role.

Each organization has two of each role, so "at least one owner stays" is never the reason an
action is refused: only the actor's role is.
"""

from __future__ import annotations

import pytest

from accounts.models import User
from organizations.models import Membership, Organization
from organizations.services import OrganizationError, membership_remove, membership_set_role, organization_create

OWNER, ADMIN, MEMBER = Membership.Role.OWNER, Membership.Role.ADMIN, Membership.Role.MEMBER
ROLES = (OWNER, ADMIN, MEMBER)

# (actor role, target role) -> allowed. Owners act on anyone; admins on admins and members; members on no one else.
ALLOWED = {
    (OWNER, OWNER): True,
    (OWNER, ADMIN): True,
    (OWNER, MEMBER): True,
    (ADMIN, OWNER): False,
    (ADMIN, ADMIN): True,
    (ADMIN, MEMBER): True,
    (MEMBER, OWNER): False,
    (MEMBER, ADMIN): False,
    (MEMBER, MEMBER): False,
}
# A role change that moves each target somewhere an admin could grant (never to owner).
NEW_ROLE = {OWNER: ADMIN, ADMIN: MEMBER, MEMBER: ADMIN}


def staffed(db: None) -> dict[str, list[Membership]]:
    first = User.objects.create_user("owner-1@example.com", "correct horse battery")
    org: Organization = organization_create(name="Roles", owner=first)
    people: dict[str, list[Membership]] = {OWNER: [Membership.objects.get(organization=org, user=first)]}
    for role in ROLES:
        while len(people.setdefault(role, [])) < 2:
            user = User.objects.create_user(f"{role}-{len(people[role]) + 1}x@example.com", "correct horse battery")
            people[role].append(Membership.objects.create(organization=org, user=user, role=role))
    return people


@pytest.mark.parametrize(("actor_role", "target_role"), list(ALLOWED))
def test_changing_a_role(db: None, actor_role: str, target_role: str) -> None:
    people = staffed(db)
    actor, target = people[actor_role][0], people[target_role][1]
    if ALLOWED[(actor_role, target_role)]:
        membership_set_role(actor=actor, membership=target, role=NEW_ROLE[target_role])
        target.refresh_from_db()
        assert target.role == NEW_ROLE[target_role]
    else:
        with pytest.raises(OrganizationError):
            membership_set_role(actor=actor, membership=target, role=NEW_ROLE[target_role])
        target.refresh_from_db()
        assert target.role == target_role


@pytest.mark.parametrize(("actor_role", "target_role"), list(ALLOWED))
def test_removing_a_member(db: None, actor_role: str, target_role: str) -> None:
    people = staffed(db)
    actor, target = people[actor_role][0], people[target_role][1]
    if ALLOWED[(actor_role, target_role)]:
        membership_remove(actor=actor, membership=target)
        assert not Membership.objects.filter(pk=target.pk).exists()
    else:
        with pytest.raises(OrganizationError):
            membership_remove(actor=actor, membership=target)
        assert Membership.objects.filter(pk=target.pk, role=target_role).exists()


@pytest.mark.parametrize("role", ROLES)
def test_anyone_may_leave_and_only_owners_make_owners(db: None, role: str) -> None:
    people = staffed(db)
    me = people[role][0]
    if role != OWNER:
        with pytest.raises(OrganizationError):
            membership_set_role(actor=me, membership=people[MEMBER][1], role=OWNER)
    membership_remove(actor=me, membership=me)
    assert not Membership.objects.filter(pk=me.pk).exists()


def test_the_last_owner_cannot_step_down(db: None) -> None:
    people = staffed(db)
    first, second = people[OWNER]
    membership_remove(actor=first, membership=second)
    with pytest.raises(OrganizationError):
        membership_set_role(actor=first, membership=first, role=ADMIN)
    with pytest.raises(OrganizationError):
        membership_remove(actor=first, membership=first)
