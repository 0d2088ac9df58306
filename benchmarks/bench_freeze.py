"""Freeze/release vs the floor and a naive loop, and the 20,000-torrent heartbeat (real daemons).

Part 1, for each size N (default 1,000 and 5,000): a fresh qBittorrent gets N MAM torrents (half
seeding with data, half downloading without), 200 per ``torrents/add``. In the same daemon, each
run starting from the same settled state:

- **floor**: only the write requests any client must send, hashes known in advance (freeze: tag,
  stop, setPreferences, tag, setForceStart, reannounce; release: start, untag, un-force, untag,
  setPreferences), through the same adapter;
- **mam_guard, heartbeat**: ``EmergencyExecutor.enter`` / ``release`` handed the heartbeat's own
  ``sync/maindata`` snapshot (as the HA coordinator does: it syncs, then ticks);
- **mam_guard, own sync**: the same outside a heartbeat (a service call): the executor reads
  ``sync/maindata`` itself first (an idle diff: a heartbeat ran just before);
- **sync**: one idle ``sync/maindata`` alone (the heartbeat pays it every minute anyway);
- **naive**: the same job one torrent at a time (per torrent a ``torrents/trackers`` request to
  tell MAM torrents apart, then stop + addTags or setForceStart + addTags + reannounce).

Part 2 (``--big``, default 20,000; loopback): 95 % seeds, 5 % downloads. The cold first sync
(wall, CPU), the mirror's size (tracemalloc: memory still held after the sync) beside the raw
per-torrent dicts the old mirror kept, then idle heartbeats without and during an emergency:
CPU time of the event-loop thread per heartbeat (sync + the emergency tick + the sensor values),
gc collections seen by ``gc.callbacks`` during them, storage writes and the record's size as HA
stores it (orjson, indent 2). The old full-rebuild sync is replayed on the same diffs ("before").

``--rtt-ms N`` sends every mam_guard, floor and naive request through a loopback TCP proxy
(``rtt_proxy.py``, own process) that delays each chunk by N/2 ms each way. Requests are counted
on the aiohttp session (a ``TraceConfig``): what went over the wire.

Usage: ``.venv/bin/python benchmarks/bench_freeze.py [--sizes 1000,5000] [--flavours 4,5]
[--rtt-ms 0] [--big 20000] [--heartbeats 30] [--naive-max N]``
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
import gc
from pathlib import Path
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from typing import Any

import aiohttp
from aioqbt.client import APIClient, create_client
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from custom_components.mam_guard.lib.emergency import EmergencyExecutor, EmergencyRecord
from custom_components.mam_guard.lib.engine import (
    DOWNLOADING_STATES,
    FORCEABLE_STATES,
    LOADING_STATES,
    STALLED_STATES,
    STOPPED_STATES,
    TAG_FORCED,
    TAG_FROZEN,
    EmergencyOptions,
    TorrentState,
    plan_prefs,
)
from custom_components.mam_guard.lib.qbt import QbtAdapter, QbtSnapshot, _tags, is_mam_url
from tests.support.qbt_daemon import QbtDaemon, available_flavours, cleanup, start_qbt
from tests.support.qbt_helpers import add_torrents
from tests.support.torrents import make_torrent

BATCH = 200
OPTIONS = EmergencyOptions()
NOW = datetime(2026, 3, 1, tzinfo=UTC)


class Counter:
    """Counts every HTTP request started on a session."""

    def __init__(self) -> None:
        self.n = 0
        self.trace = aiohttp.TraceConfig()
        self.trace.on_request_start.append(self._on_start)

    async def _on_start(self, *_: Any) -> None:
        self.n += 1


@contextlib.contextmanager
def rtt_proxy(url: str, rtt_ms: float) -> Any:
    """The daemon's URL, or a proxy's adding ``rtt_ms`` (a child process, stopped at the end)."""
    if rtt_ms <= 0:
        yield url
        return
    target = url.removeprefix("http://")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("rtt_proxy.py")),
            "--target",
            target,
            "--rtt-ms",
            str(rtt_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        yield f"http://127.0.0.1:{line[1]}"
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.asynccontextmanager
async def session(counter: Counter | None = None) -> AsyncIterator[aiohttp.ClientSession]:
    traces = [counter.trace] if counter else []
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), trace_configs=traces
    ) as http:
        yield http


async def until(probe: Callable[[], Awaitable[bool]], within: float = 600) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await probe():
            return
        await asyncio.sleep(0.3)
    raise TimeoutError("qBittorrent did not settle")


async def add_all(daemon: QbtDaemon, api: APIClient, seeds: int, downloads: int) -> None:
    data = daemon.workdir / "data"
    group = [make_torrent(data, f"s{i:05d}.m4b", 64) for i in range(seeds)]
    for i in range(0, len(group), BATCH):
        await add_torrents(api, daemon, group[i : i + BATCH])
    group = [make_torrent(data, f"d{i:05d}.m4b", 64, with_data=False) for i in range(downloads)]
    for i in range(0, len(group), BATCH):
        await add_torrents(api, daemon, group[i : i + BATCH])


# -- part 1: freeze / release ---------------------------------------------------------------------
@dataclass
class Timing:
    seconds: float
    requests: int


@dataclass
class SizeResult:
    version: str
    size: int
    sync: float
    ops: dict[str, dict[str, list[Timing]]] = field(default_factory=dict)  # op -> impl -> runs

    def best(self, op: str, impl: str) -> Timing | None:
        """The median run (seconds) of ``impl``'s ``op``; requests do not vary between runs."""
        runs = self.ops.get(op, {}).get(impl)
        if not runs:
            return None
        return Timing(statistics.median(t.seconds for t in runs), runs[0].requests)


