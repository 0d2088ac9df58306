"""Freeleech known, not guessed (SPEC §11) end to end: real qBittorrent, the simulator's search.

Lookups run on HA timers at least 5 s apart: the tests move HA's clock (``freezer``) and fire the
timers, so an hour of lookups takes seconds. The simulator's clock follows HA's, so the budget is
checked where MAM would see it: at the simulator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
import itertools
import time
from typing import Any

from aioqbt.client import APIClient
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.mam_guard.const import CONF_FREELEECH_LOOKUP, CONF_RULES_PAGES, DOMAIN
from custom_components.mam_guard.lib.engine import TAG_FROZEN
from custom_components.mam_guard.lib.freeleech import TAG_PAID
from mam_simulator import MamSimulator
from tests.support.entries import client_record, make_entry, only_client
from tests.support.qbt_daemon import QbtDaemon
from tests.support.qbt_helpers import add_torrents, data_dir
from tests.support.torrents import TorrentFile, make_torrent
from tests.test_ratio_emergency import PAUSED, setup, torrents

GAP = timedelta(seconds=5, milliseconds=100)


@pytest.fixture
def entry(mam_sim: MamSimulator, qbittorrent: QbtDaemon) -> MockConfigEntry:
    """No rules refresh: only the account poll and the searches reach the simulator."""
    return make_entry(mam_sim, qbittorrent, **{CONF_RULES_PAGES: []})


@pytest.fixture(autouse=True)
def sim_follows_ha_clock(mam_sim: MamSimulator) -> None:
    """The simulator timestamps searches with HA's (frozen, moved) clock."""
    mam_sim.clock = dt_util.utcnow


async def real_sleep(seconds: float) -> None:
    """Wait real time: with HA's clock frozen, loop timers (``asyncio.sleep``) never fire."""
    await asyncio.get_running_loop().run_in_executor(None, time.sleep, seconds)


async def eventually[T](probe: Callable[[], Awaitable[T | None]], within: float = 20.0) -> T:
    """Poll ``probe`` (real time) until it returns something truthy; fail at the deadline."""
    deadline = time.perf_counter() + within  # perf_counter: not frozen
    last: T | None = None
    while time.perf_counter() < deadline:
        if last := await probe():
            return last
        await real_sleep(0.1)
    raise AssertionError(f"condition not met within {within} s (last: {last!r})")


async def settle(
    api: APIClient, condition: Callable[[dict[str, Any]], bool], within: float = 20.0
) -> dict[str, Any]:
    """qBittorrent shows new states only after its refresh interval: wait for ``condition``."""

    async def probe() -> dict[str, Any] | None:
        current = await torrents(api)
        try:
            return current if condition(current) else None
        except KeyError:  # not listed yet
            return None

    return await eventually(probe, within=within)


async def heartbeat(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """One minute heartbeat: sync, observe the downloads, plan (freeze / thaw)."""
    await only_client(entry).coordinator.async_refresh()
    await hass.async_block_till_done(wait_background_tasks=True)


async def poll(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """One account poll and the emergency decision on it."""
    await entry.runtime_data.account.async_refresh()
    await hass.async_block_till_done(wait_background_tasks=True)
    await entry.runtime_data.emergency.async_tick()


async def run_lookups(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, *, span: timedelta = GAP * 40
) -> None:
    """Let HA's timers run the due lookups, moving time in 5.1 s steps (within ``span``)."""
    queue = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.freeleech.queue
    waited = timedelta(0)
    while queue.pending() and waited < span:
        freezer.tick(GAP)
        waited += GAP
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)


async def status(hass: HomeAssistant) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN, "get_status", {}, blocking=True, return_response=True
    )
    assert response is not None
    return dict(response)


def paid_downloads(hass: HomeAssistant, entity_registry: er.EntityRegistry) -> str:
    entity_id = entity_registry.async_get_entity_id("sensor", DOMAIN, "100001_paid_downloads")
    assert entity_id is not None
    state = hass.states.get(entity_id)
    assert state is not None
    return state.state


