"""Authorization, decided here and only here: may this principal do this action on this object?

Called by the REST handlers and the WebSocket gateway alike. Each section below is tested
twice as a matrix of role x object x action: straight on these functions with records made in
the test (``tests/test_policy_rules.py``, ``tests/test_policy_watching_and_audit.py``,
``tests/test_policy_figures.py``: no I/O, milliseconds), and end to end over HTTP and sockets
(``tests/test_policy_matrix.py`` and ``tests/test_policy_<section>.py``; every API route must
have a row in one of them). The last section says who is *told* of each event (the audience
module, ``server/audience.py``, turns that into topics). Denials carry
the stable error code the caller returns: an object the principal may not see is
``not_found`` (the same answer as one that does not exist, so ids cannot be probed); a
visible object with a forbidden action is ``forbidden``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import msgspec

from domain.records import (
    CONSENT_CATEGORIES,
    ROLES,
    STAFF_ROLES,
    Conversation,
    FamilyLink,
    Inmate,
    MessageKind,
    User,
    Visit,
)

ConversationAction = Literal["read", "send", "note", "typing", "mark_read", "watch"]

# What each role may do with a conversation it can see.
CONVERSATION_ACTIONS: dict[str, frozenset[str]] = {
    "relative": frozenset({"read", "send", "typing", "mark_read", "watch"}),
    "officer": frozenset({"read", "send", "note", "typing", "mark_read", "watch"}),
    "supervisor": frozenset({"read", "watch"}),  # watch live, read-only, leaves no read mark
    "admin": frozenset(),
}


class Denied(Exception):
    def __init__(
        self, code: Literal["not_found", "forbidden", "consent_withheld"], message: str
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in user and the facts its permissions depend on."""

    user: User
    verified_inmates: frozenset[int] = frozenset()
    inmate_prisons: frozenset[int] = frozenset()  # the prisons of the verified inmates
    # the shared threads of family cases it is a member of: (conversation, join seq)
    family_joins: tuple[tuple[int, int], ...] = ()

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def followed_prisons(self) -> tuple[int, ...]:
        """Staff follow their prisons (queue, presence); a relative, those of its verified
        inmates (on-duty count, announcements, complaints it may file)."""
        return self.user.prison_ids if self.is_staff else tuple(sorted(self.inmate_prisons))

    @property
    def is_staff(self) -> bool:
        return self.user.role in STAFF_ROLES


def relative_sees(
    relative_id: int,
    verified_inmates: Collection[int],
    conv: Conversation,
    family_joins: Iterable[tuple[int, int]] = (),
) -> bool:
    """A relative sees its own conversations, and the shared thread of a family case it is a
    member of, and only while it is verified for the inmate."""
    if conv.inmate_id not in verified_inmates:
        return False
    return conv.relative_id == relative_id or any(c == conv.id for c, _ in family_joins)


def sees_conversation(who: Principal, conv: Conversation) -> bool:
    role = who.user.role
    if role == "relative":
        return relative_sees(who.id, who.verified_inmates, conv, who.family_joins)
    if role in ("officer", "supervisor"):
        return conv.prison_id in who.user.prison_ids
    return False


def check_conversation(who: Principal, conv: Conversation, action: ConversationAction) -> None:
    if not sees_conversation(who, conv):
        raise Denied("not_found", "no such conversation")
    if action not in CONVERSATION_ACTIONS[who.user.role]:
        raise Denied("forbidden", f"a {who.user.role} may not {action.replace('_', ' ')} here")


# Accounts, family links and administration (REST). Anyone may register and log in; every
# other action needs a principal (``NotSignedIn`` -> 401 ``not_authenticated``).


class NotSignedIn(Exception):
    """No live session: answered 401 ``not_authenticated``."""


ALL_ROLES: frozenset[str] = frozenset(ROLES)

# Actions that name no object, and the roles that may take them.
ApiAction = Literal["session", "link.request", "link.list", "admin", "notify", "delivery.read"]
API_ACTIONS: dict[str, frozenset[str]] = {
    "session": ALL_ROLES,  # who am I, log out
    "link.request": frozenset({"relative"}),
    "link.list": ALL_ROLES,  # each sees its own scope (link_scope)
    "admin": frozenset({"admin"}),  # prisons, staff accounts, session revocation
    # a relative's own ways of being told: WeChat binding, Web Push devices, channel choice
    "notify": frozenset({"relative"}),
    # whether and how a notification reached a relative (each sees its own scope: a relative
    # its own, staff the conversations they may read)
    "delivery.read": ALL_ROLES,
}

LinkAction = Literal["read", "verify", "reject", "revoke"]
# What each role may do with a link it can see.
LINK_ACTIONS: dict[str, frozenset[str]] = {
    "relative": frozenset({"read"}),
    "officer": frozenset({"read", "verify", "reject", "revoke"}),
    "supervisor": frozenset({"read", "revoke"}),
    "admin": frozenset({"read", "revoke"}),
}


def signed_in(who: Principal | None) -> Principal:
    if who is None:
        raise NotSignedIn("sign in first")
    return who


def check_action(who: Principal | None, action: ApiAction) -> Principal:
    """The principal if it may take ``action``; ``NotSignedIn`` or ``Denied("forbidden")``."""
    who = signed_in(who)
    if who.user.role not in API_ACTIONS[action]:
        raise Denied("forbidden", f"a {who.user.role} may not do this")
    return who


def sees_link(who: Principal, link: FamilyLink) -> bool:
    role = who.user.role
    if role == "relative":
        return link.relative_id == who.id
    if role in ("officer", "supervisor"):
        return link.prison_id is not None and link.prison_id in who.user.prison_ids
    return role == "admin"


def check_link(who: Principal | None, link: FamilyLink | None, action: LinkAction) -> FamilyLink:
    """The link if ``who`` may do ``action`` on it. ``None`` (no such link) and a link it may
    not see get the same ``not_found``."""
    who = signed_in(who)
    if link is None or not sees_link(who, link):
        raise Denied("not_found", "no such link request")
    if action not in LINK_ACTIONS[who.user.role]:
        raise Denied("forbidden", f"a {who.user.role} may not {action} a link request")
    return link


@dataclass(frozen=True)
class LinkScope:
    """Which links a principal lists: ``None`` fields do not filter."""

    relative_id: int | None = None
    prison_ids: tuple[int, ...] | None = None


def link_scope(who: Principal | None) -> LinkScope:
    who = check_action(who, "link.list")
    if who.user.role == "relative":
        return LinkScope(relative_id=who.id)
    if who.user.role in ("officer", "supervisor"):
        return LinkScope(prison_ids=who.user.prison_ids)
    return LinkScope()  # admin: the whole bureau


def shows_link_details(who: Principal, link: FamilyLink) -> bool:
    """Whether ``who`` is shown the inmate a link matched and the relative's identity: staff
    always; a relative only its inmate, and only once verified (an answer to a request must
    not tell whether the inmate exists)."""
    return who.is_staff or link.state == "verified"


