"""What identity data a person may give: resident id numbers (GB 11643) and passwords."""

from __future__ import annotations

from datetime import date

import pytest

from server import identity, passwords
from tests.idnumbers import valid_id

TODAY = date(2026, 12, 7)


@pytest.mark.parametrize(
    "number",
    ["11010519491231002X", "11010519491231002x", "110105 19491231 002X", valid_id(7)],
)
def test_a_real_resident_id_number_is_accepted(number: str) -> None:
    assert identity.problem(number, TODAY) is None


@pytest.mark.parametrize(
    ("number", "why"),
    [
        ("123456", "18 characters"),
        ("1" * 18, "birth date"),  # born 1111-11-11
        ("110105194912310021", "check character"),  # one digit off
        ("11010519490231002X", "does not exist"),  # 31 February
        ("110105203012310014", "not plausible"),  # born in 2030
        ("11010519491231002Y", "18 characters"),
    ],
)
def test_a_wrong_id_number_is_refused_with_the_reason(number: str, why: str) -> None:
    problem = identity.problem(number, TODAY)
    assert problem is not None and why in problem


@pytest.mark.parametrize(
    ("password", "personal"),
    [
        ("1234512345", ()),
        ("qwerty1234", ()),
        ("13800000001", ("13800000001",)),  # the phone
        ("chenmei13800000001", ("13800000001", "Chen Mei")),
        ("my id is 11010519491231002X", ("11010519491231002X",)),
        ("short", ()),
    ],
)
def test_a_guessable_or_personal_password_is_refused(
    password: str, personal: tuple[str, ...]
) -> None:
    with pytest.raises(passwords.WeakPassword):
        passwords.check_strength(password, personal)


def test_a_passphrase_is_accepted() -> None:
    passwords.check_strength("correct horse battery staple", ("13800000001", "Chen Mei"))
