"""The invite-use rule on its own: a group whose sums fit one reader's invite is credited only
when the adapter says it is isolated (no join of it moved a counter before the baseline was
read, no join still on its way moved one since)."""

from __future__ import annotations

import pytest

from referrals.invites import Baseline, InviteCount, Snapshot, decide
from referrals.models import Reason

BASELINE = Baseline({"alice": (4, 0, False), "carol": (7, 0, False)}, 0, known=True)
OURS = frozenset({"alice", "carol"})


def _snapshot(alice: int, carol: int) -> Snapshot:
    return Snapshot(
        [InviteCount("alice", "u/alice", alice), InviteCount("carol", "u/carol", carol)], 0
    )


@pytest.mark.parametrize(
    ("alice", "carol", "joins", "isolated", "code", "reason"),
    [
        (5, 7, 1, True, "alice", None),
        (6, 7, 2, True, "alice", None),  # the same invite twice: both are alice's
        (5, 7, 1, False, None, Reason.AMBIGUOUS),  # the rise may be someone else's
        (4, 7, 1, False, None, Reason.AMBIGUOUS),  # the rise went into the last reading
        (5, 8, 2, True, None, Reason.AMBIGUOUS),
        (4, 7, 1, True, None, Reason.NO_INVITE),
    ],
)
def test_credit_needs_the_sums_and_an_isolated_group(
    alice: int, carol: int, joins: int, isolated: bool, code: str | None, reason: Reason | None
) -> None:
    decision = decide(BASELINE, _snapshot(alice, carol), joins, OURS, isolated=isolated)
    assert (decision.code, decision.reason) == (code, reason)


def test_stale_counters_stay_stale_whether_isolated_or_not() -> None:
    decision = decide(BASELINE, _snapshot(5, 7), 1, OURS, stale=True, isolated=False)
    assert decision.reason is Reason.STALE_CACHE