# --- the staff life cycle and passwords ---
# The admin disables and re-enables accounts, changes a staff account's name and prisons, and
# sets a new password for anyone; never for itself through these routes (its own password
# goes through the signed-in change, so the bureau cannot lock itself out by a slip).
# An officer may set a new password only for a relative who has a family link (any state)
# with its own prison: the staff-assisted reset at the visit desk, for a relative without its
# phone. Everyone changes its own password with the old one.
AccountAction = Literal["disable", "enable", "edit", "reset_password"]


def check_account(
    who: Principal | None, target: User, action: AccountAction, linked_prisons: Iterable[int] = ()
) -> User:
    """``target`` if ``who`` may take ``action`` on it; ``Denied("forbidden")`` otherwise.
    ``linked_prisons``: the prisons ``target`` (a relative) has family links with."""
    who = signed_in(who)
    role = who.user.role
    if role == "admin":
        if target.id == who.id:
            raise Denied("forbidden", "an admin does not act on its own account here")
        if action == "edit" and target.role == "relative":
            raise Denied("forbidden", "a relative's account is its own to edit")
        return target
    if (
        role == "officer"
        and action == "reset_password"
        and target.role == "relative"
        and set(linked_prisons) & set(who.user.prison_ids)
    ):
        return target
    raise Denied("forbidden", f"a {role} may not {action.replace('_', ' ')} this account")


# --- watching and the audit trail: supervisors watch, read the audit trail and the overview ---
# Supervisors watch conversations of their prisons read-only (``CONVERSATION_ACTIONS`` above:
# "read" and "watch" only, so no send, note, typing or read mark) and every look is audited.
# They read the audit trail and the live overview of their prisons; the admin, of every prison.

AuditAndOverviewAction = Literal["audit.read", "overview.read"]
AUDIT_AND_OVERVIEW_READERS: dict[str, frozenset[str]] = {
    "audit.read": frozenset({"supervisor", "admin"}),
    "overview.read": frozenset({"supervisor", "admin"}),
}


def _reads_audit_or_overview(who: Principal, action: AuditAndOverviewAction) -> Principal:
    if who.user.role not in AUDIT_AND_OVERVIEW_READERS[action]:
        raise Denied("forbidden", f"a {who.user.role} may not do this")
    return who


def audit_scope(who: Principal | None, prison: int | None = None) -> tuple[int, ...] | None:
    """The prisons whose audit entries ``who`` may read, narrowed to ``prison`` when given;
    ``None`` means every entry (the admin, unfiltered: entries of no prison included).
    A supervisor reads only its prisons' entries; naming another prison is ``forbidden``."""
    who = _reads_audit_or_overview(signed_in(who), "audit.read")
    if who.user.role == "admin":
        return None if prison is None else (prison,)
    if prison is None:
        return who.user.prison_ids
    if prison not in who.user.prison_ids:
        raise Denied("forbidden", "you do not supervise this prison")
    return (prison,)


def check_overview(who: Principal | None, prison: int) -> Principal:
    """A supervisor reads the overview of its own prisons; the admin, of any prison."""
    who = _reads_audit_or_overview(signed_in(who), "overview.read")
    if who.user.role == "supervisor" and prison not in who.user.prison_ids:
        raise Denied("forbidden", "you do not supervise this prison")
    return who


def audits_opening(who: Principal) -> bool:
    """Whether ``who`` opening a conversation (socket ``watch``, REST history) is itself an
    audited access: a supervisor's reading is oversight, and oversight is overseen."""
    return who.user.role == "supervisor"


# Oversight the family can see: the supervisors' openings of a conversation (the audit
# entries ``audits_opening`` makes, which nobody can change or delete) are read by the
# conversation's relative and by the staff of its prison; the admin reads them in the audit
# trail. Reading the list is not itself an opening.
OPENINGS_READERS: frozenset[str] = frozenset({"relative", "officer", "supervisor"})


def check_openings(who: Principal | None, conv: Conversation | None) -> Conversation:
    """The conversation if ``who`` may read who opened it; one it may not see (or none) is
    ``not_found``, and so is any conversation for the admin (it reads no conversation)."""
    who = signed_in(who)
    if conv is None or who.user.role not in OPENINGS_READERS or not sees_conversation(who, conv):
        raise Denied("not_found", "no such conversation")
    return conv


def opening_audience(conv_id: int) -> Watchers:
    """A supervisor's opening is told live to whoever watches the conversation: its relative
    sees it happen, as the staff do."""
    return Watchers(conv_id)


# --- figures ---
# Who reads which figures (GET /stats, GET /stats/bureau). Per-prison figures (volumes and
# response times) are for the staff of the prison and the bureau: an officer reads its own
# prison's, a supervisor those of its prisons, the admin any prison's. A prison one may not
# read is answered like one that does not exist (404). Bureau figures include complaint
# figures, so they are the admin's alone: officers never see a complaint figure.

FigureKind = Literal["prison", "bureau"]
FIGURE_READERS: dict[str, frozenset[str]] = {
    "prison": frozenset({"officer", "supervisor", "admin"}),
    "bureau": frozenset({"admin"}),
}


def check_figures(who: Principal | None, kind: FigureKind) -> Principal:
    """The principal if its role may read ``kind`` figures at all; else 401 or 403."""
    who = signed_in(who)
    if who.user.role not in FIGURE_READERS[kind]:
        raise Denied("forbidden", f"a {who.user.role} may not read these figures")
    return who


def figure_prisons(who: Principal | None, prison_id: int | None) -> tuple[int, ...] | None:
    """The prisons whose figures ``who`` reads: ``prison_id`` when it may (else ``not_found``),
    or, with no prison named, all it may read (``None``: every prison, for the admin)."""
    who = check_figures(who, "prison")
    everywhere = who.user.role == "admin"
    if prison_id is None:
        return None if everywhere else tuple(who.user.prison_ids)
    if not everywhere and prison_id not in who.user.prison_ids:
        raise Denied("not_found", "no such prison")
    return (prison_id,)


# --- complaints and announcements (and supervisors' public profiles) ---
# Complaints go to supervisors, never to officers of the prison complained about. A verified
# relative files about a prison where it has a verified inmate; any relative files about a
# decision that refused it something (its link rejected or revoked, its visit declined, its
# complaint closed: ``DecisionFacts``), even with no verified inmate left, and escalates its
# own answered complaint to the bureau once ("appeal"); an officer files on behalf of
# an inmate of its own prison. Visible to the complainant when it is a relative, to the
# prison's supervisors and to the admin. Officers see no complaint at all: not even one they
# filed on an inmate's behalf, past the 201 reply (it may concern their colleagues), so they
# list nothing (403) and read nothing (404). The prison's supervisors move a complaint through
# its states; once escalated to the bureau, the admin does (and the supervisors no longer).
# Announcements: the admin posts bureau-wide or for any prison, an officer for its own prison
# only. The public prison page needs no sign-in; the admin sets supervisors' public profiles.


@dataclass(frozen=True)
class ComplaintFacts:
    """What the rules need to know of a complaint."""

    prison_id: int
    complainant_id: int
    escalated: bool  # escalated to the bureau at some point


