"""Pure decisions about spending bonus points (SPEC §10): no I/O, no asyncio, no clock.

Each policy takes the account, the options, the recent attempts and ``now``, and returns either
a :class:`PurchasePlan` (what to buy, how much, at what estimated cost, and why) or a
:class:`NoPurchase` (why not, and when that may change). The executor
(:mod:`.purchase_executor`) carries plans out; the Home Assistant layer shows the reasons.

MAM's prices and rules (research/mam.md §1.3, mam-economy.md §2-3):

* upload credit: 500 points per GB, at least 50 GB per automated purchase, whole GB. MAM's GB
  is taken as GiB (MAM shows binary units everywhere); settling tolerates decimal GB too;
* VIP: 5,000 points per 4 weeks (1,250 a week), ``duration=max`` fills VIP to ~90 days; an
  automated purchase must add at least 7 days; only Power User and VIP may buy it. MAM's exact
  charge for ``max`` is not documented, so the estimate is rounded *up* to whole weeks (the
  reserve check errs on the safe side);
* the balance is capped at 99,999: accrual above it is lost.

Cooldowns and caps use the attempts of the same mode (dry runs count for dry runs, real
purchases for real ones): VIP at most once per 24 h, surplus once per 6 h, emergency upload once
per hour; a failed attempt (nothing bought: MAM unreachable, rate limited) holds its kind back
for an hour. Automatic upload purchases (emergency and surplus) share ``max_upload_gb_per_day``
over the last 24 h; manual purchases neither count nor are capped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
import math
from typing import Any, Final, Literal

from .bonus_buy import MIN_UPLOAD_GB, PurchaseKind
from .models import MamAccount

Reason = Literal["manual", "vip_renewal", "emergency", "surplus"]
AttemptOutcome = Literal["done", "rejected", "failed"]

GIB: Final = 1024**3
UPLOAD_POINTS_PER_GB: Final = 500
VIP_POINTS_PER_WEEK: Final = 1_250  # 5,000 per 4 weeks
VIP_CAP: Final = timedelta(days=90)  # measured in [89.4, 96.4) days; MAM shows "12.8 weeks"
VIP_MIN_ADD: Final = timedelta(days=7)
VIP_CLASSES: Final = frozenset({"power user", "vip"})  # casefolded classname
POINTS_CAP: Final = 99_999

VIP_COOLDOWN: Final = timedelta(hours=24)
SURPLUS_COOLDOWN: Final = timedelta(hours=6)
EMERGENCY_COOLDOWN: Final = timedelta(hours=1)
FAILED_RETRY: Final = timedelta(hours=1)
DAILY_WINDOW: Final = timedelta(hours=24)
# MAM reports the ratio to two decimals: buying up to exactly the target could show the target
# itself (not above it) once rounded, so the plan aims one hundredth higher.
RATIO_STEP: Final = 0.01

UPLOAD_CREDIT_MODES: Final = ("off", "emergency", "emergency_and_surplus")


class Skip(StrEnum):
    """Why a policy does not buy."""

    DISABLED = "disabled"  # the option is off
    NOT_DUE = "not_due"  # VIP has more days left than vip_renew_days
    NOT_NEEDED = "not_needed"  # no emergency / ratio already above target / nothing above ceiling
    CLASS_NOT_ALLOWED = "class_not_allowed"  # VIP needs Power User or VIP
    BELOW_MINIMUM = "below_minimum"  # < 7 days of VIP addable, < 50 GB of upload
    COOLDOWN = "cooldown"  # bought (or tried) too recently
    DAILY_CAP = "daily_cap"  # max_upload_gb_per_day reached
    INSUFFICIENT_POINTS = "insufficient_points"  # the cost would take points below the reserve


@dataclass(frozen=True, slots=True)
class PurchaseOptions:
    """The SPEC §1 options of automatic purchases (and the emergency ones they depend on)."""

    vip_auto_renew: bool = False
    vip_renew_days: float = 14
    upload_credit: str = "off"  # one of UPLOAD_CREDIT_MODES
    points_reserve: float = 0
    points_ceiling: float = 70_000  # at most 74,999, or no 50 GB purchase fits below 99,999
    max_upload_gb_per_day: int = 200
    ratio_threshold: float = 1.0
    release_margin: float = 0.0
    dry_run: bool = False

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> PurchaseOptions:
        """Read the config entry's options (SPEC §1 keys); missing keys take the defaults."""
        default = cls()
        mode = str(options.get("upload_credit", default.upload_credit))
        return cls(
            vip_auto_renew=bool(options.get("vip_auto_renew", default.vip_auto_renew)),
            vip_renew_days=float(options.get("vip_renew_days", default.vip_renew_days)),
            upload_credit=mode if mode in UPLOAD_CREDIT_MODES else "off",
            points_reserve=float(options.get("points_reserve", default.points_reserve)),
            points_ceiling=float(options.get("points_ceiling", default.points_ceiling)),
            max_upload_gb_per_day=int(
                options.get("max_upload_gb_per_day", default.max_upload_gb_per_day)
            ),
            ratio_threshold=float(options.get("ratio_threshold", default.ratio_threshold)),
            release_margin=float(options.get("release_margin", default.release_margin)),
            dry_run=bool(options.get("purchase_dry_run", default.dry_run)),
        )


