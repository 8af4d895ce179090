"""The authorization matrices straight on ``server/policy.py``: role x object x action, no I/O.

Each table row is one decision (a function of the policy, on one object) and its outcome for
each of the nine actors of the HTTP matrix (``tests/test_policy_matrix.py``): ``OK`` (allowed),
the denial's code (``F`` forbidden, ``N`` not found, ``U`` not signed in), or the value a
scope function returns. Principals and records are built here, so the whole file runs in
milliseconds; the HTTP and socket matrices stay as the end-to-end check that the handlers ask
these questions. Sections not here have their pure table next to their end-to-end one:
watching and the audit trail (``test_policy_watching_and_audit.py``, which also covers the
conversation actions), figures (``test_policy_figures.py``), who is told
(``test_audience.py``). ``test_every_policy_function_has_a_pure_table`` keeps it that way.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from domain.records import Conversation, FamilyLink, Inmate, User, Visit
from server import policy
from server.policy import (
    ComplaintFacts,
    ComplaintFiling,
    ComplaintScopeRule,
    Denied,
    LinkScope,
    NotSignedIn,
    Principal,
    ThreadScope,
    VisitScope,
)

GM, SS = 1, 2  # prisons: Gaoming, Sanshui
A, B, C = 70, 71, 80  # inmates: A and B in Gaoming, C in Sanshui
AT = datetime(2026, 5, 1, tzinfo=UTC)


def _user(id: int, role: Any, *prisons: int) -> User:
    return User(id, role, f"login{id}", f"Name {id}", prisons)


PRINCIPALS: dict[str, Principal | None] = {
    "anonymous": None,
    "relative_none": Principal(_user(100, "relative")),
    "relative_a": Principal(_user(101, "relative"), frozenset({A}), frozenset({GM})),
    "relative_b": Principal(_user(102, "relative"), frozenset({B}), frozenset({GM})),
    "officer": Principal(_user(10, "officer", GM)),
    "officer_other": Principal(_user(11, "officer", SS)),
    "supervisor": Principal(_user(20, "supervisor", GM)),
    "supervisor_other": Principal(_user(21, "supervisor", SS)),
    "admin": Principal(_user(30, "admin")),
}
RELATIVE_A = 101

CONV = Conversation(7, GM, A, RELATIVE_A, "waiting", None, 3, AT)
INMATE_A = Inmate(A, GM, "GM-1", "Inmate A")
LINK = FamilyLink(3, RELATIVE_A, GM, "GM", "GM-1", A, "son", "", "pending", None, None, None, AT)
UNMATCHED_LINK = FamilyLink(
    4, RELATIVE_A, None, "XX", "nobody", None, "son", "", "pending", None, None, None, AT
)
VERIFIED_LINK = FamilyLink(
    5, RELATIVE_A, GM, "GM", "GM-1", A, "son", "", "verified", None, 10, AT, AT
)
VISIT = Visit(9, A, GM, RELATIVE_A, "Name 101", AT, 2, [], "pending", None, None, None, AT)
COMPLAINT = ComplaintFacts(prison_id=GM, complainant_id=RELATIVE_A, escalated=False)
ESCALATED = ComplaintFacts(prison_id=GM, complainant_id=RELATIVE_A, escalated=True)
FILED_BY_OFFICER = ComplaintFacts(prison_id=GM, complainant_id=10, escalated=False)

OK, F, N, U = "ok", "forbidden", "not_found", "not_authenticated"


def row(*cells: object) -> dict[str, object]:
    """One outcome per actor, in the order of ``PRINCIPALS``."""
    return dict(zip(PRINCIPALS, cells, strict=True))


def decide(call: Callable[[], object]) -> object:
    """What a check answers: ``OK`` for an allowed check, the value of a scope or a
    predicate, or the denial's code."""
    try:
        value = call()
    except Denied as denied:
        return denied.code
    except NotSignedIn:
        return U
    if isinstance(value, Principal | Conversation | FamilyLink | Inmate | Visit):
        return OK
    return value


