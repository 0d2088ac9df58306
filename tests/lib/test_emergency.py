"""EmergencyExecutor on real qBittorrent 4.5.2 and 5.x: enter, enforce, crash, release, outage."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import json
from typing import Any

import aiohttp
from aioqbt.client import APIClient, create_client
import pytest

from custom_components.mam_guard.lib.emergency import (
    ENTER_STEPS,
    PHASE_ACTIVE,
    PHASE_IDLE,
    PHASE_RELEASING,
    EmergencyExecutor,
    EmergencyRecord,
)
from custom_components.mam_guard.lib.engine import (
    EMERGENCY_PREF_KEYS,
    STOPPED_STATES,
    TAG_FORCED,
    TAG_FROZEN,
    EmergencyOptions,
)
from custom_components.mam_guard.lib.qbt import QbtAdapter, QbtAuthError
from tests.support.qbt_daemon import QbtDaemon
from tests.support.qbt_helpers import (
    Crash,
    Observed,
    Storage,
    add_torrents,
    data_dir,
    eventually,
    observe,
    settle,
    spawn_again,
    wait_states,
)
from tests.support.torrents import OTHER_ANNOUNCE, TorrentFile, make_torrent

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
OPTIONS = EmergencyOptions(exempt_tags=frozenset({"freeleech", "fl", "vip", "vip_critical"}))
ORIGINAL_PREFS = {
    "queueing_enabled": True,
    "max_active_uploads": 1,
    "max_active_torrents": 3,
    "max_active_downloads": 3,
    "up_limit": 102400,  # a multiple of 1 KiB: qBittorrent rounds to KiB
}
SEED_STATES = {"stalledUP", "queuedUP"}
DL_STATES = {"stalledDL", "queuedDL", "downloading", "metaDL"}


@dataclass
class Farm:
    """The torrents of the scenario (SPEC §4 test plan)."""

    seeds: list[TorrentFile]
    downloads: list[TorrentFile]
    freeleech: TorrentFile
    other: TorrentFile
    other_seed: TorrentFile
    user_paused: TorrentFile

    @property
    def hashes(self) -> list[str]:
        return [
            t.info_hash
            for t in [
                *self.seeds,
                *self.downloads,
                self.freeleech,
                self.other,
                self.other_seed,
                self.user_paused,
            ]
        ]


def new_adapter(
    daemon: QbtDaemon, http: aiohttp.ClientSession, password: str | None = None
) -> QbtAdapter:
    return QbtAdapter(http, daemon.url, daemon.username, password or daemon.password)


async def prefs_and_alt(api: APIClient) -> dict[str, Any]:
    prefs = await api.app.preferences()
    return {k: prefs.get(k) for k in EMERGENCY_PREF_KEYS} | {
        "alt_speed": await api.transfer.speed_limits_mode()
    }


def expected_during(before: Observed, farm: Farm) -> Observed:
    """The non-exempt MAM downloads stopped+tagged, MAM seeds forced+tagged, the rest untouched."""
    expected = dict(before)
    for t in farm.downloads:
        expected[t.info_hash] = ("stopped", False, frozenset({TAG_FROZEN}))
    for t in farm.seeds:
        expected[t.info_hash] = ("forced", True, frozenset({TAG_FORCED}))
    return expected


async def arrange(daemon: QbtDaemon, api: APIClient) -> Farm:
    """Queueing on with small limits, alt speed on, an upload limit; the scenario's torrents."""
    await api.app.set_preferences(ORIGINAL_PREFS)
    if await api.transfer.speed_limits_mode() == 0:
        await api.transfer.toggle_speed_limits_mode()
    data = data_dir(daemon)
    farm = Farm(
        seeds=[make_torrent(data, f"seed{i}.m4b", 2000 + i) for i in range(3)],
        downloads=[make_torrent(data, f"dl{i}.m4b", 50_000 + i, with_data=False) for i in range(3)],
        freeleech=make_torrent(data, "fl.m4b", 50_100, with_data=False),
        other=make_torrent(data, "other.iso", 50_200, tracker=OTHER_ANNOUNCE, with_data=False),
        other_seed=make_torrent(data, "other_seed.iso", 3000, tracker=OTHER_ANNOUNCE),
        user_paused=make_torrent(data, "paused.m4b", 50_300, with_data=False),
    )
    await add_torrents(api, daemon, [*farm.seeds, farm.other_seed])
    await add_torrents(api, daemon, [*farm.downloads, farm.other])
    await add_torrents(api, daemon, [farm.freeleech], tags=["FreeLeech"])
    await add_torrents(api, daemon, [farm.user_paused], stopped=True)
    states = await wait_states(
        api,
        {t.info_hash: SEED_STATES for t in [*farm.seeds, farm.other_seed]}
        | {t.info_hash: DL_STATES for t in [*farm.downloads, farm.other, farm.freeleech]}
        | {farm.user_paused.info_hash: STOPPED_STATES},
    )
    assert "queuedUP" in {states[t.info_hash] for t in farm.seeds}, states  # queueing is on
    return farm


