"""The purchase executor: bonus-point purchases that are never sent twice (SPEC §10; no HA imports).

API for the Home Assistant layer
================================

Build one executor per config entry, after the MAM client::

    executor = PurchaseExecutor(
        client,                       # MamClient (anything with the PurchaseClient methods)
        entry_id=entry.entry_id,
        record=PurchaseRecord.from_dict(stored),   # HA storage; {} or None the first time
        persist=save_record,          # async (PurchaseRecord) -> None; written when it returns
        write_ledger=add_row,         # async (PurchaseRow) -> object; RulesStore.add_purchase
    )                                 #   in the executor thread; raising is tolerated

* ``await executor.async_settle(account, read_at=..., points_per_day=...)`` once at startup and
  after each poll while ``executor.pending`` is set: settles an intent whose answer was lost (by
  a timeout, a dropped connection or a restart) from an account read *after* it was sent.
  Returns the :class:`PurchaseOutcome` when it settled now (fire ``mam_guard_purchase``), else
  None. ``account=None`` reads the account itself.
* ``await executor.async_buy_vip(reserve=..., dry_run=..., reason="manual")`` and
  ``await executor.async_buy_upload(amount_gb, reserve=..., dry_run=..., reason="manual")``: the
  ``buy_vip`` / ``buy_upload_credit`` actions and the button. They follow MAM's rules and the
  reserve, not the automatic options. ``outcome.response()`` is the action response
  ``{success, dry_run, kind, amount, cost, points_before, points_after, error}``.
* ``await executor.async_run_automatic(account, PurchaseOptions.from_options(entry.options),
  emergency_active=..., points_per_day=..., read_at=...)`` after each poll: settles an open
  intent, then runs the policies of :mod:`.purchases` (emergency upload, VIP renewal, surplus)
  and carries out their plans. :class:`AutomaticRun` holds every decision (a
  :class:`~.purchases.NoPurchase` with ``skip == Skip.INSUFFICIENT_POINTS`` and ``kind == "vip"``
  and ``in_time`` not True is the "VIP ends and points will not cover it" repair issue) and the
  outcomes of what was bought.
* Every outcome (dry runs and refusals included) has been written to the ledger when returned;
  fire the bus event with ``outcome.event_data(entry_id)`` (the ledger columns but ``id``).
  A ``pending`` outcome is not in the ledger yet: its row and event come from the settle.

Never twice
===========

One purchase at a time (a lock), and one open intent at most. A real purchase:

1. reads the account (fresh ``points_before``, VIP date, upload) and checks MAM's rules and
   the reserve (:func:`~.purchases.check_purchase`); a refusal sends nothing;
2. persists the intent (``persist`` has returned) *before* the request;
3. sends it once: the client's transport never re-sends a purchase (:mod:`.bonus_buy`);
4. MAM's answer settles it: success -> ``done``, ``success: false`` -> ``rejected`` with MAM's
   text; a failure before sending (429, auth, unreachable) -> ``failed``. When MAM may have
   applied it but the answer was lost (:class:`~.bonus_buy.MamPurchaseUnknownError`), the
   account is read again and :func:`~.purchases.settle_verdict` decides; when that read fails
   or is too early to prove "not applied", the intent stays open (``pending``);
5. the outcome is persisted in the intent, the ledger row written (idempotent by intent id),
   then the intent is closed and the attempt logged for cooldowns, in one persist.

An open intent blocks every further purchase until it is settled from the account; it is never
sent again. A crash anywhere leaves either no intent (nothing sent), an open intent (settled from
the account later), or a settled one whose bookkeeping is finished on the next call.

Dry run: steps 1 and 4-5 as real (ledger row, event, cooldowns), nothing sent, the balance after
is projected from the price.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import logging
from typing import Any, Final, Literal, Protocol, Self, cast
import uuid

from .bonus_buy import (
    MamPurchaseRejectedError,
    MamPurchaseUnknownError,
    PurchaseKind,
    PurchaseReceipt,
)
from .errors import MamError, MamPayloadError
from .models import MamAccount
from .purchases import (
    Attempt,
    AttemptOutcome,
    Decision,
    NoPurchase,
    PurchaseOptions,
    PurchasePlan,
    Reason,
    check_purchase,
    plan_automatic,
    project,
    settle_verdict,
)
from .rules_store import PurchaseRow

_LOGGER = logging.getLogger(__name__)

RECORD_VERSION: Final = 1
# Attempts are kept this long for cooldowns and the daily cap (all of which look back <= 24 h).
ATTEMPTS_KEPT: Final = timedelta(hours=48)
MAX_ATTEMPTS: Final = 200
MAX_UNWRITTEN: Final = 200

Status = Literal["done", "rejected", "failed", "refused", "pending"]

PENDING_BLOCKS = (
    "A previous purchase is not settled yet (MyAnonamouse's answer was lost and the account "
    "does not show it yet); nothing was sent"
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _opt_float(value: Any) -> float | None:
    return float(value) if value is not None else None


class PurchaseClient(Protocol):
    """What the executor needs of :class:`~.mam.MamClient`."""

    async def async_get_account(self) -> MamAccount:
        """Read the account (jsonLoad)."""
        ...

    async def async_buy_vip(self) -> PurchaseReceipt:
        """Buy VIP with ``duration=max``."""
        ...

    async def async_buy_upload(self, amount_gb: int) -> PurchaseReceipt:
        """Buy ``amount_gb`` GB of upload credit."""
        ...


@dataclass(frozen=True, slots=True)
class PurchaseOutcome:
    """How one purchase call ended (the action response, the ledger row and the event).

    ``status``: ``done`` (bought; for a dry run: would have been bought), ``rejected`` (MAM
    refused; ``error`` quotes it), ``failed`` (nothing bought: MAM unreachable, rate limited,
    session expired, or the lost answer settled as not applied), ``refused`` (our own checks:
    class, minimum, reserve, an unsettled purchase; nothing sent), ``pending`` (MAM's answer
    was lost and the account does not show the result yet: settled later, never re-sent).
    ``amount`` is GB for upload, days added for VIP. ``created_at`` (to the second, as in the
    ledger) is when the purchase was asked for.
    """

    status: Status
    kind: PurchaseKind
    reason: Reason
    amount: float | None
    cost: float | None
    dry_run: bool
    points_before: float | None
    points_after: float | None
    error: str | None
    created_at: datetime
    settled_from_account: bool = False  # the answer was lost; the account proved the outcome

    @property
    def success(self) -> bool:
        """Bought (or, in a dry run, would have been bought)."""
        return self.status == "done"

    def response(self) -> dict[str, Any]:
        """The ``buy_vip`` / ``buy_upload_credit`` action response (SPEC §10)."""
        return {
            "success": self.success,
            "dry_run": self.dry_run,
            "kind": self.kind,
            "amount": self.amount,
            "cost": self.cost,
            "points_before": self.points_before,
            "points_after": self.points_after,
            "error": self.error,
        }

    def event_data(self, entry_id: str) -> dict[str, Any]:
        """The ``mam_guard_purchase`` bus event: the ledger columns but ``id``."""
        return {
            "entry_id": entry_id,
            "created_at": self.created_at.isoformat(),
            "kind": self.kind,
            "amount": self.amount,
            "cost": self.cost,
            "reason": self.reason,
            "success": self.success,
            "dry_run": self.dry_run,
            "error": self.error,
            "points_before": self.points_before,
            "points_after": self.points_after,
        }

    def ledger_row(self, entry_id: str, intent_id: str | None) -> PurchaseRow:
        """The ``purchases`` row of this outcome."""
        return PurchaseRow(
            entry_id=entry_id,
            created_at=self.created_at,
            kind=self.kind,
            amount=self.amount,
            cost=self.cost,
            reason=self.reason,
            success=self.success,
            dry_run=self.dry_run,
            error=self.error,
            points_before=self.points_before,
            points_after=self.points_after,
            intent_id=intent_id,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form (stored in a settled intent)."""
        return {
            "status": self.status,
            "kind": self.kind,
            "reason": self.reason,
            "amount": self.amount,
            "cost": self.cost,
            "dry_run": self.dry_run,
            "points_before": self.points_before,
            "points_after": self.points_after,
            "error": self.error,
            "created_at": self.created_at.isoformat(),
            "settled_from_account": self.settled_from_account,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Inverse of :meth:`to_dict`."""
        return cls(
            status=cast("Status", data["status"]),
            kind=cast("PurchaseKind", data["kind"]),
            reason=cast("Reason", data["reason"]),
            amount=_opt_float(data.get("amount")),
            cost=_opt_float(data.get("cost")),
            dry_run=bool(data.get("dry_run", False)),
            points_before=_opt_float(data.get("points_before")),
            points_after=_opt_float(data.get("points_after")),
            error=data.get("error"),
            created_at=datetime.fromisoformat(data["created_at"]),
            settled_from_account=bool(data.get("settled_from_account", False)),
        )


@dataclass(slots=True)
class PurchaseIntent:
    """A purchase about to be (or being) sent, persisted before the request.

    The ``*_before`` values are the account as read just before sending: the baseline the
    settle compares against. ``outcome`` is set once the purchase is settled; from then on only
    the ledger row and the attempt log are left to do.
    """

    id: str
    kind: PurchaseKind
    reason: Reason
    amount_gb: int | None
    cost: float
    days: float | None
    created_at: datetime
    points_before: float
    uploaded_before: int
    vip_until_before: datetime | None
    error: str | None = None  # why MAM's answer was lost, when it was
    outcome: PurchaseOutcome | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "id": self.id,
            "kind": self.kind,
            "reason": self.reason,
            "amount_gb": self.amount_gb,
            "cost": self.cost,
            "days": self.days,
            "created_at": self.created_at.isoformat(),
            "points_before": self.points_before,
            "uploaded_before": self.uploaded_before,
            "vip_until_before": _iso(self.vip_until_before),
            "error": self.error,
            "outcome": self.outcome.to_dict() if self.outcome is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Inverse of :meth:`to_dict`."""
        amount = data.get("amount_gb")
        outcome = data.get("outcome")
        return cls(
            id=str(data["id"]),
            kind=cast("PurchaseKind", data["kind"]),
            reason=cast("Reason", data["reason"]),
            amount_gb=int(amount) if amount is not None else None,
            cost=float(data["cost"]),
            days=_opt_float(data.get("days")),
            created_at=datetime.fromisoformat(data["created_at"]),
            points_before=float(data["points_before"]),
            uploaded_before=int(data["uploaded_before"]),
            vip_until_before=_dt(data.get("vip_until_before")),
            error=data.get("error"),
            outcome=PurchaseOutcome.from_dict(outcome) if outcome else None,
        )


def _attempt_to_dict(attempt: Attempt) -> dict[str, Any]:
    return {
        "at": attempt.at.isoformat(),
        "kind": attempt.kind,
        "reason": attempt.reason,
        "amount": attempt.amount,
        "outcome": attempt.outcome,
        "dry_run": attempt.dry_run,
    }


def _attempt_from_dict(data: dict[str, Any]) -> Attempt:
    return Attempt(
        at=datetime.fromisoformat(data["at"]),
        kind=cast("PurchaseKind", data["kind"]),
        reason=cast("Reason", data["reason"]),
        amount=_opt_float(data.get("amount")),
        outcome=cast("AttemptOutcome", data["outcome"]),
        dry_run=bool(data.get("dry_run", False)),
    )


def _row_to_dict(row: PurchaseRow) -> dict[str, Any]:
    return {
        "entry_id": row.entry_id,
        "created_at": row.created_at.isoformat(),
        "kind": row.kind,
        "amount": row.amount,
        "cost": row.cost,
        "reason": row.reason,
        "success": row.success,
        "dry_run": row.dry_run,
        "error": row.error,
        "points_before": row.points_before,
        "points_after": row.points_after,
        "intent_id": row.intent_id,
    }


def _row_from_dict(data: dict[str, Any]) -> PurchaseRow:
    return PurchaseRow(
        entry_id=str(data["entry_id"]),
        created_at=datetime.fromisoformat(data["created_at"]),
        kind=str(data["kind"]),
        amount=_opt_float(data.get("amount")),
        cost=_opt_float(data.get("cost")),
        reason=str(data["reason"]),
        success=bool(data["success"]),
        dry_run=bool(data["dry_run"]),
        error=data.get("error"),
        points_before=_opt_float(data.get("points_before")),
        points_after=_opt_float(data.get("points_after")),
        intent_id=data.get("intent_id"),
    )


@dataclass(slots=True)
class PurchaseRecord:
    """What purchases must remember across restarts (stored as a versioned JSON dict).

    ``intent``: the open (or settled but not yet booked) purchase; ``attempts``: the last 48 h
    of attempts, for cooldowns and the daily cap; ``unwritten``: ledger rows whose write failed,
    retried on the next call.
    """

    intent: PurchaseIntent | None = None
    attempts: list[Attempt] = field(default_factory=list)
    unwritten: list[PurchaseRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "version": RECORD_VERSION,
            "intent": self.intent.to_dict() if self.intent is not None else None,
            "attempts": [_attempt_to_dict(a) for a in self.attempts],
            "unwritten": [_row_to_dict(r) for r in self.unwritten],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Self:
        """Inverse of :meth:`to_dict`; an empty or missing dict is a fresh record.

        Raises ValueError for a record of a newer version (never guess at an open intent).
        """
        if not data:
            return cls()
        if int(data.get("version", RECORD_VERSION)) > RECORD_VERSION:
            raise ValueError(
                f"purchase record version {data.get('version')} is newer than {RECORD_VERSION}"
            )
        intent = data.get("intent")
        return cls(
            intent=PurchaseIntent.from_dict(intent) if intent else None,
            attempts=[_attempt_from_dict(a) for a in data.get("attempts") or []],
            unwritten=[_row_from_dict(r) for r in data.get("unwritten") or []],
        )


@dataclass(frozen=True, slots=True)
class AutomaticRun:
    """One automatic run: every policy decision, and the outcome of each purchase made.

    ``pending``: an earlier purchase is still unsettled, so no policy ran (``decisions`` empty).
    """

    decisions: tuple[Decision, ...]
    outcomes: tuple[PurchaseOutcome, ...]
    pending: bool = False


@dataclass(frozen=True, slots=True)
class _Request:
    """One purchase call's arguments."""

    kind: PurchaseKind
    amount_gb: int | None
    reason: Reason
    reserve: float
    dry_run: bool
    points_per_day: float | None


_STATUS_ATTEMPT: Final[dict[Status, AttemptOutcome]] = {
    "done": "done",
    "rejected": "rejected",
    "failed": "failed",
    "refused": "failed",
}


class PurchaseExecutor:
    """Carries out purchases crash-safely; see the module docstring for the API."""

    def __init__(
        self,
        client: PurchaseClient,
        *,
        entry_id: str,
        record: PurchaseRecord,
        persist: Callable[[PurchaseRecord], Awaitable[None]],
        write_ledger: Callable[[PurchaseRow], Awaitable[object]],
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        """``persist`` must have written the record when it returns (HA storage, not delayed)."""
        self._client = client
        self._entry_id = entry_id
        self.record = record
        self._persist_cb = persist
        self._write_ledger = write_ledger
        self._clock = clock
        self._lock = asyncio.Lock()

    @property
    def pending(self) -> PurchaseIntent | None:
        """The purchase still waiting to be settled from the account, if any."""
        intent = self.record.intent
        return intent if intent is not None and intent.outcome is None else None

    @property
    def attempts(self) -> list[Attempt]:
        """Recent attempts (cooldowns, daily cap); pass them to the policies."""
        return list(self.record.attempts)

    # -- public API ----------------------------------------------------------------------------

    async def async_wait_idle(self) -> None:
        """Return once no purchase is running (entry unload: its bookkeeping lands first)."""
        async with self._lock:
            return

    async def async_settle(
        self,
        account: MamAccount | None = None,
        *,
        read_at: datetime | None = None,
        points_per_day: float | None = None,
    ) -> PurchaseOutcome | None:
        """Settle an open intent from ``account`` (read at ``read_at``, default now).

        Without ``account`` the account is read now. An account read before the intent was
        sent proves nothing and is ignored. Returns the outcome when the intent settled now.
        """
        async with self._lock:
            await self._flush()
            return await self._settle(account, read_at, points_per_day)

    async def async_buy_vip(
        self,
        *,
        reserve: float,
        dry_run: bool = False,
        reason: Reason = "manual",
        account: MamAccount | None = None,
        points_per_day: float | None = None,
    ) -> PurchaseOutcome:
        """Buy VIP up to the cap (``duration=max``) if MAM's rules and the reserve allow it.

        ``account`` (the latest poll) is used as is for a dry run; a real purchase always reads
        the account first.
        """
        async with self._lock:
            await self._flush()
            request = _Request("vip", None, reason, reserve, dry_run, points_per_day)
            return await self._purchase(request, account)

    async def async_buy_upload(
        self,
        amount_gb: int,
        *,
        reserve: float,
        dry_run: bool = False,
        reason: Reason = "manual",
        account: MamAccount | None = None,
        points_per_day: float | None = None,
    ) -> PurchaseOutcome:
        """Buy ``amount_gb`` GB of upload credit (whole GB, at least 50) within the reserve."""
        async with self._lock:
            await self._flush()
            request = _Request("upload", amount_gb, reason, reserve, dry_run, points_per_day)
            return await self._purchase(request, account)

    async def async_run_automatic(
        self,
        account: MamAccount,
        options: PurchaseOptions,
        *,
        emergency_active: bool,
        points_per_day: float | None = None,
        read_at: datetime | None = None,
    ) -> AutomaticRun:
        """Settle an open intent, then plan on ``account`` (the poll) and buy what is planned."""
        async with self._lock:
            await self._flush()
            outcomes: list[PurchaseOutcome] = []
            if self.record.intent is not None:
                settled = await self._settle(account, read_at, points_per_day)
                if settled is not None:
                    outcomes.append(settled)
                if self.record.intent is not None:
                    return AutomaticRun((), tuple(outcomes), pending=True)
            now = self._clock()
            decisions = plan_automatic(
                account,
                options,
                self.record.attempts,
                now,
                emergency_active=emergency_active,
                points_per_day=points_per_day,
            )
            current = account
            for decision in decisions:
                if not isinstance(decision, PurchasePlan):
                    continue
                request = _Request(
                    decision.kind,
                    decision.amount,
                    decision.reason,
                    options.points_reserve,
                    options.dry_run,
                    points_per_day,
                )
                outcome = await self._purchase(request, current if options.dry_run else None)
                outcomes.append(outcome)
                if outcome.status == "pending":
                    break
                if options.dry_run and outcome.success:
                    current = project(current, decision, now)
            return AutomaticRun(tuple(decisions), tuple(outcomes))

    # -- machinery -----------------------------------------------------------------------------

    async def _persist(self) -> None:
        await self._persist_cb(self.record)

    async def _purchase(self, req: _Request, account: MamAccount | None) -> PurchaseOutcome:
        now = self._clock()

        def early(status: Status, error: str, points: float | None = None) -> PurchaseOutcome:
            return PurchaseOutcome(
                status,
                kind=req.kind,
                reason=req.reason,
                amount=req.amount_gb,
                cost=None,
                dry_run=req.dry_run,
                points_before=points,
                points_after=points,
                error=error,
                created_at=now.replace(microsecond=0),
            )

        automatic = req.reason != "manual"
        if self.record.intent is not None:
            await self._settle(None, None, req.points_per_day)
            if self.record.intent is not None:
                return await self._book(early("refused", PENDING_BLOCKS), attempt=False)
        if account is None or not req.dry_run:
            try:
                account = await self._client.async_get_account()
            except MamError as err:
                error = f"Nothing was bought: the account could not be read ({err})"
                return await self._book(early("failed", error), attempt=automatic)
        points = account.seedbonus
        decision = check_purchase(
            account,
            req.kind,
            req.amount_gb,
            reason=req.reason,
            reserve=req.reserve,
            now=now,
            points_per_day=req.points_per_day,
        )
        if isinstance(decision, NoPurchase):
            return await self._book(early("refused", decision.why, points), attempt=automatic)
        if req.dry_run:
            _LOGGER.info("Dry run, nothing sent: %s (%s)", decision.why, req.reason)
            return await self._book(
                PurchaseOutcome(
                    "done",
                    kind=req.kind,
                    reason=req.reason,
                    amount=decision.days if req.kind == "vip" else decision.amount,
                    cost=decision.cost,
                    dry_run=True,
                    points_before=points,
                    points_after=project(account, decision, now).seedbonus,
                    error=None,
                    created_at=now.replace(microsecond=0),
                ),
                attempt=True,
            )

        intent = PurchaseIntent(
            id=uuid.uuid4().hex,
            kind=req.kind,
            reason=req.reason,
            amount_gb=decision.amount,
            cost=decision.cost,
            days=decision.days,
            created_at=now,
            points_before=points,
            uploaded_before=account.uploaded_bytes,
            vip_until_before=account.vip_until,
        )
        self.record.intent = intent
        await self._persist()  # the intent is on disk before the request leaves
        try:
            if req.kind == "vip":
                receipt = await self._client.async_buy_vip()
            else:
                receipt = await self._client.async_buy_upload(cast("int", decision.amount))
        except MamPurchaseRejectedError as err:
            _LOGGER.warning("MyAnonamouse refused %s (%s): %s", decision.why, req.reason, err.error)
            outcome = self._outcome(intent, "rejected", points_after=points, error=str(err))
        except (MamPurchaseUnknownError, MamPayloadError) as err:
            _LOGGER.warning(
                "No answer to the purchase of %s; settling it from the account: %s",
                decision.why,
                err,
            )
            intent.error = str(err)
            await self._persist()
            settled = await self._settle(None, None, req.points_per_day)
            if settled is not None:
                return settled
            return self._outcome(
                intent,
                "pending",
                points_after=None,
                error=f"MyAnonamouse did not answer ({err}). The purchase is settled from the "
                "account once it shows the result; it is never sent again",
            )
        except MamError as err:
            outcome = self._outcome(
                intent, "failed", points_after=points, error=f"Nothing was bought: {err}"
            )
        else:
            _LOGGER.info("Bought %s (%s)", decision.why, req.reason)
            after = receipt.seedbonus
            cost = decision.cost
            if req.kind == "vip" and after is not None and points - after > 0:
                cost = round(points - after, 3)  # MAM's actual charge
            outcome = self._outcome(intent, "done", points_after=after, cost=cost)
        return await self._finish(intent, outcome)

    def _outcome(
        self,
        intent: PurchaseIntent,
        status: Status,
        *,
        points_after: float | None,
        error: str | None = None,
        cost: float | None = None,
        amount: float | None = None,
        settled: bool = False,
    ) -> PurchaseOutcome:
        return PurchaseOutcome(
            status=status,
            kind=intent.kind,
            reason=intent.reason,
            amount=amount if amount is not None else intent.days or intent.amount_gb,
            cost=cost if cost is not None else intent.cost,
            dry_run=False,
            points_before=intent.points_before,
            points_after=points_after,
            error=error,
            created_at=intent.created_at.replace(microsecond=0),
            settled_from_account=settled,
        )

    async def _settle(
        self,
        account: MamAccount | None,
        read_at: datetime | None,
        points_per_day: float | None,
    ) -> PurchaseOutcome | None:
        intent = self.record.intent
        if intent is None:
            return None
        if intent.outcome is not None:  # settled before a crash; only the booking was left
            return await self._finish(intent, intent.outcome)
        if account is None:
            try:
                account = await self._client.async_get_account()
            except MamError as err:
                _LOGGER.info("The open purchase cannot be settled yet: %s", err)
                return None
            read_at = self._clock()
        read_at = read_at or self._clock()
        if read_at < intent.created_at:
            return None  # read before the purchase was sent: proves nothing
        verdict = settle_verdict(
            kind=intent.kind,
            amount_gb=intent.amount_gb,
            cost=intent.cost,
            points_before=intent.points_before,
            uploaded_before=intent.uploaded_before,
            vip_until_before=intent.vip_until_before,
            sent_at=intent.created_at,
            account=account,
            read_at=read_at,
            points_per_day=points_per_day,
        )
        if verdict == "unknown":
            return None
        if verdict == "applied":
            amount = None
            if intent.kind == "vip" and account.vip_until is not None:
                start = max(intent.vip_until_before or intent.created_at, intent.created_at)
                amount = round((account.vip_until - start) / timedelta(days=1), 1)
            _LOGGER.info("The purchase whose answer was lost was applied by MyAnonamouse")
            outcome = self._outcome(
                intent, "done", points_after=account.seedbonus, amount=amount, settled=True
            )
        else:
            _LOGGER.info("The purchase whose answer was lost was not applied by MyAnonamouse")
            lost = f" ({intent.error})" if intent.error else ""
            outcome = self._outcome(
                intent,
                "failed",
                points_after=account.seedbonus,
                error=f"MyAnonamouse's answer was lost{lost} and the account shows no "
                "purchase: nothing was bought",
                settled=True,
            )
        return await self._finish(intent, outcome)

    async def _finish(self, intent: PurchaseIntent, outcome: PurchaseOutcome) -> PurchaseOutcome:
        """Book a settled intent: outcome persisted, ledger row, attempt logged, intent closed."""
        if intent.outcome is None:
            intent.outcome = outcome
            await self._persist()
        await self._write(outcome.ledger_row(self._entry_id, intent.id))
        self._log_attempt(outcome)
        self.record.intent = None
        await self._persist()
        return outcome

    async def _book(self, outcome: PurchaseOutcome, *, attempt: bool) -> PurchaseOutcome:
        """Book an outcome that never had an intent (refusals, failures before, dry runs)."""
        await self._write(outcome.ledger_row(self._entry_id, uuid.uuid4().hex))
        if attempt:
            self._log_attempt(outcome)
        await self._persist()
        return outcome

    def _log_attempt(self, outcome: PurchaseOutcome) -> None:
        now = self._clock()
        kept = [a for a in self.record.attempts if now - a.at < ATTEMPTS_KEPT]
        kept.append(
            Attempt(
                at=outcome.created_at,
                kind=outcome.kind,
                reason=outcome.reason,
                amount=outcome.amount if outcome.kind == "upload" else None,
                outcome=_STATUS_ATTEMPT[outcome.status],
                dry_run=outcome.dry_run,
            )
        )
        self.record.attempts = kept[-MAX_ATTEMPTS:]

    async def _write(self, row: PurchaseRow) -> None:
        try:
            await self._write_ledger(row)
        except Exception as err:  # the purchase matters more than its row: keep it for later
            _LOGGER.warning("Could not write the purchase ledger, will retry: %s", err)
            self.record.unwritten = [*self.record.unwritten, row][-MAX_UNWRITTEN:]

    async def _flush(self) -> None:
        """Retry ledger rows whose write failed earlier."""
        if not self.record.unwritten:
            return
        rows, self.record.unwritten = self.record.unwritten, []
        for row in rows:
            await self._write(row)
        await self._persist()