class Probe:
    """A direct (no proxy) adapter that waits for qBittorrent to show a state."""

    def __init__(self, adapter: QbtAdapter, size: int) -> None:
        self.adapter, self.size = adapter, size

    async def initial(self) -> tuple[list[str], list[str]]:
        """Downloads downloading, seeds stalled and not forced, no tag: (downloads, seeds)."""
        found: list[tuple[list[str], list[str]]] = []

        async def ok() -> bool:
            snap = await self.adapter.sync()
            ts = list(snap.torrents.values())
            dl = [t.hash for t in ts if t.state in DOWNLOADING_STATES and not t.complete]
            sd = [
                t.hash
                for t in ts
                if t.complete and t.state in FORCEABLE_STATES and not t.force_start
            ]
            clean = not any(t.tags for t in ts)
            found[:] = [(sorted(dl), sorted(sd))]
            return clean and len(dl) == self.size - self.size // 2 and len(sd) == self.size // 2

        await until(ok)
        return found[0]

    async def during(self) -> None:
        async def ok() -> bool:
            ts = list((await self.adapter.sync()).torrents.values())
            stopped = sum(t.state in STOPPED_STATES and TAG_FROZEN in t.tags for t in ts)
            forced = sum(t.state == "forcedUP" and TAG_FORCED in t.tags for t in ts)
            return stopped == self.size - self.size // 2 and forced == self.size // 2

        await until(ok)


async def bench_size(
    flavour: str, size: int, rtt_ms: float, *, naive: bool, repeat: int
) -> SizeResult:
    with tempfile.TemporaryDirectory(prefix="mam-guard-bench-") as tmp:
        daemon = start_qbt(Path(tmp) / "qbt", flavour=flavour)
        try:
            with rtt_proxy(daemon.url, rtt_ms) as url:
                return await _bench_size(daemon, url, size, naive=naive, repeat=repeat)
        finally:
            cleanup(daemon)


