"""Freeleech lookups at an emergency: what reaches MAM (SPEC §11's budget); the freeze never waits.

Part 1 — **simulated clock, real HTTP.** For N = 0, 10, 100 downloading MAM torrents (a quarter
each free, personal FL, VIP and paid; the account is not VIP), an emergency is declared at T0 and
the real runner (``FreeleechLookups``) drives the real ``MamClient`` against the MAM simulator over
HTTP on 127.0.0.1. Its sleep advances a fake clock shared by the runner, the client and the
simulator (which timestamps every search it receives), so three simulated hours take well under a
second. Two cases:

- **new**: the N torrents are first seen at the declaration (nothing known yet);
- **stale**: the N torrents were looked up 2 h before (answers older than 1 h): re-checked.

Counted at the simulator: lookups in the first minute, the first hour and in total, the most in
any rolling hour, the smallest gap, and when the last answer arrived. The freeze is decided at the
declaration from what is known then (``freeze_reason``): unknown counts as paid, so it never waits;
the table shows how many downloads are frozen at T0, at +1 min, at +1 h and at the end.

Part 2 — **real clock.** The simulator answers each search after 250 ms; the runner runs as a
background task with the gap scaled down to 50 ms. While a lookup is in flight, the freeze decision
for 100 torrents is timed (wall clock), and an account poll through the same client is timed: the
client sends one request at a time (cookie rotation), so a poll can wait for at most the lookup in
flight.

Usage: ``.venv/bin/python benchmarks/bench_lookups.py [--sizes 0,10,100]``
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import itertools
from pathlib import Path
import statistics
import sys
import time

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from custom_components.mam_guard.lib.freeleech import (
    FROZEN_REASONS,
    FreeleechLookups,
    LookupQueue,
    freeze_reason,
)
from custom_components.mam_guard.lib.mam import MamClient
from mam_simulator import MamSimulator

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
END = T0 + timedelta(hours=3)
COOKIE = "bench-cookie"
USER_AGENT = "mam_guard-bench/0"
EXEMPT = frozenset({"freeleech", "fl", "vip", "vip_critical"})


def info_hash(n: int) -> str:
    return f"{n:040x}"


class FakeTime:
    """A clock and a sleep that advances it, stopping early at scheduled snapshots."""

    def __init__(self, start: datetime, end: datetime) -> None:
        self.now = start
        self.end = end
        self.finished = asyncio.Event()
        self.hooks: list[tuple[datetime, Callable[[], None]]] = []

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        target = self.now + timedelta(seconds=seconds)
        if self.hooks and self.hooks[0][0] <= target:
            when, hook = self.hooks.pop(0)
            self.now = max(self.now, when)
            hook()
        else:
            self.now = target
        if self.now >= self.end:
            self.finished.set()
            await asyncio.Event().wait()
        await asyncio.sleep(0)


@dataclass
class Row:
    size: int
    case: str
    first_minute: int
    first_hour: int
    total: int
    max_rolling_hour: int
    min_gap_s: float | None
    all_known_after: str
    frozen: list[int]  # at T0, +1 min, +1 h, end
    decision_us: float
    waited_s: float  # how long the freeze decision waited for lookups (simulated)


def frozen_count(queue: LookupQueue, hashes: list[str]) -> int:
    return sum(
        freeze_reason(queue.flags(h), vip_account=False, tags=(), exempt_tags=EXEMPT)
        in FROZEN_REASONS
        for h in hashes
    )


def add_mix(sim: MamSimulator, size: int) -> list[str]:
    hashes = [info_hash(n) for n in range(size)]
    for n, key in enumerate(hashes):
        kind = n % 4
        sim.add_torrent(key, free=kind == 0, personal_freeleech=kind == 1, vip=kind == 2)
    return hashes


async def simulated(size: int, case: str, http: aiohttp.ClientSession) -> Row:
    sim = MamSimulator(cookies={COOKIE})
    await sim.start()
    try:
        hashes = add_mix(sim, size)
        fake = FakeTime(T0, END)
        sim.clock = fake
        client = MamClient(http, COOKIE, base_url=sim.base_url, user_agent=USER_AGENT, clock=fake)
        queue = LookupQueue()
        if case == "stale":  # every torrent looked up 2 h before, 5 s apart
            start = T0 - timedelta(hours=2)
            queue.observe(hashes, start)
            for n, key in enumerate(hashes):
                flags = await client.async_lookup_hash(key)
                queue.record(key, flags, start + n * timedelta(seconds=5))
            sim.search_log.clear()
        # The emergency is declared at T0: observe (heartbeat), declare, decide the freeze.
        queue.observe(hashes, T0)
        queue.on_emergency_declared(T0)
        started = time.perf_counter()
        frozen = [frozen_count(queue, hashes)]  # the freeze acts on this, at once
        decision_us = (time.perf_counter() - started) * 1e6
        waited = fake.now - T0  # simulated time between the declaration and the decision
        for offset in (timedelta(minutes=1), timedelta(hours=1)):
            fake.hooks.append((T0 + offset, lambda: frozen.append(frozen_count(queue, hashes))))
        runner = FreeleechLookups(client, queue, clock=fake, sleep=fake.sleep)
        task = asyncio.create_task(runner.run())
        await asyncio.wait_for(fake.finished.wait(), 120)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        frozen.append(frozen_count(queue, hashes))
        times = sorted(at for at, _ in sim.search_log)
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        rolling = max(
            (sum(1 for t in times if end - timedelta(hours=1) < t <= end) for end in times),
            default=0,
        )
        last = f"{(times[-1] - T0).total_seconds() / 60:.1f} min" if times else "-"
        return Row(
            size=size,
            case=case,
            first_minute=sum(1 for t in times if t < T0 + timedelta(minutes=1)),
            first_hour=sum(1 for t in times if t < T0 + timedelta(hours=1)),
            total=len(times),
            max_rolling_hour=rolling,
            min_gap_s=min(gaps) if gaps else None,
            all_known_after=last,
            frozen=frozen,
            decision_us=decision_us,
            waited_s=waited.total_seconds(),
        )
    finally:
        await sim.stop()


async def real_clock(http: aiohttp.ClientSession) -> None:
    sim = MamSimulator(cookies={COOKIE})
    await sim.start()
    try:
        hashes = add_mix(sim, 100)
        client = MamClient(http, COOKIE, base_url=sim.base_url, user_agent=USER_AGENT)
        idle_polls = []
        for _ in range(5):
            started = time.perf_counter()
            await client.async_get_account()
            idle_polls.append(time.perf_counter() - started)
        sim.state.delay = 0.25
        queue = LookupQueue(min_gap=timedelta(milliseconds=50))
        queue.observe(hashes, datetime.now(UTC))
        runner = FreeleechLookups(client, queue)
        task = asyncio.create_task(runner.run())
        decisions: list[float] = []
        busy_polls: list[float] = []
        in_flight_seen = 0
        for _ in range(5):
            for _ in range(10_000):  # until a lookup is in flight
                if sim.in_flight:
                    break
                await asyncio.sleep(0.001)
            in_flight_seen += sim.in_flight
            started = time.perf_counter()
            frozen_count(queue, hashes)  # the freeze decision: synchronous, no await
            decisions.append(time.perf_counter() - started)
            sim.state.delay = 0.0  # the poll's own answer is instant: what it waits is the lookup
            started = time.perf_counter()
            await client.async_get_account()
            busy_polls.append(time.perf_counter() - started)
            sim.state.delay = 0.25
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.async_close()
        print()
        print("Real clock (search answered after 250 ms, gap scaled to 50 ms), 5 samples each:")
        print()
        print("| measured while a lookup was in flight | median | max |")
        print("|---|---:|---:|")
        print(
            f"| freeze decision for 100 torrents (waits for lookups: 0) | "
            f"{statistics.median(decisions) * 1e6:.0f} µs | {max(decisions) * 1e6:.0f} µs |"
        )
        print(
            f"| account poll through the same client | {statistics.median(busy_polls) * 1e3:.0f} ms"
            f" | {max(busy_polls) * 1e3:.0f} ms |"
        )
        print(
            f"| account poll, no lookup running (reference) | "
            f"{statistics.median(idle_polls) * 1e3:.1f} ms | {max(idle_polls) * 1e3:.1f} ms |"
        )
        print()
        print(
            f"Lookups in flight when sampled: {in_flight_seen}/5; "
            f"lookups answered meanwhile: {sum(1 for h in hashes if queue.known(h))}; "
            f"max requests in flight at MAM: {sim.max_in_flight}."
        )
    finally:
        await sim.stop()


async def main_async(sizes: list[int]) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        rows = [await simulated(size, case, http) for size in sizes for case in ("new", "stale")]
        print("Simulated clock, real HTTP to the MAM simulator (3 simulated hours per row):")
        print()
        print(
            "| downloads | case | lookups 1st min | lookups 1st hour | total | max in any hour "
            "| min gap s | last answer | frozen at T0 / +1 min / +1 h / end | freeze waits "
            "| decision µs |"
        )
        print("|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
        for r in rows:
            gap = "-" if r.min_gap_s is None else f"{r.min_gap_s:.1f}"
            frozen = " / ".join(str(n) for n in r.frozen)
            print(
                f"| {r.size} | {r.case} | {r.first_minute} | {r.first_hour} | {r.total} "
                f"| {r.max_rolling_hour} | {gap} | {r.all_known_after} | {frozen} "
                f"| {r.waited_s:g} s | {r.decision_us:.0f} |"
            )
            assert r.max_rolling_hour <= 60
            assert r.min_gap_s is None or r.min_gap_s >= 5
        await real_clock(http)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="0,10,100", help="downloading MAM torrents")
    args = parser.parse_args()
    asyncio.run(main_async([int(s) for s in args.sizes.split(",")]))


if __name__ == "__main__":
    main()