@dataclass(frozen=True, slots=True)
class Attempt:
    """One past purchase attempt, as cooldowns and the daily cap need it."""

    at: datetime
    kind: PurchaseKind
    reason: Reason
    amount: float | None  # GB for upload
    outcome: AttemptOutcome
    dry_run: bool


@dataclass(frozen=True, slots=True)
class PurchasePlan:
    """Buy this: ``amount`` GB of upload (None for VIP) for about ``cost`` points, because ``why``.

    ``days`` is the VIP time the purchase adds (None for upload). ``partial`` marks an emergency
    purchase cut down by the daily cap or the reserve: it will not lift the ratio all the way.
    """

    kind: PurchaseKind
    reason: Reason
    amount: int | None
    cost: float
    why: str
    days: float | None = None
    partial: bool = False


@dataclass(frozen=True, slots=True)
class NoPurchase:
    """Nothing is bought, because ``why`` (``skip`` for machines).

    ``retry_at``: when the blocking rule ends (cooldown end, renewal due date), when known.
    For :attr:`Skip.INSUFFICIENT_POINTS`: ``shortfall`` points are missing, ``ready_at`` is when
    the earning rate will have made them up (None when the rate is unknown or zero), and for VIP
    ``deadline`` is the expiry: :attr:`in_time` says whether the points arrive before VIP ends.
    """

    kind: PurchaseKind
    reason: Reason
    skip: Skip
    why: str
    retry_at: datetime | None = None
    shortfall: float | None = None
    ready_at: datetime | None = None
    deadline: datetime | None = None

    @property
    def in_time(self) -> bool | None:
        """For a deadline: will the points suffice before it? None without a deadline."""
        if self.deadline is None:
            return None
        return self.ready_at is not None and self.ready_at <= self.deadline


Decision = PurchasePlan | NoPurchase


# -- arithmetic ----------------------------------------------------------------------------------


def upload_cost(amount_gb: int) -> int:
    """Points for ``amount_gb`` GB of upload credit."""
    return amount_gb * UPLOAD_POINTS_PER_GB


def vip_remaining(vip_until: datetime | None, now: datetime) -> timedelta:
    """VIP time left (zero when not VIP or expired)."""
    if vip_until is None or vip_until <= now:
        return timedelta(0)
    return vip_until - now


def vip_addable(vip_until: datetime | None, now: datetime) -> timedelta:
    """How much VIP ``duration=max`` would add now (up to the ~90-day cap)."""
    return max(timedelta(0), VIP_CAP - vip_remaining(vip_until, now))


