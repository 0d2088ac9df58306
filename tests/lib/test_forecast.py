"""The 7-day ratio trend and when it reaches the threshold (SPEC §10 emergency_forecast)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from custom_components.mam_guard.lib.forecast import WINDOW, RatioHistory

T0 = datetime(2026, 11, 1, tzinfo=UTC)
GB = 1024**3


def polled(
    days: float, every: timedelta, up0: int, down0: int, up_day: int, down_day: int
) -> RatioHistory:
    """A history of polls every ``every`` over ``days`` with constant daily rates."""
    history = RatioHistory()
    steps = int(timedelta(days=days) / every)
    for i in range(steps + 1):
        t = i * every / timedelta(days=1)
        history = history.record(T0 + i * every, int(up0 + up_day * t), int(down0 + down_day * t))
    return history


def test_falling_ratio_reaches_the_threshold_when_the_trend_says() -> None:
    # Ratio 1.2 (120 / 100 GB); +1 GB up and +3 GB down a day.
    history = polled(2, timedelta(minutes=5), 120 * GB, 100 * GB, 1 * GB, 3 * GB)
    now = T0 + timedelta(days=2)
    when = history.forecast(1.0, now)
    assert when is not None
    # From the last sample (day 2: 122 / 106 GB): 122 + x = 106 + 3x -> 8 more days.
    assert when == pytest.approx(now + timedelta(days=8), abs=timedelta(minutes=30))


def test_rising_or_flat_ratio_has_no_forecast() -> None:
    assert (
        polled(2, timedelta(hours=1), 120 * GB, 100 * GB, 5 * GB, 1 * GB).forecast(1.0, T0) is None
    )
    assert polled(2, timedelta(hours=1), 120 * GB, 100 * GB, 0, 0).forecast(1.0, T0) is None


def test_already_at_or_below_the_threshold_is_now() -> None:
    history = polled(1, timedelta(hours=1), 90 * GB, 100 * GB, 0, 1 * GB)
    now = T0 + timedelta(days=1)
    assert history.forecast(1.0, now) == now


def test_too_little_history_says_nothing() -> None:
    assert RatioHistory().forecast(1.0, T0) is None
    short = RatioHistory().record(T0, 10, 20).record(T0 + timedelta(minutes=30), 10, 30)
    assert short.forecast(1.0, T0) is None


def test_history_is_bounded_and_hourly() -> None:
    history = polled(30, timedelta(minutes=5), 0, 0, GB, GB)
    # One kept sample per hour or so (55 min with 5-minute polls): about 185 for a week.
    assert len(history.samples) <= WINDOW / timedelta(minutes=55) + 2
    span = history.samples[-1][0] - history.samples[0][0]
    assert span <= WINDOW.total_seconds()
    gaps = [b[0] - a[0] for a, b in zip(history.samples, history.samples[1:], strict=False)]
    assert all(gap <= 3600 for gap in gaps)


def test_storage_round_trip_and_garbage() -> None:
    history = polled(1, timedelta(hours=1), GB, GB, GB, GB)
    assert RatioHistory.from_dict(history.as_dict()) == history
    for garbage in (None, [], {"samples": [["x", 1, 2]]}, {"samples": [[1, 2]]}):
        assert RatioHistory.from_dict(garbage) == RatioHistory()