Check = Callable[[Principal | None], object]


def signed(check: Callable[[Principal], object]) -> Check:
    """A predicate or scope on a signed-in principal (anonymous never gets that far)."""
    return lambda who: U if who is None else check(who)


def filing(**named: Any) -> Check:
    """Filing a complaint about Gaoming naming ``named``; a relative's followed prisons are
    those of its verified inmates, as the handler finds them."""

    def check(who: Principal | None) -> object:
        followed = frozenset(who.followed_prisons) if who and not who.is_staff else frozenset()
        facts = ComplaintFiling(prison_id=GM, followed_prisons=followed, **named)
        return decide(lambda: policy.check_complaint_filing(who, facts))

    return check


# accounts, family links and administration

LINKS: dict[str, tuple[Check, dict[str, object]]] = {
    #                                   anon rel_n rel_a rel_b off off_o sup sup_o admin
    "session": (
        lambda w: decide(lambda: policy.check_action(w, "session")),
        row(U, OK, OK, OK, OK, OK, OK, OK, OK),
    ),
    "link.request": (
        lambda w: decide(lambda: policy.check_action(w, "link.request")),
        row(U, OK, OK, OK, F, F, F, F, F),
    ),
    "link.list": (
        lambda w: decide(lambda: policy.check_action(w, "link.list")),
        row(U, OK, OK, OK, OK, OK, OK, OK, OK),
    ),
    "admin": (
        lambda w: decide(lambda: policy.check_action(w, "admin")),
        row(U, F, F, F, F, F, F, F, OK),
    ),
    "signed in": (
        lambda w: decide(lambda: policy.signed_in(w)),
        row(U, OK, OK, OK, OK, OK, OK, OK, OK),
    ),
    "sees the link": (
        signed(lambda w: policy.sees_link(w, LINK)),
        row(U, False, True, False, True, False, True, False, True),
    ),
    "read a link": (
        lambda w: decide(lambda: policy.check_link(w, LINK, "read")),
        row(U, N, OK, N, OK, N, OK, N, OK),
    ),
    "verify a link": (
        lambda w: decide(lambda: policy.check_link(w, LINK, "verify")),
        row(U, N, F, N, OK, N, F, N, F),
    ),
    "reject a link": (
        lambda w: decide(lambda: policy.check_link(w, LINK, "reject")),
        row(U, N, F, N, OK, N, F, N, F),
    ),
    "revoke a link": (
        lambda w: decide(lambda: policy.check_link(w, VERIFIED_LINK, "revoke")),
        row(U, N, F, N, OK, N, OK, N, OK),
    ),
    "read a missing link": (
        lambda w: decide(lambda: policy.check_link(w, None, "read")),
        row(U, N, N, N, N, N, N, N, N),
    ),
    "read a link naming no prison": (
        lambda w: decide(lambda: policy.check_link(w, UNMATCHED_LINK, "read")),
        row(U, N, OK, N, N, N, N, N, OK),
    ),
    "list links": (
        lambda w: decide(lambda: policy.link_scope(w)),
        row(
            U,
            LinkScope(relative_id=100),
            LinkScope(relative_id=RELATIVE_A),
            LinkScope(relative_id=102),
            LinkScope(prison_ids=(GM,)),
            LinkScope(prison_ids=(SS,)),
            LinkScope(prison_ids=(GM,)),
            LinkScope(prison_ids=(SS,)),
            LinkScope(),
        ),
    ),
    "details of a pending link shown": (
        signed(lambda w: policy.shows_link_details(w, LINK)),
        row(U, False, False, False, True, True, True, True, True),
    ),
    "details of a verified link shown": (
        signed(lambda w: policy.shows_link_details(w, VERIFIED_LINK)),
        row(U, True, True, True, True, True, True, True, True),
    ),
}