async def _bench_size(  # noqa: PLR0915 - one scenario, read top to bottom
    daemon: QbtDaemon, url: str, size: int, *, naive: bool, repeat: int
) -> SizeResult:
    counter = Counter()
    async with session() as direct, session(counter) as http:
        api = await create_client(
            daemon.url + "/api/v2/", daemon.username, daemon.password, http=direct
        )
        # Through the RTT proxy the Host header names the proxy's port, which qBittorrent's host
        # header validation refuses (401): off for the benchmark's private daemon.
        await api.app.set_preferences(
            {"queueing_enabled": False, "web_ui_host_header_validation_enabled": False}
        )
        await add_all(daemon, api, size // 2, size - size // 2)
        probe = Probe(QbtAdapter(direct, daemon.url, daemon.username, daemon.password), size)
        dl, sd = await probe.initial()
        adapter = QbtAdapter(http, url, daemon.username, daemon.password, timeout=300)
        version = await adapter.connect()
        await adapter.sync()  # warm: the HA coordinator's mirror
        syncs = []
        for _ in range(5):
            t0 = time.perf_counter()
            await adapter.sync()
            syncs.append(time.perf_counter() - t0)
        result = SizeResult(version, size, statistics.median(syncs))

        async def timed(op: str, impl: str, run: Callable[[], Awaitable[None]]) -> None:
            n0, t0 = counter.n, time.perf_counter()
            await run()
            timing = Timing(time.perf_counter() - t0, counter.n - n0)
            result.ops.setdefault(op, {}).setdefault(impl, []).append(timing)

        async def persist(record: EmergencyRecord) -> None:
            orjson.dumps(record.to_dict(), option=orjson.OPT_INDENT_2)  # what HA would write

        prefs = await adapter.get_preferences()  # the original ones (each release restores them)
        changes = plan_prefs(prefs, OPTIONS)
        for _ in range(repeat):
            for impl in ("heartbeat", "own sync"):
                executor = EmergencyExecutor(adapter, persist, EmergencyRecord(), OPTIONS)
                await probe.initial()
                # The heartbeat's sync (untimed: paid every minute anyway). Outside a heartbeat (a
                # service call) its view is not handed on: the executor reads an idle diff itself.
                view = await adapter.sync()
                use = view if impl == "heartbeat" else None
                await timed(
                    "freeze",
                    impl,
                    lambda e=executor, v=use: e.enter(0.5, manual=False, now=NOW, view=v),
                )
                assert len(executor.record.frozen) == len(dl), executor.record
                await probe.during()
                view = await adapter.sync()
                use = view if impl == "heartbeat" else None
                await timed("release", impl, lambda e=executor, v=use: e.release(NOW, view=v))
                assert executor.record.phase == "idle"

            # The floor: only the writes, hashes and preference changes known in advance.
            await probe.initial()

            async def floor_freeze() -> None:
                await adapter.add_tag(dl, TAG_FROZEN)
                await adapter.stop(dl)
                await adapter.set_preferences(changes)
                await adapter.add_tag(sd, TAG_FORCED)
                await adapter.set_force_start(sd, True)
                await adapter.reannounce(sd)

            async def floor_release() -> None:
                await adapter.start(dl)
                await adapter.remove_tag(dl, TAG_FROZEN)
                await adapter.set_force_start(sd, False)
                await adapter.remove_tag(sd, TAG_FORCED)
                await adapter.set_preferences({k: prefs[k] for k in changes})

            await timed("freeze", "floor", floor_freeze)
            await probe.during()
            await timed("release", "floor", floor_release)

        if naive:
            await probe.initial()
            naive_api = await create_client(
                url + "/api/v2/", daemon.username, daemon.password, http=http
            )
            await _naive(naive_api, counter, result)
            await naive_api.close()
        await api.close()
        return result


async def _naive(api: APIClient, counter: Counter, result: SizeResult) -> None:
    """The same job as the executor, one torrent at a time (what a simple script does)."""
    start, n0 = time.perf_counter(), counter.n
    prefs = await api.app.preferences()
    for t in await api.torrents.info():
        trackers = await api.torrents.trackers(t.hash)
        if not any(is_mam_url(tr.url) for tr in trackers):
            continue
        if t.state in DOWNLOADING_STATES and t.progress < 1:
            await api.torrents.stop([t.hash])
            await api.torrents.add_tags([t.hash], [TAG_FROZEN])
        elif t.state in FORCEABLE_STATES:
            await api.torrents.set_force_start([t.hash], True)
            await api.torrents.add_tags([t.hash], [TAG_FORCED])
            if t.state == "stalledUP":
                await api.torrents.reannounce([t.hash])
    await api.app.set_preferences({"max_active_uploads": 50, "max_active_torrents": 50})
    result.ops["freeze"]["naive"] = [Timing(time.perf_counter() - start, counter.n - n0)]
    start, n0 = time.perf_counter(), counter.n
    for t in await api.torrents.info():
        tags = {tag.strip() for tag in t.tags}
        if TAG_FROZEN in tags:
            await api.torrents.start([t.hash])
            await api.torrents.remove_tags([t.hash], [TAG_FROZEN])
        if TAG_FORCED in tags:
            await api.torrents.set_force_start([t.hash], False)
            await api.torrents.remove_tags([t.hash], [TAG_FORCED])
    await api.app.set_preferences(
        {k: prefs[k] for k in ("max_active_uploads", "max_active_torrents")}  # type: ignore[literal-required]
    )
    result.ops["release"]["naive"] = [Timing(time.perf_counter() - start, counter.n - n0)]


# -- part 2: 20,000 torrents ----------------------------------------------------------------------
class GcWatch:
    """Collections (generation, seconds) seen by ``gc.callbacks`` while active."""

    def __init__(self) -> None:
        self.events: list[tuple[int, float]] = []
        self._t0 = 0.0
        self.active = False

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if not self.active:
            return
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.events.append((info["generation"], time.perf_counter() - self._t0))

    def summary(self) -> str:
        by_gen = {g: [s for gg, s in self.events if gg == g] for g in (0, 1, 2)}
        parts = [
            f"gen{g}: {len(v)}" + (f" (max {max(v) * 1000:.1f} ms)" if v else "")
            for g, v in by_gen.items()
        ]
        return ", ".join(parts)


@dataclass
class BigResult:
    version: str
    size: int
    lines: list[tuple[str, str]] = field(default_factory=list)

    def add(self, what: str, value: str) -> None:
        self.lines.append((what, value))
        print(f"#   {what}: {value}", file=sys.stderr)


def _legacy_state(thash: str, t: dict[str, Any], mam: bool) -> TorrentState:
    """The old sync's per-torrent work (before issue 11), replayed for the "before" column."""
    return TorrentState(
        hash=thash,
        name=str(t.get("name", "")),
        state=str(t.get("state", "")),
        progress=float(t.get("progress", 0.0)),
        tags=_tags(t.get("tags")),
        force_start=bool(t.get("force_start", False)),
        is_mam=mam or is_mam_url(str(t.get("tracker") or "")),
        category=str(t.get("category") or ""),
        added_on=int(t.get("added_on") or 0),
    )


class LegacyMirror:
    """The old mirror: every raw field kept, every TorrentState rebuilt on each sync."""

    def __init__(self) -> None:
        self.torrents: dict[str, dict[str, Any]] = {}
        self.trackers: dict[str, frozenset[str]] = {}

    def merge(self, data: dict[str, Any]) -> dict[str, TorrentState]:
        for thash, partial in (data.get("torrents") or {}).items():
            self.torrents.setdefault(thash, {}).update(partial)
        for thash in data.get("torrents_removed") or ():
            self.torrents.pop(thash, None)
        for url, hashes in (data.get("trackers") or {}).items():
            self.trackers[url] = frozenset(hashes)
        mam: set[str] = set()
        for url, hashes in self.trackers.items():
            if is_mam_url(url):
                mam |= hashes
        return {h: _legacy_state(h, t, h in mam) for h, t in self.torrents.items()}


def _record_bytes(record: EmergencyRecord, *, packed: bool) -> int:
    data = record.to_dict()
    if not packed:
        for key in ("frozen", "forced", "in_flight", "frozen_force_start"):
            data[key] = list(getattr(record, key))
    doc = {"version": 1, "minor_version": 1, "key": "mam_guard.x", "data": {"emergency": data}}
    return len(orjson.dumps(doc, option=orjson.OPT_INDENT_2))


async def bench_big(flavour: str, size: int, heartbeats: int) -> BigResult:
    with tempfile.TemporaryDirectory(prefix="mam-guard-big-") as tmp:
        daemon = start_qbt(Path(tmp) / "qbt", flavour=flavour)
        try:
            return await _bench_big(daemon, size, heartbeats)
        finally:
            cleanup(daemon)


async def _bench_big(  # noqa: PLR0915 - one scenario, read top to bottom
    daemon: QbtDaemon, size: int, heartbeats: int
) -> BigResult:
    downloads = size // 20
    async with session() as http, session() as own:
        api = await create_client(
            daemon.url + "/api/v2/", daemon.username, daemon.password, http=http
        )
        await api.app.set_preferences({"queueing_enabled": False})
        t0 = time.perf_counter()
        await add_all(daemon, api, size - downloads, downloads)
        probe = QbtAdapter(http, daemon.url, daemon.username, daemon.password, timeout=600)

        async def loaded() -> bool:
            snap = await probe.sync()
            return len(snap.torrents) == size and not any(
                t.state in LOADING_STATES or t.state.startswith("checking")
                for t in snap.torrents.values()
            )

        await until(loaded, within=1800)
        version = await probe.connect()
        res = BigResult(version, size)
        print(
            f"# {size:,} torrents added and loaded in {time.perf_counter() - t0:.0f} s",
            file=sys.stderr,
        )

        # Cold first sync: wall and CPU, then what the mirror holds (tracemalloc, separately).
        adapter = QbtAdapter(own, daemon.url, daemon.username, daemon.password, timeout=600)
        await adapter.connect()
        gc.collect()
        w0, c0 = time.perf_counter(), time.thread_time()
        await adapter.sync()
        res.add(
            "cold sync (wall / CPU)",
            f"{time.perf_counter() - w0:.2f} s / {time.thread_time() - c0:.2f} s",
        )
        w0 = time.perf_counter()
        # On the probe's session: a rid=0 request on ours would make our next sync a full one.
        async with http.get(daemon.url + "/api/v2/sync/maindata", params={"rid": 0}) as resp:
            body = await resp.read()
        res.add(
            "full sync/maindata alone (bytes only, no parsing)",
            f"{time.perf_counter() - w0:.2f} s, {len(body) / 2**20:.1f} MiB",
        )
        del body
        measured = QbtAdapter(http, daemon.url, daemon.username, daemon.password, timeout=600)
        await measured.connect()
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        await measured.sync()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base
        legacy = LegacyMirror()
        legacy_base = tracemalloc.get_traced_memory()[0]
        raw = await measured._call(
            lambda c: c.request_json("GET", "sync/maindata", params={"rid": 0})
        )
        legacy.merge(raw)
        del raw
        gc.collect()
        legacy_held = tracemalloc.get_traced_memory()[0] - legacy_base
        tracemalloc.stop()
        res.add(
            "mirror held (all fields kept before)",
            f"{held / 2**20:.1f} MiB ({legacy_held / 2**20:.1f} MiB before, "
            f"{legacy_held / max(held, 1):.1f}x)",
        )
        del measured

        watch = GcWatch()
        gc.callbacks.append(watch)
        try:
            await _heartbeats(
                res=res,
                adapter=adapter,
                legacy=legacy,
                watch=watch,
                count=heartbeats,
                executor=None,
            )
            writes: list[int] = []

            async def persist(record: EmergencyRecord) -> None:
                writes.append(_record_bytes(record, packed=True))

            executor = EmergencyExecutor(adapter, persist, EmergencyRecord(), OPTIONS)
            w0 = time.perf_counter()
            await executor.enter(0.5, manual=False, now=NOW, view=await adapter.sync())
            res.add(
                "enter (freeze + force, own sync excluded)",
                f"{time.perf_counter() - w0:.2f} s, frozen {len(executor.record.frozen):,}, "
                f"forced {len(executor.record.forced):,}, {len(writes)} writes",
            )

            async def forced() -> bool:
                snap = await adapter.sync()
                return sum(t.state == "forcedUP" for t in snap.torrents.values()) >= len(
                    executor.record.forced
                ) and not any(t.state in DOWNLOADING_STATES for t in snap.torrents.values())

            await until(forced)
            for _ in range(2):  # absorb qBittorrent's lag after our own actions
                await executor.enforce(NOW, view=await adapter.sync())
            n_writes = len(writes)
            await _heartbeats(
                res=res,
                adapter=adapter,
                legacy=legacy,
                watch=watch,
                count=heartbeats,
                executor=executor,
            )
            rec = executor.record
            res.add(
                "storage writes in those heartbeats",
                f"{len(writes) - n_writes} (record: {_record_bytes(rec, packed=True) / 1024:.0f}"
                f" KiB as HA writes it; {_record_bytes(rec, packed=False) / 1024:.0f} KiB with"
                " plain hash lists)",
            )
            w0 = time.perf_counter()
            await executor.release(NOW, view=await adapter.sync())
            res.add("release (own sync excluded)", f"{time.perf_counter() - w0:.2f} s")
        finally:
            gc.callbacks.remove(watch)
        await api.close()
        return res


async def _heartbeats(
    *,
    res: BigResult,
    adapter: QbtAdapter,
    legacy: LegacyMirror,
    watch: GcWatch,
    count: int,
    executor: EmergencyExecutor | None,
) -> None:
    """``count`` heartbeats with nothing changed; CPU time of this thread for each."""
    label = "during an emergency" if executor else "no emergency"
    cpu, wall, old_cpu = [], [], []
    watch.events.clear()
    for _ in range(count):
        await asyncio.sleep(0.05)
        watch.active = True
        w0, c0 = time.perf_counter(), time.thread_time()
        snap: QbtSnapshot = await adapter.sync()
        if executor is not None:
            await executor.enforce(NOW, view=snap)
        _sensor_values = (snap.mam_count, snap.stalled_mam, snap.loading_mam)
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - w0)
        watch.active = False
    gcs = watch.summary()
    # Before: the same idle diffs through the old sync (raw dicts merged, every state rebuilt),
    # twice per heartbeat during an emergency (the tick synced, then the coordinator). Its rid
    # chain replaces ours on this session: our next sync is a full one (untimed).
    rid = adapter._rid
    watch.events.clear()
    for _ in range(count):
        await asyncio.sleep(0.05)
        data = await adapter._call(
            lambda c, rid=rid: c.request_json("GET", "sync/maindata", params={"rid": rid})
        )
        rid = int(data.get("rid", rid))
        watch.active = True
        c0 = time.thread_time()
        for _ in range(2 if executor else 1):
            states = legacy.merge(data)
            _old = [t for t in states.values() if t.is_mam and t.state in STALLED_STATES]
        old_cpu.append(time.thread_time() - c0)
        watch.active = False
    old_gcs = watch.summary()
    res.add(
        f"idle heartbeat, {label}: CPU median / max",
        f"{statistics.median(cpu) * 1000:.2f} / {max(cpu) * 1000:.2f} ms "
        f"(wall median {statistics.median(wall) * 1000:.1f} ms); before: "
        f"{statistics.median(old_cpu) * 1000:.1f} ms CPU "
        f"({statistics.median(old_cpu) / max(statistics.median(cpu), 1e-9):.0f}x)",
    )
    res.add(f"gc during {count} heartbeats, {label}", f"{gcs}; before: {old_gcs}")


