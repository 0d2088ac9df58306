"""The executor undoes exactly its own actions, on real qBittorrent 4.5.2 and 5.x.

- a download the user had force-started gets its force start back on release;
- a forced seed the user stopped during the emergency stays stopped;
- a preference the user changed while Home Assistant was down (crash right after
  ``app/setPreferences``) keeps the user's value;
- two executors (two MAM accounts) on one qBittorrent never undo each other's actions.
"""

from __future__ import annotations

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
from custom_components.mam_guard.lib.engine import (
    EMERGENCY_PREF_KEYS,
    STOPPED_STATES,
    TAG_FORCED,
    TAG_FROZEN,
    EmergencyOptions,
)
from custom_components.mam_guard.lib.qbt import QbtAdapter
from tests.support.qbt_daemon import QbtDaemon
from tests.support.qbt_helpers import (
    Crash,
    Storage,
    add_torrents,
    data_dir,
    observe,
    settle,
    wait_states,
)
from tests.support.torrents import make_torrent

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
OPTIONS = EmergencyOptions()
DL_STATES = {"stalledDL", "queuedDL", "downloading", "metaDL"}
SEED_STATES = {"stalledUP", "queuedUP"}
NONE: frozenset[str] = frozenset()
FROZEN = frozenset({TAG_FROZEN})
FORCED = frozenset({TAG_FORCED})


def executor(
    daemon: QbtDaemon,
    http: aiohttp.ClientSession,
    store: Storage,
    record: EmergencyRecord | None = None,
) -> EmergencyExecutor:
    adapter = QbtAdapter(http, daemon.url, daemon.username, daemon.password)
    return EmergencyExecutor(adapter, store.persist, record or EmergencyRecord(), OPTIONS)


async def emergency_prefs(api: APIClient) -> dict[str, Any]:
    prefs = await api.app.preferences()
    return {key: prefs.get(key) for key in EMERGENCY_PREF_KEYS}


async def test_user_forced_download_gets_force_start_back_on_release(
    qbittorrent_any: QbtDaemon, api: APIClient, http: aiohttp.ClientSession
) -> None:
    """Stopping drops force start (the API shows force_start false): we must remember it."""
    daemon = qbittorrent_any
    data = data_dir(daemon)
    forced = make_torrent(data, "forced.m4b", 50_000, with_data=False)
    plain = make_torrent(data, "plain.m4b", 50_001, with_data=False)
    await add_torrents(api, daemon, [forced, plain])
    hashes = [forced.info_hash, plain.info_hash]
    await wait_states(api, dict.fromkeys(hashes, DL_STATES))
    await api.torrents.set_force_start([forced.info_hash], True)
    await wait_states(api, {forced.info_hash: {"forcedDL"}})
    before = await observe(api, hashes)
    assert before[forced.info_hash] == ("forced", True, NONE)

    store = Storage()
    await executor(daemon, http, store).enter(0.5, manual=False, now=NOW)
    await settle(
        api,
        hashes,
        {
            forced.info_hash: ("stopped", False, FROZEN),  # stopped: the flag reads false
            plain.info_hash: ("stopped", False, FROZEN),
        },
    )
    # What to restore must survive a restart: release from the stored record only.
    restarted = executor(daemon, http, store, store.load())
    await restarted.release(NOW + timedelta(hours=1))
    assert restarted.record.phase == PHASE_IDLE
    await settle(api, hashes, before)


