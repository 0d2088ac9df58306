"""Pure status rules: the protection state every UI surface must agree with (SPEC §2)."""

from __future__ import annotations

import itertools

import pytest

from custom_components.mam_guard.lib.status import (
    download_allowed,
    protection_state,
    ratio_buffer,
    upload_needed,
)


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


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"emergency": False, "is_paid": True}, (True, "no_emergency")),
        ({"emergency": True, "is_paid": False}, (True, "freeleech_allowed")),
        (
            {"emergency": True, "is_paid": True, "is_vip_critical": True},
            (True, "vip_critical_allowed"),
        ),
        ({"emergency": True, "is_paid": True}, (False, "ratio_emergency")),
        # Precedence: ratio_emergency, then unsatisfied_limit, then insufficient_buffer.
        (
            {"emergency": True, "is_paid": True, "unsatisfied": 50, "unsatisfied_limit": 50},
            (False, "ratio_emergency"),
        ),
        (
            {"emergency": False, "is_paid": False, "unsatisfied": 50, "unsatisfied_limit": 50},
            (False, "unsatisfied_limit"),
        ),
        (
            {
                "emergency": False,
                "is_paid": True,
                "unsatisfied": 50,
                "unsatisfied_limit": 50,
                "size_bytes": 10,
                "buffer_bytes": 1,
            },
            (False, "unsatisfied_limit"),
        ),
        (
            {"emergency": False, "is_paid": True, "size_bytes": 10, "buffer_bytes": 1},
            (False, "insufficient_buffer"),
        ),
        (
            {"emergency": False, "is_paid": True, "size_bytes": 10, "buffer_bytes": 10},
            (True, "no_emergency"),
        ),
        (
            {"emergency": False, "is_paid": False, "size_bytes": 10, "buffer_bytes": 1},
            (True, "no_emergency"),
        ),
        (
            {"emergency": False, "is_paid": True, "size_bytes": 10, "buffer_bytes": None},
            (True, "no_emergency"),
        ),
    ],
)
def test_download_allowed(kwargs: dict[str, object], expected: tuple[bool, str]) -> None:
    kwargs.setdefault("is_vip_critical", False)
    assert download_allowed(**kwargs) == expected  # type: ignore[arg-type]


def test_ratio_buffer_and_upload_needed() -> None:
    gib = 1024**3
    assert ratio_buffer(120 * gib, 100 * gib, 1.0) == 20 * gib
    assert ratio_buffer(90 * gib, 100 * gib, 1.0) == 0
    assert ratio_buffer(90 * gib, 100 * gib, 0) == float("inf")
    assert upload_needed(90 * gib, 100 * gib, 1.05) == pytest.approx(15 * gib)
    assert upload_needed(120 * gib, 100 * gib, 1.0) == 0
