"""One emergency, several qBittorrent clients (SPEC §12, issue 12): ``lib.clients.run_each``.

One :class:`EmergencyExecutor` per client (its own adapter on its own HTTP session, its own record
and preference snapshot), all driven at once through :func:`run_each`; each client fails alone.

- ``run_each`` itself: outcomes keyed, failures isolated, a slow job delays nobody, cancelling
  the caller cancels every job (ordering and events, no clock);
- on real daemons, qBittorrent 4.5.2 and 5.x running side by side in the same test: both frozen
  and both restored exactly; one of them down when the emergency starts (the other is frozen in
  that round, the down one at the first round after it is back); one that accepts the connection
  and never answers (the other's freeze and release are done before the hung job times out).

Every client gets its own ``aiohttp`` session: qBittorrent 4.5.2 and 5.1 both call their session
cookie ``SID`` whatever the port, and a cookie jar does not tell ports apart, so two clients on
one host sharing a session would log each other out on every request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import functools
import json
from pathlib import Path

import aiohttp
from aioqbt.client import APIClient
import pytest

from custom_components.mam_guard.lib.clients import run_each
from custom_components.mam_guard.lib.emergency import (
    ENTER_STEPS,
    PHASE_ACTIVE,
    PHASE_ENTERING,
    PHASE_IDLE,
    PHASE_RELEASING,
    RELEASE_STEPS,
    EmergencyExecutor,
    EmergencyRecord,
)
from custom_components.mam_guard.lib.engine import TAG_FORCED, TAG_FROZEN, EmergencyOptions
from custom_components.mam_guard.lib.qbt import QbtAdapter
from tests.conftest import _daemon
from tests.support.qbt_daemon import QbtDaemon
from tests.support.qbt_helpers import (
    Observed,
    Storage,
    add_torrents,
    data_dir,
    eventually,
    logged_in_client,
    observe,
    settle,
    spawn_again,
    wait_states,
)
from tests.support.torrents import OTHER_ANNOUNCE, TorrentFile, make_torrent

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
OPTIONS = EmergencyOptions()
ORIGINAL_PREFS = {
    "queueing_enabled": True,
    "max_active_uploads": 1,
    "max_active_torrents": 3,
    "max_active_downloads": 3,
    "up_limit": 102400,  # a multiple of 1 KiB: qBittorrent rounds to KiB
}
SEED_STATES = {"stalledUP", "queuedUP"}
DL_STATES = {"stalledDL", "queuedDL", "downloading", "metaDL"}
FROZEN = frozenset({TAG_FROZEN})
FORCED = frozenset({TAG_FORCED})
# The hung client's per-request timeout: only the hung jobs' duration; nothing is timed.
HANG_TIMEOUT = 3.0

type Job = Callable[[], Awaitable[None]]


# -- run_each: no qBittorrent needed ------------------------------------------------------------
async def test_run_each_keys_outcomes_and_isolates_failures() -> None:
    """A failing job is reported under its key; the others still run to their end."""
    done: list[str] = []
    crash = ValueError("client b is broken")
    early = RuntimeError("raised before any await")

    async def ok(name: str) -> None:
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # still running when "b" has failed
        done.append(name)

    async def fails() -> None:
        raise crash

    def fails_when_called() -> Awaitable[None]:  # not even an awaitable comes back
        raise early

    outcomes = await run_each(
        {
            "a": lambda: ok("a"),
            "b": fails,
            "c": lambda: ok("c"),
            "d": fails_when_called,
        }
    )
    assert outcomes == {"a": None, "b": crash, "c": None, "d": early}
    assert list(outcomes) == ["a", "b", "c", "d"]  # the jobs' order
    assert sorted(done) == ["a", "c"]
    assert await run_each({}) == {}


async def test_run_each_a_slow_job_delays_no_other() -> None:
    """The fast job finishes while the slow one (started first) is still waiting."""
    order: list[str] = []
    fast_done, let_slow_go = asyncio.Event(), asyncio.Event()

    async def slow() -> None:
        await let_slow_go.wait()
        order.append("slow done")

    async def fast() -> None:
        order.append("fast done")
        fast_done.set()

    running = asyncio.create_task(run_each({"slow": slow, "fast": fast}))
    async with asyncio.timeout(30):  # a deadlock guard only: run one by one, this never returns
        await fast_done.wait()
    assert not running.done()
    assert order == ["fast done"]
    let_slow_go.set()
    assert await running == {"slow": None, "fast": None}
    assert order == ["fast done", "slow done"]


async def test_run_each_cancelled_cancels_every_job_and_propagates() -> None:
    started = {"a": asyncio.Event(), "b": asyncio.Event()}
    unwound: list[str] = []

    async def forever(name: str, *, swallow: bool) -> None:
        started[name].set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0)  # clean-up that itself awaits: the caller waits for it
            unwound.append(name)
            if not swallow:
                raise

    running = asyncio.create_task(
        run_each(
            {
                "a": lambda: forever("a", swallow=False),
                "b": lambda: forever("b", swallow=True),  # even one swallowing it
            }
        )
    )
    async with asyncio.timeout(30):  # deadlock guard
        for event in started.values():
            await event.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert sorted(unwound) == ["a", "b"]


async def test_run_each_reports_a_job_cancelled_from_inside() -> None:
    """A job that ends cancelled (not by our caller) is one outcome like any other."""

    async def cancelled() -> None:
        raise asyncio.CancelledError

    async def ok() -> None:
        await asyncio.sleep(0)

    outcomes = await run_each({"x": cancelled, "y": ok})
    assert isinstance(outcomes["x"], asyncio.CancelledError)
    assert outcomes["y"] is None


# -- real daemons ------------------------------------------------------------------------------
@pytest.fixture
def two_daemons(socket_enabled: None, tmp_path: Path) -> Iterator[dict[str, QbtDaemon]]:
    """qBittorrent 4.5.2 (host) and 5.x (trixie chroot), both running for the whole test."""
    with contextlib.ExitStack() as stack:
        yield {
            flavour: stack.enter_context(
                contextlib.contextmanager(_daemon)(tmp_path / f"qbt{flavour}", flavour)
            )
            for flavour in ("4", "5")
        }


@pytest.fixture
async def sessions() -> AsyncIterator[Callable[[], aiohttp.ClientSession]]:
    """A new HTTP session per client (own cookie jar: see the module docstring); all closed."""
    opened: list[aiohttp.ClientSession] = []

    def new() -> aiohttp.ClientSession:
        opened.append(aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)))
        return opened[-1]

    yield new
    for session in opened:
        await session.close()


@dataclass
class Farm:
    seeds: list[TorrentFile]
    downloads: list[TorrentFile]
    untouched: list[TorrentFile]  # an exempt MAM download and a download of another tracker

    @property
    def hashes(self) -> list[str]:
        return [t.info_hash for t in [*self.seeds, *self.downloads, *self.untouched]]


@dataclass
class Client:
    """One qBittorrent of the account, as the emergency sees it, and its state before."""

    daemon: QbtDaemon
    executor: EmergencyExecutor
    store: Storage
    farm: Farm
    before: Observed
    prefs_before: str  # app/preferences as qBittorrent sends it
    alt_before: int

    @property
    def record(self) -> EmergencyRecord:
        return self.executor.record

    def during(self) -> Observed:
        expected = dict(self.before)
        for t in self.farm.downloads:
            expected[t.info_hash] = ("stopped", False, FROZEN)
        for t in self.farm.seeds:
            expected[t.info_hash] = ("forced", True, FORCED)
        return expected


async def raw_prefs(api: APIClient) -> str:
    return await api.request_text("GET", "app/preferences")


async def prepare(
    daemon: QbtDaemon, session: aiohttp.ClientSession, *, writes: list[str] | None = None
) -> Client:
    """Small queue limits, an upload limit, alt speed on; two MAM seeds, two MAM downloads, an
    exempt MAM download, another tracker's download. Names differ per daemon (other hashes).

    ``writes`` gets "healthy: <phase>" appended after each record write (ordering tests)."""
    data = data_dir(daemon)
    tag = f"q{daemon.flavour}"
    farm = Farm(
        seeds=[make_torrent(data, f"{tag}-seed{i}.m4b", 2000 + i) for i in range(2)],
        downloads=[
            make_torrent(data, f"{tag}-dl{i}.m4b", 50_000 + i, with_data=False) for i in range(2)
        ],
        untouched=[
            make_torrent(data, f"{tag}-fl.m4b", 50_100, with_data=False),
            make_torrent(data, f"{tag}-other.iso", 50_200, tracker=OTHER_ANNOUNCE, with_data=False),
        ],
    )
    async with logged_in_client(daemon) as api:
        await api.app.set_preferences(ORIGINAL_PREFS)
        if await api.transfer.speed_limits_mode() == 0:
            await api.transfer.toggle_speed_limits_mode()
        await add_torrents(api, daemon, farm.seeds)
        await add_torrents(api, daemon, [*farm.downloads, farm.untouched[1]])
        await add_torrents(api, daemon, farm.untouched[:1], tags=["FreeLeech"])
        await wait_states(
            api,
            {t.info_hash: SEED_STATES for t in farm.seeds}
            | {t.info_hash: DL_STATES for t in [*farm.downloads, *farm.untouched]},
        )
        before = await observe(api, farm.hashes)
        prefs, alt = await raw_prefs(api), await api.transfer.speed_limits_mode()
    store = Storage()

    async def persist(record: EmergencyRecord) -> None:
        await store.persist(record)
        if writes is not None:
            writes.append(f"healthy: {record.phase}")

    adapter = QbtAdapter(session, daemon.url, daemon.username, daemon.password)
    executor = EmergencyExecutor(adapter, persist, EmergencyRecord(), OPTIONS)
    return Client(daemon, executor, store, farm, before, prefs, alt)


async def check_frozen(client: Client) -> None:
    """The record's lists, the torrents and the raised preferences of an active emergency."""
    rec = client.record
    assert (rec.active, rec.phase, rec.pending, client.executor.unreachable) == (
        True,
        PHASE_ACTIVE,
        [],
        False,
    )
    assert rec.frozen == sorted(t.info_hash for t in client.farm.downloads)
    assert rec.forced == sorted(t.info_hash for t in client.farm.seeds)
    async with logged_in_client(client.daemon) as api:
        await settle(api, client.farm.hashes, client.during())
        prefs = await api.app.preferences()
        assert (prefs["max_active_uploads"], prefs["max_active_torrents"]) == (50, 50)
        assert prefs["up_limit"] == 0
        assert await api.transfer.speed_limits_mode() == 0


