"""A bad or shared ``mam_guard.db`` never takes the guard down (SPEC §5), end to end.

Real entry setup with the MAM simulator over HTTP and a real qBittorrent. The database file is
prepared on disk before setup, the way a crash, a full disk or a downgrade leaves it.
"""

from __future__ import annotations

from datetime import timedelta
import logging
import os
from pathlib import Path
import re
import sqlite3
import time as time_module
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.mam_guard.const import (
    CONF_RULES_PAGES,
    DOMAIN,
    SERVICE_GET_STATUS,
    SQLITE_FILENAME,
)
from custom_components.mam_guard.lib.pages import RULES_PAGES, PageContent, SiteEvent
from custom_components.mam_guard.lib.rules_store import SCHEMA_VERSION, RulesStore
from custom_components.mam_guard.rules import async_remove_rules_data
from mam_simulator import MamSimulator
from tests.support.entries import make_entry
from tests.support.mam_pages import default_pages
from tests.support.mam_sim import running_simulator
from tests.support.qbt_daemon import QbtDaemon
from tests.test_rules import (
    EVENT_KEYS,
    FREELEECH_NEWS,
    count_rows,
    fire_at,
    local,
    mark_checked,
    page_requests,
    refresh_rules,
)

UID = "100001"
OTHER_UID = "100002"
MOVED_ASIDE = re.compile(re.escape(SQLITE_FILENAME) + r"\.corrupt-\d{14}(-\d+)?")


# --- helpers ------------------------------------------------------------------------------------


def db_path(hass: HomeAssistant) -> Path:
    """Where the integration keeps its database."""
    return Path(hass.config.path(SQLITE_FILENAME))


def moved_aside(hass: HomeAssistant) -> list[Path]:
    """The files a corrupt database was renamed to."""
    return sorted(p for p in db_path(hass).parent.iterdir() if MOVED_ASIDE.fullmatch(p.name))


def state(hass: HomeAssistant, platform: str, key: str, uid: str = UID) -> str:
    """The state of ``<uid>_<key>``."""
    found = er.async_get(hass).async_get_entity_id(platform, DOMAIN, f"{uid}_{key}")
    assert found is not None, f"no {platform} entity for {key}"
    current = hass.states.get(found)
    assert current is not None
    return current.state


async def setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Set the entry up as HA does (no assertion on the outcome: the tests check it)."""
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


async def setup_both(hass: HomeAssistant, first: MockConfigEntry, second: MockConfigEntry) -> None:
    """Two accounts set up together, as at Home Assistant's start (both open the file at once)."""
    first.add_to_hass(hass)
    second.add_to_hass(hass)
    hass.config_entries.async_update_entry(second, unique_id=OTHER_UID, title="MAM Other")
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done(wait_background_tasks=True)
    assert first.state is ConfigEntryState.LOADED, first.reason
    assert second.state is ConfigEntryState.LOADED, second.reason


def rules_issues(hass: HomeAssistant) -> dict[str, ir.IssueEntry]:
    """The rules-database repair issues, by issue id."""
    return {
        issue_id: issue
        for (domain, issue_id), issue in ir.async_get(hass).issues.items()
        if domain == DOMAIN and issue_id.startswith("rules_database")
    }


async def assert_guard_works(
    hass: HomeAssistant, entry: MockConfigEntry, mam_sim: MamSimulator
) -> None:
    """Entry loaded, account polled, emergency declared on a low ratio, services answer."""
    assert entry.state is ConfigEntryState.LOADED, entry.reason
    assert state(hass, "sensor", "ratio") == "1.5"
    assert state(hass, "binary_sensor", "emergency_freeze") == STATE_OFF
    status = await hass.services.async_call(
        DOMAIN, SERVICE_GET_STATUS, {}, blocking=True, return_response=True
    )
    assert status is not None
    assert set(status) == {"vip", "compliance", "rules", "events", "emergency", "freeleech"}

    mam_sim.state.ratio = 0.95
    await entry.runtime_data.account.async_refresh()
    await hass.async_block_till_done()
    assert state(hass, "sensor", "ratio") == "0.95"
    assert state(hass, "binary_sensor", "emergency_freeze") == STATE_ON


