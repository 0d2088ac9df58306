"""The purchase executor against the MAM simulator over real HTTP, with a real SQLite ledger.

The record goes through JSON on every persist (as HA storage would keep it); a "restart" is a new
client and a new executor built from the last stored JSON. Purchases are counted where they
count: at the simulator (``sim.purchases``: applied; ``sim.requests``: received).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from custom_components.mam_guard.lib.bonus_buy import (
    MamPurchaseRejectedError,
    MamPurchaseUnknownError,
    PurchaseReceipt,
)
from custom_components.mam_guard.lib.errors import (
    MamConnectionError,
    MamPayloadError,
    MamRateLimitedError,
)
from custom_components.mam_guard.lib.mam import MamClient
from custom_components.mam_guard.lib.models import MamAccount
from custom_components.mam_guard.lib.purchase_executor import (
    PENDING_BLOCKS,
    PurchaseExecutor,
    PurchaseIntent,
    PurchaseOutcome,
    PurchaseRecord,
)
from custom_components.mam_guard.lib.purchases import GIB, PurchaseOptions, Skip
from custom_components.mam_guard.lib.rules_store import PurchaseRow, RulesStore
from mam_simulator import MamSimulator
from tests.support.mam_sim import TEST_COOKIE, USER_AGENT, mam_http_session, running_simulator

BUY = "json/bonusBuy.php/"
ENTRY = "entry-1"
EVENT_KEYS = {
    "entry_id",
    "created_at",
    "kind",
    "amount",
    "cost",
    "reason",
    "success",
    "dry_run",
    "error",
    "points_before",
    "points_after",
}
RESPONSE_KEYS = {
    "success",
    "dry_run",
    "kind",
    "amount",
    "cost",
    "points_before",
    "points_after",
    "error",
}


def vip_date(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%d %H:%M:%S")


class Stack:
    """The simulator, an HTTP session, the ledger and the stored record of one test."""

    def __init__(self, sim: MamSimulator, http: aiohttp.ClientSession, store: RulesStore) -> None:
        self.sim = sim
        self.http = http
        self.store = store
        self.cookie = TEST_COOKIE
        self.stored: str | None = None  # the record as HA storage holds it
        # At every persist: (bonusBuy requests received so far, intent open?).
        self.persists: list[tuple[int, bool]] = []
        self.clients: list[MamClient] = []

    async def _rotated(self, value: str) -> None:
        self.cookie = value

    async def persist(self, record: PurchaseRecord) -> None:
        self.stored = json.dumps(record.to_dict())
        self.persists.append((self.sim.requests[BUY], record.intent is not None))

    async def write(self, row: PurchaseRow) -> None:
        await asyncio.to_thread(self.store.add_purchase, row)

    def client(self, *, timeout: float = 5.0) -> MamClient:
        client = MamClient(
            self.http,
            self.cookie,
            base_url=self.sim.base_url,
            user_agent=USER_AGENT,
            request_timeout=timeout,
            on_cookie_rotated=self._rotated,
        )
        self.clients.append(client)
        return client

    def executor(
        self, *, timeout: float = 5.0, clock: Callable[[], datetime] | None = None
    ) -> PurchaseExecutor:
        """A fresh executor (a restart) from the last stored record."""
        record = PurchaseRecord.from_dict(json.loads(self.stored) if self.stored else None)
        extra: dict[str, Any] = {"clock": clock} if clock else {}
        return PurchaseExecutor(
            self.client(timeout=timeout),
            entry_id=ENTRY,
            record=record,
            persist=self.persist,
            write_ledger=self.write,
            **extra,
        )

    def ledger(self) -> list[PurchaseRow]:
        return self.store.purchases(ENTRY, limit=100)

    async def account(self) -> MamAccount:
        return await self.client().async_get_account()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RulesStore]:
    rules_store = RulesStore(str(tmp_path / "mam_guard.db"))
    rules_store.open()
    yield rules_store
    rules_store.close()


@pytest.fixture
async def stack(socket_enabled: None, store: RulesStore) -> AsyncIterator[Stack]:
    async with (
        running_simulator(seedbonus=60_000, rotate=False) as sim,
        mam_http_session() as http,
    ):
        harness = Stack(sim, http, store)
        yield harness
        for client in harness.clients:
            await client.async_close()


def later(delta: timedelta) -> Callable[[], datetime]:
    return lambda: datetime.now(UTC) + delta


def assert_booked(stack: Stack, outcome: PurchaseOutcome) -> PurchaseRow:
    """The outcome is the newest ledger row, and its event carries the same fields."""
    row = stack.ledger()[0]
    assert row.id is not None
    assert replace(row, id=None, intent_id=None) == outcome.ledger_row(ENTRY, None)
    event = outcome.event_data(ENTRY)
    assert set(event) == EVENT_KEYS
    assert event["success"] is row.success
    assert (event["kind"], event["reason"], event["error"]) == (row.kind, row.reason, row.error)
    assert set(outcome.response()) == RESPONSE_KEYS
    return row


# -- real purchases ----------------------------------------------------------------------------


async def test_upload_purchase_persists_the_intent_first_and_books_it(stack: Stack) -> None:
    executor = stack.executor()
    outcome = await executor.async_buy_upload(50, reserve=10_000)
    assert outcome.response() == {
        "success": True,
        "dry_run": False,
        "kind": "upload",
        "amount": 50,
        "cost": 25_000,
        "points_before": 60_000,
        "points_after": 35_000,
        "error": None,
    }
    assert (outcome.status, outcome.settled_from_account) == ("done", False)
    assert [p["amount"] for p in stack.sim.purchases] == [50]
    # The intent was on disk before the request reached MAM, and closed after.
    assert stack.persists[0] == (0, True)
    assert stack.persists[-1] == (1, False)
    row = assert_booked(stack, outcome)
    assert (row.kind, row.reason, row.success, row.dry_run) == ("upload", "manual", True, False)
    assert executor.pending is None
    assert executor.record.intent is None
    [attempt] = executor.attempts
    assert (attempt.kind, attempt.amount, attempt.outcome) == ("upload", 50, "done")


async def test_vip_purchase_books_days_and_mam_actual_charge(stack: Stack) -> None:
    stack.sim.state.vip_until = vip_date(timedelta(days=20))
    outcome = await stack.executor().async_buy_vip(reserve=0, reason="vip_renewal")
    assert outcome.success
    assert outcome.amount == pytest.approx(70.0, abs=0.1)
    assert outcome.cost == pytest.approx(12_500, abs=15)  # the drop MAM reported, not 10 weeks
    assert outcome.points_after == pytest.approx(60_000 - 12_500, abs=15)
    assert [p["kind"] for p in stack.sim.purchases] == ["vip"]
    assert assert_booked(stack, outcome).reason == "vip_renewal"


async def test_mam_rejection_is_a_clear_message_and_a_ledger_row(stack: Stack) -> None:
    # MAM's cap is only known to lie in [89.4, 96.4) days: here it is lower than ours, so MAM
    # refuses what our own check allowed.
    stack.sim.state.vip_cap_days = 88
    stack.sim.state.vip_until = vip_date(timedelta(days=82))
    executor = stack.executor()
    outcome = await executor.async_buy_vip(reserve=0)
    assert outcome.status == "rejected"
    assert outcome.error == (
        "MyAnonamouse refused the purchase: Min VIP is 1 week purchased for Automated methods"
    )
    assert (outcome.points_before, outcome.points_after) == (60_000, 60_000)
    assert stack.sim.purchases == []
    assert stack.sim.requests[BUY] == 1
    row = assert_booked(stack, outcome)
    assert (row.success, row.error) == (False, outcome.error)
    assert executor.attempts[0].outcome == "rejected"


@pytest.mark.parametrize(
    ("state", "kwargs", "error"),
    [
        (
            {"seedbonus": 30_000},
            {"amount_gb": 50, "reserve": 10_000},
            "Not enough bonus points for the upload credit",
        ),
        ({}, {"amount_gb": 49, "reserve": 0}, "at least 50 GB"),
        ({"classname": "User"}, {"reserve": 0}, "Only Power Users and VIPs can buy VIP"),
        ({"vip_until": vip_date(timedelta(days=85))}, {"reserve": 0}, "at least 7 days"),
    ],
)
async def test_refused_by_our_checks_sends_nothing(
    stack: Stack, state: dict[str, Any], kwargs: dict[str, Any], error: str
) -> None:
    for key, value in state.items():
        setattr(stack.sim.state, key, value)
    executor = stack.executor()
    if "amount_gb" in kwargs:
        outcome = await executor.async_buy_upload(**kwargs)
    else:
        outcome = await executor.async_buy_vip(**kwargs)
    assert outcome.status == "refused"
    assert outcome.error is not None
    assert error in outcome.error
    assert stack.sim.requests[BUY] == 0
    assert assert_booked(stack, outcome).success is False
    assert executor.attempts == []  # a manual refusal holds nothing back


async def test_account_unreadable_buys_nothing(stack: Stack) -> None:
    stack.sim.fail_next(429)
    executor = stack.executor()
    outcome = await executor.async_buy_upload(50, reserve=0, reason="emergency")
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error.startswith("Nothing was bought: the account could not be read")
    assert stack.sim.requests[BUY] == 0
    assert assert_booked(stack, outcome).error == outcome.error
    assert executor.attempts[0].outcome == "failed"  # automatic: held back for an hour


# -- the answer is lost: settled from the account, never sent again ----------------------------


@pytest.mark.parametrize("fault", ["timeout_after_apply", "drop_after_apply"])
async def test_applied_then_answer_lost_settles_as_done(stack: Stack, fault: str) -> None:
    stack.sim.state.purchase_fault = fault
    stack.sim.state.purchase_fault_delay = 1.0
    executor = stack.executor(timeout=0.3)
    outcome = await executor.async_buy_upload(50, reserve=0)
    assert (outcome.status, outcome.settled_from_account) == ("done", True)
    assert (outcome.points_before, outcome.points_after) == (60_000, 35_000)
    assert len(stack.sim.purchases) == 1
    assert stack.sim.requests[BUY] == 1  # no second request
    assert assert_booked(stack, outcome).success is True
    assert executor.pending is None
    # The next purchase goes through normally.
    stack.sim.state.purchase_fault = None
    assert (await executor.async_buy_upload(50, reserve=0)).success
    assert len(stack.sim.purchases) == 2


async def test_restart_between_request_and_answer_settles_from_the_account(stack: Stack) -> None:
    """HA stops while MAM is applying: the stored intent is settled by the next executor."""
    stack.sim.state.purchase_fault = "timeout_after_apply"
    stack.sim.state.purchase_fault_delay = 1.0
    first = stack.executor()
    task = asyncio.create_task(first.async_buy_upload(50, reserve=0))
    for _ in range(500):
        if stack.sim.purchases:
            break
        await asyncio.sleep(0.01)
    assert len(stack.sim.purchases) == 1  # applied, the answer not sent yet
    task.cancel()  # the entry unloads: nothing after the request runs
    with pytest.raises(asyncio.CancelledError):
        await task
    stored = json.loads(stack.stored or "")
    assert stored["intent"]["outcome"] is None  # open on disk
    assert stack.ledger() == []
    await stack.clients[0].async_close()

    restarted = stack.executor()
    assert restarted.pending is not None
    outcome = await restarted.async_settle()
    assert outcome is not None
    assert (outcome.status, outcome.settled_from_account) == ("done", True)
    assert outcome.points_after == 35_000
    assert stack.sim.requests[BUY] == 1
    assert len(stack.sim.purchases) == 1
    assert [row.success for row in stack.ledger()] == [True]
    assert await restarted.async_settle() is None  # nothing left to settle


async def test_rotated_cookie_lost_with_the_answer_waits_for_reauth(stack: Stack) -> None:
    """With rotation on, the lost answer takes the new session with it: settle after reauth."""
    stack.sim.state.rotate = True
    stack.sim.state.purchase_fault = "drop_after_apply"
    stale = await_account(stack)
    executor = stack.executor()
    outcome = await executor.async_buy_upload(50, reserve=0)
    assert outcome.status == "pending"
    assert outcome.success is False
    assert outcome.error is not None
    assert "never sent again" in outcome.error
    assert outcome.response()["success"] is False
    assert stack.ledger() == []  # booked when settled
    assert executor.pending is not None
    # Everything else is refused without sending anything until the intent is settled.
    blocked = await executor.async_buy_vip(reserve=0)
    assert (blocked.status, blocked.error) == ("refused", PENDING_BLOCKS)
    # The coordinator's last poll predates the purchase: it proves nothing either way.
    run = await executor.async_run_automatic(
        stale,
        PurchaseOptions(upload_credit="emergency"),
        emergency_active=True,
        read_at=datetime.now(UTC) - timedelta(minutes=1),
    )
    assert run.pending is True
    assert run.decisions == ()
    assert run.outcomes == ()
    assert stack.sim.requests[BUY] == 1

    stack.cookie = stack.sim.add_cookie()  # the user pastes a new session (reauth)
    reauthed = stack.executor()
    settled = await reauthed.async_settle()
    assert settled is not None
    assert settled.success
    assert len(stack.sim.purchases) == 1
    assert stack.sim.requests[BUY] == 1
    assert [row.success for row in stack.ledger()] == [True, False]  # + the refused VIP


def await_account(stack: Stack) -> MamAccount:
    """The account as the coordinator last saw it (jsonLoad shape, parsed)."""
    return MamAccount.from_json(stack.sim.account_json())


async def test_not_applied_is_proven_only_after_the_grace_period(stack: Stack) -> None:
    stack.sim.state.purchase_fault = "drop_before_apply"
    executor = stack.executor()
    outcome = await executor.async_buy_upload(50, reserve=0)
    assert outcome.status == "pending"  # no trace yet, but MAM might still be applying it
    assert await executor.async_settle() is None
    assert stack.sim.requests[BUY] == 1

    later_executor = stack.executor(clock=later(timedelta(minutes=6)))
    settled = await later_executor.async_settle(await_account(stack))
    assert settled is not None
    assert (settled.status, settled.settled_from_account) == ("failed", True)
    assert settled.error is not None
    assert "account shows no purchase: nothing was bought" in settled.error
    assert "ServerDisconnectedError" in settled.error
    assert stack.sim.purchases == []
    assert stack.sim.requests[BUY] == 1
    assert assert_booked(stack, settled).success is False
    # Not held back like a rejection: a manual purchase may follow at once.
    stack.sim.state.purchase_fault = None
    assert (await later_executor.async_buy_upload(50, reserve=0)).success


async def test_intent_persisted_but_never_sent(stack: Stack) -> None:
    """A crash between persisting the intent and sending: settled as not bought, not sent."""
    account = await_account(stack)
    sent_at = datetime.now(UTC) - timedelta(minutes=10)
    intent = PurchaseIntent(
        id="crashed",
        kind="vip",
        reason="vip_renewal",
        amount_gb=None,
        cost=15_000,
        days=80,
        created_at=sent_at,
        points_before=account.seedbonus,
        uploaded_before=account.uploaded_bytes,
        vip_until_before=account.vip_until,
    )
    stack.stored = json.dumps(PurchaseRecord(intent=intent).to_dict())
    executor = stack.executor()
    # An account read before the intent proves nothing.
    assert await executor.async_settle(account, read_at=sent_at - timedelta(seconds=1)) is None
    outcome = await executor.async_settle(account)
    assert outcome is not None
    assert (outcome.status, outcome.kind, outcome.reason) == ("failed", "vip", "vip_renewal")
    assert stack.sim.requests[BUY] == 0
    row = assert_booked(stack, outcome)
    assert row.intent_id == "crashed"


async def test_crash_after_settling_books_the_row_once(stack: Stack) -> None:
    """A crash after the outcome was persisted: the restart books it, exactly once."""
    crash_on: list[int] = [3]  # the persist that closes the intent (after the ledger write)

    async def persist(record: PurchaseRecord) -> None:
        if len(stack.persists) + 1 == crash_on[0]:
            stack.persists.append((-1, True))
            raise RuntimeError("killed")  # not written: the disk holds the previous record
        await stack.persist(record)

    executor = stack.executor()
    executor._persist_cb = persist
    with pytest.raises(RuntimeError, match="killed"):
        await executor.async_buy_upload(50, reserve=0)
    stored = json.loads(stack.stored or "")
    assert stored["intent"]["outcome"]["status"] == "done"
    assert len(stack.ledger()) == 1  # written just before the crash

    restarted = stack.executor()
    assert restarted.pending is None  # settled: only the booking was left
    outcome = await restarted.async_settle()
    assert outcome is not None
    assert outcome.success
    assert len(stack.ledger()) == 1  # the second write of that intent was ignored
    assert len(restarted.attempts) == 1
    assert restarted.record.intent is None
    assert len(stack.sim.purchases) == 1


# -- dry run -----------------------------------------------------------------------------------


async def test_dry_run_sends_nothing_but_is_booked_as_real(stack: Stack) -> None:
    account = await_account(stack)
    executor = stack.executor()
    outcome = await executor.async_buy_upload(50, reserve=0, dry_run=True, account=account)
    assert outcome.response() == {
        "success": True,
        "dry_run": True,
        "kind": "upload",
        "amount": 50,
        "cost": 25_000,
        "points_before": 60_000,
        "points_after": 35_000,
        "error": None,
    }
    assert stack.sim.requests.total() == 0  # not even the account was read
    assert stack.sim.purchases == []
    assert assert_booked(stack, outcome).dry_run is True
    assert executor.attempts[0].dry_run is True
    # Without an account it reads one, and still buys nothing.
    vip = await executor.async_buy_vip(reserve=0, dry_run=True)
    assert (vip.success, vip.dry_run) == (True, True)
    left = (datetime(2027, 1, 1, tzinfo=UTC) - datetime.now(UTC)) / timedelta(days=1)
    assert vip.amount == pytest.approx(90 - left, abs=0.2)
    assert stack.sim.requests[BUY] == 0
    assert stack.sim.purchases == []


# -- automatic purchases -----------------------------------------------------------------------


async def test_emergency_buys_the_upload_that_ends_it_once(stack: Stack) -> None:
    state = stack.sim.state
    state.uploaded_bytes, state.downloaded_bytes, state.ratio = 95 * GIB, 100 * GIB, 0.95
    options = PurchaseOptions(upload_credit="emergency", ratio_threshold=1.0)
    executor = stack.executor()
    run = await executor.async_run_automatic(
        await_account(stack), options, emergency_active=True, points_per_day=1000
    )
    [outcome] = run.outcomes
    assert (outcome.kind, outcome.reason, outcome.amount, outcome.success) == (
        "upload",
        "emergency",
        50,
        True,
    )
    assert [type(d).__name__ for d in run.decisions] == ["PurchasePlan", "NoPurchase", "NoPurchase"]
    polled = await stack.account()
    assert polled.ratio is not None
    assert polled.ratio > 1.0  # the next poll ends the emergency
    # The next poll: no emergency any more, nothing bought.
    again = await executor.async_run_automatic(polled, options, emergency_active=False)
    assert again.outcomes == ()
    assert len(stack.sim.purchases) == 1
    assert stack.ledger()[0].reason == "emergency"


async def test_vip_renewed_once_not_again_the_same_day(stack: Stack) -> None:
    stack.sim.state.vip_until = vip_date(timedelta(days=10))
    options = PurchaseOptions(vip_auto_renew=True, vip_renew_days=14, points_reserve=5_000)
    executor = stack.executor()
    stale = await_account(stack)
    run = await executor.async_run_automatic(stale, options, emergency_active=False)
    assert [o.kind for o in run.outcomes if o.success] == ["vip"]
    # A poll that still shows the old date (or MAM being slow) does not buy again.
    again = await executor.async_run_automatic(stale, options, emergency_active=False)
    assert again.outcomes == ()
    vip = again.decisions[1]
    assert getattr(vip, "skip", None) is Skip.COOLDOWN
    assert len(stack.sim.purchases) == 1


async def test_no_automatic_purchase_below_the_reserve_or_for_a_user(stack: Stack) -> None:
    stack.sim.state.vip_until = vip_date(timedelta(days=10))
    stack.sim.state.uploaded_bytes = 95 * GIB
    stack.sim.state.downloaded_bytes = 100 * GIB
    executor = stack.executor()
    options = PurchaseOptions(vip_auto_renew=True, upload_credit="emergency", points_reserve=50_000)
    run = await executor.async_run_automatic(
        await_account(stack), options, emergency_active=True, points_per_day=2_000
    )
    assert run.outcomes == ()
    emergency, vip, _surplus = run.decisions
    assert getattr(emergency, "skip", None) is Skip.INSUFFICIENT_POINTS
    assert getattr(vip, "skip", None) is Skip.INSUFFICIENT_POINTS
    assert getattr(vip, "in_time", None) is True  # 15,000 - 10,000 at 2,000 a day
    stack.sim.state.classname = "User"
    run = await executor.async_run_automatic(
        await_account(stack), replace(options, points_reserve=0), emergency_active=False
    )
    assert getattr(run.decisions[1], "skip", None) is Skip.CLASS_NOT_ALLOWED
    assert stack.sim.requests[BUY] == 0


async def test_surplus_spends_only_above_the_ceiling(stack: Stack) -> None:
    stack.sim.state.seedbonus = 99_999
    options = PurchaseOptions(upload_credit="emergency_and_surplus", points_ceiling=60_000)
    executor = stack.executor()
    run = await executor.async_run_automatic(await_account(stack), options, emergency_active=False)
    [outcome] = run.outcomes
    assert (outcome.reason, outcome.amount, outcome.points_after) == ("surplus", 79, 60_499)
    again = await executor.async_run_automatic(
        await stack.account(), options, emergency_active=False
    )
    assert again.outcomes == ()
    assert len(stack.sim.purchases) == 1


async def test_automatic_dry_run_spends_from_a_projected_balance(stack: Stack) -> None:
    stack.sim.state.seedbonus = 99_999
    stack.sim.state.vip_until = vip_date(timedelta(days=3))
    stack.sim.state.uploaded_bytes, stack.sim.state.downloaded_bytes = 95 * GIB, 100 * GIB
    options = PurchaseOptions(
        vip_auto_renew=True,
        upload_credit="emergency_and_surplus",
        points_ceiling=30_000,
        dry_run=True,
    )
    executor = stack.executor()
    run = await executor.async_run_automatic(await_account(stack), options, emergency_active=True)
    assert [(o.reason, o.dry_run, o.success) for o in run.outcomes] == [
        ("emergency", True, True),
        ("vip_renewal", True, True),
        ("surplus", True, True),
    ]
    points = [(o.points_before, o.points_after) for o in run.outcomes]
    assert points[0] == (99_999.0, 74_999.0)
    assert points[1][0] == 74_999  # the VIP dry run starts where the upload left off
    assert points[2][0] == points[1][1]
    assert stack.sim.requests.total() == 0
    assert stack.sim.purchases == []
    assert len(stack.ledger()) == 3


async def test_automatic_run_settles_an_open_intent_first(stack: Stack) -> None:
    stack.sim.state.purchase_fault = "drop_before_apply"
    executor = stack.executor()
    assert (await executor.async_buy_upload(50, reserve=0, reason="emergency")).status == (
        "pending"
    )
    stack.sim.state.purchase_fault = None
    executor._clock = later(timedelta(minutes=6))
    run = await executor.async_run_automatic(
        await_account(stack),
        PurchaseOptions(upload_credit="emergency"),
        emergency_active=False,
        read_at=datetime.now(UTC) + timedelta(minutes=6),
    )
    [settled] = run.outcomes
    assert (settled.status, settled.reason) == ("failed", "emergency")
    assert run.pending is False
    assert stack.sim.purchases == []


# -- branches with a scripted client -----------------------------------------------------------

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ACCOUNT = MamAccount(
    uid=1,
    username="u",
    classname="VIP",
    ratio=2.0,
    ratio_infinite=False,
    uploaded_bytes=200 * GIB,
    downloaded_bytes=100 * GIB,
    seedbonus=60_000.0,
    wedges=0,
    vip_until=NOW + timedelta(days=10),
    unsatisfied=0,
    unsatisfied_limit=50,
)


class ScriptedClient:
    """Answers from a script: an exception to raise or a value to return, per call."""

    def __init__(self, buys: list[Any], accounts: list[Any] | None = None) -> None:
        self.buys = buys
        self.accounts = accounts or []
        self.bought: list[int | None] = []

    async def async_get_account(self) -> MamAccount:
        answer = self.accounts.pop(0) if self.accounts else ACCOUNT
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def _buy(self, amount: int | None) -> PurchaseReceipt:
        self.bought.append(amount)
        answer = self.buys.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[no-any-return]

    async def async_buy_vip(self) -> PurchaseReceipt:
        return await self._buy(None)

    async def async_buy_upload(self, amount_gb: int) -> PurchaseReceipt:
        return await self._buy(amount_gb)


def scripted(
    client: ScriptedClient,
    *,
    record: PurchaseRecord | None = None,
    ledger: list[PurchaseRow] | None = None,
    fail_writes: int = 0,
) -> PurchaseExecutor:
    rows = ledger if ledger is not None else []
    failures = [fail_writes]

    async def persist(_record: PurchaseRecord) -> None:
        return None

    async def write(row: PurchaseRow) -> None:
        if failures[0]:
            failures[0] -= 1
            raise OSError("disk full")
        rows.append(row)

    return PurchaseExecutor(
        client,
        entry_id=ENTRY,
        record=record or PurchaseRecord(),
        persist=persist,
        write_ledger=write,
        clock=lambda: NOW,
    )


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (MamRateLimitedError(NOW + timedelta(hours=1)), "failed"),
        (MamConnectionError("Cannot reach MyAnonamouse: refused"), "failed"),
        (MamPurchaseRejectedError("Not enough bonus, s1"), "rejected"),
    ],
)
async def test_purchase_failures_that_bought_nothing(error: Exception, status: str) -> None:
    client = ScriptedClient([error])
    outcome = await scripted(client).async_buy_upload(50, reserve=0)
    assert outcome.status == status
    assert outcome.error is not None
    assert str(error) in outcome.error
    assert client.bought == [50]  # sent once, never again


async def test_unreadable_answer_is_settled_not_resent() -> None:
    applied = replace(ACCOUNT, seedbonus=35_000.0, uploaded_bytes=250 * GIB)
    client = ScriptedClient([MamPayloadError("garbage")], accounts=[ACCOUNT, applied])
    outcome = await scripted(client).async_buy_upload(50, reserve=0)
    assert (outcome.status, outcome.settled_from_account) == ("done", True)
    assert client.bought == [50]


async def test_vip_settled_from_the_account_books_the_days_added() -> None:
    moved = replace(ACCOUNT, vip_until=NOW + timedelta(days=90), seedbonus=45_000.0)
    client = ScriptedClient([MamPurchaseUnknownError("lost")], accounts=[ACCOUNT, moved])
    outcome = await scripted(client).async_buy_vip(reserve=0)
    assert (outcome.status, outcome.amount, outcome.points_after) == ("done", 80.0, 45_000)


async def test_vip_receipt_without_balance_books_the_estimate() -> None:
    client = ScriptedClient([PurchaseReceipt("vip", None, None)])
    outcome = await scripted(client).async_buy_vip(reserve=0)
    assert (outcome.success, outcome.cost, outcome.points_after) == (True, 15_000, None)


async def test_ledger_write_failure_is_kept_and_retried() -> None:
    rows: list[PurchaseRow] = []
    client = ScriptedClient([PurchaseReceipt("upload", 50, 35_000.0)] * 2)
    executor = scripted(client, ledger=rows, fail_writes=1)
    assert (await executor.async_buy_upload(50, reserve=0)).success
    assert rows == []
    [kept] = executor.record.unwritten
    assert kept.success is True
    restored = PurchaseRecord.from_dict(json.loads(json.dumps(executor.record.to_dict())))
    assert restored.unwritten == [kept]
    assert (await executor.async_buy_upload(50, reserve=0)).success
    assert rows[0].intent_id == kept.intent_id  # flushed first
    assert len(rows) == 2
    assert executor.record.unwritten == []


async def test_settle_without_an_intent_or_with_an_unreadable_account() -> None:
    executor = scripted(
        ScriptedClient(
            [MamPurchaseUnknownError("lost")], accounts=[ACCOUNT, MamConnectionError("down")]
        )
    )
    assert await executor.async_settle() is None
    outcome = await executor.async_buy_upload(50, reserve=0)
    assert outcome.status == "pending"
    executor._client = ScriptedClient([], accounts=[MamConnectionError("still down")])
    assert await executor.async_settle() is None
    assert executor.pending is not None


def test_record_round_trip_and_versions() -> None:
    intent = PurchaseIntent(
        id="i",
        kind="upload",
        reason="surplus",
        amount_gb=60,
        cost=30_000,
        days=None,
        created_at=NOW,
        points_before=99_999,
        uploaded_before=5,
        vip_until_before=None,
        error="lost",
        outcome=PurchaseOutcome(
            "done",
            kind="upload",
            reason="surplus",
            amount=60,
            cost=30_000,
            dry_run=False,
            points_before=99_999,
            points_after=69_999,
            error=None,
            created_at=NOW,
            settled_from_account=True,
        ),
    )
    record = PurchaseRecord(intent=intent)
    data = json.loads(json.dumps(record.to_dict()))
    assert data["version"] == 1
    assert PurchaseRecord.from_dict(data) == record
    assert PurchaseRecord.from_dict(None) == PurchaseRecord()
    assert PurchaseRecord.from_dict({}) == PurchaseRecord()
    with pytest.raises(ValueError, match="newer"):
        PurchaseRecord.from_dict({"version": 2})


async def test_automatic_run_stops_at_a_pending_purchase(stack: Stack) -> None:
    stack.sim.state.seedbonus = 99_999
    stack.sim.state.vip_until = vip_date(timedelta(days=3))
    stack.sim.state.uploaded_bytes, stack.sim.state.downloaded_bytes = 95 * GIB, 100 * GIB
    stack.sim.state.purchase_fault = "drop_before_apply"
    options = PurchaseOptions(vip_auto_renew=True, upload_credit="emergency")
    run = await stack.executor().async_run_automatic(
        await_account(stack), options, emergency_active=True
    )
    assert [(o.reason, o.status) for o in run.outcomes] == [("emergency", "pending")]
    assert stack.sim.requests[BUY] == 1  # the planned VIP renewal waits for the settle