async def check_restored(client: Client, extra: Observed | None = None) -> None:
    """Idle record; torrents, tags, force start and preferences exactly as before."""
    rec = client.record
    assert (rec.active, rec.phase, rec.pending, rec.prefs_snapshot) == (False, PHASE_IDLE, [], None)
    expected = {**client.before, **(extra or {})}
    async with logged_in_client(client.daemon) as api:
        await settle(api, list(expected), expected)
        assert await raw_prefs(api) == client.prefs_before
        assert await api.transfer.speed_limits_mode() == client.alt_before


def each(clients: dict[str, Client], act: Callable[[EmergencyExecutor], Job]) -> dict[str, Job]:
    return {key: act(client.executor) for key, client in clients.items()}


def enter(executor: EmergencyExecutor) -> Job:
    return lambda: executor.enter(0.5, manual=False, now=NOW)


def enforce(executor: EmergencyExecutor) -> Job:
    return lambda: executor.enforce(NOW + timedelta(minutes=1))


def release(executor: EmergencyExecutor) -> Job:
    return lambda: executor.release(NOW + timedelta(hours=1))


async def test_one_emergency_freezes_both_clients_and_restores_both_exactly(
    two_daemons: dict[str, QbtDaemon], sessions: Callable[[], aiohttp.ClientSession]
) -> None:
    clients = {f: await prepare(d, sessions()) for f, d in two_daemons.items()}

    assert await run_each(each(clients, enter)) == {"4": None, "5": None}
    versions = {f: c.executor.adapter.version for f, c in clients.items()}
    assert versions["4"] == "4.5.2"
    assert (versions["5"] or "").startswith("5.")
    for client in clients.values():
        await check_frozen(client)
        assert client.store.writes[0]["pending"] == list(ENTER_STEPS)  # declared first

    # A MAM download added to each client mid-emergency is frozen by the next enforce round.
    late: dict[str, str] = {}
    for f, client in clients.items():
        torrent = make_torrent(data_dir(client.daemon), f"q{f}-late.m4b", 60_000, with_data=False)
        late[f] = torrent.info_hash
        async with logged_in_client(client.daemon) as api:
            await add_torrents(api, client.daemon, [torrent])
            await wait_states(api, {torrent.info_hash: DL_STATES})
    assert await run_each(each(clients, enforce)) == {"4": None, "5": None}
    for f, client in clients.items():
        assert late[f] in client.record.frozen
        async with logged_in_client(client.daemon) as api:
            await settle(api, [late[f]], {late[f]: ("stopped", False, FROZEN)})

    assert await run_each(each(clients, release)) == {"4": None, "5": None}
    for f, client in clients.items():
        assert any(w["phase"] == PHASE_RELEASING for w in client.store.writes)
        await check_restored(client, {late[f]: ("running", False, frozenset())})