def vip_cost(vip_until: datetime | None, now: datetime) -> int:
    """Estimated points for ``duration=max`` now: 1,250 a week, rounded up to whole weeks."""
    weeks = vip_addable(vip_until, now) / timedelta(weeks=1)
    return math.ceil(round(weeks, 6)) * VIP_POINTS_PER_WEEK


def ratio_target(options: PurchaseOptions) -> float:
    """The ratio an emergency purchase aims for: above threshold + margin as MAM reports it."""
    return options.ratio_threshold + options.release_margin + RATIO_STEP


def upload_needed_bytes(uploaded: int, downloaded: int, target: float) -> int:
    """Upload still missing for ``uploaded / downloaded`` to reach ``target`` (0 when there)."""
    if downloaded <= 0:
        return 0
    return max(0, math.ceil(target * downloaded - uploaded))


def upload_needed_gb(account: MamAccount, target: float) -> int:
    """Whole GB of upload credit that bring the account's ratio to ``target`` (0 when there)."""
    missing = upload_needed_bytes(account.uploaded_bytes, account.downloaded_bytes, target)
    return math.ceil(missing / GIB) if missing else 0


def spendable(points: float, reserve: float) -> float:
    """Points an automatic or manual purchase may spend: everything above the reserve."""
    return max(0.0, points - reserve)


def when_points_suffice(
    shortfall: float, points_per_day: float | None, now: datetime
) -> datetime | None:
    """When ``shortfall`` more points will have been earned at ``points_per_day``.

    None when the rate is unknown or not positive, or the wait is absurdly long (> 10 years).
    """
    if shortfall <= 0:
        return now
    if points_per_day is None or points_per_day <= 0:
        return None
    days = shortfall / points_per_day
    return now + timedelta(days=days) if days <= 3_650 else None


def _points(value: float) -> str:
    return f"{value:,.0f}"


# -- attempts ------------------------------------------------------------------------------------


def _latest(
    attempts: Iterable[Attempt],
    dry_run: bool,
    *,
    kind: PurchaseKind,
    reasons: Iterable[Reason] | None = None,
) -> Attempt | None:
    wanted = set(reasons) if reasons is not None else None
    found = [
        a
        for a in attempts
        if a.kind == kind and a.dry_run == dry_run and (wanted is None or a.reason in wanted)
    ]
    return max(found, key=lambda a: a.at) if found else None


def _cooldown_end(last: Attempt | None, cooldown: timedelta) -> datetime | None:
    """When ``last`` stops blocking: a failed attempt holds back for FAILED_RETRY only."""
    if last is None:
        return None
    return last.at + (FAILED_RETRY if last.outcome == "failed" else cooldown)


def automatic_upload_gb(attempts: Iterable[Attempt], now: datetime, dry_run: bool) -> float:
    """GB of upload credit bought automatically (emergency, surplus) in the last 24 h."""
    return sum(
        a.amount or 0
        for a in attempts
        if a.kind == "upload"
        and a.reason in ("emergency", "surplus")
        and a.outcome == "done"
        and a.dry_run == dry_run
        and now - a.at < DAILY_WINDOW
    )


# -- the rules every purchase follows (manual ones too) ------------------------------------------


