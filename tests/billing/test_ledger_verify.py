"""ledger_verify: clean ledgers pass; any drift between balances, postings and generations fails."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F

from billing.models import Generation, LedgerAccount, LedgerEntry, Posting
from billing.services import credits_grant
from billing.settlement import usage_events_post
from common.money import NANOS_PER_USD
from organizations.services import IssuedKey
from tests.billing.support import event, key_state
from tests.support import Triad


@pytest.fixture
def settled(triad: Triad, api_key: IssuedKey) -> Triad:
    credits_grant(organization=triad.org, amount_nanos=NANOS_PER_USD, reason="test")
    ev = event(key_state(api_key), 1_234)
    ev.cost_nanos = 1_234
    usage_events_post([ev])
    return triad


def test_it_reports_a_clean_ledger(settled: Triad, capsys: pytest.CaptureFixture[str]) -> None:
    call_command("ledger_verify")
    assert "no differences" in capsys.readouterr().out


def test_it_fails_when_a_cached_balance_drifts_from_its_postings(settled: Triad) -> None:
    LedgerAccount.objects.filter(kind=LedgerAccount.Kind.ORG_CREDITS, organization=settled.org).update(
        balance_nanos=NANOS_PER_USD
    )
    with pytest.raises(CommandError, match="1 problem"):
        call_command("ledger_verify")


def test_it_fails_when_an_entry_does_not_sum_to_zero(settled: Triad) -> None:
    posting = Posting.objects.filter(entry__kind=LedgerEntry.Kind.GRANT).first()
    assert posting is not None
    Posting.objects.filter(pk=posting.pk).update(amount_nanos=posting.amount_nanos + 1)
    LedgerAccount.objects.filter(pk=posting.account_id).update(balance_nanos=F("balance_nanos") + 1)
    with pytest.raises(CommandError, match="1 problem"):
        call_command("ledger_verify")


def test_it_fails_when_generations_and_usage_postings_disagree(settled: Triad) -> None:
    Generation.objects.update(cost_nanos=999)
    with pytest.raises(CommandError, match="1 problem"):
        call_command("ledger_verify")


def test_it_exits_non_zero_from_the_command_line(settled: Triad) -> None:
    Generation.objects.update(cost_nanos=999)
    with pytest.raises(SystemExit) as exc:
        from django.core.management import execute_from_command_line

        execute_from_command_line(["manage.py", "ledger_verify"])
    assert exc.value.code == 1
