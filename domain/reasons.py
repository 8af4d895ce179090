"""The published reason codes: why a decision refused a relative something.

Every refusal (a link request rejected, a verified link revoked, a visit declined, a complaint
closed) carries one of these codes, and optional free text beside it. The list is public
(``GET /api/v1/reasons``), so a family, a lawyer or a supervisor reads the same words the
officer picked, in Chinese or English, and a decision can be contested by what it says.

A code belongs to one or more decision kinds (``DecisionKind``); each ``Reason`` row is one
(kind, code) pair. ``other`` exists for every kind and needs the free text: a decision never
says "other" and nothing else. A decision naming no code is given ``other`` (clients from
before the list sent free text alone). A code not listed for the kind is refused by the API
with 400 ``unknown_reason_code``; ``other`` without text with 400 ``invalid_request``
naming ``reason``.
"""

from __future__ import annotations

from typing import Literal

import msgspec

DecisionKind = Literal["link.reject", "link.revoke", "visit.decline", "complaint.close"]
DECISION_KINDS: tuple[DecisionKind, ...] = (
    "link.reject",
    "link.revoke",
    "visit.decline",
    "complaint.close",
)
OTHER = "other"


class ReasonText(msgspec.Struct, frozen=True, rename={"zh_cn": "zh-CN"}):
    zh_cn: str
    en: str


class Reason(msgspec.Struct, frozen=True):
    code: str
    kind: DecisionKind
    text: ReasonText


def _rows(kind: DecisionKind, *items: tuple[str, str, str]) -> list[Reason]:
    return [Reason(code, kind, ReasonText(zh, en)) for code, zh, en in items]


_OTHER = (OTHER, "其他原因（见说明）", "Other reason (see the explanation)")

REASONS: tuple[Reason, ...] = (
    *_rows(
        "link.reject",
        ("evidence_insufficient", "证明材料不足", "The evidence given is not enough"),
        (
            "relationship_unproven",
            "无法核实亲属关系",
            "The relationship could not be confirmed",
        ),
        (
            "identity_mismatch",
            "身份信息与登记不符",
            "The identity does not match the records",
        ),
        ("duplicate_request", "重复申请", "A request for this inmate already exists"),
        ("inmate_declined", "服刑人员不同意", "The inmate did not agree"),
        _OTHER,
    ),
    *_rows(
        "link.revoke",
        ("relationship_ended", "亲属关系已变更", "The family relationship has ended"),
        ("rules_breached", "违反通信规定", "The communication rules were broken"),
        (
            "identity_mismatch",
            "身份信息与登记不符",
            "The identity does not match the records",
        ),
        ("inmate_declined", "服刑人员撤回同意", "The inmate withdrew its agreement"),
        ("legal_order", "依法律文书决定", "Decided under a legal order"),
        _OTHER,
    ),
    *_rows(
        "visit.decline",
        ("slot_unavailable", "该时段无法安排", "That time slot cannot be arranged"),
        ("not_eligible", "尚未达到会见条件", "The inmate is not yet eligible for a visit"),
        ("visitor_not_approved", "来访人员未获准", "A visitor is not approved"),
        ("security_measure", "监区安全管理需要", "A security measure in the prison"),
        ("health_measure", "卫生防疫需要", "A health measure"),
        _OTHER,
    ),
    *_rows(
        "complaint.close",
        ("resolved", "问题已解决", "The matter has been resolved"),
        ("unfounded", "经核查投诉不成立", "Looked into: the complaint is not borne out"),
        ("outside_remit", "不属于监督范围", "Outside what the supervisors handle"),
        ("duplicate", "重复投诉", "The same complaint was filed already"),
        ("no_response", "投诉人未回应", "The complainant did not respond"),
        _OTHER,
    ),
)

_BY_KEY: dict[tuple[str, str], Reason] = {(r.kind, r.code): r for r in REASONS}


def reason(kind: DecisionKind, code: str) -> Reason | None:
    """The listed reason, or ``None`` when ``code`` is not one for ``kind``."""
    return _BY_KEY.get((kind, code))


def reasons(kind: DecisionKind | None = None) -> list[Reason]:
    """The list in its published order, of one kind or of all."""
    return [r for r in REASONS if kind is None or r.kind == kind]
