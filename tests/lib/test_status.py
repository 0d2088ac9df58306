"""Pure status rules: the protection state every UI surface must agree with (SPEC §2)."""

from __future__ import annotations

import itertools

import pytest

from custom_components.mam_guard.lib.status import protection_state


@pytest.mark.parametrize(
    ("declared", "enforcing", "pending", "unreachable", "expected"),
    [
        (False, True, False, False, "idle"),
        (False, True, True, True, "idle"),  # leftovers of a release are not an emergency
        (True, True, False, False, "protected"),
        (True, True, True, False, "pending"),
        (True, True, True, True, "unreachable"),
        (True, True, False, True, "unreachable"),  # applied once, but cannot be checked now
        (True, False, False, False, "not_enforcing"),
        (True, False, True, True, "not_enforcing"),
    ],
)
def test_protection_state(
    declared: bool, enforcing: bool, pending: bool, unreachable: bool, expected: str
) -> None:
    assert (
        protection_state(
            declared=declared, enforcing=enforcing, pending=pending, unreachable=unreachable
        )
        == expected
    )


def test_protected_only_when_everything_is_in_place() -> None:
    """Every combination: "protected" needs declared, enforcing, nothing pending, reachable."""
    for declared, enforcing, pending, unreachable in itertools.product((False, True), repeat=4):
        state = protection_state(
            declared=declared, enforcing=enforcing, pending=pending, unreachable=unreachable
        )
        assert (state == "protected") == (
            declared and enforcing and not pending and not unreachable
        )
