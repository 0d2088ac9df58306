"""Pure status rules: VIP health (SPEC §6), ratio status (SPEC §2) and download checks (SPEC §3)."""

from __future__ import annotations

from datetime import datetime
import math
from typing import Literal

type VipStatus = Literal["healthy", "warning", "critical", "inactive"]
type RatioStatus = Literal["normal", "warning", "emergency"]
type Protection = Literal["idle", "protected", "pending", "unreachable", "not_enforcing"]

WARNING_BAND = 0.10  # ratio_status is "warning" within this distance above the threshold


def vip_days_left(vip_until: datetime | None, now: datetime) -> float | None:
    """Days until VIP expires (0 once expired); None when the account has no VIP date."""
    if vip_until is None:
        return None
    return round(max(0.0, (vip_until - now).total_seconds() / 86_400), 2)


def vip_status(
    days_left: float | None,
    points: float,
    *,
    warning_days: float,
    critical_days: float,
    renewal_threshold: float,
) -> VipStatus:
    """SPEC §6: critical needs both few days and too few points to renew; warning needs either."""
    if days_left is None or days_left <= 0:
        return "inactive"
    short_of_points = points < renewal_threshold
    if days_left <= critical_days and short_of_points:
        return "critical"
    if days_left <= warning_days or short_of_points:
        return "warning"
    return "healthy"


def ratio_status(ratio: float | None, *, emergency: bool, threshold: float) -> RatioStatus | None:
    """Emergency while declared; warning near the threshold; None when the ratio is unknown."""
    if emergency:
        return "emergency"
    if ratio is None:
        return None
    if ratio <= threshold + WARNING_BAND:
        return "warning"
    return "normal"


def download_allowed(
    *,
    emergency: bool,
    is_paid: bool,
    is_vip_critical: bool,
    unsatisfied: int | None = None,
    unsatisfied_limit: int | None = None,
    size_bytes: int | None = None,
    buffer_bytes: float | None = None,
) -> tuple[bool, str]:
    """SPEC §3/§10: may this download start? Refusals in the SPEC's order of precedence.

    ``ratio_emergency`` (a paid, non-VIP-critical download during an emergency), then
    ``unsatisfied_limit`` (any new download once MAM's unsatisfied limit is reached: MAM itself
    refuses it), then ``insufficient_buffer`` (a paid download larger than what can still be
    downloaded before the ratio reaches the threshold). Unknown values never refuse.
    """
    if emergency and is_paid and not is_vip_critical:
        return False, "ratio_emergency"
    if (
        unsatisfied is not None
        and unsatisfied_limit is not None
        and unsatisfied >= unsatisfied_limit
    ):
        return False, "unsatisfied_limit"
    if (
        is_paid
        and size_bytes is not None
        and buffer_bytes is not None
        and size_bytes > buffer_bytes
    ):
        return False, "insufficient_buffer"
    if not emergency:
        return True, "no_emergency"
    if not is_paid:
        return True, "freeleech_allowed"
    return True, "vip_critical_allowed"


def ratio_buffer(uploaded: int, downloaded: int, threshold: float) -> float:
    """Bytes that can still be downloaded before the ratio reaches ``threshold`` (0 below it).

    SPEC §10: ``uploaded / threshold - downloaded``. A threshold of 0 means no limit: infinite.
    """
    if threshold <= 0:
        return math.inf
    return max(0.0, uploaded / threshold - downloaded)


def upload_needed(uploaded: int, downloaded: int, target: float) -> float:
    """Bytes of upload needed to bring the ratio above ``target`` (0 when it already is)."""
    return max(0.0, target * downloaded - uploaded)


def protection_state(
    *, declared: bool, enforcing: bool, pending: bool, unreachable: bool
) -> Protection:
    """SPEC §2 ``protection``: is the account really protected right now?

    ``protected`` only when every emergency action has been applied; while qBittorrent cannot be
    reached the actions are not in place whatever the record says, so ``unreachable`` wins over
    ``pending``. With enforcement off nothing is applied on purpose: ``not_enforcing``.
    """
    if not declared:
        return "idle"
    if not enforcing:
        return "not_enforcing"
    if unreachable:
        return "unreachable"
    if pending:
        return "pending"
    return "protected"