# complaints and announcements

COMPLAINTS: dict[str, tuple[Check, dict[str, object]]] = {
    #                                   anon rel_n rel_a rel_b off off_o sup sup_o admin
    "complaint.file": (
        lambda w: decide(lambda: policy.check_complaints_and_announcements(w, "complaint.file")),
        row(U, OK, OK, OK, OK, OK, F, F, F),
    ),
    "complaint.list": (
        lambda w: decide(lambda: policy.check_complaints_and_announcements(w, "complaint.list")),
        row(U, OK, OK, OK, F, F, OK, OK, OK),
    ),
    "announcement.post": (
        lambda w: decide(lambda: policy.check_complaints_and_announcements(w, "announcement.post")),
        row(U, F, F, F, OK, OK, F, F, OK),
    ),
    "profile.set": (
        lambda w: decide(lambda: policy.check_complaints_and_announcements(w, "profile.set")),
        row(U, F, F, F, F, F, F, F, OK),
    ),
    "file about Gaoming": (filing(), row(U, F, OK, OK, OK, F, F, F, F)),
    "file naming inmate A": (
        filing(inmate_id=A, inmate_prison_id=GM),
        row(U, F, OK, N, OK, F, F, F, F),
    ),
    "file naming an inmate of another prison": (
        filing(inmate_id=C, inmate_prison_id=SS),
        row(U, F, N, N, N, F, F, F, F),
    ),
    "file naming a missing inmate": (
        filing(inmate_id=999, inmate_prison_id=None),
        row(U, F, N, N, N, F, F, F, F),
    ),
    "file naming conversation A": (
        filing(conversation_id=CONV.id, conversation=CONV),
        row(U, F, OK, N, OK, F, F, F, F),
    ),
    "file naming a missing conversation": (
        filing(conversation_id=999),
        row(U, F, N, N, N, F, F, F, F),
    ),
    "a filing must name an inmate": (
        signed(policy.complaint_needs_inmate),
        row(U, False, False, False, True, True, False, False, False),
    ),
    "list complaints": (
        lambda w: decide(lambda: policy.complaint_scope(w)),
        row(
            U,
            ComplaintScopeRule(complainant_id=100),
            ComplaintScopeRule(complainant_id=RELATIVE_A),
            ComplaintScopeRule(complainant_id=102),
            F,
            F,
            ComplaintScopeRule(prison_ids=(GM,)),
            ComplaintScopeRule(prison_ids=(SS,)),
            ComplaintScopeRule(),
        ),
    ),
    "read a complaint": (
        lambda w: decide(lambda: policy.check_complaint(w, COMPLAINT, "read")),
        row(U, N, OK, N, N, N, OK, N, OK),
    ),
    "read a complaint an officer filed": (
        lambda w: decide(lambda: policy.check_complaint(w, FILED_BY_OFFICER, "read")),
        row(U, N, N, N, N, N, OK, N, OK),
    ),
    "read a missing complaint": (
        lambda w: decide(lambda: policy.check_complaint(w, None, "read")),
        row(U, N, N, N, N, N, N, N, N),
    ),
    "move a complaint": (
        lambda w: decide(lambda: policy.check_complaint(w, COMPLAINT, "transition")),
        row(U, N, F, N, N, N, OK, N, F),
    ),
    "answer a complaint": (
        lambda w: decide(lambda: policy.check_complaint(w, COMPLAINT, "answer")),
        row(U, N, F, N, N, N, OK, N, F),
    ),
    "escalate a complaint": (
        lambda w: decide(lambda: policy.check_complaint(w, COMPLAINT, "escalate")),
        row(U, N, F, N, N, N, OK, N, F),
    ),
    "move an escalated complaint": (
        lambda w: decide(lambda: policy.check_complaint(w, ESCALATED, "transition")),
        row(U, N, F, N, N, N, F, N, OK),
    ),
    "sees the complaint": (
        signed(lambda w: policy.sees_complaint(w, COMPLAINT)),
        row(U, False, True, False, False, False, True, False, True),
    ),
    "handles the complaint": (
        signed(lambda w: policy.handles_complaint(w, COMPLAINT)),
        row(U, False, False, False, False, False, True, False, False),
    ),
    "is told of the complaint": (
        signed(lambda w: policy.complaint_audience(COMPLAINT, [w.user]) == [w.id]),
        row(U, False, True, False, False, False, True, False, True),
    ),
    "announce bureau-wide": (
        lambda w: decide(lambda: policy.check_announcement(w, None)),
        row(U, F, F, F, F, F, F, F, OK),
    ),
    "announce for Gaoming": (
        lambda w: decide(lambda: policy.check_announcement(w, GM)),
        row(U, F, F, F, OK, F, F, F, OK),
    ),
}


