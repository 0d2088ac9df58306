"""What an emergency costs while nothing happens, on real qBittorrent 4.5.2 and 5.x (issue 11).

- an idle heartbeat during an emergency writes nothing to storage, and with the heartbeat's own
  snapshot (``view``) the executor sends no request at all;
- release works from the warm mirror and the record: no ``torrents/info`` listing, a request
  count independent of the number of torrents, and exactly the same result in qBittorrent.

Requests are counted on the wire (an aiohttp ``TraceConfig``), not by the adapter's own counter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aioqbt.client import APIClient
import pytest

from custom_components.mam_guard.lib.emergency import (
    PHASE_ACTIVE,
    PHASE_IDLE,
    EmergencyExecutor,
    EmergencyRecord,
)
from custom_components.mam_guard.lib.engine import TAG_FORCED, TAG_FROZEN, EmergencyOptions
from custom_components.mam_guard.lib.qbt import QbtAdapter
from tests.support.qbt_daemon import QbtDaemon
from tests.support.qbt_helpers import (
    Observed,
    Storage,
    add_torrents,
    data_dir,
    observe,
    settle,
    wait_states,
)
from tests.support.torrents import OTHER_ANNOUNCE, make_torrent

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
FROZEN = frozenset({TAG_FROZEN})
FORCED = frozenset({TAG_FORCED})
DL_STATES = {"stalledDL", "queuedDL", "downloading", "metaDL"}
SEED_STATES = {"stalledUP", "queuedUP"}


@dataclass
class Wire:
    """Every request path sent on the session."""

    paths: list[str] = field(default_factory=list)

    async def on_start(
        self, _session: Any, _ctx: Any, params: aiohttp.TraceRequestStartParams
    ) -> None:
        self.paths.append(params.url.path.removeprefix("/api/v2/"))

    def since(self, mark: int) -> list[str]:
        return self.paths[mark:]


@pytest.fixture
async def wire_http() -> AsyncIterator[tuple[aiohttp.ClientSession, Wire]]:
    wire = Wire()
    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(wire.on_start)
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), trace_configs=[trace]
    ) as session:
        yield session, wire


async def arrange(daemon: QbtDaemon, api: APIClient, n: int) -> tuple[list[str], list[str]]:
    """``n`` MAM downloads, ``n`` MAM seeds and a non-MAM download; returns (downloads, seeds)."""
    data = data_dir(daemon)
    downloads = [make_torrent(data, f"d{i}.m4b", 50_000 + i, with_data=False) for i in range(n)]
    seeds = [make_torrent(data, f"s{i}.m4b", 3000 + i) for i in range(n)]
    other = make_torrent(data, "o.iso", 60_000, tracker=OTHER_ANNOUNCE, with_data=False)
    await add_torrents(api, daemon, seeds)
    await add_torrents(api, daemon, [*downloads, other])
    dl, sd = [t.info_hash for t in downloads], [t.info_hash for t in seeds]
    await wait_states(
        api, dict.fromkeys([*dl, other.info_hash], DL_STATES) | dict.fromkeys(sd, SEED_STATES)
    )
    return dl, sd


def during(dl: list[str], sd: list[str]) -> Observed:
    return dict.fromkeys(dl, ("stopped", False, FROZEN)) | dict.fromkeys(
        sd, ("forced", True, FORCED)
    )


async def test_idle_heartbeats_in_an_emergency_write_nothing_and_read_once(
    qbittorrent_any: QbtDaemon,
    api: APIClient,
    wire_http: tuple[aiohttp.ClientSession, Wire],
) -> None:
    """The old executor rewrote the whole record on every heartbeat and synced a second time."""
    daemon = qbittorrent_any
    http, wire = wire_http
    dl, sd = await arrange(daemon, api, 3)
    store = Storage()
    adapter = QbtAdapter(http, daemon.url, daemon.username, daemon.password)
    executor = EmergencyExecutor(adapter, store.persist, EmergencyRecord(), EmergencyOptions())
    await executor.enter(0.5, manual=False, now=NOW)
    assert executor.record.phase == PHASE_ACTIVE
    await settle(api, dl + sd, during(dl, sd))
    assert isinstance(store.writes[-1]["frozen"], str)  # the compact form is what is stored

    writes = len(store.writes)
    for minute in range(1, 6):  # heartbeats: the coordinator syncs, the executor plans on it
        view = await adapter.sync()
        mark = len(wire.paths)
        await executor.enforce(NOW + timedelta(minutes=minute), view=view)
        assert wire.since(mark) == [], minute  # not one request: the heartbeat's sync sufficed
    for minute in range(6, 9):  # without a view (an account poll's tick): one sync, no more
        mark = len(wire.paths)
        await executor.enforce(NOW + timedelta(minutes=minute))
        assert wire.since(mark) == ["sync/maindata"], minute
    assert len(store.writes) == writes  # nothing changed: nothing written
    await settle(api, dl + sd, during(dl, sd))

    # Something to do again: a new download is frozen, and that is written (twice: intent, done).
    late = make_torrent(data_dir(daemon), "late.m4b", 70_000, with_data=False)
    await add_torrents(api, daemon, [late])
    await wait_states(api, {late.info_hash: DL_STATES})
    await executor.enforce(NOW + timedelta(minutes=9), view=await adapter.sync())
    assert late.info_hash in executor.record.frozen
    assert len(store.writes) == writes + 2
    # A view made stale by our own writes is not reused: the next run reads qBittorrent again.
    stale = adapter.view()
    await adapter.stop([late.info_hash])
    mark = len(wire.paths)
    await executor.enforce(NOW + timedelta(minutes=10), view=stale)
    assert wire.since(mark)[:1] == ["sync/maindata"]  # (a stop may follow: qBittorrent lags)


@pytest.mark.parametrize("with_view", [False, True], ids=["own_sync", "heartbeat_view"])
async def test_release_works_from_the_mirror_and_the_record(
    qbittorrent_any: QbtDaemon,
    api: APIClient,
    wire_http: tuple[aiohttp.ClientSession, Wire],
    with_view: bool,
) -> None:
    """No ``torrents/info?tag=`` listing (0.6 MB each at 1,000 torrents, 13.7 MB at 20,000)."""
    daemon = qbittorrent_any
    http, wire = wire_http
    dl, sd = await arrange(daemon, api, 3)
    before = await observe(api, dl + sd)
    prefs_before = (await api.app.preferences())["max_active_uploads"]
    store = Storage()
    adapter = QbtAdapter(http, daemon.url, daemon.username, daemon.password)
    executor = EmergencyExecutor(adapter, store.persist, EmergencyRecord(), EmergencyOptions())
    await executor.enter(0.5, manual=False, now=NOW)
    await settle(api, dl + sd, during(dl, sd))
    # The user takes one frozen download back: release must leave it alone.
    taken = dl[0]
    await api.torrents.remove_tags([taken], [TAG_FROZEN])

    view = await adapter.sync() if with_view else None
    mark = len(wire.paths)
    await executor.release(NOW + timedelta(hours=1), view=view)
    assert executor.record.phase == PHASE_IDLE
    sent = wire.since(mark)
    assert not [p for p in sent if p.startswith("torrents/info")], sent
    reads = [] if with_view else ["sync/maindata"]
    resume = "torrents/start" if daemon.flavour == "5" else "torrents/resume"
    assert sent == [
        *reads,
        resume,
        "torrents/removeTags",
        "torrents/setForceStart",
        "torrents/removeTags",
        "app/preferences",
        "app/setPreferences",
    ]
    await settle(api, dl + sd, before | {taken: ("stopped", False, frozenset())})
    assert (await api.app.preferences())["max_active_uploads"] == prefs_before