# "appeal": the complainant's own escalation of an answered complaint to the bureau (once)
ComplaintAction = Literal["read", "transition", "answer", "escalate", "appeal"]
ComplaintsAndAnnouncementsAction = Literal[
    "complaint.file", "complaint.list", "announcement.post", "profile.set"
]
COMPLAINTS_AND_ANNOUNCEMENTS: dict[str, frozenset[str]] = {
    "complaint.file": frozenset({"relative", "officer"}),
    "complaint.list": frozenset({"relative", "supervisor", "admin"}),  # each its own scope
    "announcement.post": frozenset({"officer", "admin"}),
    "profile.set": frozenset({"admin"}),  # a supervisor's public profile
}


def check_complaints_and_announcements(
    who: Principal | None, action: ComplaintsAndAnnouncementsAction
) -> Principal:
    """The principal if its role may take ``action`` at all (the object, if any, is checked
    after: ``check_complaint_filing``, ``check_complaint``, ``check_announcement``)."""
    who = signed_in(who)
    if who.user.role not in COMPLAINTS_AND_ANNOUNCEMENTS[action]:
        raise Denied("forbidden", f"a {who.user.role} may not do this")
    return who


DecisionKind = Literal["link", "visit", "complaint"]


@dataclass(frozen=True)
class DecisionFacts:
    """A decision a complaint is about, as the handler found it: whom it was about (the
    relative who asked, or the complainant), its prison, and whether it refused them
    something (a link rejected or revoked, a visit declined, a complaint closed)."""

    kind: DecisionKind
    relative_id: int
    prison_id: int | None
    refusal: bool


def is_refusal(kind: DecisionKind, state: str) -> bool:
    """The decisions a relative may contest: the ones that refused it something."""
    refusals = {"link": ("rejected", "revoked"), "visit": ("declined",), "complaint": ("closed",)}
    return state in refusals[kind]


@dataclass(frozen=True)
class ComplaintFiling:
    """What a complaint names, as the handler found it: ``inmate_prison_id`` and
    ``conversation`` are ``None`` when the named id exists nowhere. ``followed_prisons``: for
    a relative, the prisons of its verified inmates."""

    prison_id: int
    inmate_id: int | None = None
    inmate_prison_id: int | None = None  # the named inmate's prison
    conversation_id: int | None = None
    conversation: Conversation | None = None
    followed_prisons: frozenset[int] = frozenset()
    # the decision the complaint contests: ``about_named`` when the form names one,
    # ``about`` ``None`` when it exists nowhere
    about_named: bool = False
    about: DecisionFacts | None = None


def complaint_needs_inmate(who: Principal) -> bool:
    """An officer files only on behalf of a named inmate (a relative may name one)."""
    return who.user.role == "officer"


def contests_own_refusal(who: Principal, filing: ComplaintFiling) -> bool:
    """Whether the complaint contests a refusal of ``who``'s own in the named prison. Such a
    complaint needs no verified inmate: a relative whose link was rejected or revoked may
    still complain about that decision (and read its complaint), and nothing else opens."""
    about = filing.about
    return (
        who.user.role == "relative"
        and about is not None
        and about.relative_id == who.id
        and about.refusal
        and about.prison_id == filing.prison_id
    )


def check_complaint_filing(who: Principal | None, filing: ComplaintFiling) -> Principal:
    """Who may file this complaint. A decision named (``about``) must be the relative's own
    (another's, or none, is ``not_found``) and a refusal (else ``forbidden``); officers name
    none (``forbidden``)."""
    who = check_complaints_and_announcements(who, "complaint.file")
    relative = who.user.role == "relative"
    if filing.about_named:
        if not relative:
            raise Denied("forbidden", "only the relative a decision refused complains about it")
        about = filing.about
        if about is None or about.relative_id != who.id:
            raise Denied("not_found", "no such decision")
        if not about.refusal:
            raise Denied("forbidden", "only a decision that refused you something is contested")
        if about.prison_id is None or about.prison_id != filing.prison_id:
            raise Denied("forbidden", "the decision was made in another prison")
    if (
        relative
        and filing.prison_id not in filing.followed_prisons
        and not (contests_own_refusal(who, filing))
    ):
        raise Denied(
            "forbidden", "you may complain only about a prison where you have a verified inmate"
        )
    if not relative and filing.prison_id not in who.user.prison_ids:
        raise Denied("forbidden", "an officer files complaints for inmates of its own prison")
    named_inmate = filing.inmate_id
    if named_inmate is not None and (
        filing.inmate_prison_id != filing.prison_id
        or (relative and named_inmate not in who.verified_inmates)
    ):
        raise Denied("not_found", "no such inmate")
    if filing.conversation_id is not None:
        conv = filing.conversation
        if conv is None or conv.prison_id != filing.prison_id or not sees_conversation(who, conv):
            raise Denied("not_found", "no such conversation")
    return who


@dataclass(frozen=True)
class ComplaintScopeRule:
    """Which complaints a principal lists: ``None`` fields do not filter."""

    complainant_id: int | None = None
    prison_ids: tuple[int, ...] | None = None


def complaint_scope(who: Principal | None) -> ComplaintScopeRule:
    """A relative lists its own complaints, a supervisor its prisons', the admin all; an
    officer none (403)."""
    who = check_complaints_and_announcements(who, "complaint.list")
    if who.user.role == "relative":
        return ComplaintScopeRule(complainant_id=who.id)
    if who.user.role == "supervisor":
        return ComplaintScopeRule(prison_ids=who.user.prison_ids)
    return ComplaintScopeRule()


def sees_complaint(who: Principal, complaint: ComplaintFacts) -> bool:
    role = who.user.role
    if role == "relative":
        return complaint.complainant_id == who.id
    if role == "supervisor":
        return complaint.prison_id in who.user.prison_ids
    return role == "admin"  # officers: never, not even a complaint they filed


def complaint_audience(complaint: ComplaintFacts, users: Iterable[User]) -> list[int]:
    """Of ``users``, those told of the complaint's changes live: whoever sees it (never an
    officer, not even one who filed it on an inmate's behalf)."""
    return [user.id for user in users if sees_complaint(Principal(user), complaint)]


def handles_complaint(who: Principal, complaint: ComplaintFacts) -> bool:
    """Who moves a complaint: its prison's supervisors; once escalated, the admin."""
    if complaint.escalated:
        return who.user.role == "admin"
    return who.user.role == "supervisor" and complaint.prison_id in who.user.prison_ids


def check_complaint(
    who: Principal | None, complaint: ComplaintFacts | None, action: ComplaintAction
) -> Principal:
    """The complaint if ``who`` may do ``action`` on it. ``None`` (no such complaint) and one
    it may not see get the same ``not_found``."""
    who = signed_in(who)
    if complaint is None or not sees_complaint(who, complaint):
        raise Denied("not_found", "no such complaint")
    if action == "appeal":  # the complainant's own escalation; the store allows it once
        if who.user.role != "relative" or complaint.complainant_id != who.id:
            raise Denied("forbidden", "only the complainant escalates its complaint")
        return who
    if action != "read" and not handles_complaint(who, complaint):
        raise Denied(
            "forbidden",
            "the bureau handles an escalated complaint"
            if complaint.escalated
            else "only the prison's supervisors handle this complaint",
        )
    return who