async def test_forced_seed_the_user_stopped_stays_stopped_on_release(
    qbittorrent_any: QbtDaemon, api: APIClient, http: aiohttp.ClientSession
) -> None:
    """``setForceStart(false)`` resumes a stopped torrent: release must only untag it.

    Also pins down what the docstring of ``lib.emergency`` says about such a torrent: stopped, the
    API reports ``force_start`` false, and a later plain start by the user makes it an ordinary
    (auto-managed) seed again, on 4.5.2 and 5.x alike.
    """
    daemon = qbittorrent_any
    data = data_dir(daemon)
    kept, paused = make_torrent(data, "kept.m4b", 3000), make_torrent(data, "paused.m4b", 3001)
    await add_torrents(api, daemon, [kept, paused])
    hashes = [kept.info_hash, paused.info_hash]
    await wait_states(api, dict.fromkeys(hashes, SEED_STATES))
    before = await observe(api, hashes)

    store = Storage()
    guard = executor(daemon, http, store)
    await guard.enter(0.5, manual=False, now=NOW)
    await settle(api, hashes, dict.fromkeys(hashes, ("forced", True, FORCED)))
    await api.torrents.stop([paused.info_hash])  # the user stops one forced seed
    await settle(
        api,
        hashes,
        {kept.info_hash: ("forced", True, FORCED), paused.info_hash: ("stopped", False, FORCED)},
    )

    await guard.release(NOW + timedelta(hours=1))
    await settle(
        api,
        hashes,
        {kept.info_hash: before[kept.info_hash], paused.info_hash: ("stopped", False, NONE)},
    )
    await api.torrents.start([paused.info_hash])  # a plain start: auto-managed, not forced
    await wait_states(api, {paused.info_hash: SEED_STATES})
    await settle(api, hashes, before)


async def test_pref_changed_while_down_after_set_preferences_keeps_user_value(
    qbittorrent_any: QbtDaemon, api: APIClient, http: aiohttp.ClientSession
) -> None:
    """Crash right after ``app/setPreferences``: the prefs step re-runs and must see the user."""
    daemon = qbittorrent_any
    original = {"max_active_uploads": 1, "max_active_torrents": 3, "up_limit": 102400}
    await api.app.set_preferences(original)
    prefs_before = await emergency_prefs(api)
    assert await api.transfer.speed_limits_mode() == 0

    store = Storage(lose_write=True)  # the step's "done" write never reaches the disk

    async def persist(record: EmergencyRecord) -> None:
        recorded = any(w["applied_prefs"] for w in store.writes)
        await store.persist(record)
        if not recorded and store.writes[-1]["applied_prefs"]:
            store.crash_after = len(store.writes) + 1  # die at the next write: after setPrefs

    first = EmergencyExecutor(
        QbtAdapter(http, daemon.url, daemon.username, daemon.password),
        persist,
        EmergencyRecord(),
        OPTIONS,
    )
    with pytest.raises(Crash):
        await first.enter(0.5, manual=False, now=NOW)
    assert store.load().pending[0] == "prefs"  # the step is not recorded as done
    assert (await emergency_prefs(api))["max_active_uploads"] == 50  # but it was applied

    await api.app.set_preferences({"max_active_uploads": 7})  # the user, while HA is down

    recovered = executor(daemon, http, store, store.load())
    await recovered.enforce(NOW + timedelta(minutes=1))
    assert recovered.record.phase == PHASE_ACTIVE
    assert recovered.record.pending == []
    during = await emergency_prefs(api)
    assert during["max_active_uploads"] == 7  # not re-applied over the user's value
    assert during["max_active_torrents"] == 50
    assert during["up_limit"] == 0

    await recovered.release(NOW + timedelta(hours=1))
    assert await emergency_prefs(api) == prefs_before | {"max_active_uploads": 7}