async def test_full_emergency_scenario(
    qbittorrent_any: QbtDaemon, api: APIClient, http: aiohttp.ClientSession
) -> None:
    daemon = qbittorrent_any
    farm = await arrange(daemon, api)
    hashes = farm.hashes
    before = await observe(api, hashes)
    prefs_before = await prefs_and_alt(api)
    store = Storage()
    adapter = new_adapter(daemon, http)
    executor = EmergencyExecutor(adapter, store.persist, EmergencyRecord(), OPTIONS)

    # -- enter ---------------------------------------------------------------------------------
    await executor.enter(0.95, manual=False, now=NOW)
    rec = executor.record
    assert (rec.active, rec.phase, rec.pending, rec.failures) == (True, PHASE_ACTIVE, [], 0)
    assert store.writes[0]["active"] is True  # declared (persisted) before any step ran
    assert store.writes[0]["pending"] == list(ENTER_STEPS)
    assert rec.trigger_ratio == 0.95
    assert rec.since == NOW
    dl = sorted(t.info_hash for t in farm.downloads)
    assert rec.frozen == dl
    assert rec.forced == sorted(t.info_hash for t in farm.seeds)
    assert rec.prefs_snapshot == {k: prefs_before[k] for k in EMERGENCY_PREF_KEYS}
    expected = expected_during(before, farm)
    await settle(api, hashes, expected)
    prefs_now = await prefs_and_alt(api)
    assert prefs_now["max_active_uploads"] == 50
    assert prefs_now["max_active_torrents"] == 50
    assert prefs_now["up_limit"] == 0
    assert prefs_now["alt_speed"] == 0
    assert rec.alt_speed_toggled
    states = {t.hash: t.state for t in await api.torrents.info(hashes=dl)}
    assert set(states.values()) <= STOPPED_STATES

    # -- a new MAM download mid-emergency is frozen by enforce ----------------------------------
    late = make_torrent(data_dir(daemon), "late.m4b", 60_000, with_data=False)
    await add_torrents(api, daemon, [late])
    await wait_states(api, {late.info_hash: DL_STATES})
    await executor.enforce(NOW + timedelta(minutes=1))
    hashes.append(late.info_hash)
    before[late.info_hash] = ("running", False, frozenset())
    expected[late.info_hash] = ("stopped", False, frozenset({TAG_FROZEN}))
    await settle(api, hashes, expected)
    assert late.info_hash in executor.record.frozen

    # -- the user takes one frozen torrent back and changes a preference -------------------------
    taken = farm.downloads[0].info_hash
    await api.torrents.remove_tags([taken], [TAG_FROZEN])
    await api.torrents.start([taken])
    await api.app.set_preferences({"max_active_uploads": 7})
    expected[taken] = ("running", False, frozenset())
    await settle(api, hashes, expected)
    await executor.enforce(NOW + timedelta(minutes=2))  # must not re-freeze the user's torrent
    await settle(api, hashes, expected)

    # -- restart: a new adapter and executor from the stored record reconcile, no re-snapshot ---
    snapshot = dict(executor.record.prefs_snapshot or {})
    restarted = EmergencyExecutor(new_adapter(daemon, http), store.persist, store.load(), OPTIONS)
    await restarted.enforce(NOW + timedelta(minutes=3))
    assert restarted.record.prefs_snapshot == snapshot
    assert restarted.record.phase == PHASE_ACTIVE
    assert (await prefs_and_alt(api))["max_active_uploads"] == 7  # the user's value stays
    await settle(api, hashes, expected)

    # -- release ------------------------------------------------------------------------------
    await restarted.release(NOW + timedelta(hours=1))
    rec = restarted.record
    assert (rec.active, rec.phase, rec.pending, rec.prefs_snapshot, rec.applied_prefs) == (
        False,
        PHASE_IDLE,
        [],
        None,
        {},
    )
    assert any(w["phase"] == PHASE_RELEASING for w in store.writes)
    await settle(api, hashes, before)
    assert await prefs_and_alt(api) == prefs_before | {"max_active_uploads": 7}