# -- output ---------------------------------------------------------------------------------------
def _table(results: list[SizeResult], rtt_ms: float) -> str:
    lines = [
        f"RTT: {rtt_ms:g} ms"
        + (" (loopback)" if rtt_ms <= 0 else " (through rtt_proxy.py)")
        + "; seconds are the median of the runs, naive runs once",
        "",
        "| qBittorrent | torrents | op | floor s | mam_guard heartbeat s | x floor | requests "
        "| mam_guard own sync s | x floor | idle sync s | naive s | naive requests | speed-up |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for op in ("freeze", "release"):
            floor, hb, own = (r.best(op, i) for i in ("floor", "heartbeat", "own sync"))
            assert floor is not None
            assert hb is not None
            assert own is not None
            naive = r.best(op, "naive")
            naive_cells = (
                f"{naive.seconds:.2f} | {naive.requests:,} | {naive.seconds / hb.seconds:.0f}x"
                if naive
                else "- | - | -"
            )
            lines.append(
                f"| {r.version} | {r.size:,} | {op} | {floor.seconds:.3f} | {hb.seconds:.3f} | "
                f"{hb.seconds / floor.seconds:.2f} | {hb.requests} (floor {floor.requests}) | "
                f"{own.seconds:.3f} | {own.seconds / floor.seconds:.2f} | {r.sync:.3f} | "
                f"{naive_cells} |"
            )
    return "\n".join(lines)


def _big_table(results: list[BigResult]) -> str:
    if not results:
        return ""
    head = " | ".join(f"{r.version} ({r.size:,})" for r in results)
    lines = [f"| measure | {head} |", "|---|" + "---|" * len(results)]
    for i, (what, _) in enumerate(results[0].lines):
        lines.append(f"| {what} | " + " | ".join(r.lines[i][1] for r in results) + " |")
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--flavours", default=",".join(available_flavours()))
    parser.add_argument("--rtt-ms", type=float, default=0.0)
    parser.add_argument("--big", type=int, default=20_000, help="0: skip the big case")
    parser.add_argument("--heartbeats", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3, help="runs per op; the median is shown")
    parser.add_argument(
        "--naive-max",
        type=int,
        default=None,
        help="largest size run naively (default: all; 1000 with --rtt-ms)",
    )
    args = parser.parse_args()
    naive_max = args.naive_max if args.naive_max is not None else (1000 if args.rtt_ms else 10**9)
    started = time.perf_counter()
    results: list[SizeResult] = []
    big: list[BigResult] = []
    for flavour in [f for f in args.flavours.split(",") if f]:
        for size in (int(s) for s in args.sizes.split(",") if s):
            t0 = time.perf_counter()
            results.append(
                await bench_size(
                    flavour, size, args.rtt_ms, naive=size <= naive_max, repeat=args.repeat
                )
            )
            print(
                f"# qBittorrent {flavour}.x, {size:,} torrents: {time.perf_counter() - t0:.0f} s",
                file=sys.stderr,
            )
        if args.big:
            t0 = time.perf_counter()
            print(f"# qBittorrent {flavour}.x, {args.big:,} torrents:", file=sys.stderr)
            big.append(await bench_big(flavour, args.big, args.heartbeats))
            print(f"# ... {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    print(_table(results, args.rtt_ms) if results else "")
    print()
    print(_big_table(big))
    print(f"\n(whole run: {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    asyncio.run(main())