# information cards and visits

INFORMATION: dict[str, tuple[Check, dict[str, object]]] = {
    #                                   anon rel_n rel_a rel_b off off_o sup sup_o admin
    "read inmate A's card": (
        lambda w: decide(lambda: policy.check_inmate(w, INMATE_A, "read")),
        row(U, N, OK, N, OK, N, OK, N, N),
    ),
    "change inmate A's card": (
        lambda w: decide(lambda: policy.check_inmate(w, INMATE_A, "update")),
        row(U, N, F, N, OK, N, F, N, N),
    ),
    "read a missing card": (
        lambda w: decide(lambda: policy.check_inmate(w, None, "read")),
        row(U, N, N, N, N, N, N, N, N),
    ),
    "list inmates": (
        lambda w: decide(lambda: policy.inmate_list_prisons(w, None)),
        row(U, F, F, F, (GM,), (SS,), (GM,), (SS,), F),
    ),
    "list Gaoming's inmates": (
        lambda w: decide(lambda: policy.inmate_list_prisons(w, GM)),
        row(U, F, F, F, (GM,), F, (GM,), F, F),
    ),
    "put a fact card into conversation A": (
        lambda w: decide(lambda: policy.check_fact(w, CONV)),
        row(U, N, F, N, OK, N, F, N, N),
    ),
    "put a fact card into a missing conversation": (
        lambda w: decide(lambda: policy.check_fact(w, None)),
        row(U, N, N, N, N, N, N, N, N),
    ),
    "request a visit to inmate A": (
        lambda w: decide(lambda: policy.check_visit_request(w, INMATE_A)),
        row(U, N, OK, N, F, F, F, F, F),
    ),
    "request a visit to a missing inmate": (
        lambda w: decide(lambda: policy.check_visit_request(w, None)),
        row(U, N, N, N, F, F, F, F, F),
    ),
    "read a visit request": (
        lambda w: decide(lambda: policy.check_visit(w, VISIT, "read")),
        row(U, N, OK, N, OK, N, OK, N, N),
    ),
    "decide a visit request": (
        lambda w: decide(lambda: policy.check_visit(w, VISIT, "decide")),
        row(U, N, F, N, OK, N, F, N, N),
    ),
    "cancel a visit request": (
        lambda w: decide(lambda: policy.check_visit(w, VISIT, "cancel")),
        row(U, N, OK, N, F, N, F, N, N),
    ),
    "read a missing visit request": (
        lambda w: decide(lambda: policy.check_visit(w, None, "read")),
        row(U, N, N, N, N, N, N, N, N),
    ),
    "list visits": (
        lambda w: decide(lambda: policy.visit_scope(w)),
        row(
            U,
            VisitScope(relative_id=100, inmate_ids=()),
            VisitScope(relative_id=RELATIVE_A, inmate_ids=(A,)),
            VisitScope(relative_id=102, inmate_ids=(B,)),
            VisitScope(prison_ids=(GM,)),
            VisitScope(prison_ids=(SS,)),
            VisitScope(prison_ids=(GM,)),
            VisitScope(prison_ids=(SS,)),
            F,
        ),
    ),
    "set Gaoming's visit rules": (
        lambda w: decide(lambda: policy.check_visit_rules(w, GM)),
        row(U, F, F, F, OK, F, F, F, OK),
    ),
    "set a missing prison's visit rules": (
        lambda w: decide(lambda: policy.check_visit_rules(w, None)),
        row(U, N, N, N, N, N, N, N, N),
    ),
    "sees inmate A": (
        signed(lambda w: policy.sees_inmate(w, INMATE_A)),
        row(U, False, True, False, True, False, True, False, False),
    ),
    "sees the visit": (
        signed(lambda w: policy.sees_visit(w, VISIT)),
        row(U, False, True, False, True, False, True, False, False),
    ),
}