def check_purchase(
    account: MamAccount,
    kind: PurchaseKind,
    amount_gb: int | None,
    *,
    reason: Reason,
    reserve: float,
    now: datetime,
    points_per_day: float | None = None,
) -> Decision:
    """MAM's rules and the reserve for one purchase (the buy actions; the executor's re-check).

    VIP: class Power User or VIP, at least 7 days addable, cost within the points above the
    reserve. Upload: whole GB, at least 50, cost within the points above the reserve.
    """
    available = spendable(account.seedbonus, reserve)
    if kind == "vip":
        if account.classname.casefold() not in VIP_CLASSES:
            return NoPurchase(
                kind,
                reason,
                Skip.CLASS_NOT_ALLOWED,
                f"Only Power Users and VIPs can buy VIP; this account is "
                f"{account.classname or 'of an unknown class'}",
            )
        addable = vip_addable(account.vip_until, now)
        if addable < VIP_MIN_ADD:
            return NoPurchase(
                kind,
                reason,
                Skip.BELOW_MINIMUM,
                f"VIP can only be filled up by {addable / timedelta(days=1):.1f} days; "
                "MAM sells at least 7 days to automated buyers",
                retry_at=now + (VIP_MIN_ADD - addable),
            )
        cost = vip_cost(account.vip_until, now)
        days = round(addable / timedelta(days=1), 1)
        if cost > available:
            return _insufficient(
                kind,
                reason,
                cost,
                points=account.seedbonus,
                reserve=reserve,
                now=now,
                points_per_day=points_per_day,
                deadline=account.vip_until,
            )
        return PurchasePlan(kind, reason, None, cost, f"VIP for {days:g} more days", days=days)
    if isinstance(amount_gb, bool) or not isinstance(amount_gb, int) or amount_gb < MIN_UPLOAD_GB:
        return NoPurchase(
            kind,
            reason,
            Skip.BELOW_MINIMUM,
            f"Upload credit is bought in whole GB, at least {MIN_UPLOAD_GB} GB at a time",
        )
    cost = upload_cost(amount_gb)
    if cost > available:
        return _insufficient(
            kind,
            reason,
            cost,
            points=account.seedbonus,
            reserve=reserve,
            now=now,
            points_per_day=points_per_day,
        )
    return PurchasePlan(kind, reason, amount_gb, cost, f"{amount_gb} GB of upload credit")


def _insufficient(
    kind: PurchaseKind,
    reason: Reason,
    cost: float,
    *,
    points: float,
    reserve: float,
    now: datetime,
    points_per_day: float | None,
    deadline: datetime | None = None,
) -> NoPurchase:
    shortfall = round(cost - spendable(points, reserve), 3)
    ready_at = when_points_suffice(shortfall, points_per_day, now)
    what = "VIP" if kind == "vip" else "the upload credit"
    when = (
        f"; at {_points(points_per_day or 0)} points a day they will suffice on "
        f"{ready_at:%Y-%m-%d %H:%M} UTC"
        if ready_at is not None
        else "; the earning rate is not known yet"
        if points_per_day is None
        else "; no points are being earned"
    )
    if deadline is not None and ready_at is not None and ready_at > deadline:
        when += f", after VIP ends on {deadline:%Y-%m-%d}"
    return NoPurchase(
        kind,
        reason,
        Skip.INSUFFICIENT_POINTS,
        f"Not enough bonus points for {what}: it costs about {_points(cost)}, "
        f"{_points(spendable(points, reserve))} are available above the reserve of "
        f"{_points(reserve)} ({_points(shortfall)} missing){when}",
        shortfall=shortfall,
        ready_at=ready_at,
        deadline=deadline,
    )


# -- the automatic policies ----------------------------------------------------------------------


def plan_vip_renewal(
    account: MamAccount,
    options: PurchaseOptions,
    attempts: Sequence[Attempt],
    now: datetime,
    *,
    points_per_day: float | None = None,
) -> Decision:
    """Renew VIP (``duration=max``) when it has ``vip_renew_days`` or fewer left.

    Only with ``vip_auto_renew``; at most once per 24 h; the class must allow it and the points
    left after the cost must stay at or above ``points_reserve``. When the points do not suffice,
    the answer says how many are missing, when they will suffice at ``points_per_day``, and
    whether that is before VIP ends (:attr:`NoPurchase.in_time`: a repair issue when not).
    """
    reason: Reason = "vip_renewal"
    if not options.vip_auto_renew:
        return NoPurchase("vip", reason, Skip.DISABLED, "Automatic VIP renewal is off")
    left = vip_remaining(account.vip_until, now)
    due_in = left - timedelta(days=options.vip_renew_days)
    if account.vip_until is not None and due_in > timedelta(0):
        return NoPurchase(
            "vip",
            reason,
            Skip.NOT_DUE,
            f"VIP has {left / timedelta(days=1):.1f} days left; renewal is due at "
            f"{options.vip_renew_days:g} days",
            retry_at=now + due_in,
        )
    last = _latest(attempts, options.dry_run, kind="vip")
    if (end := _cooldown_end(last, VIP_COOLDOWN)) is not None and now < end:
        return NoPurchase(
            "vip",
            reason,
            Skip.COOLDOWN,
            "VIP was bought or tried in the last 24 hours",
            retry_at=end,
        )
    return check_purchase(
        account,
        "vip",
        None,
        reason=reason,
        reserve=options.points_reserve,
        now=now,
        points_per_day=points_per_day,
    )