async def test_crash_at_every_write_recovers_exactly(
    qbittorrent_any: QbtDaemon, api: APIClient, http: aiohttp.ClientSession
) -> None:
    """Kill the executor at each write of enter and of release; a fresh one finishes exactly."""
    daemon = qbittorrent_any
    farm = await arrange(daemon, api)
    hashes = farm.hashes
    before = await observe(api, hashes)
    prefs_before = await prefs_and_alt(api)

    clean = Storage()
    executor = EmergencyExecutor(
        new_adapter(daemon, http), clean.persist, EmergencyRecord(), OPTIONS
    )
    await executor.enter(0.5, manual=True, now=NOW)
    during = expected_during(before, farm)
    await settle(api, hashes, during)
    prefs_during = await prefs_and_alt(api)
    enter_writes = len(clean.writes)
    await executor.release(NOW)
    release_writes = len(clean.writes) - enter_writes
    await settle(api, hashes, before)
    assert enter_writes > len(ENTER_STEPS)

    def crash_points() -> Iterator[tuple[str, int, bool]]:
        for lose in (False, True):  # dies right after a write / while writing (write lost)
            yield from (("enter", k, lose) for k in range(1 + lose, enter_writes + 1))
            yield from (("release", k, lose) for k in range(1, release_writes + 1))

    for phase, k, lose in crash_points():
        where = (phase, k, lose)
        store = Storage(lose_write=lose)
        executor = EmergencyExecutor(
            new_adapter(daemon, http), store.persist, EmergencyRecord(), OPTIONS
        )
        if phase == "enter":
            store.crash_after = k
            with pytest.raises(Crash):
                await executor.enter(0.5, manual=True, now=NOW)
        else:
            await executor.enter(0.5, manual=True, now=NOW)
            store.crash_after = len(store.writes) + k
            with pytest.raises(Crash):
                await executor.release(NOW)
        recovered = EmergencyExecutor(
            new_adapter(daemon, http), store.persist, store.load(), OPTIONS
        )
        await recovered.enforce(NOW)  # what the HA layer does after a restart
        if phase == "enter" or recovered.record.active:  # release's first write was lost
            assert recovered.record.phase == PHASE_ACTIVE, where
            assert recovered.record.prefs_snapshot == {
                key: prefs_before[key] for key in EMERGENCY_PREF_KEYS
            }, where
            await settle(api, hashes, during)
            assert await prefs_and_alt(api) == prefs_during, where
            await recovered.release(NOW)
        assert recovered.record.phase == PHASE_IDLE, where
        await settle(api, hashes, before)
        assert await prefs_and_alt(api) == prefs_before, where


async def test_reenter_during_unfinished_release_keeps_original_snapshot(
    qbittorrent_any: QbtDaemon, api: APIClient, http: aiohttp.ClientSession
) -> None:
    """Ratio falls again while a release was cut short: our values never become the original."""
    daemon = qbittorrent_any
    farm = await arrange(daemon, api)
    before = await observe(api, farm.hashes)
    prefs_before = await prefs_and_alt(api)
    store = Storage()
    executor = EmergencyExecutor(
        new_adapter(daemon, http), store.persist, EmergencyRecord(), OPTIONS
    )
    await executor.enter(0.9, manual=False, now=NOW)
    store.crash_after = len(store.writes) + 1  # dies right after "releasing" was written
    with pytest.raises(Crash):
        await executor.release(NOW)
    again = EmergencyExecutor(new_adapter(daemon, http), store.persist, store.load(), OPTIONS)
    assert again.record.phase == PHASE_RELEASING
    await again.enter(0.85, manual=False, now=NOW + timedelta(minutes=5))
    assert again.record.phase == PHASE_ACTIVE
    assert again.record.prefs_snapshot == {k: prefs_before[k] for k in EMERGENCY_PREF_KEYS}
    await settle(api, farm.hashes, expected_during(before, farm))
    await again.release(NOW + timedelta(minutes=10))
    await settle(api, farm.hashes, before)
    assert await prefs_and_alt(api) == prefs_before


async def test_outage_keeps_steps_pending_then_enforce_completes(
    qbittorrent_any: QbtDaemon, api: APIClient, http: aiohttp.ClientSession
) -> None:
    daemon = qbittorrent_any
    farm = await arrange(daemon, api)
    prefs_before = await prefs_and_alt(api)
    store = Storage()
    adapter = new_adapter(daemon, http)
    await adapter.connect()  # a session exists; after the restart it is stale (403 -> re-login)
    executor = EmergencyExecutor(adapter, store.persist, EmergencyRecord(), OPTIONS)
    await api.close()
    daemon.stop()

    await executor.enter(0.8, manual=False, now=NOW)  # must not raise
    rec = executor.record
    assert rec.active
    assert rec.pending == list(ENTER_STEPS)
    assert rec.failures == 0
    assert store.writes[-1]["pending"] == list(ENTER_STEPS)
    await executor.enforce(NOW)  # still down: still pending, no exception
    assert rec.pending == list(ENTER_STEPS)

    spawn_again(daemon)

    async def completed() -> bool:  # right after start qBittorrent is still loading: retried
        await executor.enforce(NOW + timedelta(minutes=1))
        return not rec.pending

    await eventually(completed)
    assert rec.phase == PHASE_ACTIVE
    assert rec.prefs_snapshot == {k: prefs_before[k] for k in EMERGENCY_PREF_KEYS}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        check = await create_client(
            daemon.url + "/api/v2/", daemon.username, daemon.password, http=session
        )
        async with check:
            dl = [t.info_hash for t in farm.downloads]
            await wait_states(check, dict.fromkeys(dl, STOPPED_STATES))
            obs = await observe(check, dl)
            assert all(TAG_FROZEN in tags for _, _, tags in obs.values())
            assert (await check.app.preferences())["max_active_uploads"] == 50