async def add(
    api: APIClient, daemon: QbtDaemon, names: list[str], *, tags: list[str] | None = None
) -> dict[str, TorrentFile]:
    """Downloading MAM torrents (no data: qBittorrent keeps them downloading), by name."""
    data_dir(daemon).mkdir(parents=True, exist_ok=True)  # a missing save path stalls the check
    made = {
        name: make_torrent(data_dir(daemon), name, 50_000 + sum(map(ord, name)), with_data=False)
        for name in names
    }
    await add_torrents(api, daemon, made.values(), tags=tags or ())

    async def listed() -> bool:
        infos = await api.torrents.info(hashes=[t.info_hash for t in made.values()])
        return len(infos) == len(made) and all(t.state != "checkingResumeData" for t in infos)

    await eventually(listed)
    return made


async def test_frozen_by_what_mam_says_and_given_back_when_found_free(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    mam_sim: MamSimulator,
    qbt_api: APIClient,
    qbittorrent: QbtDaemon,
    freezer: FrozenDateTimeFactory,
    entity_registry: er.EntityRegistry,
) -> None:
    """Untagged free / personal FL spared; VIP, paid, unknown frozen on a non-VIP account; the
    tags override MAM both ways; a download frozen as unknown is given back once found free."""
    mam_sim.state.classname = "Power User"
    plain = await add(
        qbt_api, qbittorrent, ["free.m4b", "pfl.m4b", "vip.m4b", "paid.m4b", "unknown.m4b"]
    )
    forced_paid = await add(qbt_api, qbittorrent, ["paidtag.m4b"], tags=[TAG_PAID])
    exempt = await add(qbt_api, qbittorrent, ["exempt.m4b"], tags=["fl"])
    t = {**plain, **forced_paid, **exempt}
    h = {name: torrent.info_hash for name, torrent in t.items()}
    mam_sim.add_torrent(h["free.m4b"], free=True)
    mam_sim.add_torrent(h["pfl.m4b"], personal_freeleech=True)
    mam_sim.add_torrent(h["vip.m4b"], vip=True)
    mam_sim.add_torrent(h["paid.m4b"])
    mam_sim.add_torrent(h["paidtag.m4b"], free=True)  # free, but the user says it costs ratio
    mam_sim.add_torrent(h["exempt.m4b"])  # paid, but the user's exempt tag spares it
    await setup(hass, entry)
    await run_lookups(hass, freezer)
    assert dict(mam_sim.searches) == dict.fromkeys(h.values(), 1)  # each once, first sight
    await heartbeat(hass, entry)
    # free, pfl, vip (not free for this class), paid, unknown, paidtag... minus the free ones:
    # vip + paid + unknown + paidtag + exempt (MAM says paid; the tag only spares it)
    assert paid_downloads(hass, entity_registry) == "5"

    # A free download added just before the emergency: not looked up yet, so frozen as unknown.
    late = await add(qbt_api, qbittorrent, ["late-free.m4b"])
    h["late-free.m4b"] = late["late-free.m4b"].info_hash
    mam_sim.add_torrent(h["late-free.m4b"], free=True)
    mam_sim.state.ratio = 0.99
    await poll(hass, entry)
    frozen = {"vip.m4b", "paid.m4b", "unknown.m4b", "paidtag.m4b", "late-free.m4b"}
    current = await settle(
        qbt_api, lambda c: all(c[h[n]][0] in PAUSED and TAG_FROZEN in c[h[n]][1] for n in frozen)
    )
    for name in ("free.m4b", "pfl.m4b", "exempt.m4b"):
        assert current[h[name]][0] not in PAUSED
        assert TAG_FROZEN not in current[h[name]][1]
    document = (await status(hass))["emergency"]
    assert document["frozen"]["reasons"] == {
        "vip.m4b": "paid",
        "paid.m4b": "paid",
        "unknown.m4b": "unknown",
        "paidtag.m4b": "paid",
        "late-free.m4b": "unknown",
    }
    assert document["spared"]["torrents"] == {
        "free.m4b": "free",
        "pfl.m4b": "personal_fl",
        "exempt.m4b": "exempt_tag",
    }

    # The next heartbeat queues the late one; its answer arrives; the heartbeat after gives it
    # back: started and untagged, while everything else stays frozen.
    await heartbeat(hass, entry)
    await run_lookups(hass, freezer)
    assert mam_sim.searches[h["late-free.m4b"]] == 1
    await heartbeat(hass, entry)
    current = await settle(
        qbt_api,
        lambda c: c[h["late-free.m4b"]][0] not in PAUSED and not c[h["late-free.m4b"]][1],
    )
    for name in frozen - {"late-free.m4b"}:
        assert current[h[name]][0] in PAUSED
    record = client_record(entry)
    assert sorted(record.frozen) == sorted(h[n] for n in frozen - {"late-free.m4b"})
    await heartbeat(hass, entry)  # the status reads the last sync
    assert h["late-free.m4b"] not in client_record(entry).frozen  # never again
    document = (await status(hass))["emergency"]
    assert document["spared"]["torrents"]["late-free.m4b"] == "free"
    assert document["frozen"]["count"] == 4

    mam_sim.state.ratio = 1.5
    await poll(hass, entry)
    after = await settle(qbt_api, lambda c: all(c[x][0] not in PAUSED for x in h.values()))
    assert all(TAG_FROZEN not in after[x][1] for x in h.values())
    assert sum(mam_sim.searches.values()) == len(h)  # no answer was older than 1 h: no re-check