def plan_emergency_upload(
    account: MamAccount,
    options: PurchaseOptions,
    attempts: Sequence[Attempt],
    now: datetime,
    *,
    emergency_active: bool,
    points_per_day: float | None = None,
) -> Decision:
    """In a ratio emergency, buy the smallest upload credit (>= 50 GB) that ends it.

    The amount lifts ``uploaded / downloaded`` above ``ratio_threshold + release_margin`` (one
    hundredth above, see :data:`RATIO_STEP`), computed from the byte counters. It is cut to what
    the daily cap and the reserve allow (``partial``: the ratio improves but the emergency may
    go on) and nothing is bought when less than 50 GB is allowed. At most once an hour.
    """
    reason: Reason = "emergency"
    if options.upload_credit not in ("emergency", "emergency_and_surplus"):
        return NoPurchase("upload", reason, Skip.DISABLED, "Upload credit purchases are off")
    if not emergency_active:
        return NoPurchase("upload", reason, Skip.NOT_NEEDED, "No ratio emergency")
    target = ratio_target(options)
    needed = upload_needed_gb(account, target)
    if needed <= 0:
        return NoPurchase(
            "upload",
            reason,
            Skip.NOT_NEEDED,
            f"The ratio is already above {target - RATIO_STEP:g} by MAM's byte counters",
        )
    last = _latest(attempts, options.dry_run, kind="upload", reasons=("emergency",))
    if last is not None and now < (end := last.at + EMERGENCY_COOLDOWN):
        return NoPurchase(
            "upload",
            reason,
            Skip.COOLDOWN,
            "Upload credit was bought or tried for the emergency in the last hour",
            retry_at=end,
        )
    wanted = max(MIN_UPLOAD_GB, needed)
    cap_left = max(
        0,
        math.floor(
            options.max_upload_gb_per_day - automatic_upload_gb(attempts, now, options.dry_run)
        ),
    )
    affordable = math.floor(
        spendable(account.seedbonus, options.points_reserve) / UPLOAD_POINTS_PER_GB
    )
    amount = min(wanted, cap_left, affordable)
    if amount < MIN_UPLOAD_GB:
        if cap_left < MIN_UPLOAD_GB:
            return NoPurchase(
                "upload",
                reason,
                Skip.DAILY_CAP,
                f"The daily cap of {options.max_upload_gb_per_day} GB of automatic upload "
                f"credit leaves {cap_left} GB; MAM sells at least {MIN_UPLOAD_GB} GB",
                retry_at=_cap_frees_at(attempts, now, options, MIN_UPLOAD_GB - cap_left),
            )
        return _insufficient(
            "upload",
            reason,
            upload_cost(MIN_UPLOAD_GB),
            points=account.seedbonus,
            reserve=options.points_reserve,
            now=now,
            points_per_day=points_per_day,
        )
    partial = amount < wanted
    ratio = (account.uploaded_bytes + amount * GIB) / account.downloaded_bytes
    why = (
        f"Ratio emergency: {amount} GB lift the ratio to about {ratio:.2f}"
        if not partial
        else f"Ratio emergency: {wanted} GB are needed, {amount} GB are allowed by the "
        f"{'daily cap' if amount == cap_left else 'reserve'} (ratio about {ratio:.2f})"
    )
    return PurchasePlan("upload", reason, amount, upload_cost(amount), why, partial=partial)