async def test_unexpected_error_counts_failures_and_reraises(
    qbittorrent_any: QbtDaemon, http: aiohttp.ClientSession
) -> None:
    store = Storage()
    bad = EmergencyExecutor(
        new_adapter(qbittorrent_any, http, password="wrong"),
        store.persist,
        EmergencyRecord(),
        OPTIONS,
    )
    with pytest.raises(QbtAuthError):
        await bad.enter(0.5, manual=False, now=NOW)
    with pytest.raises(QbtAuthError):
        await bad.enforce(NOW)
    assert bad.record.failures == 2
    assert store.writes[-1]["failures"] == 2
    good = EmergencyExecutor(
        new_adapter(qbittorrent_any, http), store.persist, store.load(), OPTIONS
    )
    await good.enforce(NOW)
    assert good.record.failures == 0
    assert good.record.pending == []


def test_record_round_trip_and_defaults() -> None:
    rec = EmergencyRecord(
        active=True,
        manual=True,
        since=NOW,
        trigger_ratio=0.9,
        hold_off_until=NOW + timedelta(hours=1),
        phase=PHASE_ACTIVE,
        prefs_snapshot={"up_limit": 1024},
        applied_prefs={"up_limit": 0},
        alt_speed_toggled=True,
        frozen=["a"],
        forced=["b"],
        pending=["force"],
        failures=2,
        frozen_force_start=["a"],
    )
    data = json.loads(json.dumps(rec.to_dict()))
    assert data["version"] == 2
    assert EmergencyRecord.from_dict(data) == rec
    assert EmergencyRecord.from_dict(None) == EmergencyRecord()
    assert EmergencyRecord.from_dict({}).phase == PHASE_IDLE
    older = {k: v for k, v in data.items() if k != "frozen_force_start"}  # stored before the field
    assert EmergencyRecord.from_dict(older).frozen_force_start == []
    with pytest.raises(ValueError, match="newer"):
        EmergencyRecord.from_dict({"version": 99})
    assert rec.copy() == rec
    assert rec.copy().frozen is not rec.frozen


def test_record_packs_hash_lists_and_reads_version_1() -> None:
    """Real info hashes are stored as one base64 string (order kept); version 1 lists still load."""
    hashes = [f"{i:040x}" for i in (7, 3, 2**150, 5)]
    rec = EmergencyRecord(active=True, phase=PHASE_ACTIVE, frozen=hashes, forced=hashes[:1])
    data = json.loads(json.dumps(rec.to_dict()))
    assert isinstance(data["frozen"], str)
    assert data["frozen"].startswith("b64:")
    assert len(data["frozen"]) == len("b64:") + 108  # 4 x 20 bytes in base64
    assert EmergencyRecord.from_dict(data) == rec
    version_1 = {**data, "version": 1, "frozen": hashes, "forced": hashes[:1]}
    assert EmergencyRecord.from_dict(version_1) == rec
    # Anything that is not a 40-hex hash keeps the list form: nothing is ever lost.
    odd = EmergencyRecord(frozen=[*hashes, "NOT-A-HASH"])
    assert odd.to_dict()["frozen"] == [*hashes, "NOT-A-HASH"]
    assert EmergencyRecord.from_dict(json.loads(json.dumps(odd.to_dict()))) == odd
    for corrupt in ("b64:!!!!", "b64:" + "A" * 8):
        with pytest.raises(ValueError, match="corrupt"):
            EmergencyRecord.from_dict({**data, "frozen": corrupt})


async def test_release_when_idle_only_records_hold_off(
    qbittorrent_any: QbtDaemon, http: aiohttp.ClientSession
) -> None:
    store = Storage()
    adapter = new_adapter(qbittorrent_any, http)
    executor = EmergencyExecutor(adapter, store.persist, EmergencyRecord(), OPTIONS)
    await executor.release(NOW, hold_off_until=NOW + timedelta(hours=1))
    assert executor.record.hold_off_until == NOW + timedelta(hours=1)
    assert adapter.request_count == 0
    await executor.enforce(NOW)
    assert adapter.request_count == 0  # idle: enforce does nothing