@pytest.mark.parametrize(("classname", "vip_frozen"), [("VIP", False), ("Power User", True)])
async def test_vip_torrents_are_free_only_for_a_vip_account(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    mam_sim: MamSimulator,
    qbt_api: APIClient,
    qbittorrent: QbtDaemon,
    freezer: FrozenDateTimeFactory,
    classname: str,
    vip_frozen: bool,
) -> None:
    mam_sim.state.classname = classname
    t = await add(qbt_api, qbittorrent, ["vip.m4b", "fl-vip.m4b"])
    mam_sim.add_torrent(t["vip.m4b"].info_hash, vip=True)
    mam_sim.add_torrent(t["fl-vip.m4b"].info_hash, fl_vip=True)
    await setup(hass, entry)
    await run_lookups(hass, freezer)
    mam_sim.state.ratio = 0.5
    await poll(hass, entry)
    await heartbeat(hass, entry)
    hashes = [x.info_hash for x in t.values()]
    current = await settle(
        qbt_api, lambda c: all((c[x][0] in PAUSED) is vip_frozen for x in hashes), within=10
    )
    assert all((TAG_FROZEN in current[x][1]) is vip_frozen for x in hashes)
    spared = (await status(hass))["emergency"]["spared"]["torrents"]
    assert spared == ({} if vip_frozen else {"vip.m4b": "vip", "fl-vip.m4b": "vip"})


