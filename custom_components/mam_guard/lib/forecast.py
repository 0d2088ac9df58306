"""When will the ratio reach the threshold? (SPEC §10 ``emergency_forecast``; no HA imports.)

The account's uploaded and downloaded bytes are sampled at each poll, at most one sample every
``SAMPLE_EVERY`` and for ``WINDOW`` back, so the history stays bounded (about 170 samples) however
long Home Assistant runs. The trend is the average rate of each over the window: a week evens out
the daily rhythm of seeding and downloading, and one big download moves it only as much as it
moved the ratio. The ratio at time t is ``(U + u·t) / (D + d·t)``; it reaches the threshold T when
``t = (T·D - U) / (u - T·d)``, which is in the future only while ``u < T·d`` (the ratio falls).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Self

WINDOW: Final = timedelta(days=7)
SAMPLE_EVERY: Final = timedelta(hours=1)
MIN_SPAN: Final = timedelta(hours=1)  # less history than this says nothing about a trend
HORIZON: Final = timedelta(days=3650)  # a forecast further out than this is "not falling"


@dataclass(frozen=True, slots=True)
class RatioHistory:
    """(POSIX time, uploaded bytes, downloaded bytes) samples, oldest first."""

    samples: tuple[tuple[float, int, int], ...] = ()

    def record(self, now: datetime, uploaded: int, downloaded: int) -> Self:
        """Add a poll (at most one sample per SAMPLE_EVERY; older than WINDOW dropped)."""
        t = now.timestamp()
        kept = [s for s in self.samples if t - s[0] <= WINDOW.total_seconds()]
        if len(kept) >= 2 and t - kept[-2][0] < SAMPLE_EVERY.total_seconds():
            kept[-1] = (t, uploaded, downloaded)  # the newest sample moves: the span stays hourly
        else:
            kept.append((t, uploaded, downloaded))
        return type(self)(tuple(kept))

    def forecast(self, threshold: float, now: datetime) -> datetime | None:
        """When the ratio reaches ``threshold`` at the trend; None when it is not falling to it.

        ``now`` when the ratio is already at or below the threshold.
        """
        if len(self.samples) < 2:
            return None
        (t0, up0, down0), (t1, up1, down1) = self.samples[0], self.samples[-1]
        span = t1 - t0
        if span < MIN_SPAN.total_seconds():
            return None
        if down1 > 0 and up1 <= threshold * down1:
            return now
        up_rate, down_rate = (up1 - up0) / span, (down1 - down0) / span
        falling = up_rate - threshold * down_rate
        if falling >= 0:
            return None
        seconds = (threshold * down1 - up1) / falling
        if seconds > HORIZON.total_seconds():
            return None
        return datetime.fromtimestamp(t1, UTC) + timedelta(seconds=seconds)

    def as_dict(self) -> dict[str, Any]:
        """For HA storage."""
        return {"samples": [list(s) for s in self.samples]}

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """Inverse of :meth:`as_dict`; anything unreadable starts a fresh history."""
        if not isinstance(data, dict):
            return cls()
        try:
            return cls(tuple((float(t), int(u), int(d)) for t, u, d in data.get("samples", ())))
        except TypeError, ValueError:
            return cls()