def _cap_frees_at(
    attempts: Sequence[Attempt], now: datetime, options: PurchaseOptions, needed_gb: float
) -> datetime | None:
    """When enough of the last 24 h's automatic upload leaves the window to free ``needed_gb``."""
    counted = sorted(
        (
            a
            for a in attempts
            if a.kind == "upload"
            and a.reason in ("emergency", "surplus")
            and a.outcome == "done"
            and a.dry_run == options.dry_run
            and now - a.at < DAILY_WINDOW
        ),
        key=lambda a: a.at,
    )
    freed = 0.0
    for attempt in counted:
        freed += attempt.amount or 0
        if freed >= needed_gb:
            return attempt.at + DAILY_WINDOW
    return None


def plan_surplus(
    account: MamAccount,
    options: PurchaseOptions,
    attempts: Sequence[Attempt],
    now: datetime,
) -> Decision:
    """With ``emergency_and_surplus``: turn the points above ``points_ceiling`` into upload.

    Only points above the ceiling (and above the reserve) are spent, in whole GB, at least 50 GB
    (25,000 points) at a time, within the daily cap, at most once per 6 h. With MAM's cap at
    99,999 this needs a ceiling of 74,999 or less to ever buy anything.
    """
    reason: Reason = "surplus"
    if options.upload_credit != "emergency_and_surplus":
        return NoPurchase("upload", reason, Skip.DISABLED, "Surplus spending is off")
    floor_points = max(options.points_ceiling, options.points_reserve)
    surplus = account.seedbonus - floor_points
    if surplus <= 0:
        return NoPurchase(
            "upload",
            reason,
            Skip.NOT_NEEDED,
            f"{_points(account.seedbonus)} points, not above the ceiling of "
            f"{_points(options.points_ceiling)}",
        )
    last = _latest(attempts, options.dry_run, kind="upload", reasons=("surplus",))
    if (end := _cooldown_end(last, SURPLUS_COOLDOWN)) is not None and now < end:
        return NoPurchase(
            "upload",
            reason,
            Skip.COOLDOWN,
            "Surplus points were spent in the last 6 hours",
            retry_at=end,
        )
    gb = math.floor(surplus / UPLOAD_POINTS_PER_GB)
    if gb < MIN_UPLOAD_GB:
        return NoPurchase(
            "upload",
            reason,
            Skip.BELOW_MINIMUM,
            f"{_points(surplus)} points above the ceiling buy {gb} GB; MAM sells at least "
            f"{MIN_UPLOAD_GB} GB ({_points(upload_cost(MIN_UPLOAD_GB))} points)",
        )
    cap_left = max(
        0,
        math.floor(
            options.max_upload_gb_per_day - automatic_upload_gb(attempts, now, options.dry_run)
        ),
    )
    amount = min(gb, cap_left)
    if amount < MIN_UPLOAD_GB:
        return NoPurchase(
            "upload",
            reason,
            Skip.DAILY_CAP,
            f"The daily cap of {options.max_upload_gb_per_day} GB of automatic upload credit "
            f"leaves {cap_left} GB",
            retry_at=_cap_frees_at(attempts, now, options, MIN_UPLOAD_GB - cap_left),
        )
    return PurchasePlan(
        "upload",
        reason,
        amount,
        upload_cost(amount),
        f"{_points(surplus)} points above the ceiling of {_points(options.points_ceiling)}: "
        f"{amount} GB of upload credit",
    )