def check_announcement(who: Principal | None, prison_id: int | None) -> Principal:
    """The admin posts bureau-wide (``None``) or for any prison; an officer for its own."""
    who = check_complaints_and_announcements(who, "announcement.post")
    if who.user.role == "officer" and (prison_id is None or prison_id not in who.user.prison_ids):
        raise Denied("forbidden", "an officer posts announcements for its own prison only")
    return who


# --- information and visits ---
# An inmate's information card is read by its verified relatives and by the staff (officers,
# supervisors) of its prison, and changed only by officers of that prison; to anyone else the
# inmate does not exist (404). Supervisors read cards and visits and change nothing. The admin
# manages the bureau, not inmates: it sets visit rules (with the prison's officers) and sees
# no card or visit. A fact card is a system message an officer puts into a conversation of
# its prison. Visits are requested by a relative for an inmate it is verified for, and decided
# by officers of the inmate's prison.


InmateAction = Literal["read", "update"]
INMATE_ACTIONS: dict[str, frozenset[str]] = {
    "relative": frozenset({"read"}),
    "officer": frozenset({"read", "update"}),
    "supervisor": frozenset({"read"}),
    "admin": frozenset(),
}
VisitAction = Literal["read", "decide", "cancel"]
VISIT_ACTIONS: dict[str, frozenset[str]] = {
    "relative": frozenset({"read", "cancel"}),  # its own (sees_visit), never another's
    "officer": frozenset({"read", "decide"}),
    "supervisor": frozenset({"read"}),
    "admin": frozenset(),
}
INMATE_LISTERS: frozenset[str] = frozenset({"officer", "supervisor"})
VISIT_LISTERS: frozenset[str] = frozenset({"relative", "officer", "supervisor"})
VISIT_RULE_SETTERS: frozenset[str] = frozenset({"officer", "admin"})


def sees_inmate(who: Principal, inmate: Inmate) -> bool:
    role = who.user.role
    if role == "relative":
        return inmate.id in who.verified_inmates
    if role in ("officer", "supervisor"):
        return inmate.prison_id in who.user.prison_ids
    return False


def check_inmate(who: Principal | None, inmate: Inmate | None, action: InmateAction) -> Inmate:
    """The inmate if ``who`` may ``read`` or ``update`` its card; one it may not see (or
    none) is ``not_found``, a visible one it may not change ``forbidden``."""
    who = signed_in(who)
    if inmate is None or not sees_inmate(who, inmate):
        raise Denied("not_found", "no such inmate")
    if action not in INMATE_ACTIONS[who.user.role]:
        raise Denied("forbidden", f"a {who.user.role} may not {action} this information card")
    return inmate


def inmate_list_prisons(who: Principal | None, prison_id: int | None) -> tuple[int, ...]:
    """The prisons whose inmates ``who`` lists: its own (officers, supervisors), or the one
    named if it is one of them; naming another prison, or being another role, is forbidden."""
    who = signed_in(who)
    if who.user.role not in INMATE_LISTERS:
        raise Denied("forbidden", f"a {who.user.role} may not list inmates")
    if prison_id is None:
        return who.user.prison_ids
    if prison_id not in who.user.prison_ids:
        raise Denied("forbidden", "you are not staff of this prison")
    return (prison_id,)


def check_fact(who: Principal | None, conv: Conversation | None) -> Conversation:
    """An officer of the conversation's prison may put a fact card into it."""
    who = signed_in(who)
    if conv is None or not sees_conversation(who, conv):
        raise Denied("not_found", "no such conversation")
    if who.user.role != "officer":
        raise Denied("forbidden", f"a {who.user.role} may not post a fact card")
    return conv


def check_visit_request(who: Principal | None, inmate: Inmate | None) -> Inmate:
    """A relative asks to visit an inmate it is verified for (another inmate: not_found)."""
    who = signed_in(who)
    if who.user.role != "relative":
        raise Denied("forbidden", f"a {who.user.role} may not request a visit")
    if inmate is None or inmate.id not in who.verified_inmates:
        raise Denied("not_found", "no such inmate")
    return inmate


def sees_visit(who: Principal, visit: Visit) -> bool:
    role = who.user.role
    if role == "relative":
        return visit.relative_id == who.id and visit.inmate_id in who.verified_inmates
    if role in ("officer", "supervisor"):
        return visit.prison_id in who.user.prison_ids
    return False


def check_visit(who: Principal | None, visit: Visit | None, action: VisitAction) -> Visit:
    who = signed_in(who)
    if visit is None or not sees_visit(who, visit):
        raise Denied("not_found", "no such visit request")
    if action not in VISIT_ACTIONS[who.user.role]:
        raise Denied("forbidden", f"a {who.user.role} may not {action} a visit request")
    return visit


@dataclass(frozen=True)
class VisitScope:
    """Which visit requests a principal lists: ``None`` fields do not filter."""

    relative_id: int | None = None
    inmate_ids: tuple[int, ...] | None = None
    prison_ids: tuple[int, ...] | None = None


def visit_scope(who: Principal | None) -> VisitScope:
    """A relative: its own requests, for inmates it is still verified for; staff: their
    prisons'; the admin: none (forbidden)."""
    who = signed_in(who)
    if who.user.role not in VISIT_LISTERS:
        raise Denied("forbidden", f"a {who.user.role} may not list visits")
    if who.user.role == "relative":
        return VisitScope(relative_id=who.id, inmate_ids=tuple(sorted(who.verified_inmates)))
    return VisitScope(prison_ids=who.user.prison_ids)


def check_visit_rules(who: Principal | None, prison_id: int | None) -> Principal:
    """Officers of the prison and the admin set its visit rules (prisons are public, so a
    prison one may not change is ``forbidden``; ``None``, no such prison, ``not_found``)."""
    who = signed_in(who)
    if prison_id is None:
        raise Denied("not_found", "no such prison")
    role = who.user.role
    if role not in VISIT_RULE_SETTERS or (
        role == "officer" and prison_id not in who.user.prison_ids
    ):
        raise Denied("forbidden", "only the prison's officers or the admin set its visit rules")
    return who


# --- desk ---
# The duty desk. Threads are worked by the officers of their prison: claim a waiting
# question, hand an active one over to a colleague with a note, resolve it, send, write private
# notes (never shown to relatives), manage the prison's canned replies, go on and off duty.
# A relative opens the thread about an inmate it is verified for, reads it (never the notes),
# sends, and rates an answer once per cycle. Supervisors read the threads and queues of their
# prisons and the canned replies, and change nothing (each history read is audited:
# ``audits_opening``). The admin reads no conversation, but lists the threads of every prison
# and unsticks one whoever holds it: hands it to an officer on duty, returns it to the queue,
# or resolves it. Sending and reading follow ``CONVERSATION_ACTIONS``, the same rules as the
# socket. Who holds a thread, and whether an officer is on duty, are facts of the moment,
# settled by the store under the rows' locks (409 naming the holder, 409 ``off_duty``): the
# policy says who may try.