# the duty desk


def thread(action: Any) -> Check:
    return lambda w: decide(lambda: policy.check_thread(w, CONV, action))


DESK: dict[str, tuple[Check, dict[str, object]]] = {
    #                                   anon rel_n rel_a rel_b off off_o sup sup_o admin
    "sees conversation A": (
        signed(lambda w: policy.sees_conversation(w, CONV)),
        row(U, False, True, False, True, False, True, False, False),
    ),
    "is the relative who sees conversation A": (
        signed(lambda w: policy.relative_sees(w.id, w.verified_inmates, CONV)),
        row(U, False, True, False, False, False, False, False, False),
    ),
    "read the thread": (thread("read"), row(U, N, OK, N, OK, N, OK, N, N)),
    "send in the thread": (thread("send"), row(U, N, OK, N, OK, N, F, N, N)),
    "note in the thread": (thread("note"), row(U, N, F, N, OK, N, F, N, N)),
    "claim the thread": (thread("claim"), row(U, N, F, N, OK, N, F, N, N)),
    # the admin unsticks any prison's thread (one held by an officer who left), unread
    "transfer the thread": (thread("transfer"), row(U, N, F, N, OK, N, F, N, OK)),
    "resolve the thread": (thread("resolve"), row(U, N, F, N, OK, N, F, N, OK)),
    "release the thread": (thread("release"), row(U, N, F, N, OK, N, F, N, OK)),
    "rate the thread": (thread("rate"), row(U, N, OK, N, F, N, F, N, N)),
    "claim a missing thread": (
        lambda w: decide(lambda: policy.check_thread(w, None, "claim")),
        row(U, N, N, N, N, N, N, N, N),
    ),
    "list threads": (
        lambda w: decide(lambda: policy.thread_scope(w)),
        row(
            U,
            ThreadScope(relative_id=100, inmate_ids=()),
            ThreadScope(relative_id=RELATIVE_A, inmate_ids=(A,)),
            ThreadScope(relative_id=102, inmate_ids=(B,)),
            ThreadScope(prison_ids=(GM,)),
            ThreadScope(prison_ids=(SS,)),
            ThreadScope(prison_ids=(GM,)),
            ThreadScope(prison_ids=(SS,)),
            ThreadScope(),  # the admin: every prison's
        ),
    ),
    "list Gaoming's threads": (
        lambda w: decide(lambda: policy.thread_scope(w, GM)),
        row(
            U,
            ThreadScope(relative_id=100, prison_ids=(GM,), inmate_ids=()),
            ThreadScope(relative_id=RELATIVE_A, prison_ids=(GM,), inmate_ids=(A,)),
            ThreadScope(relative_id=102, prison_ids=(GM,), inmate_ids=(B,)),
            ThreadScope(prison_ids=(GM,)),
            F,
            ThreadScope(prison_ids=(GM,)),
            F,
            ThreadScope(prison_ids=(GM,)),
        ),
    ),
    "open the thread about inmate A": (
        lambda w: decide(lambda: policy.check_open_thread(w, A)),
        row(U, N, OK, N, F, F, F, F, F),
    ),
    "must be on duty to work a thread": (
        signed(policy.desk_duty_required),
        row(U, False, False, False, True, True, False, False, False),
    ),
    "acts on a thread whoever holds it": (
        signed(policy.acts_for_any_holder),
        row(U, False, False, False, False, False, False, False, True),
    ),
    "sees the staff side": (
        signed(policy.shows_staff_side),
        row(U, False, False, False, True, True, True, True, True),
    ),
    "list canned replies": (
        lambda w: decide(lambda: policy.canned_prisons(w)),
        row(U, F, F, F, (GM,), (SS,), (GM,), (SS,), F),
    ),
    "list Sanshui's canned replies": (
        lambda w: decide(lambda: policy.canned_prisons(w, SS)),
        row(U, F, F, F, F, (SS,), F, (SS,), F),
    ),
    "change a canned reply of Gaoming": (
        lambda w: decide(lambda: policy.check_canned(w, GM)),
        row(U, F, F, F, OK, N, F, N, F),
    ),
    "change a missing canned reply": (
        lambda w: decide(lambda: policy.check_canned(w, None)),
        row(U, F, F, F, N, N, N, N, F),
    ),
    "go on duty": (
        lambda w: decide(lambda: policy.check_duty(w)),
        row(U, F, F, F, OK, OK, F, F, F),
    ),
    "whose duty is read": (
        signed(policy.duty_scope),
        row(U, (), (GM,), (GM,), (GM,), (SS,), (GM,), (SS,), None),
    ),
    "names on duty shown": (
        signed(policy.duty_names_shown),
        row(U, False, False, False, True, True, True, True, True),
    ),
}