def plan_automatic(
    account: MamAccount,
    options: PurchaseOptions,
    attempts: Sequence[Attempt],
    now: datetime,
    *,
    emergency_active: bool,
    points_per_day: float | None = None,
) -> list[Decision]:
    """Every automatic decision of one poll, in priority order: emergency, VIP, surplus.

    A plan spends from the same balance as the ones after it: each later policy sees the
    account as the earlier plans would leave it (points down, upload up).
    """
    decisions: list[Decision] = []
    projected = account
    for policy in ("emergency", "vip", "surplus"):
        decision: Decision
        if policy == "emergency":
            decision = plan_emergency_upload(
                projected,
                options,
                attempts,
                now,
                emergency_active=emergency_active,
                points_per_day=points_per_day,
            )
        elif policy == "vip":
            decision = plan_vip_renewal(
                projected, options, attempts, now, points_per_day=points_per_day
            )
        else:
            decision = plan_surplus(projected, options, attempts, now)
        decisions.append(decision)
        if isinstance(decision, PurchasePlan):
            projected = project(projected, decision, now)
    return decisions


def project(account: MamAccount, plan: PurchasePlan, now: datetime) -> MamAccount:
    """The account as ``plan`` would leave it (for planning and dry runs)."""
    points = round(max(0.0, account.seedbonus - plan.cost), 3)
    if plan.kind == "vip":
        return replace(account, seedbonus=points, vip_until=now + VIP_CAP)
    uploaded = account.uploaded_bytes + (plan.amount or 0) * GIB
    ratio = (
        round(uploaded / account.downloaded_bytes, 2) if account.downloaded_bytes else account.ratio
    )
    return replace(account, seedbonus=points, uploaded_bytes=uploaded, ratio=ratio)


# -- settling an intent whose answer was lost ----------------------------------------------------

Verdict = Literal["applied", "not_applied", "unknown"]

# A request MAM has not answered cannot still be applied this long after it was sent (PHP and
# proxy time limits are about a minute): before that, "no trace on the account" proves nothing.
SETTLE_GRACE: Final = timedelta(minutes=5)
# VIP moved by at least this much counts as bought (a purchase adds at least 7 days).
VIP_MOVED: Final = timedelta(days=1)
# Upload credit is counted as arrived when uploaded grew by this share of amount x 10^9 bytes
# (tolerates MAM's GB being decimal as well as binary).
UPLOAD_MOVED_SHARE: Final = 0.99


def settle_verdict(
    *,
    kind: PurchaseKind,
    amount_gb: int | None,
    cost: float,
    points_before: float,
    uploaded_before: int,
    vip_until_before: datetime | None,
    sent_at: datetime,
    account: MamAccount,
    read_at: datetime,
    points_per_day: float | None = None,
) -> Verdict:
    """Was a purchase whose answer was lost applied? Judged from an account read afterwards.

    * VIP: applied when ``vip_until`` moved at least a day past where it was (or past the time
      of sending, for an expired VIP). Nothing else moves it.
    * Upload: applied when ``uploaded`` grew by the amount (seeding adds upload too, so this
      alone is not enough) *and* the points dropped by at least half the cost, after adding
      back what the account may have earned meanwhile (``points_per_day`` x elapsed time).
    * Otherwise not applied, but only once :data:`SETTLE_GRACE` has passed since sending:
      until then MAM may still be applying it, and the verdict is ``unknown``.
    """
    if kind == "vip":
        baseline = max(vip_until_before or sent_at, sent_at)
        applied = account.vip_until is not None and account.vip_until >= baseline + VIP_MOVED
    else:
        grown = account.uploaded_bytes - uploaded_before
        elapsed_days = max(0.0, (read_at - sent_at) / timedelta(days=1))
        earned = (points_per_day or 0.0) * elapsed_days
        dropped = points_before - account.seedbonus + earned
        applied = grown >= (amount_gb or 0) * 10**9 * UPLOAD_MOVED_SHARE and dropped >= cost / 2
    if applied:
        return "applied"
    return "not_applied" if read_at - sent_at >= SETTLE_GRACE else "unknown"