DeskAction = Literal["claim", "transfer", "resolve", "release", "rate"]
DESK_ACTIONS: dict[str, frozenset[str]] = {
    "relative": frozenset({"rate"}),
    "officer": frozenset({"claim", "transfer", "resolve", "release"}),
    "supervisor": frozenset(),
    "admin": frozenset({"transfer", "resolve", "release"}),
}
THREAD_LISTERS: frozenset[str] = frozenset({"relative", "officer", "supervisor", "admin"})
CANNED_READERS: frozenset[str] = frozenset({"officer", "supervisor"})
CANNED_WRITERS: frozenset[str] = frozenset({"officer"})
DUTY_SETTERS: frozenset[str] = frozenset({"officer"})


def check_thread(
    who: Principal | None,
    conv: Conversation | None,
    action: DeskAction | Literal["read", "send", "note"],
) -> Principal:
    """``who`` if it may do ``action`` on the thread; one it may not see (or none) is
    ``not_found``, a visible one whose action its role may not take ``forbidden``."""
    who = signed_in(who)
    role = who.user.role
    if conv is not None and role == "admin" and action in DESK_ACTIONS["admin"]:
        return who  # any prison's thread, without reading it
    if conv is None or not sees_conversation(who, conv):
        raise Denied("not_found", "no such conversation")
    allowed = (
        CONVERSATION_ACTIONS[role] if action in ("read", "send", "note") else DESK_ACTIONS[role]
    )
    if action not in allowed:
        raise Denied("forbidden", f"a {role} may not {action} this conversation")
    return who


@dataclass(frozen=True)
class ThreadScope:
    """Which threads a principal lists: ``None`` fields do not filter."""

    relative_id: int | None = None
    prison_ids: tuple[int, ...] | None = None
    inmate_ids: tuple[int, ...] | None = None  # a relative: the inmates it is verified for


def thread_scope(who: Principal | None, prison: int | None = None) -> ThreadScope:
    """A relative lists its own threads; officers and supervisors the queue of their prisons
    (or of the one named, if theirs: another is ``forbidden``); the admin every prison's (or
    the one named), to find a thread to unstick."""
    who = signed_in(who)
    role = who.user.role
    if role not in THREAD_LISTERS:
        raise Denied("forbidden", f"a {role} may not list conversations")
    if role == "admin":
        return ThreadScope(prison_ids=None if prison is None else (prison,))
    if role == "relative":
        return ThreadScope(
            relative_id=who.id,
            prison_ids=None if prison is None else (prison,),
            inmate_ids=tuple(sorted(who.verified_inmates)),
        )
    if prison is None:
        return ThreadScope(prison_ids=who.user.prison_ids)
    if prison not in who.user.prison_ids:
        raise Denied("forbidden", "you are not staff of this prison")
    return ThreadScope(prison_ids=(prison,))


def check_open_thread(who: Principal | None, inmate_id: int) -> Principal:
    """A relative opens the thread about an inmate it is verified for (any other inmate, real
    or not, is ``not_found``); nobody else opens threads."""
    who = signed_in(who)
    if who.user.role != "relative":
        raise Denied("forbidden", f"a {who.user.role} may not open a conversation")
    if inmate_id not in who.verified_inmates:
        raise Denied("not_found", "no such inmate")
    return who


def desk_duty_required(who: Principal) -> bool:
    """An officer claims, resolves and hands over only while on duty (and to a colleague on
    duty); the admin is on no duty."""
    return who.user.role == "officer"


def acts_for_any_holder(who: Principal) -> bool:
    """The admin transfers, releases and resolves a thread whoever holds it (an officer only
    its own)."""
    return who.user.role == "admin"


def shows_staff_side(who: Principal) -> bool:
    """Notes, hand-over notes: for staff of the thread's prison only, never for a relative."""
    return who.is_staff


def check_record_export(who: Principal | None, conv: Conversation | None) -> Principal:
    """A conversation's verifiable record (hash chain export): exactly who may read the
    conversation (``check_thread`` "read"); what it shows of notes is ``record_shows_notes``,
    and a supervisor's export is an audited look (``audits_opening``) like its history."""
    return check_thread(who, conv, "read")


def record_shows_notes(who: Principal) -> bool:
    """Whether a record export lists notes' text; otherwise each note is its hash only."""
    return shows_staff_side(who)


def canned_prisons(who: Principal | None, prison: int | None = None) -> tuple[int, ...]:
    """The prisons whose canned replies ``who`` reads: its own (officers, supervisors), or the
    one named if it is one of them (another is ``forbidden``)."""
    who = signed_in(who)
    if who.user.role not in CANNED_READERS:
        raise Denied("forbidden", f"a {who.user.role} may not use canned replies")
    if prison is None:
        return who.user.prison_ids
    if prison not in who.user.prison_ids:
        raise Denied("forbidden", "you are not staff of this prison")
    return (prison,)


def check_canned(who: Principal | None, prison_id: int | None) -> Principal:
    """An officer manages its prison's canned replies. Roles that never use canned replies
    are ``forbidden`` before anything is looked up; a reply of another prison (or none,
    ``prison_id`` ``None``) is ``not_found``; a supervisor's change ``forbidden``."""
    who = signed_in(who)
    role = who.user.role
    if role not in CANNED_READERS:
        raise Denied("forbidden", f"a {role} may not use canned replies")
    if prison_id is None or prison_id not in who.user.prison_ids:
        raise Denied("not_found", "no such canned reply")
    if role not in CANNED_WRITERS:
        raise Denied("forbidden", f"a {role} may not change canned replies")
    return who


def check_duty(who: Principal | None) -> Principal:
    """Only an officer goes on or off duty."""
    who = signed_in(who)
    if who.user.role not in DUTY_SETTERS:
        raise Denied("forbidden", f"a {who.user.role} does not go on duty")
    return who


def duty_scope(who: Principal) -> tuple[int, ...] | None:
    """The prisons whose on-duty state ``who`` reads: the ones it follows (staff: its own; a
    relative: its verified inmates'); ``None``: every prison, for the admin."""
    return None if who.user.role == "admin" else who.followed_prisons


def duty_names_shown(who: Principal) -> bool:
    """Staff see who is on duty; relatives only how many."""
    return who.is_staff


# --- who is told ---
# Who is told of each event, live. Everyone told may see what the event is about; staff-only
# parts (notes, hand-over notes, the names of officers on duty) reach staff only. The
# recipients are groups, not topics: ``server/audience.py`` maps them onto the hub's topics and
# publishes, and every event goes out through it. A group is the sockets watching one
# conversation (``Watchers``: those who may watch it, ``CONVERSATION_ACTIONS``), the staff of a
# prison, the relatives with a verified inmate in a prison, every relative with a verified
# inmate (``BureauRelatives``), or one user wherever it is connected (``Person``). Live events
# are hints: whoever is not told (or misses one) re-reads the state over REST. Recipients are
# msgspec structs, not dataclasses: one is made per message on the send path, and a frozen
# dataclass costs several times as much to build.


class Watchers(msgspec.Struct, frozen=True):
    """The sockets watching a conversation; ``staff_only``: of those, the staff's."""

    conv: int
    staff_only: bool = False


class PrisonStaff(msgspec.Struct, frozen=True):
    """The officers and supervisors of a prison."""

    prison: int


