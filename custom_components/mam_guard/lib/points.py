"""Bonus-point earning rate estimated from the account's own history (SPEC §2 ``points_per_day``).

MAM's earning formula is not documented (research/mam.md §2), so we measure instead of modelling.
Each 5-minute poll adds the increase of ``seedbonus`` since the previous poll to a running total of
*earned* points; a decrease is a purchase (VIP, upload credit, wedges) and adds nothing, so spending
never lowers the rate. Samples of that running total are thinned to one per half hour and kept for a
week: because the total is cumulative, thinning loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

SECONDS_PER_DAY = 86_400.0
HISTORY_SECONDS = 7 * SECONDS_PER_DAY
MIN_SPAN_SECONDS = 3_600.0  # less than an hour of history says little about a daily rate
MIN_SAMPLE_GAP_SECONDS = 1_800.0  # at most ~2 samples per hour (~340 a week)


@dataclass(frozen=True, slots=True)
class EarningHistory:
    """Running total of earned points and its (time, total) samples."""

    last_points: float | None = None
    earned: float = 0.0
    samples: tuple[tuple[float, float], ...] = field(default=())

    def record(self, when: float, points: float) -> EarningHistory:
        """Add one poll's bonus-point balance at unix time ``when``."""
        earned = self.earned
        if self.last_points is not None:
            earned += max(0.0, points - self.last_points)
        kept = [s for s in self.samples if when - HISTORY_SECONDS <= s[0] < when]
        if len(kept) >= 2 and when - kept[-2][0] < MIN_SAMPLE_GAP_SECONDS:
            kept.pop()  # the previous sample is not needed: its neighbour is within the gap
        kept.append((when, earned))
        return replace(self, last_points=points, earned=earned, samples=tuple(kept))

    def per_day(self) -> float | None:
        """Earned points per day over the kept week; None until an hour of history exists."""
        if len(self.samples) < 2:
            return None
        (start, earned_start), (end, earned_end) = self.samples[0], self.samples[-1]
        if end - start < MIN_SPAN_SECONDS:
            return None
        return round((earned_end - earned_start) / (end - start) * SECONDS_PER_DAY, 1)

    def as_dict(self) -> dict[str, Any]:
        """JSON form for HA storage."""
        return {"last_points": self.last_points, "earned": self.earned, "samples": self.samples}

    @classmethod
    def from_dict(cls, data: object) -> EarningHistory:
        """Read back :meth:`as_dict` output; anything unreadable starts a fresh history."""
        if not isinstance(data, dict):
            return cls()
        try:
            last = data.get("last_points")
            return cls(
                last_points=None if last is None else float(last),
                earned=float(data.get("earned", 0.0)),
                samples=tuple((float(t), float(e)) for t, e in data.get("samples", ())),
            )
        except TypeError, ValueError:
            return cls()
