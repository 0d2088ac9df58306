"""Freeze/release on one qBittorrent vs two at once through ``run_each`` (real daemons, issue 12).

Two private daemons (default: qBittorrent 4.5.2 and 5.x; ``--flavours 5,5`` for two of the same),
each with N MAM torrents (half seeding with data, half downloading without), 200 per
``torrents/add``, queueing off, as in ``bench_freeze.py``. Each client has its own HTTP session
(qBittorrent's ``SID`` cookie does not name the port), adapter and executor. Every repetition, in
a rotating order and each from the same settled state:

- **one**: ``EmergencyExecutor.enter`` (enter -> phase active) then ``release`` on one client
  alone, for each of the two clients;
- **two**: both clients' ``enter`` at once through ``run_each``, then both ``release``: the wall
  time until ``run_each`` returns (both done), and each client's own time inside it;
- **floor** (control): the same three cases with only the write requests any client must send
  (hashes and preference changes known in advance, as in ``bench_freeze.py``), also through
  ``run_each``. Its two/one ratio is what the machine allows; mam_guard's is compared with it.

As the Home Assistant heartbeat does, each executor is handed the snapshot of a ``sync/maindata``
made just before (not timed). Seconds are medians of ``--repeat`` runs. "two / one" divides the
concurrent time by the slower client alone (the least two clients can take); "two / in turn"
by the two alone one after the other (what a loop over the clients would take). CPU is this
process's (``time.process_time``) and both daemons' (every thread's ``/proc/<pid>/task/*/
schedstat``) during the op. ``--rtt-ms N`` puts each client behind its own ``rtt_proxy.py``
(a qBittorrent on another machine: NAS, seedbox).

Usage: ``.venv/bin/python benchmarks/bench_clients.py [--torrents 1000] [--repeat 5]
[--flavours 4,5] [--rtt-ms 0]``
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
import functools
import os
from pathlib import Path
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import aiohttp
from aioqbt.client import create_client
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from custom_components.mam_guard.lib.clients import run_each
from custom_components.mam_guard.lib.emergency import (
    PHASE_ACTIVE,
    PHASE_IDLE,
    EmergencyExecutor,
    EmergencyRecord,
)
from custom_components.mam_guard.lib.engine import (
    DOWNLOADING_STATES,
    FORCEABLE_STATES,
    STOPPED_STATES,
    TAG_FORCED,
    TAG_FROZEN,
    EmergencyOptions,
    plan_prefs,
)
from custom_components.mam_guard.lib.qbt import QbtAdapter, QbtSnapshot
from tests.support.qbt_daemon import QbtDaemon, available_flavours, cleanup, start_qbt
from tests.support.qbt_helpers import add_torrents
from tests.support.torrents import make_torrent

BATCH = 200
OPTIONS = EmergencyOptions()
NOW = datetime(2026, 3, 1, tzinfo=UTC)
TARGET = 1.20  # two clients at once: at most this times one client alone
OPS = ("freeze", "release")
IMPLS = ("mam_guard", "floor")


class Counter:
    """Counts every HTTP request started on a session."""

    def __init__(self) -> None:
        self.n = 0
        self.trace = aiohttp.TraceConfig()
        self.trace.on_request_start.append(self._on_start)

    async def _on_start(self, *_: Any) -> None:
        self.n += 1


async def persist(record: EmergencyRecord) -> None:
    orjson.dumps(record.to_dict(), option=orjson.OPT_INDENT_2)  # what HA would write


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of a process (``schedstat``: ns, not 10 ms ticks)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread may end meanwhile
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


async def until(probe: Callable[[], Awaitable[bool]], within: float = 600) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await probe():
            return
        await asyncio.sleep(0.3)
    raise TimeoutError("qBittorrent did not settle")


@contextlib.contextmanager
def rtt_proxy(url: str, rtt_ms: float) -> Iterator[str]:
    """The daemon's URL, or a proxy's adding ``rtt_ms`` (a child process, stopped at the end)."""
    if rtt_ms <= 0:
        yield url
        return
    script = Path(__file__).with_name("rtt_proxy.py")
    target = url.removeprefix("http://")
    cmd = [sys.executable, str(script), "--target", target, "--rtt-ms", str(rtt_ms)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield f"http://127.0.0.1:{proc.stdout.readline().split()[1]}"
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass
class Client:
    """One qBittorrent: the measured adapter (own session) and a probe on another session."""

    name: str
    daemon: QbtDaemon
    size: int
    adapter: QbtAdapter
    probe: QbtAdapter
    counter: Counter
    version: str = ""
    downloads: list[str] = field(default_factory=list)
    seeds: list[str] = field(default_factory=list)
    prefs: dict[str, Any] = field(default_factory=dict)  # the original ones
    executor: EmergencyExecutor | None = None

    @property
    def label(self) -> str:
        return f"{self.version} ({self.name})"

    async def initial(self) -> None:
        """Downloads downloading, seeds stalled/queued and not forced, no tag anywhere."""

        async def ok() -> bool:
            ts = list((await self.probe.sync()).torrents.values())
            dl = [t.hash for t in ts if t.state in DOWNLOADING_STATES and not t.complete]
            sd = [
                t.hash
                for t in ts
                if t.complete and t.state in FORCEABLE_STATES and not t.force_start
            ]
            self.downloads, self.seeds = sorted(dl), sorted(sd)
            clean = not any(t.tags for t in ts)
            return clean and len(dl) == self.size - self.size // 2 and len(sd) == self.size // 2

        await until(ok)

    async def during(self) -> None:
        async def ok() -> bool:
            ts = list((await self.probe.sync()).torrents.values())
            stopped = sum(t.state in STOPPED_STATES and TAG_FROZEN in t.tags for t in ts)
            forced = sum(t.state == "forcedUP" and TAG_FORCED in t.tags for t in ts)
            return stopped == self.size - self.size // 2 and forced == self.size // 2

        await until(ok)

    # -- what is timed ---------------------------------------------------------------------------
    async def mam_guard(self, op: str, view: QbtSnapshot) -> None:
        """The executor's enter (to phase active) or release (to idle) on the heartbeat's view."""
        if op == "freeze":
            self.executor = EmergencyExecutor(self.adapter, persist, EmergencyRecord(), OPTIONS)
            await self.executor.enter(0.5, manual=False, now=NOW, view=view)
            rec = self.executor.record
            if rec.phase != PHASE_ACTIVE or len(rec.frozen) != len(self.downloads):
                raise RuntimeError(f"{self.label}: freeze ended in {rec.phase}")
        else:
            assert self.executor is not None
            await self.executor.release(NOW, view=view)
            if self.executor.record.phase != PHASE_IDLE:
                raise RuntimeError(f"{self.label}: release ended in {self.executor.record.phase}")

    async def floor(self, op: str, view: QbtSnapshot) -> None:
        """Only the writes, hashes and preference changes known in advance."""
        adapter, dl, sd = self.adapter, self.downloads, self.seeds
        changes = plan_prefs(self.prefs, OPTIONS)
        if op == "freeze":
            await adapter.add_tag(dl, TAG_FROZEN)
            await adapter.stop(dl)
            await adapter.set_preferences(changes)
            await adapter.add_tag(sd, TAG_FORCED)
            await adapter.set_force_start(sd, True)
            await adapter.reannounce(sd)
        else:
            await adapter.start(dl)
            await adapter.remove_tag(dl, TAG_FROZEN)
            await adapter.set_force_start(sd, False)
            await adapter.remove_tag(sd, TAG_FORCED)
            await adapter.set_preferences({k: self.prefs[k] for k in changes})


@dataclass
class Runs:
    """Seconds per run; for "two" also each client's own time inside the concurrent run."""

    seconds: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    each: dict[str, list[float]] = field(default_factory=dict)
    cpu_ours: list[float] = field(default_factory=list)  # this process
    cpu_qbt: list[float] = field(default_factory=list)  # both daemons

    def median(self) -> float:
        return statistics.median(self.seconds)

    def cpu(self) -> str:
        """Median CPU ms, ours + qBittorrent's, and their sum per wall second (cores busy)."""
        ours, qbt = statistics.median(self.cpu_ours), statistics.median(self.cpu_qbt)
        busy = statistics.median(
            (o + q) / w for o, q, w in zip(self.cpu_ours, self.cpu_qbt, self.seconds, strict=True)
        )
        return f"{ours * 1000:.0f} + {qbt * 1000:.0f} ({busy:.1f})"


