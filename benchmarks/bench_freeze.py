"""Freeze/release cost of mam_guard's EmergencyExecutor vs a naive per-torrent loop (real daemons).

For each size N a fresh qBittorrent gets N MAM torrents (half seeding with data, half downloading
without), added 200 per ``torrents/add`` call. Then, in the same daemon:

- mam_guard: ``EmergencyExecutor.enter`` (snapshot prefs, freeze, raise prefs, force-continue) and
  ``release`` (resume, unforce, restore) on an already-logged-in adapter;
- naive: the same job one torrent at a time: per torrent a ``torrents/trackers`` request to tell
  MAM torrents apart, then stop + addTags (downloads) or setForceStart + addTags + reannounce
  (stalled seeds); release resumes/un-forces and untags each one.

Web UI requests are counted on the aiohttp session (a TraceConfig), i.e. what really hit the wire.
Usage: ``.venv/bin/python benchmarks/bench_freeze.py [--sizes 100,1000,5000] [--flavours 4,5]``
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
import json
from pathlib import Path
import sys
import tempfile
import time
from typing import Any

import aiohttp
from aioqbt.client import APIClient, create_client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from custom_components.mam_guard.lib.emergency import EmergencyExecutor, EmergencyRecord
from custom_components.mam_guard.lib.engine import (
    DOWNLOADING_STATES,
    FORCEABLE_STATES,
    TAG_FORCED,
    TAG_FROZEN,
    EmergencyOptions,
)
from custom_components.mam_guard.lib.qbt import QbtAdapter, is_mam_url
from tests.support.qbt_daemon import QbtDaemon, available_flavours, cleanup, start_qbt
from tests.support.qbt_helpers import add_torrents
from tests.support.torrents import make_torrent

BATCH = 200


@dataclass
class Row:
    flavour: str
    version: str
    size: int
    impl: str
    op: str
    seconds: float
    requests: int


class Counter:
    """Counts every HTTP request started on a session."""

    def __init__(self) -> None:
        self.n = 0
        self.trace = aiohttp.TraceConfig()
        self.trace.on_request_start.append(self._on_start)

    async def _on_start(self, *_: Any) -> None:
        self.n += 1


async def _settled(adapter: QbtAdapter, size: int, within: float = 300) -> None:
    """All torrents listed, the downloading half downloading (not loading, checking or paused)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        snap = await adapter.sync()
        states = [t.state for t in snap.torrents.values()]
        if len(states) == size and sum(s in DOWNLOADING_STATES for s in states) == size - size // 2:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError("torrents did not settle")


async def _arrange(daemon: QbtDaemon, api: APIClient, size: int) -> None:
    await api.app.set_preferences({"queueing_enabled": False})
    data = daemon.workdir / "data"
    half = size // 2
    seeds = [make_torrent(data, f"s{i:05d}.m4b", 64) for i in range(half)]
    downloads = [
        make_torrent(data, f"d{i:05d}.m4b", 64, with_data=False) for i in range(size - half)
    ]
    for group in (seeds, downloads):
        for i in range(0, len(group), BATCH):
            await add_torrents(api, daemon, group[i : i + BATCH])


async def _naive(api: APIClient, counter: Counter) -> tuple[float, int, float, int, int]:
    """The same job as the executor, done one torrent at a time (what a simple script does).

    Freeze: read prefs, list torrents, ask each torrent's trackers (4.5.2 lists no tracker in
    ``torrents/info`` while none works, so MAM torrents can only be told apart this way), stop and
    tag each paid MAM download, force-start, tag and re-announce each stalled/queued MAM seed,
    raise prefs. Release: list, resume/untag each frozen one, un-force/untag each forced one,
    restore prefs.
    """
    start, n0 = time.perf_counter(), counter.n
    prefs = await api.app.preferences()
    frozen: list[str] = []
    for t in await api.torrents.info():
        trackers = await api.torrents.trackers(t.hash)
        if not any(is_mam_url(tr.url) for tr in trackers):
            continue
        if t.state in DOWNLOADING_STATES and t.progress < 1:
            await api.torrents.stop([t.hash])
            await api.torrents.add_tags([t.hash], [TAG_FROZEN])
            frozen.append(t.hash)
        elif t.state in FORCEABLE_STATES:
            await api.torrents.set_force_start([t.hash], True)
            await api.torrents.add_tags([t.hash], [TAG_FORCED])
            if t.state == "stalledUP":
                await api.torrents.reannounce([t.hash])
    await api.app.set_preferences({"max_active_uploads": 50, "max_active_torrents": 50})
    freeze = (time.perf_counter() - start, counter.n - n0)
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
    return *freeze, time.perf_counter() - start, counter.n - n0, len(frozen)


