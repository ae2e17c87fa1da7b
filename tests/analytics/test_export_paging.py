"""The export's keyset paging: every row once, newest first, across pages and equal timestamps."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics import selectors
from tests.analytics.support import settled
from tests.support import Triad

pytestmark = pytest.mark.django_db


def test_chunks_cover_every_row_once_even_with_equal_timestamps(triad: Triad) -> None:
    now = timezone.now()
    same = now - timedelta(hours=1)
    for n in range(7):  # five share one timestamp, so the id breaks the tie between pages
        settled(triad.org, n, same if n < 5 else now - timedelta(minutes=n))
    settled(triad.outsider_org, 99, same)
    chunks = list(
        selectors.generation_export_chunks(organization=triad.org, since=selectors.activity_since("1d"), chunk=2)
    )
    assert [len(c) for c in chunks] == [2, 2, 2, 1]
    ids = [row[1] for chunk in chunks for row in chunk]
    expected = [f"gen-{triad.org.pk}-{n}" for n in (5, 6, 4, 3, 2, 1, 0)]
    assert ids == expected