type Results = dict[tuple[str, str, str], Runs]  # (impl, case, op); case: a client's name or "two"


async def start(
    stack: contextlib.AsyncExitStack,
    tmp: Path,
    name: str,
    flavour: str,
    *,
    size: int,
    rtt_ms: float,
) -> Client:
    """A fresh daemon with ``size`` MAM torrents; its measured adapter warm (first sync done)."""
    daemon = start_qbt(tmp / name, flavour=flavour)
    stack.callback(cleanup, daemon)
    counter = Counter()
    direct, measured = [
        await stack.enter_async_context(
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), trace_configs=traces)
        )
        for traces in ([], [counter.trace])
    ]
    api = await create_client(
        daemon.url + "/api/v2/", daemon.username, daemon.password, http=direct
    )
    try:
        # Through the RTT proxy the Host header names the proxy's port, which qBittorrent's host
        # header validation refuses (401): off for the benchmark's private daemon.
        await api.app.set_preferences(
            {"queueing_enabled": False, "web_ui_host_header_validation_enabled": False}
        )
        data = daemon.workdir / "data"
        seeds = [make_torrent(data, f"s{i:05d}.m4b", 64) for i in range(size // 2)]
        downloads = [
            make_torrent(data, f"d{i:05d}.m4b", 64, with_data=False)
            for i in range(size - size // 2)
        ]
        for group in (seeds, downloads):
            for i in range(0, len(group), BATCH):
                await add_torrents(api, daemon, group[i : i + BATCH])
    finally:
        await api.close()
    url = stack.enter_context(rtt_proxy(daemon.url, rtt_ms))
    probe = QbtAdapter(direct, daemon.url, daemon.username, daemon.password)
    adapter = QbtAdapter(measured, url, daemon.username, daemon.password, timeout=300)
    client = Client(name, daemon, size, adapter, probe, counter)
    await client.initial()
    client.version = await adapter.connect()
    client.prefs = await adapter.get_preferences()
    await adapter.sync()  # the HA coordinator's warm mirror
    return client


async def timed(
    client: Client, impl: str, op: str, view: QbtSnapshot, each: dict[str, float]
) -> None:
    """One client's part, its own time noted in ``each[client.name]``."""
    t0 = time.perf_counter()
    await (client.mam_guard if impl == "mam_guard" else client.floor)(op, view)
    each[client.name] = time.perf_counter() - t0


async def measure(impl: str, clients: list[Client], every: list[Client], results: Results) -> None:
    """One freeze and one release on ``clients`` at once (one client: alone), timed."""
    case = clients[0].name if len(clients) == 1 else "two"
    await asyncio.gather(*(c.initial() for c in clients))
    for op in OPS:
        views = [await c.adapter.sync() for c in clients]  # the heartbeats' (not timed)
        each: dict[str, float] = {}
        pids = [c.daemon.proc.pid for c in every]  # the idle one's CPU counts too
        n0 = sum(c.counter.n for c in clients)
        q0, c0 = sum(map(cpu_seconds, pids)), time.process_time()
        t0 = time.perf_counter()
        outcomes = await run_each(
            {
                c.name: functools.partial(timed, c, impl, op, view, each)
                for c, view in zip(clients, views, strict=True)
            }
        )
        seconds = time.perf_counter() - t0
        ours, qbt = time.process_time() - c0, sum(map(cpu_seconds, pids)) - q0
        if failed := {k: v for k, v in outcomes.items() if v is not None}:
            raise RuntimeError(f"{impl} {case} {op} failed: {failed!r}")
        runs = results.setdefault((impl, case, op), Runs())
        runs.seconds.append(seconds)
        runs.cpu_ours.append(ours)
        runs.cpu_qbt.append(qbt)
        runs.requests.append(sum(c.counter.n for c in clients) - n0)
        for name, s in each.items():
            runs.each.setdefault(name, []).append(s)
        if op == "freeze":
            await asyncio.gather(*(c.during() for c in clients))


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs ({model}), load {load} at the end, Python {sys.version.split()[0]}"
    )


def ratios(results: Results, clients: list[Client], impl: str, op: str) -> tuple[float, float]:
    """two / the slower client alone, two / both alone in turn."""
    alone = [results[impl, c.name, op].median() for c in clients]
    two = results[impl, "two", op].median()
    return two / max(alone), two / sum(alone)


def table(clients: list[Client], results: Results, repeat: int, rtt_ms: float) -> str:
    a, b = clients
    size = a.size
    link = f"{rtt_ms:g} ms RTT through rtt_proxy.py" if rtt_ms > 0 else "loopback"
    lines = [
        f"Machine: {machine()}; {link}; {repeat} runs, medians; "
        f"two = {a.label} + {b.label} at once through run_each",
        "CPU ms: this process + both qBittorrent daemons during the op (cores busy on average)",
        "",
        "| impl | case | qBittorrent | torrents | freeze s | release s | CPU ms freeze "
        "| CPU ms release | requests (freeze / release) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for impl in IMPLS:
        for case, label, torrents in [
            *((c.name, c.label, f"{size:,}") for c in clients),
            ("two", f"{a.label} + {b.label}", f"2 x {size:,}"),
        ]:
            runs = [results[impl, case, op] for op in OPS]
            lines.append(
                f"| {impl} | {'two' if case == 'two' else 'one'} | {label} | {torrents} | "
                + " | ".join(f"{r.median():.3f}" for r in runs)
                + " | "
                + " | ".join(r.cpu() for r in runs)
                + " | "
                + " / ".join(str(r.requests[0]) for r in runs)
                + " |"
            )
        for c in clients:
            inside = (statistics.median(results[impl, "two", op].each[c.name]) for op in OPS)
            lines.append(
                f"| {impl} | ... {c.name} inside two | {c.label} | {size:,} | "
                + " | ".join(f"{s:.3f}" for s in inside)
                + " | | | |"
            )
    lines += [
        "",
        "| ratio | mam_guard freeze | mam_guard release | floor freeze | floor release |",
        "|---|---:|---:|---:|---:|",
    ]
    got = {(impl, op): ratios(results, clients, impl, op) for impl in IMPLS for op in OPS}
    for i, what in enumerate(("**two / one** (slower client alone)", "two / in turn (sum)")):
        cells = " | ".join(f"{got[impl, op][i]:.2f}x" for impl in IMPLS for op in OPS)
        lines.append(f"| {what} | {cells} |")
    worst = max(got["mam_guard", op][0] for op in OPS)
    floor = max(got["floor", op][0] for op in OPS)
    verdict = "met" if worst <= TARGET else "NOT met"
    lines += [
        "",
        f"Target two <= one x {TARGET:.2f}: {verdict} (mam_guard worst {worst:.2f}x; "
        f"the floor's worst on this machine {floor:.2f}x)",
    ]
    return "\n".join(lines)


@contextlib.asynccontextmanager
async def two_clients(flavours: list[str], size: int, rtt_ms: float) -> AsyncIterator[list[Client]]:
    with tempfile.TemporaryDirectory(prefix="mam-guard-bench-clients-") as tmp:
        async with contextlib.AsyncExitStack() as stack:
            clients = []
            for name, flavour in zip("AB", flavours, strict=True):
                t0 = time.perf_counter()
                clients.append(
                    await start(stack, Path(tmp), name, flavour, size=size, rtt_ms=rtt_ms)
                )
                print(
                    f"# {clients[-1].label}: {size:,} torrents ready in "
                    f"{time.perf_counter() - t0:.0f} s",
                    file=sys.stderr,
                )
            yield clients


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--torrents", type=int, default=1000, help="per client")
    parser.add_argument("--repeat", type=int, default=5, help="runs per case; medians shown")
    have = available_flavours()
    default = "4,5" if {"4", "5"} <= set(have) else ",".join(have[:1] * 2)
    parser.add_argument("--flavours", default=default, help="the two clients, e.g. 4,5 or 5,5")
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="each client behind a proxy")
    args = parser.parse_args()
    flavours = [f for f in args.flavours.split(",") if f]
    if len(flavours) != 2:
        parser.error("--flavours names exactly two clients")
    started = time.perf_counter()
    results: Results = {}
    async with two_clients(flavours, args.torrents, args.rtt_ms) as clients:
        cases: list[list[Client]] = [[clients[0]], [clients[1]], clients]
        for r in range(args.repeat):
            for impl in IMPLS:
                for k in range(len(cases)):  # rotating order: no case always runs first
                    await measure(impl, cases[(r + k) % len(cases)], clients, results)
            print(f"# run {r + 1}/{args.repeat} done", file=sys.stderr)
        print(table(clients, results, args.repeat, args.rtt_ms))
    print(f"\n(whole run: {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    asyncio.run(main())