@pytest.mark.parametrize("down", ["4", "5"], ids=["qbt4_down", "qbt5_down"])
async def test_a_client_down_at_entry_waits_alone_and_is_frozen_when_back(
    two_daemons: dict[str, QbtDaemon],
    sessions: Callable[[], aiohttp.ClientSession],
    down: str,
) -> None:
    clients = {f: await prepare(d, sessions()) for f, d in two_daemons.items()}
    up = "5" if down == "4" else "4"
    for client in clients.values():  # logged in: after the restart that session is stale (403)
        await client.executor.adapter.connect()
    two_daemons[down].stop()

    assert await run_each(each(clients, enter)) == {"4": None, "5": None}
    await check_frozen(clients[up])  # in this very round, without waiting for the other
    gone = clients[down]
    assert gone.executor.unreachable
    assert (gone.record.active, gone.record.phase) == (True, PHASE_ENTERING)
    assert gone.record.pending == list(ENTER_STEPS)
    assert gone.record.failures == 0
    assert gone.store.writes[-1]["pending"] == list(ENTER_STEPS)  # what a restart would resume

    assert await run_each(each(clients, enforce)) == {"4": None, "5": None}  # still down
    assert gone.record.pending == list(ENTER_STEPS)
    assert gone.executor.unreachable
    await check_frozen(clients[up])

    spawn_again(two_daemons[down])
    async with logged_in_client(gone.daemon) as api:  # nothing applied there yet
        again = await raw_prefs(api)
    changed = {k for k, v in json.loads(again).items() if json.loads(gone.prefs_before)[k] != v}
    assert changed <= {"listen_port"}  # spawn_again gives it a new torrenting port
    gone.prefs_before = again

    async def frozen_when_back() -> bool:  # just started it is still loading: another round
        assert await run_each(each(clients, enforce)) == {"4": None, "5": None}
        return not gone.record.pending

    await eventually(frozen_when_back, within=60)
    await check_frozen(gone)
    await check_frozen(clients[up])

    assert await run_each(each(clients, release)) == {"4": None, "5": None}
    for client in clients.values():
        await check_restored(client)


