"""Bonus-point history as stored in HA storage: round trip and unreadable data."""

from __future__ import annotations

import pytest

from custom_components.mam_guard.lib.points import EarningHistory


def test_round_trip_keeps_the_rate() -> None:
    history = EarningHistory().record(0.0, 1000.0).record(3600.0, 1010.0).record(7200.0, 1030.0)
    again = EarningHistory.from_dict(history.as_dict())
    assert again == history
    assert again.per_day() == history.per_day()


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"last_points": "lots"},
        {"earned": None},
        {"samples": [["t", 1]]},
        {"samples": [[1]]},
    ],
)
def test_unreadable_storage_starts_a_fresh_history(data: object) -> None:
    assert EarningHistory.from_dict(data) == EarningHistory()  # type: ignore[arg-type]