def write_rules_db(path: Path) -> None:
    """A real, populated mam_guard database (several versions, so it spans many pages)."""
    store = RulesStore(str(path))
    store.open()
    try:
        for day in range(12):
            text = f"Rules version {day}\n" + "\n".join(f"rule {n} {day}" for n in range(400))
            page = PageContent("rules.php", text, f"hash-{day}")
            event = SiteEvent("bonus", f"bonus {day}", None, None)
            store.record_refresh("old-entry", {"rules.php": page}, [event], dt_util.utcnow())
    finally:
        store.close()


def corrupt_random(path: Path) -> bytes:
    """Random bytes where the database should be."""
    data = os.urandom(64 * 1024)
    path.write_bytes(data)
    return data


def corrupt_truncated(path: Path) -> bytes:
    """A real database cut in half (a crash or a full disk during a copy)."""
    write_rules_db(path)
    data = path.read_bytes()[: path.stat().st_size // 2]
    assert len(data) > 4096 * 4
    path.write_bytes(data)
    return data


def newer_schema(path: Path) -> bytes:
    """A database written by a later mam_guard (then downgraded)."""
    write_rules_db(path)
    conn = sqlite3.connect(path)
    try:
        conn.execute("CREATE TABLE from_the_future (x)")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        conn.commit()
    finally:
        conn.close()
    return path.read_bytes()


NO_PAGES: dict[str, Any] = {CONF_RULES_PAGES: []}
PAGES_CASES = pytest.mark.parametrize("options", [{}, NO_PAGES], ids=["all-pages", "no-pages"])


# --- item 1: a bad database -----------------------------------------------------------------


@PAGES_CASES
@pytest.mark.parametrize(
    "corrupt", [corrupt_random, corrupt_truncated], ids=["random", "truncated"]
)
async def test_corrupt_database_is_moved_aside_and_replaced(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    qbittorrent: QbtDaemon,
    hass_storage: dict[str, Any],
    *,
    corrupt: Any,
    options: dict[str, Any],
) -> None:
    """The corrupt file is renamed (same bytes), a fresh one is used, a repair says where."""
    path = db_path(hass)
    original = await hass.async_add_executor_job(corrupt, path)
    entry = make_entry(mam_sim, qbittorrent, **options)
    mark_checked(hass_storage, entry, dt_util.utcnow() - timedelta(hours=1))

    await setup(hass, entry)

    await assert_guard_works(hass, entry, mam_sim)
    [old] = moved_aside(hass)
    assert old.read_bytes() == original  # moved, never modified or deleted
    issues = rules_issues(hass)
    assert list(issues) == ["rules_database_corrupt"]
    issue = issues["rules_database_corrupt"]
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_key == "rules_database_corrupt"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["path"] == str(path)
    assert issue.translation_placeholders["moved_to"] == str(old)
    # The rules feature keeps working on the fresh database.
    if options:
        assert page_requests(mam_sim) == {}
        assert state(hass, "sensor", "rules_version") == "unknown"
    else:
        # Refreshed at once (the last refresh was 1 h ago, but its result is in the old file).
        assert page_requests(mam_sim) == dict.fromkeys(RULES_PAGES, 1)
        assert state(hass, "sensor", "rules_version") == "1"
        await refresh_rules(hass)
        assert page_requests(mam_sim) == dict.fromkeys(RULES_PAGES, 2)
    rows = await hass.async_add_executor_job(count_rows, str(path), entry.entry_id)
    assert rows["rule_versions"] == (0 if options else 1)


async def test_corrupt_notice_goes_away_once_the_old_file_is_gone(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon
) -> None:
    """The repair stays (restarts too) while the moved file exists; it goes once it is deleted."""
    await hass.async_add_executor_job(corrupt_random, db_path(hass))
    entry = make_entry(mam_sim, qbittorrent, **NO_PAGES)
    await setup(hass, entry)
    [old] = moved_aside(hass)
    issue = rules_issues(hass)["rules_database_corrupt"]
    assert issue.is_persistent

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert list(rules_issues(hass)) == ["rules_database_corrupt"]

    old.unlink()
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert rules_issues(hass) == {}
    assert moved_aside(hass) == []


@PAGES_CASES
async def test_newer_schema_database_is_left_alone(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    qbittorrent: QbtDaemon,
    *,
    options: dict[str, Any],
) -> None:
    """After a downgrade: file untouched, rules off (no request), repair says upgrade or move."""
    path = db_path(hass)
    original = await hass.async_add_executor_job(newer_schema, path)
    entry = make_entry(mam_sim, qbittorrent, **options)

    await setup(hass, entry)

    await assert_guard_works(hass, entry, mam_sim)
    assert path.read_bytes() == original
    assert moved_aside(hass) == []
    issue = rules_issues(hass)["rules_database_newer_schema"]
    assert list(rules_issues(hass)) == ["rules_database_newer_schema"]
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_placeholders == {
        "path": str(path),
        "version": str(SCHEMA_VERSION + 1),
        "supported": str(SCHEMA_VERSION),
    }
    assert state(hass, "sensor", "rules_version") in ("unknown", STATE_UNAVAILABLE)
    for key in EVENT_KEYS:
        assert state(hass, "binary_sensor", key) in (STATE_OFF, STATE_UNAVAILABLE)
    with pytest.raises(HomeAssistantError) as err:
        await refresh_rules(hass)
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "rules_database_unusable"
    assert err.value.translation_placeholders is not None
    assert err.value.translation_placeholders["path"] == str(path)
    assert "newer" in err.value.translation_placeholders["error"]
    assert page_requests(mam_sim) == {}  # pages are not fetched when they cannot be stored
    assert path.read_bytes() == original


async def test_unopenable_database_path_leaves_the_guard_working(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    qbittorrent: QbtDaemon,
    freezer: FrozenDateTimeFactory,
) -> None:
    """``mam_guard.db`` is a directory: rules off, the daily run skipped, repair issue."""
    freezer.move_to(local(2026, 3, 10, 9, 0, 0))
    path = db_path(hass)
    path.mkdir()
    (path / "keep.txt").write_text("mine")
    entry = make_entry(mam_sim, qbittorrent)

    await setup(hass, entry)

    await assert_guard_works(hass, entry, mam_sim)
    assert (path / "keep.txt").read_text() == "mine"
    assert moved_aside(hass) == []
    issue = rules_issues(hass)["rules_database_cannot_open"]
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["path"] == str(path)
    assert issue.translation_placeholders["error"]
    button = er.async_get(hass).async_get_entity_id("button", DOMAIN, f"{UID}_refresh_rules")
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call("button", "press", {"entity_id": button}, blocking=True)
    assert err.value.translation_key == "rules_database_unusable"
    await fire_at(hass, freezer, local(2026, 3, 10, 12, 0, 0))
    assert page_requests(mam_sim) == {}
    assert entry.state is ConfigEntryState.LOADED

    # Fixed by the user: the next reload uses the database and clears the repair.
    (path / "keep.txt").unlink()
    path.rmdir()
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert rules_issues(hass) == {}
    assert state(hass, "sensor", "rules_version") == "1"


@pytest.mark.parametrize("bad", ["random", "newer", "directory"])
async def test_removing_an_entry_with_a_bad_database(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    qbittorrent: QbtDaemon,
    caplog: pytest.LogCaptureFixture,
    *,
    bad: str,
) -> None:
    """Removal never raises on a bad file and never touches it."""
    entry = make_entry(mam_sim, qbittorrent, **NO_PAGES)
    await setup(hass, entry)
    assert await hass.config_entries.async_unload(entry.entry_id)
    path = db_path(hass)
    await hass.async_add_executor_job(path.unlink)
    if bad == "random":
        original = await hass.async_add_executor_job(corrupt_random, path)
    elif bad == "newer":
        original = await hass.async_add_executor_job(newer_schema, path)
    else:
        path.mkdir()
        original = b""

    await async_remove_rules_data(hass, entry.entry_id)  # does not raise
    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()

    assert "Error calling entry remove callback" not in caplog.text
    if bad == "directory":
        assert path.is_dir()
    else:
        assert path.read_bytes() == original
    assert moved_aside(hass) == []


# --- item 13: one database, several entries -----------------------------------------------------


async def test_two_entries_refreshing_at_the_same_time_both_record(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    qbittorrent: QbtDaemon,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    """Both accounts refresh at 12:00:00 on the shared file: both versions are recorded."""
    freezer.move_to(local(2026, 3, 10, 11, 0, 0))
    async with running_simulator(uid=int(OTHER_UID)) as other_sim:
        other_sim.pages.update(default_pages(news=[FREELEECH_NEWS]))
        mam_sim.pages.update(default_pages(news=[FREELEECH_NEWS]))
        first = make_entry(mam_sim, qbittorrent)
        second = make_entry(other_sim, qbittorrent)
        for entry in (first, second):
            mark_checked(hass_storage, entry, dt_util.utcnow() - timedelta(hours=1))
        await setup_both(hass, first, second)
        assert page_requests(mam_sim) == page_requests(other_sim) == {}

        # A slow disk: each write transaction takes a while, so the two runs overlap in SQLite.
        columns = RulesStore._event_columns

        def slow_columns(*args: Any) -> Any:
            time_module.sleep(0.5)
            return columns(*args)

        with patch.object(RulesStore, "_event_columns", staticmethod(slow_columns)):
            await fire_at(hass, freezer, local(2026, 3, 10, 12, 0, 0))

        assert page_requests(mam_sim) == page_requests(other_sim) == dict.fromkeys(RULES_PAGES, 1)
        for entry, uid in ((first, UID), (second, OTHER_UID)):
            assert entry.runtime_data.rules.last_update_success, entry.title
            assert state(hass, "sensor", "rules_version", uid) == "1"
            assert state(hass, "binary_sensor", "freeleech_event", uid) == STATE_ON
            rows = await hass.async_add_executor_job(
                count_rows, hass.config.path(SQLITE_FILENAME), entry.entry_id
            )
            assert rows == {"rule_versions": 1, "event_status": 1}
        for entry in (first, second):
            assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()


async def test_two_entries_share_one_store(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    qbittorrent: QbtDaemon,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One connection for the file: opened by the first entry, closed by the last."""
    caplog.set_level(logging.DEBUG)
    async with running_simulator(uid=int(OTHER_UID)) as other_sim:
        first = make_entry(mam_sim, qbittorrent, **NO_PAGES)
        second = make_entry(other_sim, qbittorrent, **NO_PAGES)
        await setup_both(hass, first, second)
        store = first.runtime_data.rules.db
        assert second.runtime_data.rules.db is store

        first_rules = first.runtime_data.rules
        assert await hass.config_entries.async_unload(first.entry_id)
        await hass.async_block_till_done()
        await first_rules.async_close()  # a second close (e.g. at stop) releases nothing more
        assert await hass.async_add_executor_job(store.latest_version, "x") is None  # still open
        assert await hass.config_entries.async_unload(second.entry_id)
        await hass.async_block_till_done()
        with pytest.raises(RuntimeError, match="not open"):
            await hass.async_add_executor_job(store.latest_version, "x")