class PrisonRelatives(msgspec.Struct, frozen=True):
    """The relatives with a verified inmate in a prison."""

    prison: int


class BureauRelatives(msgspec.Struct, frozen=True):
    """Every relative with at least one verified inmate."""


class Person(msgspec.Struct, frozen=True):
    """One user, on every socket it has open."""

    user: int


Recipient = Watchers | PrisonStaff | PrisonRelatives | BureauRelatives | Person


def message_audience(conv_id: int, kind: MessageKind) -> Watchers:
    """A message goes to whoever watches its conversation; a private note to staff only."""
    return Watchers(conv_id, staff_only=kind == "note")


def activity_audience(conv_id: int) -> Watchers:
    """Typing and read marks go to everyone watching the conversation (who may not type or
    mark read there was refused before anything was told: ``CONVERSATION_ACTIONS``)."""
    return Watchers(conv_id)


ThreadEventKind = Literal["created", "reopened", "claimed", "transferred", "resolved", "released"]


@dataclass(frozen=True)
class ThreadChange:
    """What the rules need to know of a change of a thread's state. ``by_message``: made by a
    message in its own transaction (a relative's question opening a cycle, an officer's
    answer claiming it); otherwise by staff over REST, and ``relative_verified`` holds the
    relative's verified inmates as read after the change."""

    conv: Conversation
    event: ThreadEventKind
    by_message: bool = False
    relative_verified: frozenset[int] = frozenset()
    # the shared thread of a family case: the relatives who read it, as read after the change
    # (its own relative among them while verified)
    readers: frozenset[int] = frozenset()


@dataclass(frozen=True)
class ThreadAudience:
    staff: PrisonStaff  # told with the staff side (the hand-over note)
    relative: Person | None  # told without it, or not at all
    members: tuple[Person, ...] = ()  # a family case's other readers, told without it too


def thread_change_audience(change: ThreadChange) -> ThreadAudience:
    """The prison's staff are told of every change, with the staff side. The relative is
    told, without it, only while it may still see the thread: of a cycle its own question
    opened (it was allowed to ask a moment ago), and of a change by staff while it is still
    verified for the inmate. A claim made by an officer's answer is not told to the relative:
    the answer itself reaches it."""
    conv = change.conv
    if change.by_message:
        told = change.event in ("created", "reopened")
    else:
        told = relative_sees(conv.relative_id, change.relative_verified, conv)
    members = () if change.by_message else family_thread_audience(conv, change.readers)
    return ThreadAudience(
        PrisonStaff(conv.prison_id), Person(conv.relative_id) if told else None, members
    )


def family_thread_audience(conv: Conversation, readers: Iterable[int]) -> tuple[Person, ...]:
    """A change of a family case's shared thread by staff is also told to the other relatives
    who read it now (members still verified), never to one whose link ended."""
    return tuple(Person(r) for r in sorted(set(readers)) if r != conv.relative_id)


def visit_audience(visit: Visit, *, decided: bool) -> tuple[Recipient, ...]:
    """A request goes to the staff of the inmate's prison, who decide it; a decision also to
    the relative who asked."""
    staff = PrisonStaff(visit.prison_id)
    return (Person(visit.relative_id), staff) if decided else (staff,)


def link_audience(link: FamilyLink) -> tuple[Recipient, ...]:
    """A decision on a family link is told to the relative who asked for it."""
    return (Person(link.relative_id),)


def card_audience(verified_relatives: Iterable[int]) -> tuple[Recipient, ...]:
    """A change of an inmate's card is told to its verified relatives and to no one else
    (staff read the card when they open it)."""
    return tuple(Person(relative) for relative in verified_relatives)


def complaint_recipients(complaint: ComplaintFacts, users: Iterable[User]) -> tuple[Recipient, ...]:
    """A complaint's change goes to the user topics of ``complaint_audience``: never to a
    prison's staff topic, which officers listen on."""
    return tuple(Person(user) for user in complaint_audience(complaint, users))


@dataclass(frozen=True)
class PresenceAudience:
    named: PrisonStaff  # told who is on duty (``duty_names_shown``)
    counted: PrisonRelatives  # told how many


def presence_audience(prison: int) -> PresenceAudience:
    """Who is on duty in a prison: its staff see the names, its relatives the count."""
    return PresenceAudience(PrisonStaff(prison), PrisonRelatives(prison))


def announcement_audience(prison_id: int | None) -> Recipient:
    """A prison's announcement goes to the relatives with a verified inmate there; a
    bureau-wide one (``None``) to every relative with a verified inmate. Staff are not told
    live (they read the list)."""
    return BureauRelatives() if prison_id is None else PrisonRelatives(prison_id)


# --- the bureau's inmate register ---
# The admin keeps the register of every prison: lists inmates, adds them, imports a prison's
# export, transfers an inmate to another prison, releases or archives one. Nobody else changes
# the register: an officer or supervisor is answered ``forbidden`` for an inmate of its own
# prisons and ``not_found`` for any other (``sees_inmate``), a relative ``not_found`` unless
# verified for it. A relative reads its own notices (a link ended by a release, a transfer).

RegisterAction = Literal["list", "add", "import", "transfer", "release", "archive"]
REGISTER_ACTIONS: dict[str, frozenset[str]] = {
    "relative": frozenset(),
    "officer": frozenset(),
    "supervisor": frozenset(),
    "admin": frozenset({"list", "add", "import", "transfer", "release", "archive"}),
}
NOTICE_READERS: frozenset[str] = frozenset({"relative"})


def check_register(who: Principal | None, action: RegisterAction) -> Principal:
    """The principal if its role may take ``action`` on the register at all."""
    who = signed_in(who)
    if action not in REGISTER_ACTIONS[who.user.role]:
        raise Denied("forbidden", f"a {who.user.role} may not change the inmate register")
    return who


def check_register_inmate(
    who: Principal | None, inmate: Inmate | None, action: RegisterAction
) -> Inmate:
    """The inmate if ``who`` may ``action`` it: the admin, for any inmate; anyone else gets
    ``not_found`` for an inmate it may not see (or none) and ``forbidden`` for one it sees."""
    who = signed_in(who)
    if inmate is None or not (who.user.role == "admin" or sees_inmate(who, inmate)):
        raise Denied("not_found", "no such inmate")
    if action not in REGISTER_ACTIONS[who.user.role]:
        raise Denied("forbidden", f"a {who.user.role} may not {action} an inmate")
    return inmate


def check_notices(who: Principal | None) -> Principal:
    """A relative reads its own notices; staff have none."""
    who = signed_in(who)
    if who.user.role not in NOTICE_READERS:
        raise Denied("forbidden", f"a {who.user.role} has no notices")
    return who


def notice_audience(relative_id: int) -> Person:
    """A notice (a link ended by a release, a transfer) is told to its relative only."""
    return Person(relative_id)


def moved_inmate_staff(users: Iterable[User], from_prison: int) -> list[int]:
    """Of ``users``, the staff of the prison an inmate left: their sockets may be following
    its threads, which they no longer see, so they reconnect and are checked again."""
    return [
        u.id for u in users if u.role in ("officer", "supervisor") and from_prison in u.prison_ids
    ]