async def bench(flavour: str, size: int) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="mam-guard-bench-") as tmp:
        daemon = start_qbt(Path(tmp) / "qbt", flavour=flavour)
        try:
            counter = Counter()
            async with aiohttp.ClientSession(
                cookie_jar=aiohttp.CookieJar(unsafe=True), trace_configs=[counter.trace]
            ) as http:
                api = await create_client(
                    daemon.url + "/api/v2/", daemon.username, daemon.password, http=http
                )
                adapter = QbtAdapter(
                    http, daemon.url, daemon.username, daemon.password, timeout=120
                )
                version = await adapter.connect()
                await _arrange(daemon, api, size)
                await _settled(adapter, size)
                rows: list[Row] = []

                async def persist(record: EmergencyRecord) -> None:
                    json.dumps(record.to_dict())  # what HA storage would serialise

                executor = EmergencyExecutor(
                    adapter, persist, EmergencyRecord(), EmergencyOptions()
                )
                now = datetime.now(UTC)
                n0, t0 = counter.n, time.perf_counter()
                await executor.enter(0.5, manual=False, now=now)
                rows.append(
                    Row(
                        flavour,
                        version,
                        size,
                        "mam_guard",
                        "freeze",
                        time.perf_counter() - t0,
                        counter.n - n0,
                    )
                )
                frozen = len(executor.record.frozen)
                assert frozen == size - size // 2, (frozen, executor.record)
                assert executor.record.pending == []
                n0, t0 = counter.n, time.perf_counter()
                await executor.release(now)
                rows.append(
                    Row(
                        flavour,
                        version,
                        size,
                        "mam_guard",
                        "release",
                        time.perf_counter() - t0,
                        counter.n - n0,
                    )
                )
                assert executor.record.phase == "idle"
                await _settled(adapter, size)  # resumed downloads back to stalledDL

                f_s, f_n, r_s, r_n, targets = await _naive(api, counter)
                assert targets == frozen, (targets, frozen)
                rows.append(Row(flavour, version, size, "naive", "freeze", f_s, f_n))
                rows.append(Row(flavour, version, size, "naive", "release", r_s, r_n))
                await api.close()
                return rows
        finally:
            cleanup(daemon)


def _table(rows: list[Row]) -> str:
    lines = [
        "| qBittorrent | torrents | op | mam_guard s | mam_guard requests | naive s"
        " | naive requests | speed-up |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    keyed = {(r.flavour, r.size, r.impl, r.op): r for r in rows}
    for (flavour, size, impl, op), ours in keyed.items():
        if impl != "mam_guard":
            continue
        naive = keyed[(flavour, size, "naive", op)]
        lines.append(
            f"| {ours.version} | {size:,} | {op} | {ours.seconds:.2f} | {ours.requests} | "
            f"{naive.seconds:.2f} | {naive.requests:,} | {naive.seconds / ours.seconds:.1f}x |"
        )
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--flavours", default=",".join(available_flavours()))
    args = parser.parse_args()
    rows: list[Row] = []
    for flavour in [f for f in args.flavours.split(",") if f]:
        for size in (int(s) for s in args.sizes.split(",")):
            started = time.perf_counter()
            rows += await bench(flavour, size)
            took = time.perf_counter() - started
            print(f"# qBittorrent {flavour}.x, {size} torrents: {took:.0f} s", file=sys.stderr)
    print(_table(rows))


if __name__ == "__main__":
    asyncio.run(main())
