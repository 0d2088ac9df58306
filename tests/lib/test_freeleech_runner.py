"""The freeleech lookup runner against the MAM simulator over real HTTP, on a fake clock.

The runner's sleep is replaced by one that advances a fake clock shared by the runner, the
client (429 back-off) and the simulator (which timestamps every search it receives), so hours of
schedule run in well under a second while every request really goes over HTTP. The budget is
checked where it matters: in the simulator's log of what arrived.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import contextlib
from datetime import datetime, timedelta
import itertools
import logging
from typing import Any

import aiohttp
import pytest

from custom_components.mam_guard.lib.errors import MamRateLimitedError
from custom_components.mam_guard.lib.freeleech import (
    FROZEN_REASONS,
    MIN_GAP,
    Answer,
    FreeleechLookups,
    LookupQueue,
    Reason,
    freeze_reason,
)
from custom_components.mam_guard.lib.mam import MamClient
from custom_components.mam_guard.lib.search import TorrentFlags
from mam_simulator import MamSimulator
from tests.lib.test_freeleech import T0, assert_within_budget, h
from tests.support.mam_sim import TEST_COOKIE, USER_AGENT, mam_http_session, running_simulator

HOUR = timedelta(hours=1)


class FakeTime:
    """A clock, and a sleep that advances it (stopping early at a scheduled hook)."""

    def __init__(self, end: datetime) -> None:
        self.now = T0
        self.end = end
        self.finished = asyncio.Event()
        self.hooks: list[tuple[datetime, Callable[[], None]]] = []
        self.on_sleep: Callable[[], None] | None = None

    def __call__(self) -> datetime:
        return self.now

    def at(self, when: datetime, hook: Callable[[], None]) -> None:
        self.hooks.append((when, hook))
        self.hooks.sort(key=lambda item: item[0])

    async def sleep(self, seconds: float) -> None:
        if self.on_sleep is not None:
            self.on_sleep()
        target = self.now + timedelta(seconds=seconds)
        if self.hooks and self.hooks[0][0] <= target:
            when, hook = self.hooks.pop(0)
            self.now = max(self.now, when)
            hook()
        else:
            self.now = target
        if self.now >= self.end:
            self.finished.set()
            await asyncio.Event().wait()  # parked until the test cancels the runner
        await asyncio.sleep(0)


@pytest.fixture
async def sim(socket_enabled: None) -> AsyncIterator[MamSimulator]:
    async with running_simulator() as simulator:
        yield simulator


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with mam_http_session() as http:
        yield http


def make_client(
    sim: MamSimulator, session: aiohttp.ClientSession, fake: FakeTime, **kwargs: Any
) -> MamClient:
    return MamClient(
        session, TEST_COOKIE, base_url=sim.base_url, user_agent=USER_AGENT, clock=fake, **kwargs
    )


async def run_until_finished(runner: FreeleechLookups, fake: FakeTime) -> None:
    """Run the runner until the fake clock reaches its end, then cancel it."""
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(fake.finished.wait(), 60)  # a safety net, not a measurement
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def search_times(sim: MamSimulator) -> list[datetime]:
    return [at for at, _hash in sim.search_log]


async def test_budget_holds_for_100_new_torrents(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    fake = FakeTime(end=T0 + 2 * HOUR)
    sim.clock = fake
    for n in range(100):
        kind = n % 4  # a quarter each: free, personal FL, VIP, paid
        sim.add_torrent(h(n), free=kind == 0, personal_freeleech=kind == 1, vip=kind == 2)
    stored: list[dict[str, Any]] = []
    rotations: list[str] = []

    async def persist(data: dict[str, Any]) -> None:
        stored.append(data)

    async def rotated(value: str) -> None:
        rotations.append(value)

    client = make_client(sim, session, fake, on_cookie_rotated=rotated)
    queue = LookupQueue()
    runner = FreeleechLookups(client, queue, persist, clock=fake, sleep=fake.sleep)
    queue.observe([h(n) for n in range(100)], fake.now)
    await run_until_finished(runner, fake)

    # Counted at the simulator: each torrent once, 5 s apart, at most 60 in any rolling hour.
    assert sim.searches == {h(n): 1 for n in range(100)}
    times = search_times(sim)
    assert_within_budget(times)
    assert sum(1 for t in times if t < T0 + timedelta(minutes=1)) == 12
    assert sum(1 for t in times if t < T0 + HOUR) == 60
    assert min(later - earlier for earlier, later in itertools.pairwise(times)) == MIN_GAP
    assert max(times) < T0 + HOUR + timedelta(minutes=4)  # the last 40 right after the hour
    assert runner.lookups_sent == 100
    # Every answer is cached, persisted, and classified as MAM said.
    assert len(stored) == 100
    restored = LookupQueue.from_dict(stored[-1], now=fake.now)
    reasons = [freeze_reason(restored.flags(h(n)), vip_account=False, tags=()) for n in range(100)]
    assert reasons.count(Reason.FREE) == reasons.count(Reason.PERSONAL_FL) == 25
    assert reasons.count(Reason.PAID) == 50  # VIP torrents cost a non-VIP account
    vip = [freeze_reason(queue.flags(h(n)), vip_account=True) for n in range(100)]
    assert vip.count(Reason.VIP) == 25
    # One rotated cookie per answer, each adopted before the next request.
    assert len(rotations) == 100
    assert sim.valid_cookies == {client.mam_id}


async def test_429_in_the_middle_stops_lookups_until_the_back_off_ends(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    fake = FakeTime(end=T0 + 3 * HOUR)
    sim.clock = fake
    for n in range(20):
        sim.add_torrent(h(n), free=True)
    stored_back_off: list[datetime] = []

    async def on_rate_limited(until: datetime) -> None:
        stored_back_off.append(until)

    def inject() -> None:
        if len(sim.search_log) == 10 and not stored_back_off:
            sim.fail_next(429)

    fake.on_sleep = inject
    client = make_client(sim, session, fake, on_rate_limited=on_rate_limited)
    queue = LookupQueue()
    runner = FreeleechLookups(client, queue, clock=fake, sleep=fake.sleep)
    queue.observe([h(n) for n in range(20)], fake.now)
    await run_until_finished(runner, fake)

    log = sim.search_log
    refused_at, refused = log[10]
    [retry_at] = stored_back_off
    assert retry_at == refused_at + timedelta(minutes=30)
    # Nothing reached MAM during the back-off; then the refused torrent goes first.
    assert log[11] == (retry_at, refused)
    assert sim.searches[refused] == 2
    assert sum(sim.searches.values()) == 21
    assert all(queue.flags(h(n)) is not None for n in range(20))
    assert_within_budget(search_times(sim))


async def test_a_back_off_from_another_request_holds_lookups_too(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    """The account poll got the 429 (or it was restored from storage): no lookup either."""
    fake = FakeTime(end=T0 + HOUR)
    sim.clock = fake
    sim.add_torrent(h(1), free=True)
    client = make_client(sim, session, fake, rate_limited_until=T0 + timedelta(minutes=20))
    queue = LookupQueue()
    queue.observe([h(1)], fake.now)
    runner = FreeleechLookups(client, queue, clock=fake, sleep=fake.sleep)
    await run_until_finished(runner, fake)
    assert search_times(sim) == [T0 + timedelta(minutes=20)]
    assert runner.lookups_sent == 1  # the runner did not even ask the client meanwhile
    assert queue.sent_within_hour(fake.now) == 1  # so no budget was spent on refusals
    with pytest.raises(MamRateLimitedError):  # the client refuses, whoever asks
        await make_client(
            sim, session, FakeTime(T0), rate_limited_until=T0 + HOUR
        ).async_lookup_hash(h(1))


async def test_emergency_rechecks_only_answers_older_than_an_hour(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    fake = FakeTime(end=T0 + 2 * HOUR)
    sim.clock = fake
    sim.add_torrent(h(1))  # paid at first sight
    sim.add_torrent(h(2), free=True)
    client = make_client(sim, session, fake)
    queue = LookupQueue()
    runner = FreeleechLookups(client, queue, clock=fake, sleep=fake.sleep)

    def declare() -> None:
        queue.on_emergency_declared(fake.now)
        runner.wake()

    def site_freeleech() -> None:
        sim.torrents[h(1)].free = True

    fake.at(T0 + timedelta(minutes=30), site_freeleech)
    fake.at(T0 + timedelta(minutes=31), declare)  # answers are 31 min old: no re-check
    fake.at(T0 + HOUR + timedelta(seconds=10), declare)  # now older than 1 h: re-checked
    queue.observe([h(1), h(2)], fake.now)
    await run_until_finished(runner, fake)

    assert sim.searches == {h(1): 2, h(2): 2}
    times = search_times(sim)
    assert times[:2] == [T0, T0 + MIN_GAP]
    assert min(times[2:]) == T0 + HOUR + timedelta(seconds=10)
    flags = queue.flags(h(1))
    assert flags is not None
    assert flags.free  # the re-check saw the change: the freeze would release it
    assert freeze_reason(flags, vip_account=False) not in FROZEN_REASONS


async def test_failed_lookups_retry_later_and_auth_failures_pause(
    sim: MamSimulator, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeTime(end=T0 + 2 * HOUR)
    sim.clock = fake
    sim.add_torrent(h(1), free=True)
    sim.add_torrent(h(2), free=True)
    client = make_client(sim, session, fake)
    queue = LookupQueue()
    runner = FreeleechLookups(client, queue, clock=fake, sleep=fake.sleep)
    sim.fail_next(200, body="<html>maintenance</html>")  # h(1): unreadable answer
    sim.fail_next(403)  # h(2): the session is refused
    queue.observe([h(1), h(2)], fake.now)
    await run_until_finished(runner, fake)

    assert sim.search_log == [
        (T0, h(1)),
        (T0 + MIN_GAP, h(2)),
        # the auth pause (30 min) outlasts h(1)'s retry (15 min): both wait for it
        (T0 + MIN_GAP + timedelta(minutes=30), h(1)),
        (T0 + 2 * MIN_GAP + timedelta(minutes=30), h(2)),
    ]
    assert queue.flags(h(1)) is not None
    assert queue.flags(h(2)) is not None
    assert "Freeleech lookup failed" in caplog.text
    assert "Freeleech lookup refused" in caplog.text
    assert TEST_COOKIE not in caplog.text


async def test_restart_keeps_answers_and_budget(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    fake = FakeTime(end=T0 + timedelta(minutes=10))
    sim.clock = fake
    for n in range(80):
        sim.add_torrent(h(n))
    stored: list[dict[str, Any]] = []

    async def persist(data: dict[str, Any]) -> None:
        stored.append(data)

    queue = LookupQueue()
    queue.observe([h(n) for n in range(80)], fake.now)
    client = make_client(sim, session, fake)
    await run_until_finished(
        FreeleechLookups(client, queue, persist, clock=fake, sleep=fake.sleep), fake
    )
    assert len(sim.search_log) == 60  # the hour's budget, spent in 5 minutes

    # Home Assistant restarts: a new queue from storage, a new runner.
    fake.end = T0 + 2 * HOUR
    fake.finished.clear()
    restored = LookupQueue.from_dict(stored[-1], now=fake.now)
    restored.observe([h(n) for n in range(80)], fake.now)
    await run_until_finished(
        FreeleechLookups(client, restored, persist, clock=fake, sleep=fake.sleep), fake
    )
    assert sim.searches == {h(n): 1 for n in range(80)}  # nothing asked twice
    assert min(search_times(sim)[60:]) == T0 + HOUR  # the budget survived the restart
    assert_within_budget(search_times(sim))


async def test_cancel_mid_request_stops_cleanly_and_keeps_the_cookie(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    sim.state.delay = 0.3
    sim.add_torrent(h(1), free=True)
    rotations: list[str] = []

    async def rotated(value: str) -> None:
        rotations.append(value)

    client = MamClient(
        session,
        TEST_COOKIE,
        base_url=sim.base_url,
        user_agent=USER_AGENT,
        on_cookie_rotated=rotated,
    )
    queue = LookupQueue()
    queue.observe([h(1), h(2)], datetime.now(T0.tzinfo))
    task = asyncio.create_task(FreeleechLookups(client, queue).run())  # real clock and sleep
    for _ in range(500):
        if sim.in_flight:
            break
        await asyncio.sleep(0.005)
    assert sim.in_flight == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await client.async_close()  # what unloading does: the exchange in flight completes
    [new] = rotations
    assert sim.valid_cookies == {new}
    assert sim.requests.total() == 1
    assert queue.is_pending(h(1))  # no answer recorded: looked up again after a restart


async def test_wake_starts_a_lookup_at_once(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    """A runner idle in a long wait looks up a newly observed torrent as soon as it is woken."""
    fake = FakeTime(end=T0 + HOUR)
    sim.add_torrent(h(1), free=True)
    waits: list[float] = []

    async def park(seconds: float) -> None:  # a sleep that never ends on its own
        waits.append(seconds)
        await asyncio.Event().wait()

    queue = LookupQueue()
    runner = FreeleechLookups(make_client(sim, session, fake), queue, clock=fake, sleep=park)
    task = asyncio.create_task(runner.run())
    try:
        for _ in range(100):
            if waits:
                break
            await asyncio.sleep(0.001)
        assert waits == [300.0]  # idle: nothing queued
        queue.observe([h(1)], fake.now)
        runner.wake()
        for _ in range(1000):
            if len(waits) == 2:
                break
            await asyncio.sleep(0.005)
        assert sim.searches == {h(1): 1}
        assert waits[1] == 300.0  # answered; idle again (woken waits re-read the queue)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


class FlakyClient:
    """A client whose first answer is a bug (an unexpected exception)."""

    rate_limited_until: datetime | None = None

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def async_lookup_hash(self, info_hash: str) -> TorrentFlags | None:
        self.calls.append(info_hash)
        if len(self.calls) == 1:
            raise RuntimeError("bug")
        return TorrentFlags(True, False, False, False)


async def test_a_bug_or_a_storage_failure_never_ends_the_runner(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeTime(end=T0 + HOUR)
    answers: list[tuple[str, Answer]] = []

    async def broken_store(data: dict[str, Any]) -> None:
        raise OSError("disk full")

    client = FlakyClient()
    queue = LookupQueue()
    queue.observe([h(1)], fake.now)
    runner = FreeleechLookups(
        client,
        queue,
        broken_store,
        clock=fake,
        sleep=fake.sleep,
        on_answer=lambda info_hash, answer: answers.append((info_hash, answer)),
    )
    await run_until_finished(runner, fake)
    assert client.calls == [h(1), h(1)]  # retried after FAILURE_RETRY
    assert answers == [(h(1), Answer(TorrentFlags(True, False, False, False), fake_time(15)))]
    assert "Unexpected error in a freeleech lookup" in caplog.text
    assert "Could not store the freeleech lookups: OSError" in caplog.text


def fake_time(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def test_cancel_while_waiting(sim: MamSimulator, session: aiohttp.ClientSession) -> None:
    fake = FakeTime(end=T0 + HOUR)
    runner = FreeleechLookups(make_client(sim, session, fake), LookupQueue(), clock=fake)
    task = asyncio.create_task(runner.run())  # idle, in the real asyncio.sleep(300)
    await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.cancelled()


class RateLimitedClient:
    """A client that answers 429 once but does not expose its back-off (the runner must)."""

    rate_limited_until: datetime | None = None

    def __init__(self, retry_at: datetime) -> None:
        self.retry_at = retry_at
        self.calls: list[datetime] = []
        self.clock: Callable[[], datetime] = lambda: T0

    async def async_lookup_hash(self, info_hash: str) -> TorrentFlags | None:
        self.calls.append(self.clock())
        if len(self.calls) == 1:
            raise MamRateLimitedError(self.retry_at)
        return None


async def test_a_429_pauses_the_runner_until_its_retry_time() -> None:
    fake = FakeTime(end=T0 + HOUR)
    client = RateLimitedClient(T0 + timedelta(minutes=42))
    client.clock = fake
    queue = LookupQueue()
    queue.observe([h(1)], fake.now)
    await run_until_finished(FreeleechLookups(client, queue, clock=fake, sleep=fake.sleep), fake)
    assert client.calls == [T0, T0 + timedelta(minutes=42)]
    assert queue.known(h(1)) == Answer(None, T0 + timedelta(minutes=42))