async def test_two_executors_on_one_qbittorrent_never_undo_each_other(
    qbittorrent_any: QbtDaemon, api: APIClient, http: aiohttp.ClientSession
) -> None:
    """Two MAM accounts (two records) share one qBittorrent and its two tags."""
    daemon = qbittorrent_any
    data = data_dir(daemon)
    downloads = [make_torrent(data, f"dl{i}.m4b", 50_000 + i, with_data=False) for i in range(2)]
    seeds = [make_torrent(data, f"seed{i}.m4b", 3000 + i) for i in range(2)]
    await add_torrents(api, daemon, seeds)
    await add_torrents(api, daemon, downloads)
    dl = [t.info_hash for t in downloads]
    sd = [t.info_hash for t in seeds]
    await wait_states(api, dict.fromkeys(dl, DL_STATES) | dict.fromkeys(sd, SEED_STATES))
    before = await observe(api, dl + sd)
    during = dict.fromkeys(dl, ("stopped", False, FROZEN)) | dict.fromkeys(
        sd, ("forced", True, FORCED)
    )

    store_a, store_b = Storage(), Storage()
    a = executor(daemon, http, store_a)
    await a.enter(0.5, manual=False, now=NOW)
    await settle(api, dl + sd, during)

    # B enters (crashing at its first write after its steps began), recovers, then releases.
    b = executor(daemon, http, store_b)
    store_b.crash_after = 2
    with pytest.raises(Crash):
        await b.enter(0.5, manual=False, now=NOW)
    b = executor(daemon, http, store_b, store_b.load())
    await b.enforce(NOW)
    assert (b.record.frozen, b.record.forced) == ([], [])  # nothing of A's became B's
    late = make_torrent(data, "late.m4b", 60_000, with_data=False)
    await add_torrents(api, daemon, [late])
    await wait_states(api, {late.info_hash: DL_STATES})
    await b.enforce(NOW + timedelta(minutes=1))  # B freezes the new download: B's own
    assert b.record.frozen == [late.info_hash]
    await settle(api, [late.info_hash], {late.info_hash: ("stopped", False, FROZEN)})
    await b.release(NOW + timedelta(minutes=2))
    await settle(
        api, [*dl, *sd, late.info_hash], during | {late.info_hash: ("running", False, NONE)}
    )

    # A still owns its torrents: nothing looks "handed back", its release restores them.
    a = executor(daemon, http, store_a, store_a.load())
    await a.enforce(NOW + timedelta(minutes=3))
    assert set(dl) <= set(a.record.frozen)
    assert set(sd) <= set(a.record.forced)
    await settle(api, dl + sd, during)
    await a.release(NOW + timedelta(hours=1))
    await settle(api, dl + sd, before)
    assert set((await observe(api, [late.info_hash]))[late.info_hash][2]) == set()
    states = {t.hash: t.state for t in await api.torrents.info(hashes=dl)}
    assert not set(states.values()) & STOPPED_STATES


@pytest.mark.parametrize("lose_write", [False, True])
async def test_reenter_over_a_half_done_release_keeps_what_is_still_ours(
    qbittorrent_any: QbtDaemon, api: APIClient, http: aiohttp.ClientSession, lose_write: bool
) -> None:
    """Release resumed the downloads, then died: re-entry re-freezes them and keeps the seeds.

    The downloads the release already handed back are not "taken back by the user"; the seeds
    still tagged are still ours (``EmergencyRecord.begin_entering``), so the next release
    un-forces them.
    """
    daemon = qbittorrent_any
    data = data_dir(daemon)
    downloads = [make_torrent(data, f"dl{i}.m4b", 50_000 + i, with_data=False) for i in range(2)]
    seeds = [make_torrent(data, f"seed{i}.m4b", 3000 + i) for i in range(2)]
    await add_torrents(api, daemon, seeds)
    await add_torrents(api, daemon, downloads)
    dl = [t.info_hash for t in downloads]
    sd = [t.info_hash for t in seeds]
    await wait_states(api, dict.fromkeys(dl, DL_STATES) | dict.fromkeys(sd, SEED_STATES))
    before = await observe(api, dl + sd)
    during = dict.fromkeys(dl, ("stopped", False, FROZEN)) | dict.fromkeys(
        sd, ("forced", True, FORCED)
    )

    store = Storage(lose_write=lose_write)
    await executor(daemon, http, store).enter(0.5, manual=False, now=NOW)
    await settle(api, dl + sd, during)
    store.crash_after = len(store.writes) + 2  # "releasing", then the unfreeze step's write
    with pytest.raises(Crash):
        await executor(daemon, http, store, store.load()).release(NOW)
    # The downloads run again, the seeds are still forced.
    await settle(api, dl + sd, {**during, **dict.fromkeys(dl, ("running", False, NONE))})

    again = executor(daemon, http, store, store.load())
    await again.enter(0.4, manual=False, now=NOW + timedelta(minutes=5))
    assert again.record.phase == PHASE_ACTIVE
    assert sorted(again.record.frozen) == sorted(dl)
    assert sorted(again.record.forced) == sorted(sd)
    await settle(api, dl + sd, during)
    await again.release(NOW + timedelta(minutes=10))
    await settle(api, dl + sd, before)