# the staff life cycle and passwords: on an officer of Gaoming, on relative A (a link with
# Gaoming), on a relative with no link, on the admin itself
OFFICER_GM, ADMIN = _user(10, "officer", GM), _user(30, "admin")
RELATIVE, STRANGER = _user(101, "relative"), _user(100, "relative")


def account(target: User, action: Any, linked: tuple[int, ...] = ()) -> Check:
    return lambda w: decide(lambda: policy.check_account(w, target, action, linked) and OK)


ACCOUNTS: dict[str, tuple[Check, dict[str, object]]] = {
    #                                   anon rel_n rel_a rel_b off off_o sup sup_o admin
    "disable an officer": (account(OFFICER_GM, "disable"), row(U, F, F, F, F, F, F, F, OK)),
    "enable an officer": (account(OFFICER_GM, "enable"), row(U, F, F, F, F, F, F, F, OK)),
    "edit an officer": (account(OFFICER_GM, "edit"), row(U, F, F, F, F, F, F, F, OK)),
    "edit a relative": (account(RELATIVE, "edit", (GM,)), row(U, F, F, F, F, F, F, F, F)),
    "reset an officer's password": (
        account(OFFICER_GM, "reset_password"),
        row(U, F, F, F, F, F, F, F, OK),
    ),
    "reset the password of a relative linked with Gaoming": (
        account(RELATIVE, "reset_password", (GM,)),
        row(U, F, F, F, OK, F, F, F, OK),
    ),
    "reset the password of a relative with no link": (
        account(STRANGER, "reset_password"),
        row(U, F, F, F, F, F, F, F, OK),
    ),
    "disable the admin itself": (account(ADMIN, "disable"), row(U, F, F, F, F, F, F, F, F)),
}

# attachments (issue 18): a file is read as what it belongs to
RELATIVE_NONE = 100
SENT = policy.AttachmentFacts(RELATIVE_A, conversation=CONV, message_kind="text", message_seq=1)
NOTE_FILE = policy.AttachmentFacts(10, conversation=CONV, message_kind="note", message_seq=2)
UNSENT = policy.AttachmentFacts(RELATIVE_A)
EVIDENCE_LINK = FamilyLink(
    6, RELATIVE_NONE, GM, "GM", "GM-1", A, "wife", "", "pending", None, None, None, AT
)
EVIDENCE = policy.AttachmentFacts(RELATIVE_NONE, link=EVIDENCE_LINK)