# --- consent and the family case ---
# The inmate decides which of its verified relatives may learn which categories of its card
# (``CONSENT_CATEGORIES``), and whether they share one conversation (a family case). An
# officer of the inmate's prison records each decision (audited); the inmate's staff read
# them; a relative reads its own scope only (what is shared with it, and that the rest is the
# inmate's choice). The card a relative reads, the ``info`` pushes it is told and the fact
# cards put into its conversation all follow its scope (no recorded decision: the
# deployment's default, ``KINLINE_CONSENT_DEFAULT``). Staff see the whole card. A member of a
# family case reads the shared thread from its join seq on (``history_floor``), in every read
# path; one no longer verified reads nothing of it (``relative_sees``).

ConsentAction = Literal["read", "record", "family_case"]
CONSENT_ACTIONS: dict[str, frozenset[str]] = {
    "relative": frozenset({"read"}),  # its own scope only (consent_reader)
    "officer": frozenset({"read", "record", "family_case"}),
    "supervisor": frozenset({"read"}),
    "admin": frozenset(),
}
# a fact card's field -> the category of the card it states
FACT_CATEGORY: dict[str, str] = {
    "balance": "money",
    "health": "health",
    "activity": "activity",
    "work": "work",
    "term": "term",
    "visits": "visits",
}


def check_consent(who: Principal | None, inmate: Inmate | None, action: ConsentAction) -> Inmate:
    """The inmate if ``who`` may ``action`` its consent or family case: one it may not see
    (or none) is ``not_found``, a visible one whose action its role may not take
    ``forbidden``."""
    who = signed_in(who)
    if inmate is None or not sees_inmate(who, inmate):
        raise Denied("not_found", "no such inmate")
    if action not in CONSENT_ACTIONS[who.user.role]:
        raise Denied("forbidden", f"a {who.user.role} may not {action.replace('_', ' ')} here")
    return inmate


def consent_reader(who: Principal) -> int | None:
    """Whose scopes ``who`` reads: a relative its own (its id); staff every relative's."""
    return who.id if who.user.role == "relative" else None


def shared_with(recorded: Iterable[str] | None, default: Iterable[str]) -> frozenset[str]:
    """The categories shared with a relative: as recorded, or the default when none is."""
    return frozenset(default if recorded is None else recorded)


def card_parts_shown(who: Principal, shared: Collection[str]) -> frozenset[str]:
    """The parts of an inmate's card ``who`` reads: staff all, a relative what is shared."""
    if who.is_staff:
        return frozenset(CONSENT_CATEGORIES)
    return frozenset(shared)


def card_part_audience(
    verified_relatives: Iterable[int], part: str, shares: Mapping[int, Collection[str]]
) -> tuple[Recipient, ...]:
    """A change of one part of an inmate's card is told to those of its verified relatives
    it is shared with (``shares``: each relative's categories)."""
    return tuple(Person(r) for r in verified_relatives if part in shares.get(r, ()))


def check_fact_consent(field: str, readers: Mapping[int, Collection[str]]) -> None:
    """A fact card is put into a conversation only if every relative who reads it (``readers``:
    each with its shared categories) may learn what it states; otherwise
    ``consent_withheld``, naming the category."""
    category = FACT_CATEGORY[field]
    if any(category not in shared for shared in readers.values()):
        raise Denied(
            "consent_withheld",
            f"the inmate has not agreed to share {category} with"
            + (" this relative" if len(readers) == 1 else " every relative of this conversation"),
        )


def consent_audience(relative_id: int) -> tuple[Recipient, ...]:
    """A decision about what one relative may learn is told to that relative only."""
    return (Person(relative_id),)


def history_floor(who: Principal, conv: Conversation) -> int:
    """The seq after which ``who`` reads a conversation: 0 for its own thread and for staff;
    for a member of a family case, the thread's last seq when it joined (nothing before)."""
    if who.user.role != "relative" or conv.relative_id == who.id:
        return 0
    return next((seq for c, seq in who.family_joins if c == conv.id), 0)


# --- attachments ---
# Relatives and officers upload files (those who write in conversations); supervisors and the
# admin write nothing, so they upload nothing. A file is read exactly as what it belongs to:
# - sent with a message: by whoever may read that message (``check_conversation`` "read";
#   a note's file by staff only; a family case member only from its join on, as for the
#   messages), its uploader too only while it may read the conversation;
# - a link request's evidence: by the relative who asked and the officers who may decide the
#   request (``LINK_ACTIONS`` "verify"), and nobody else (no supervisor, no admin);
# - not sent yet: by its uploader alone.
# Anyone else is answered ``not_found``, as for a file that does not exist.
ATTACHMENT_UPLOADERS: frozenset[str] = frozenset({"relative", "officer"})


@dataclass(frozen=True)
class AttachmentFacts:
    """What the policy needs to know of a file: whose it is and what it belongs to."""

    owner_id: int
    conversation: Conversation | None = None  # of the stored message it was sent with
    message_kind: MessageKind | None = None
    message_seq: int = 0  # that message's seq (a family case member reads from its join on)
    link: FamilyLink | None = None  # the link request it is evidence of


def check_upload(who: Principal | None) -> Principal:
    who = signed_in(who)
    if who.user.role not in ATTACHMENT_UPLOADERS:
        raise Denied("forbidden", f"a {who.user.role} may not upload files")
    return who


def sees_link_evidence(who: Principal, link: FamilyLink) -> bool:
    """The relative who asked, and the officers who may decide the request."""
    if who.user.role == "relative":
        return link.relative_id == who.id
    return "verify" in LINK_ACTIONS[who.user.role] and sees_link(who, link)


def sees_attachment(who: Principal, facts: AttachmentFacts) -> bool:
    if facts.conversation is not None:
        if facts.message_kind == "note" and not who.is_staff:
            return False
        try:
            check_conversation(who, facts.conversation, "read")
        except Denied:
            return False
        return facts.message_seq > history_floor(who, facts.conversation)
    if facts.link is not None:
        return sees_link_evidence(who, facts.link)
    return facts.owner_id == who.id


def check_attachment(who: Principal | None, facts: AttachmentFacts | None) -> Principal:
    """``who`` if it may read the file; ``not_found`` for one it may not (or none)."""
    who = signed_in(who)
    if facts is None or not sees_attachment(who, facts):
        raise Denied("not_found", "no such attachment")
    return who


# --- keyword review ---
# The bureau (admin) keeps the keyword lists; nobody else reads or changes them (a list is a
# tool of oversight, not something a desk should learn to write around). Flagged messages are
# reviewed by the staff of their prison: an officer of the prison and its supervisors list the
# queue of their prisons and mark a flag reviewed with a note. The admin reads flag counts in
# the figures only: it never reads messages. Relatives never learn that a message was flagged.
# A flag (or a prison) one may not see is answered like one that does not exist (404).

KeywordAction = Literal["keywords.read", "keywords.edit", "flags.read", "flags.review"]
KEYWORD_ACTIONS: dict[str, frozenset[str]] = {
    "relative": frozenset(),
    "officer": frozenset({"flags.read", "flags.review"}),
    "supervisor": frozenset({"flags.read", "flags.review"}),
    "admin": frozenset({"keywords.read", "keywords.edit"}),
}


