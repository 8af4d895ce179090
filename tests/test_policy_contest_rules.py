"""The pure tables of refusals you can contest and oversight the family can see (issue 15):
``server/policy.py`` straight, with the principals and records of ``test_policy_rules.py``,
no I/O. The end-to-end rows are in ``test_policy_contest.py``.

Relative A is refused (its link rejected or revoked, its visit declined, its complaint
closed); relative "none" is the same as a relative whose only link was refused: it has no
verified inmate, and may still contest a refusal of its own.
"""

from __future__ import annotations

from typing import Any

import pytest

from server import policy
from server.policy import ComplaintFacts, DecisionFacts, Principal, Watchers
from tests.test_policy_rules import (
    COMPLAINT,
    CONV,
    ESCALATED,
    FILED_BY_OFFICER,
    GM,
    OK,
    PRINCIPALS,
    RELATIVE_A,
    SS,
    Check,
    F,
    N,
    U,
    decide,
    filing,
    row,
    signed,
)

NONE = 100  # relative "none": no verified inmate
A_REFUSED = DecisionFacts("link", RELATIVE_A, GM, refusal=True)
A_PENDING = DecisionFacts("link", RELATIVE_A, GM, refusal=False)
NONE_REFUSED = DecisionFacts("link", NONE, GM, refusal=True)
A_REFUSED_IN_SS = DecisionFacts("visit", RELATIVE_A, SS, refusal=True)


def about(facts: DecisionFacts | None) -> Check:
    return filing(about_named=True, about=facts)


def openings(conv: Any) -> Check:
    return lambda who: decide(lambda: policy.check_openings(who, conv))


def complaint(facts: ComplaintFacts, action: Any) -> Check:
    return lambda who: decide(lambda: policy.check_complaint(who, facts, action))


def contests(facts: DecisionFacts) -> Check:
    def check(who: Principal | None) -> object:
        if who is None:
            return U
        filed = policy.ComplaintFiling(prison_id=GM, about_named=True, about=facts)
        return policy.contests_own_refusal(who, filed)

    return check


TABLE: dict[str, tuple[Check, dict[str, object]]] = {
    #                                   anon rel_n rel_a rel_b off off_o sup sup_o admin
    "read the openings of conversation A": (
        openings(CONV),
        row(U, N, OK, N, OK, N, OK, N, N),
    ),
    "read the openings of a missing conversation": (
        openings(None),
        row(U, N, N, N, N, N, N, N, N),
    ),
    "an opening is told to the conversation's watchers": (
        signed(lambda _: policy.opening_audience(CONV.id)),
        row(U, *[Watchers(CONV.id)] * 8),
    ),
    "file about relative A's refused link": (
        about(A_REFUSED),
        row(U, N, OK, N, F, F, F, F, F),
    ),
    "file about relative none's refused link (no verified inmate)": (
        about(NONE_REFUSED),
        row(U, OK, N, N, F, F, F, F, F),
    ),
    "file about relative A's pending link": (
        about(A_PENDING),
        row(U, N, F, N, F, F, F, F, F),
    ),
    "file about a decision of another prison": (
        about(A_REFUSED_IN_SS),
        row(U, N, F, N, F, F, F, F, F),
    ),
    "file about a missing decision": (about(None), row(U, N, N, N, F, F, F, F, F)),
    "contests its own refusal": (
        contests(NONE_REFUSED),
        row(U, True, False, False, False, False, False, False, False),
    ),
    "escalate (appeal) its answered complaint": (
        complaint(COMPLAINT, "appeal"),
        row(U, N, OK, N, N, N, F, N, F),
    ),
    "appeal once escalated (the store refuses a second: 409)": (
        complaint(ESCALATED, "appeal"),
        row(U, N, OK, N, N, N, F, N, F),
    ),
    "appeal a complaint an officer filed": (
        complaint(FILED_BY_OFFICER, "appeal"),
        row(U, N, N, N, N, N, F, N, F),
    ),
}


@pytest.mark.parametrize("name", list(TABLE))
def test_the_policy_decides(name: str) -> None:
    check, expected = TABLE[name]
    assert {actor: check(who) for actor, who in PRINCIPALS.items()} == expected


@pytest.mark.parametrize(
    ("kind", "state", "refused"),
    [
        ("link", "rejected", True),
        ("link", "revoked", True),
        ("link", "pending", False),
        ("link", "verified", False),
        ("visit", "declined", True),
        ("visit", "approved", False),
        ("visit", "cancelled", False),
        ("complaint", "closed", True),
        ("complaint", "answered", False),
    ],
)
def test_is_refusal(kind: Any, state: str, refused: bool) -> None:
    assert policy.is_refusal(kind, state) is refused