def file(facts: policy.AttachmentFacts | None) -> Check:
    return lambda w: decide(lambda: policy.check_attachment(w, facts))


ATTACHMENTS: dict[str, tuple[Check, dict[str, object]]] = {
    #                                   anon rel_n rel_a rel_b off off_o sup sup_o admin
    "upload a file": (
        lambda w: decide(lambda: policy.check_upload(w)),
        row(U, OK, OK, OK, OK, OK, F, F, F),
    ),
    "read a file sent in a conversation": (file(SENT), row(U, N, OK, N, OK, N, OK, N, N)),
    "read a note's file": (file(NOTE_FILE), row(U, N, N, N, OK, N, OK, N, N)),
    "read an upload not sent yet": (file(UNSENT), row(U, N, OK, N, N, N, N, N, N)),
    "read link evidence": (file(EVIDENCE), row(U, OK, N, N, OK, N, N, N, N)),
    "read no such file": (file(None), row(U, N, N, N, N, N, N, N, N)),
    "sees a sent file": (
        signed(lambda w: policy.sees_attachment(w, SENT)),
        row(U, False, True, False, True, False, True, False, False),
    ),
    "sees link evidence": (
        signed(lambda w: policy.sees_link_evidence(w, EVIDENCE_LINK)),
        row(U, True, False, False, True, False, False, False, False),
    ),
}

# comments on announcements: who moderates them (the rest of the section's rows are in
# test_policy_desk_routing.py)
COMMENTS: dict[str, tuple[Check, dict[str, object]]] = {
    #                                   anon rel_n rel_a rel_b off off_o sup sup_o admin
    "moderates comments on a Gaoming announcement": (
        signed(lambda w: policy.moderates_comments(w, GM)),
        row(U, False, False, False, True, False, False, False, True),
    ),
    "moderates comments on a bureau-wide announcement": (
        signed(lambda w: policy.moderates_comments(w, None)),
        row(U, False, False, False, False, False, False, False, True),
    ),
}

TABLES = {
    "comments": COMMENTS,
    "attachments": ATTACHMENTS,
    "links": LINKS,
    "accounts": ACCOUNTS,
    "complaints": COMPLAINTS,
    "information": INFORMATION,
    "desk": DESK,
}
CELLS = [(section, name) for section, rows in TABLES.items() for name in rows]


@pytest.mark.parametrize(("section", "name"), CELLS, ids=[f"{s}: {n}" for s, n in CELLS])
def test_the_policy_decides(section: str, name: str) -> None:
    check, expected = TABLES[section][name]
    got = {actor: check(who) for actor, who in PRINCIPALS.items()}
    assert got == expected


PURE_TABLES = (
    "test_policy_rules.py",
    "test_policy_watching_and_audit.py",
    "test_policy_figures.py",
    "test_audience.py",
    "test_policy_register.py",
    "test_policy_consent.py",  # consent scopes and the family case (issue 15)
    "test_policy_search.py",  # search_scope's table (landed without its name here)
    "test_policy_desk_routing.py",  # sees_comment's rows (likewise)
    "test_policy_contest_rules.py",  # refusals you can contest (issue 15)
    "test_policy_keywords.py",  # keyword review (issue 15)
)


def test_every_policy_function_has_a_pure_table() -> None:
    """A decision added to the policy without a row here (or in the other pure tables) fails:
    the HTTP matrices alone would test it only through a handler."""
    here = Path(__file__).parent
    tables = "".join((here / name).read_text() for name in PURE_TABLES)
    public = [
        name
        for name, value in inspect.getmembers(policy, inspect.isfunction)
        if value.__module__ == policy.__name__ and not name.startswith("_")
    ]
    assert [name for name in public if name not in tables] == []