@contextlib.asynccontextmanager
async def hung_qbittorrent(events: list[str]) -> AsyncIterator[str]:
    """A TCP server that accepts every connection and never answers; its URL."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        events.append("hung: connection accepted")
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):  # until the client gives up and closes
                pass
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        server.abort_clients()
        await server.wait_closed()


async def test_a_hung_client_does_not_delay_the_others_freeze_or_release(
    qbittorrent_any: QbtDaemon, sessions: Callable[[], aiohttp.ClientSession]
) -> None:
    """Ordering only: the healthy record is active (idle) before the hung job ends."""
    events: list[str] = []
    healthy = await prepare(qbittorrent_any, sessions(), writes=events)
    async with hung_qbittorrent(events) as url:
        store = Storage()
        adapter = QbtAdapter(sessions(), url, "tester", "secret", timeout=HANG_TIMEOUT)
        hung = EmergencyExecutor(adapter, store.persist, EmergencyRecord(), OPTIONS)

        async def hung_job(act: Job, round_: str) -> None:
            await act()
            events.append(f"hung: {round_} done")

        for round_, act, settled in (
            ("enter", enter, PHASE_ACTIVE),
            ("release", release, PHASE_IDLE),
        ):
            events.clear()
            jobs: dict[str, Job] = {  # hung first: were they run in turn, healthy would wait
                "hung": functools.partial(hung_job, act(hung), round_),
                "healthy": act(healthy.executor),
            }
            assert await run_each(jobs) == {"hung": None, "healthy": None}, round_
            # The hung request was in flight, the healthy client got to its end, then the hung
            # job timed out (and left its steps pending).
            assert events.index("hung: connection accepted") < events.index(
                f"healthy: {settled}"
            ), (round_, events)
            assert events.index(f"healthy: {settled}") < events.index(f"hung: {round_} done"), (
                round_,
                events,
            )
            assert hung.unreachable, round_
            if round_ == "enter":
                assert (hung.record.phase, hung.record.pending) == (
                    PHASE_ENTERING,
                    list(ENTER_STEPS),
                )
                await check_frozen(healthy)
            else:
                assert (hung.record.phase, hung.record.pending) == (
                    PHASE_RELEASING,
                    list(RELEASE_STEPS),
                )
                await check_restored(healthy)