def check_keywords(who: Principal | None, action: KeywordAction) -> Principal:
    """The principal if its role may take ``action`` at all; else 401 or 403."""
    who = signed_in(who)
    if action not in KEYWORD_ACTIONS[who.user.role]:
        raise Denied("forbidden", f"a {who.user.role} may not do this")
    return who


def flag_scope(who: Principal | None, prison_id: int | None) -> tuple[int, ...]:
    """The prisons whose flagged messages ``who`` lists: ``prison_id`` if it is one of its
    own (else ``not_found``), or all of its prisons."""
    who = check_keywords(who, "flags.read")
    if prison_id is None:
        return tuple(who.user.prison_ids)
    if prison_id not in who.user.prison_ids:
        raise Denied("not_found", "no such prison")
    return (prison_id,)


def check_flag_review(who: Principal | None, prison_id: int | None) -> Principal:
    """The principal if it may mark reviewed a flag of ``prison_id`` (``None``: no such
    flag, answered as one it may not see)."""
    who = check_keywords(who, "flags.review")
    if prison_id is None or prison_id not in who.user.prison_ids:
        raise Denied("not_found", "no such flag")
    return who


def audits_flag_reading(who: Principal) -> bool:
    """A supervisor reading flagged messages reads conversations: it is audited (as its
    opening a conversation is); an officer reads its own prison's desk."""
    return who.user.role == "supervisor"


# --- desk settings, comment moderation, per-officer figures and ratings ---
# A prison's desk settings (auto-assignment, the away reply, desk hours) are read by its staff
# (officers, supervisors) and the admin, and changed by the admin alone (audited). A prison
# one may not read is ``not_found``. Comments on announcements: a relative verified for an
# inmate comments on a bureau-wide announcement, or on one of a prison where it has a verified
# inmate (any other announcement is ``not_found`` to it: it may not see it as commentable).
# A comment is shown to others only once approved; its author sees its own pending or
# rejected one. Officers of the announcement's prison and the admin moderate (approve or
# reject, audited); a bureau-wide announcement's comments are the admin's. Supervisors read
# what is approved, like anyone. Per-officer figures (``GET /stats/officers``) and ratings
# (``GET /stats/ratings``) follow ``figure_prisons``: an officer its prison's, a supervisor
# its prisons', the admin any.

DeskSettingsAction = Literal["read", "update"]
DESK_SETTINGS_ACTIONS: dict[str, frozenset[str]] = {
    "relative": frozenset(),
    "officer": frozenset({"read"}),
    "supervisor": frozenset({"read"}),
    "admin": frozenset({"read", "update"}),
}
COMMENTERS: frozenset[str] = frozenset({"relative"})
COMMENT_MODERATORS: frozenset[str] = frozenset({"officer", "admin"})


def check_desk_settings(
    who: Principal | None, prison_id: int, action: DeskSettingsAction
) -> Principal:
    """Staff of the prison read its desk settings, the admin any prison's and changes them."""
    who = signed_in(who)
    role = who.user.role
    if role != "admin" and (role == "relative" or prison_id not in who.user.prison_ids):
        raise Denied("not_found", "no such prison")
    if action not in DESK_SETTINGS_ACTIONS[role]:
        raise Denied("forbidden", f"a {role} may not change the desk settings")
    return who


def check_comment_post(who: Principal | None, announcement_prison: int | None) -> Principal:
    """A verified relative comments on a bureau-wide announcement or one of a prison where it
    has a verified inmate; staff never comment (``forbidden``)."""
    who = signed_in(who)
    if who.user.role not in COMMENTERS:
        raise Denied("forbidden", f"a {who.user.role} may not comment on announcements")
    if not who.verified_inmates:
        raise Denied("forbidden", "only a relative verified for an inmate may comment")
    if announcement_prison is not None and announcement_prison not in who.inmate_prisons:
        raise Denied("not_found", "no such announcement")
    return who


def moderates_comments(who: Principal, announcement_prison: int | None) -> bool:
    """Officers of the announcement's prison and the admin (bureau-wide ones: the admin)."""
    role = who.user.role
    if role == "admin":
        return True
    return (
        role == "officer"
        and announcement_prison is not None
        and announcement_prison in who.user.prison_ids
    )


def check_comment_moderation(who: Principal | None, announcement_prison: int | None) -> Principal:
    """``forbidden`` for a role that never moderates; ``not_found`` for an officer's comment of
    another prison's (or the bureau's) announcement."""
    who = signed_in(who)
    if who.user.role not in COMMENT_MODERATORS:
        raise Denied("forbidden", f"a {who.user.role} may not moderate comments")
    if not moderates_comments(who, announcement_prison):
        raise Denied("not_found", "no such comment")
    return who


def comment_moderation_scope(who: Principal | None) -> tuple[int, ...] | None:
    """Which prisons' comments a moderator lists: an officer its own prisons', the admin every
    one (``None``, bureau-wide ones included)."""
    who = signed_in(who)
    if who.user.role not in COMMENT_MODERATORS:
        raise Denied("forbidden", f"a {who.user.role} may not moderate comments")
    return None if who.user.role == "admin" else tuple(who.user.prison_ids)


def sees_comment(
    who: Principal | None, author_id: int, state: str, announcement_prison: int | None
) -> bool:
    """An approved comment: anyone who reads the announcement. A pending or rejected one: its
    author, and those who moderate it."""
    if state == "approved":
        return True
    if who is None:
        return False
    return who.id == author_id or moderates_comments(who, announcement_prison)


# --- search ---
# GET /search finds messages by their text. Staff search the conversations of their prisons
# (officers and supervisors; naming another prison is ``forbidden``), the admin every
# prison's or the one named; staff find notes too. A relative searches only its own
# conversations (those it may see: ``relative_sees``), never their notes. A supervisor's
# search is oversight, and so is the admin's (the bureau reading message text): each is
# audited before its hits are shown, like a look (``audits_opening``).


@dataclass(frozen=True)
class SearchScope:
    """What a principal's search covers: ``None`` fields do not filter."""

    prison_ids: tuple[int, ...] | None
    relative_id: int | None = None
    inmate_ids: tuple[int, ...] | None = None  # a relative: the inmates it is verified for
    include_notes: bool = False
    audited: bool = False


def search_scope(who: Principal | None, prison: int | None = None) -> SearchScope:
    """The conversations ``who`` searches, narrowed to ``prison`` when given."""
    who = signed_in(who)
    role = who.user.role
    named = None if prison is None else (prison,)
    if role == "relative":
        return SearchScope(
            prison_ids=named, relative_id=who.id, inmate_ids=tuple(sorted(who.verified_inmates))
        )
    if role == "admin":
        return SearchScope(prison_ids=named, include_notes=True, audited=True)
    if prison is not None and prison not in who.user.prison_ids:
        raise Denied("forbidden", "you are not staff of this prison")
    return SearchScope(
        prison_ids=named or who.user.prison_ids,
        include_notes=shows_staff_side(who),
        audited=role == "supervisor",
    )