async def test_a_429_stops_the_lookups_and_the_freeze_still_happens(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    mam_sim: MamSimulator,
    qbt_api: APIClient,
    qbittorrent: QbtDaemon,
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup(hass, entry)
    t = await add(qbt_api, qbittorrent, [f"dl{i}.m4b" for i in range(4)])
    for torrent in t.values():
        mam_sim.add_torrent(torrent.info_hash, free=True)
    mam_sim.fail_next(429)  # MAM's answer to the first lookup
    await heartbeat(hass, entry)
    await run_lookups(hass, freezer, span=GAP * 3)
    assert sum(mam_sim.searches.values()) == 1  # the refused one; then nothing
    until = entry.runtime_data.client.rate_limited_until
    assert until is not None
    assert (await status(hass))["freeleech"]["paused_until"] is not None
    # The freeze does not wait for lookups: unknown counts as paid.
    await hass.services.async_call(DOMAIN, "trigger_freeze", {}, blocking=True)
    hashes = [x.info_hash for x in t.values()]
    await settle(qbt_api, lambda c: all(c[x][0] in PAUSED for x in hashes))
    assert len(client_record(entry).frozen) == 4
    # Still nothing sent while the back-off lasts, emergency re-check or not.
    freezer.move_to(until - timedelta(seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert sum(mam_sim.searches.values()) == 1
    # After it, the lookups resume and the free downloads are given back at the next heartbeat.
    freezer.move_to(until + timedelta(seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    await run_lookups(hass, freezer)
    assert dict(mam_sim.searches) == dict.fromkeys(hashes, 1) | {
        hashes[0]: mam_sim.searches[hashes[0]]
    }
    await heartbeat(hass, entry)
    await settle(qbt_api, lambda c: all(c[x][0] not in PAUSED and not c[x][1] for x in hashes))
    assert client_record(entry).frozen == []


async def test_the_budget_holds_for_100_new_downloads(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    mam_sim: MamSimulator,
    qbt_api: APIClient,
    qbittorrent: QbtDaemon,
    freezer: FrozenDateTimeFactory,
    entity_registry: er.EntityRegistry,
) -> None:
    """100 downloads seen at once: at most 60 searches in any hour, 5 s apart, each once."""
    t = await add(qbt_api, qbittorrent, [f"book{i:03}.m4b" for i in range(100)])
    for i, torrent in enumerate(t.values()):
        mam_sim.add_torrent(torrent.info_hash, free=i % 2 == 0)
    start = dt_util.utcnow()
    await setup(hass, entry)
    await run_lookups(hass, freezer, span=timedelta(hours=1) - GAP)
    first_hour = [at for at, _ in mam_sim.search_log if at - start < timedelta(hours=1)]
    assert len(first_hour) == 60
    await run_lookups(hass, freezer, span=timedelta(hours=2))
    log = mam_sim.search_log
    assert dict(mam_sim.searches) == dict.fromkeys((x.info_hash for x in t.values()), 1)
    times = [at for at, _ in log]
    assert min(b - a for a, b in itertools.pairwise(times)) >= timedelta(seconds=5)
    assert max(_in_any_hour(times, at) for at in times) <= 60
    await heartbeat(hass, entry)
    assert paid_downloads(hass, entity_registry) == "50"
    # An emergency re-checks only answers older than an hour: the last 40 are not asked again.
    mam_sim.state.ratio = 0.5
    await poll(hass, entry)
    queued = (await status(hass))["freeleech"]["queued"]
    assert 0 < queued < 100


def _in_any_hour(times: list[datetime], start: datetime) -> int:
    return sum(1 for at in times if start <= at < start + timedelta(hours=1))


async def test_without_the_option_nothing_is_asked(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    qbt_api: APIClient,
    qbittorrent: QbtDaemon,
    freezer: FrozenDateTimeFactory,
) -> None:
    entry = make_entry(mam_sim, qbittorrent, **{CONF_RULES_PAGES: [], CONF_FREELEECH_LOOKUP: False})
    t = await add(qbt_api, qbittorrent, ["free.m4b"])
    mam_sim.add_torrent(t["free.m4b"].info_hash, free=True)
    await setup(hass, entry)
    for _ in range(3):
        freezer.tick(GAP)
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
    assert not mam_sim.searches
    await hass.services.async_call(DOMAIN, "trigger_freeze", {}, blocking=True)
    await settle(qbt_api, lambda c: c[t["free.m4b"].info_hash][0] in PAUSED)
    assert (await status(hass))["emergency"]["frozen"]["reasons"] == {"free.m4b": "unknown"}
