"""Rules refresh and site events end to end (SPEC §5): real entry setup, MAM simulator over HTTP.

Every test sets the entry up the way Home Assistant does and talks to the simulator over real
sockets; only time is faked (``freezer`` + ``async_fire_time_changed``). The local time zone of
the test harness is US/Pacific, so "12:00" below is noon in that zone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import contextlib
from datetime import datetime, timedelta
import logging
import os
import sqlite3
from typing import Any
from unittest.mock import AsyncMock, patch

from aiohttp import web
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant, State
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.update_coordinator import UpdateFailed
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)
from yarl import URL

from custom_components.mam_guard import const
from custom_components.mam_guard.const import (
    CONF_RULES_PAGES,
    CONF_RULES_REFRESH_TIME,
    DOMAIN,
    EVENT_RULES_CHANGED,
    EVENT_SITE_EVENT,
    SERVICE_GET_STATUS,
    SERVICE_REFRESH_RULES,
    SQLITE_FILENAME,
)
from custom_components.mam_guard.diagnostics import async_get_config_entry_diagnostics
from custom_components.mam_guard.lib.pages import RULES_PAGES, PageContent
from custom_components.mam_guard.lib.rules_store import SCHEMA_VERSION, RulesStore
from mam_simulator import MamSimulator
from tests.support.mam_pages import (
    RULES_BODY,
    TRACKER_ERRORS_NOTICE,
    NewsItem,
    NotesLayout,
    TickerForm,
    default_pages,
    render_page,
    update_notes_body,
)

UID = "100001"
EVENT_KEYS = ("freeleech_event", "bonus_event", "multiplier_event")
FREELEECH_NEWS: NewsItem = ("Site-wide freeleech until 2026-03-12!", "/f/t/86100/site-wide-fl")
RULES_ERROR = "Error fetching mam_guard rules data"


# --- helpers ------------------------------------------------------------------------------------


def local(*parts: int) -> datetime:
    """``local(y, m, d, h, min, s)``: aware, in Home Assistant's time zone (US/Pacific in tests)."""
    year, month, day, hour, minute, second = parts
    return datetime(year, month, day, hour, minute, second, tzinfo=dt_util.get_default_time_zone())


def page_requests(sim: MamSimulator) -> dict[str, int]:
    """Requests per rules page (account polls excluded), zeros left out."""
    return {path: sim.requests[path] for path in RULES_PAGES if sim.requests[path]}


def total_page_requests(sim: MamSimulator) -> int:
    """Rules page requests so far."""
    return sum(page_requests(sim).values())


def mark_checked(hass_storage: dict[str, Any], entry: MockConfigEntry, checked: datetime) -> None:
    """Pretend the last successful rules refresh happened at ``checked`` (before setup)."""
    hass_storage[f"{DOMAIN}.{entry.entry_id}"] = {
        "version": 1,
        "minor_version": 1,
        "key": f"{DOMAIN}.{entry.entry_id}",
        "data": {"rules_checked": checked.isoformat()},
    }


async def setup_entry(hass: HomeAssistant, entry: MockConfigEntry, **options: Any) -> None:
    """Add and set up the entry, then wait for the startup refresh (a background task)."""
    if entry.entry_id not in {e.entry_id for e in hass.config_entries.async_entries(DOMAIN)}:
        entry.add_to_hass(hass)
    if options:
        hass.config_entries.async_update_entry(entry, options={**entry.options, **options})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED


async def fire_at(hass: HomeAssistant, freezer: FrozenDateTimeFactory, when: datetime) -> None:
    """Move the clock to ``when``, run the timers due by then and wait for what they started."""
    freezer.move_to(when)
    async_fire_time_changed(hass, when)
    await hass.async_block_till_done(wait_background_tasks=True)


async def refresh_rules(hass: HomeAssistant) -> None:
    """The ``refresh_rules`` action, as an automation calls it."""
    await hass.services.async_call(DOMAIN, SERVICE_REFRESH_RULES, {}, blocking=True)
    await hass.async_block_till_done()


async def get_status(hass: HomeAssistant) -> dict[str, Any]:
    """The ``get_status`` response."""
    response = await hass.services.async_call(
        DOMAIN, SERVICE_GET_STATUS, {}, blocking=True, return_response=True
    )
    assert response is not None
    return dict(response)


def entity_id(hass: HomeAssistant, platform: str, key: str) -> str:
    """The entity id of ``<uid>_<key>`` (names come from translations, so look it up)."""
    found = er.async_get(hass).async_get_entity_id(platform, DOMAIN, f"{UID}_{key}")
    assert found is not None, f"no {platform} entity for {key}"
    return found


def state_of(hass: HomeAssistant, platform: str, key: str) -> State:
    """The current state object of one of the entry's entities."""
    state = hass.states.get(entity_id(hass, platform, key))
    assert state is not None
    return state


def rules_version(hass: HomeAssistant) -> State:
    """``sensor.*_rules_version``."""
    return state_of(hass, "sensor", "rules_version")


def event_states(hass: HomeAssistant) -> dict[str, str]:
    """State of the three site-event binary sensors."""
    return {key: state_of(hass, "binary_sensor", key).state for key in EVENT_KEYS}


def rate_limit_once(monkeypatch: pytest.MonkeyPatch, sim: MamSimulator, path: str) -> None:
    """Answer the next request for ``path`` with HTTP 429 (other paths are served normally)."""
    answer = sim._answer
    pending = [path]

    def answer_or_429(request: web.Request, requested: str) -> web.StreamResponse:
        if requested in pending:
            pending.remove(requested)
            sim.fail_next(429)
        return answer(request, requested)

    monkeypatch.setattr(sim, "_answer", answer_or_429)


def count_rows(db_path: str, entry_id: str) -> dict[str, int]:
    """Rows of ``entry_id`` in both tables (run in the executor)."""
    conn = sqlite3.connect(db_path)
    try:
        return {
            table: conn.execute(
                f"SELECT COUNT(*) FROM {table} WHERE entry_id = ?",
                (entry_id,),
            ).fetchone()[0]
            for table in ("rule_versions", "event_status")
        }
    finally:
        conn.close()


# --- 1-3: versions ------------------------------------------------------------------------------


async def test_first_refresh_creates_version_1(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Setup without history fetches the 7 pages once each, with the cookie, and stores v1."""
    now = dt_util.as_utc(local(2026, 3, 10, 9, 0, 0))
    freezer.move_to(now)
    changed = async_capture_events(hass, EVENT_RULES_CHANGED)

    await setup_entry(hass, config_entry)

    assert page_requests(mam_sim) == dict.fromkeys(RULES_PAGES, 1)
    assert mam_sim.last_headers["Cookie"].startswith("mam_id=")
    assert "mam_guard" in mam_sim.last_headers["User-Agent"]
    version = rules_version(hass)
    assert version.state == "1"
    assert version.attributes["effective_date"] == now
    assert list(version.attributes["changed_pages"]) == sorted(RULES_PAGES)
    assert dt_util.parse_datetime(state_of(hass, "sensor", "rules_checked").state) == now
    assert changed == []  # the first version is not a change


async def test_identical_refresh_ignores_page_chrome(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Other counters, clock, timings and scripts around the same content: no new version."""
    freezer.move_to(local(2026, 3, 10, 9, 0, 0))
    await setup_entry(hass, config_entry)
    changed = async_capture_events(hass, EVENT_RULES_CHANGED)
    before = dict(mam_sim.pages)

    later = local(2026, 3, 10, 10, 17, 43)
    freezer.move_to(later)
    mam_sim.pages.update(
        default_pages(now=dt_util.as_utc(later), vault_points=9_001_234, bonus=12_345)
    )
    assert all(mam_sim.pages[path] != before[path] for path in RULES_PAGES)
    await refresh_rules(hass)

    assert page_requests(mam_sim) == dict.fromkeys(RULES_PAGES, 2)
    assert rules_version(hass).state == "1"
    checked = state_of(hass, "sensor", "rules_checked").state
    assert dt_util.parse_datetime(checked) == dt_util.as_utc(later)
    assert changed == []


async def test_changed_rules_page_creates_version_2(
    hass: HomeAssistant, config_entry: MockConfigEntry, mam_sim: MamSimulator
) -> None:
    """An edited rule gives version 2, ``changed_pages`` and a ``mam_guard_rules_changed``."""
    await setup_entry(hass, config_entry)
    changed = async_capture_events(hass, EVENT_RULES_CHANGED)
    new_body = RULES_BODY.replace("at or above 1.0", "at or above 1.2")
    assert new_body != RULES_BODY
    mam_sim.pages["rules.php"] = render_page("rules.php", new_body)

    await refresh_rules(hass)

    version = rules_version(hass)
    assert version.state == "2"
    assert list(version.attributes["changed_pages"]) == ["rules.php"]
    assert [event.data for event in changed] == [
        {"entry_id": config_entry.entry_id, "rule_version": 2, "changed_pages": ["rules.php"]}
    ]


# --- 4-5: site events ---------------------------------------------------------------------------


async def test_announced_freeleech_turns_on_and_ends_by_itself(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Ticker "site-wide freeleech until <date>": on with that end; off at the end, no fetch."""
    news: NewsItem = ("Site-wide freeleech until 2026-03-11 08:00!", "/f/t/86100/site-wide-fl")
    freezer.move_to(local(2026, 3, 10, 12, 30, 0))
    mam_sim.pages.update(default_pages(news=[news]))
    site_events = async_capture_events(hass, EVENT_SITE_EVENT)

    await setup_entry(hass, config_entry)

    end = local(2026, 3, 11, 8, 0, 0)
    state = state_of(hass, "binary_sensor", "freeleech_event")
    assert state.state == STATE_ON
    assert state.attributes["description"] == news[0]
    assert dt_util.parse_datetime(state.attributes["end_date"]) == end
    assert state.attributes["source_url"] == f"{mam_sim.base_url}{news[1]}"
    assert event_states(hass) == {
        "freeleech_event": STATE_ON,
        "bonus_event": STATE_OFF,
        "multiplier_event": STATE_OFF,
    }
    assert [event.data for event in site_events] == [
        {
            "entry_id": config_entry.entry_id,
            "event_type": "freeleech",
            "active": True,
            "description": news[0],
            "end_date": dt_util.as_utc(end).isoformat(),
            "start_date": site_events[0].data["start_date"],
        }
    ]
    assert dt_util.parse_datetime(site_events[0].data["start_date"]) is not None
    requests = total_page_requests(mam_sim)

    await fire_at(hass, freezer, end - timedelta(seconds=5))
    assert state_of(hass, "binary_sensor", "freeleech_event").state == STATE_ON
    await fire_at(hass, freezer, end + timedelta(seconds=1))

    state = state_of(hass, "binary_sensor", "freeleech_event")
    assert state.state == STATE_OFF
    assert state.attributes["end_date"] is None
    assert total_page_requests(mam_sim) == requests  # no refresh was needed
    # The end is reported when it comes, not a day later at the next refresh.
    assert [(e.data["event_type"], e.data["active"]) for e in site_events] == [
        ("freeleech", True),
        ("freeleech", False),
    ]

    # The next daily refresh (the ticker still shows the old news) reports nothing twice.
    await fire_at(hass, freezer, local(2026, 3, 11, 12, 0, 0))
    assert total_page_requests(mam_sim) == requests + len(RULES_PAGES)
    assert len(site_events) == 2
    assert state_of(hass, "binary_sensor", "freeleech_event").state == STATE_OFF


async def test_rules_and_faq_prose_is_no_event(
    hass: HomeAssistant, config_entry: MockConfigEntry, mam_sim: MamSimulator
) -> None:
    """The rules and FAQ explain freeleech and 2x upload every day: no event from them."""
    assert "site-wide freeleech" in mam_sim.pages["faq.php"]
    assert "2x upload" in mam_sim.pages["faq.php"]
    assert "2x upload event" in mam_sim.pages["rules.php"]
    site_events = async_capture_events(hass, EVENT_SITE_EVENT)

    await setup_entry(hass, config_entry)

    assert rules_version(hass).state == "1"  # the pages were read
    assert event_states(hass) == dict.fromkeys(EVENT_KEYS, STATE_OFF)
    assert site_events == []
    status = await get_status(hass)
    assert status["events"] == {"active_events": [], "current_impact": "none"}


# --- 6-8: failures and schedule -----------------------------------------------------------------


async def test_network_failure_keeps_rules_logs_once_and_retries_next_day(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """MAM unreachable at two daily runs: rules and events kept, one error logged; day 3 works."""
    news: NewsItem = ("Site-wide freeleech until 2026-03-20", "/f/t/86100/site-wide-fl")
    freezer.move_to(local(2026, 3, 10, 9, 0, 0))
    mam_sim.pages.update(default_pages(news=[news]))
    await setup_entry(hass, config_entry)
    assert rules_version(hass).state == "1"
    assert state_of(hass, "binary_sensor", "freeleech_event").state == STATE_ON
    checked = state_of(hass, "sensor", "rules_checked").state

    port = URL(mam_sim.base_url).port
    assert port is not None
    await mam_sim.stop()
    caplog.set_level(logging.DEBUG, logger="custom_components.mam_guard")
    caplog.clear()

    for day in (10, 11):
        await fire_at(hass, freezer, local(2026, 3, day, 12, 0, 0))
        assert not config_entry.runtime_data.rules.last_update_success
        assert rules_version(hass).state == "1"
        assert state_of(hass, "sensor", "rules_checked").state == checked
        freeleech = state_of(hass, "binary_sensor", "freeleech_event")
        assert freeleech.state == STATE_ON
        assert freeleech.attributes["description"] == news[0]
        for key in EVENT_KEYS:
            assert state_of(hass, "binary_sensor", key).state != STATE_UNAVAILABLE
    problems = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("custom_components.mam_guard")
        and r.levelno >= logging.WARNING
        and "account data" not in r.getMessage()  # the account poll fails too, on its own
    ]
    assert len(problems) == 1, problems
    assert problems[0].startswith(RULES_ERROR)

    assert await mam_sim.start(port=port) == f"http://127.0.0.1:{port}"
    requests = total_page_requests(mam_sim)
    await fire_at(hass, freezer, local(2026, 3, 12, 12, 0, 0))

    assert config_entry.runtime_data.rules.last_update_success
    assert total_page_requests(mam_sim) == requests + len(RULES_PAGES)
    assert rules_version(hass).state == "1"
    checked_now = state_of(hass, "sensor", "rules_checked").state
    assert dt_util.parse_datetime(checked_now) == local(2026, 3, 12, 12, 0, 0)
    assert state_of(hass, "binary_sensor", "freeleech_event").state == STATE_ON
    assert any("recovered" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("refresh_time", "due", "not_due"),
    [("12:00:00", (12, 0, 0), (6, 30, 0)), ("06:30:00", (6, 30, 0), (12, 0, 0))],
    ids=["default-noon", "option-0630"],
)
async def test_daily_refresh_runs_once_at_the_configured_time(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
    *,
    hass_storage: dict[str, Any],
    refresh_time: str,
    due: tuple[int, int, int],
    not_due: tuple[int, int, int],
) -> None:
    """One run a day at ``rules_refresh_time`` (local), not at every tick of that minute."""
    hour, minute, _ = due
    start = local(2026, 3, 10, hour, minute, 0) - timedelta(seconds=2)
    freezer.move_to(start)
    mark_checked(hass_storage, config_entry, start - timedelta(hours=1))
    await setup_entry(hass, config_entry, **{CONF_RULES_REFRESH_TIME: refresh_time})
    assert total_page_requests(mam_sim) == 0

    for second in range(6):
        await fire_at(hass, freezer, local(2026, 3, 10, hour, minute, second))
    await fire_at(hass, freezer, local(2026, 3, 10, hour, 59, 0))
    assert page_requests(mam_sim) == dict.fromkeys(RULES_PAGES, 1)

    other = local(2026, 3, 10, *not_due)  # the other time, before the next due run
    if other < start:
        other += timedelta(days=1)
    await fire_at(hass, freezer, other)
    assert total_page_requests(mam_sim) == len(RULES_PAGES)

    await fire_at(hass, freezer, local(2026, 3, 11, *due))
    await fire_at(hass, freezer, local(2026, 3, 11, hour, minute, 1))
    assert page_requests(mam_sim) == dict.fromkeys(RULES_PAGES, 2)


@pytest.mark.parametrize(
    ("age", "fetched"),
    [(timedelta(hours=23), False), (timedelta(hours=25), True)],
    ids=["fresh-23h", "stale-25h"],
)
async def test_startup_refresh_only_when_older_than_24h(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    *,
    hass_storage: dict[str, Any],
    age: timedelta,
    fetched: bool,
) -> None:
    """Startup catches up only when the last success is more than 24 h old."""
    last = dt_util.utcnow() - age
    mark_checked(hass_storage, config_entry, last)

    await setup_entry(hass, config_entry)

    if fetched:
        assert page_requests(mam_sim) == dict.fromkeys(RULES_PAGES, 1)
        assert rules_version(hass).state == "1"
        checked = dt_util.parse_datetime(state_of(hass, "sensor", "rules_checked").state)
        assert checked is not None
        assert checked > last
    else:
        assert page_requests(mam_sim) == {}
        checked = dt_util.parse_datetime(state_of(hass, "sensor", "rules_checked").state)
        assert checked is not None
        assert abs(checked - last) < timedelta(seconds=1)


# --- 9-11: what is fetched, and how -------------------------------------------------------------


async def test_rules_pages_subset_is_all_that_is_fetched(
    hass: HomeAssistant, config_entry: MockConfigEntry, mam_sim: MamSimulator
) -> None:
    """Only the selected pages are requested, stored and reported."""
    selected = ["rules.php", "faq.php"]

    await setup_entry(hass, config_entry, **{CONF_RULES_PAGES: selected})
    await refresh_rules(hass)

    assert page_requests(mam_sim) == dict.fromkeys(selected, 2)
    assert rules_version(hass).state == "1"
    rules = (await get_status(hass))["rules"]
    assert sorted(rules["rules_summary"]["pages"]) == sorted(selected)
    assert rules["rules_summary"]["selected_pages"] == selected


async def test_no_rules_pages_fetches_nothing(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """An empty selection: no request at startup, at the daily time or on the action."""
    freezer.move_to(local(2026, 3, 10, 11, 0, 0))

    await setup_entry(hass, config_entry, **{CONF_RULES_PAGES: []})
    await fire_at(hass, freezer, local(2026, 3, 10, 12, 0, 0))
    await refresh_rules(hass)

    assert mam_sim.requests["jsonLoad.php"] > 0  # the account is still polled
    assert page_requests(mam_sim) == {}
    assert rules_version(hass).state == "unknown"
    assert event_states(hass) == dict.fromkeys(EVENT_KEYS, STATE_OFF)


async def test_rate_limit_stops_the_run_keeps_a_partial_version_and_backs_off(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 429 on the 3rd page: no 4th request, v1 from 2 pages, no HTTP during the back-off."""
    assert RULES_PAGES[2] == "f/b/18"
    freezer.move_to(local(2026, 3, 10, 9, 0, 0))
    rate_limit_once(monkeypatch, mam_sim, "f/b/18")

    await setup_entry(hass, config_entry)

    assert page_requests(mam_sim) == {"rules.php": 1, "faq.php": 1, "f/b/18": 1}
    assert rules_version(hass).state == "1"
    rules = (await get_status(hass))["rules"]
    assert sorted(rules["rules_summary"]["pages"]) == ["faq.php", "rules.php"]

    sent = sum(mam_sim.requests.values())
    freezer.tick(timedelta(minutes=29))
    with pytest.raises(HomeAssistantError) as err:
        await refresh_rules(hass)
    assert err.value.translation_key == "rules_refresh_failed"
    assert sum(mam_sim.requests.values()) == sent  # refused without asking MAM
    assert rules_version(hass).state == "1"

    freezer.tick(timedelta(minutes=2))
    await refresh_rules(hass)

    assert page_requests(mam_sim) == {
        path: 2 if path in ("rules.php", "faq.php", "f/b/18") else 1 for path in RULES_PAGES
    }
    version = rules_version(hass)
    assert version.state == "2"
    assert list(version.attributes["changed_pages"]) == sorted(RULES_PAGES[2:])


async def test_rate_limited_run_keeps_events_of_pages_it_did_not_reach(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run cut short by a 429 records the changed page it got and keeps the known events."""
    note = (
        "2026-03-09",
        "<p>Double upload for everyone: uploads count double until 2026-03-15.</p>",
    )
    freezer.move_to(local(2026, 3, 10, 9, 0, 0))
    mam_sim.pages.update(default_pages(notes=[note]))  # announced on updateNotes.php only
    await setup_entry(hass, config_entry)
    assert state_of(hass, "binary_sensor", "multiplier_event").state == STATE_ON
    site_events = async_capture_events(hass, EVENT_SITE_EVENT)

    new_body = RULES_BODY.replace("72 hours", "96 hours")
    mam_sim.pages["rules.php"] = render_page("rules.php", new_body)
    rate_limit_once(monkeypatch, mam_sim, "f/b/18")
    await refresh_rules(hass)

    assert page_requests(mam_sim) == {
        path: 2 if path in RULES_PAGES[:3] else 1 for path in RULES_PAGES
    }
    version = rules_version(hass)
    assert version.state == "2"
    assert list(version.attributes["changed_pages"]) == ["rules.php"]
    assert state_of(hass, "binary_sensor", "multiplier_event").state == STATE_ON
    assert site_events == []  # updateNotes.php was not read: nothing ended
    rules = (await get_status(hass))["rules"]
    assert sorted(rules["rules_summary"]["pages"]) == sorted(RULES_PAGES)


async def test_pages_are_fetched_two_seconds_apart(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    hass_storage: dict[str, Any],
) -> None:
    """The real gap constant: a 2 s wait between consecutive pages, none before the first."""
    gap = const.RULES_PAGE_GAP_SECONDS  # the autouse ``no_page_gap`` patches only rules.py's copy
    assert gap == 2.0
    mark_checked(hass_storage, config_entry, dt_util.utcnow())
    await setup_entry(hass, config_entry)
    gaps: list[tuple[float, int]] = []

    async def sleep(delay: float, *_: Any) -> None:
        if delay:  # asyncio.sleep(0) is HA's own yielding, not a gap
            gaps.append((delay, total_page_requests(mam_sim)))

    with (
        patch("custom_components.mam_guard.rules.RULES_PAGE_GAP_SECONDS", gap),
        patch(
            "custom_components.mam_guard.rules.asyncio.sleep", new=AsyncMock(side_effect=sleep)
        ) as mocked,
    ):
        await hass.services.async_call(DOMAIN, SERVICE_REFRESH_RULES, {}, blocking=True)

    assert page_requests(mam_sim) == dict.fromkeys(RULES_PAGES, 1)
    # Six gaps for seven pages, gap n awaited after page n and before page n + 1.
    assert gaps == [(gap, done) for done in range(1, len(RULES_PAGES))]
    assert [c.args[0] for c in mocked.await_args_list if c.args[0]] == [2.0] * 6


# --- 12-13: button, action, status --------------------------------------------------------------


async def test_button_and_action_refresh_and_failure_raises(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    hass_storage: dict[str, Any],
) -> None:
    """Button and ``refresh_rules`` both fetch; a failed action raises a translated error."""
    mark_checked(hass_storage, config_entry, dt_util.utcnow())
    await setup_entry(hass, config_entry)
    assert page_requests(mam_sim) == {}

    await hass.services.async_call(
        "button",
        "press",
        {"entity_id": entity_id(hass, "button", "refresh_rules")},
        blocking=True,
    )
    await hass.async_block_till_done()
    assert page_requests(mam_sim) == dict.fromkeys(RULES_PAGES, 1)
    assert rules_version(hass).state == "1"

    await refresh_rules(hass)
    assert page_requests(mam_sim) == dict.fromkeys(RULES_PAGES, 2)

    mam_sim.fail_next(500, count=len(RULES_PAGES))
    with pytest.raises(HomeAssistantError) as err:
        await refresh_rules(hass)
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "rules_refresh_failed"
    assert page_requests(mam_sim) == dict.fromkeys(RULES_PAGES, 3)
    assert rules_version(hass).state == "1"


async def test_get_status_rules_and_events_have_the_seed_shapes(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """``rules`` and ``events`` carry exactly the seed's keys, with the active event in them."""
    now = dt_util.as_utc(local(2026, 3, 10, 9, 0, 0))
    freezer.move_to(now)
    mam_sim.pages.update(default_pages(news=[FREELEECH_NEWS]))
    await setup_entry(hass, config_entry)

    status = await get_status(hass)

    rules, events = status["rules"], status["events"]
    assert set(rules) == {
        "rule_version",
        "effective_date",
        "freeleech_active",
        "bonus_event_active",
        "multiplier_active",
        "event_details",
        "rules_summary",
        "last_updated",
    }
    end = dt_util.as_utc(local(2026, 3, 12, 23, 59, 59))
    assert rules["rule_version"] == 1
    assert dt_util.parse_datetime(rules["effective_date"]) == now
    assert dt_util.parse_datetime(rules["last_updated"]) == now
    assert (rules["freeleech_active"], rules["bonus_event_active"], rules["multiplier_active"]) == (
        True,
        False,
        False,
    )
    assert set(rules["event_details"]) == {"freeleech"}
    assert rules["event_details"]["freeleech"]["description"] == FREELEECH_NEWS[0]
    assert sorted(rules["rules_summary"]["pages"]) == sorted(RULES_PAGES)
    assert set(events) == {"active_events", "current_impact"}
    [active] = events["active_events"]
    assert set(active) == {"type", "description", "end_date"}
    assert active["type"] == "freeleech"
    assert active["description"] == FREELEECH_NEWS[0]
    assert dt_util.parse_datetime(active["end_date"]) == end
    assert events["current_impact"] == "increase_download_rate"


# --- 14: database lifecycle ---------------------------------------------------------------------


async def test_unload_closes_database_and_removal_deletes_rows(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    """Unload closes SQLite (reopening on the next setup works); removal deletes the rows.

    It also deletes what the entry remembered about announcements (``.storage``).
    """
    freezer.move_to(local(2026, 3, 10, 9, 0, 0))
    mam_sim.pages.update(default_pages(news=[FREELEECH_NEWS]))
    await setup_entry(hass, config_entry)
    entry_id = config_entry.entry_id
    db = config_entry.runtime_data.rules.db
    db_path = hass.config.path(SQLITE_FILENAME)
    other = "some-other-entry"

    def add_other_entry() -> None:
        store = RulesStore(db_path)
        store.open()
        try:
            page = PageContent("rules.php", "text", "hash")
            store.record_refresh(other, {"rules.php": page}, [], dt_util.utcnow())
        finally:
            store.close()

    await hass.async_add_executor_job(add_other_entry)
    assert await hass.async_add_executor_job(count_rows, db_path, entry_id) == {
        "rule_versions": 1,
        "event_status": 1,
    }

    assert await hass.config_entries.async_unload(entry_id)
    await hass.async_block_till_done()
    with pytest.raises(RuntimeError, match="not open"):
        await hass.async_add_executor_job(db.latest_version, entry_id)

    requests = total_page_requests(mam_sim)
    await setup_entry(hass, config_entry)
    assert total_page_requests(mam_sim) == requests  # checked < 24 h ago: cache only
    assert rules_version(hass).state == "1"
    assert state_of(hass, "binary_sensor", "freeleech_event").state == STATE_ON

    memory = f"{DOMAIN}.{entry_id}.announcements"
    assert memory in hass_storage
    await hass.config_entries.async_remove(entry_id)
    await hass.async_block_till_done()
    assert memory not in hass_storage

    assert await hass.async_add_executor_job(count_rows, db_path, entry_id) == {
        "rule_versions": 0,
        "event_status": 0,
    }
    assert await hass.async_add_executor_job(count_rows, db_path, other) == {
        "rule_versions": 1,
        "event_status": 0,
    }


async def test_unload_during_a_refresh_waits_for_it_and_stops_fetching(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    *,
    hass_storage: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unload (e.g. an options reload) while pages are fetched: no more pages, no DB error."""
    mark_checked(hass_storage, config_entry, dt_util.utcnow())
    await setup_entry(hass, config_entry)
    client = config_entry.runtime_data.client
    fetch_page: Callable[[str], Awaitable[str]] = client.async_get_page
    reached, release = asyncio.Event(), asyncio.Event()

    async def held_page(path: str) -> str:
        if path == RULES_PAGES[1]:
            reached.set()
            await release.wait()
        return await fetch_page(path)

    monkeypatch.setattr(client, "async_get_page", held_page)
    press = hass.async_create_task(refresh_rules(hass))
    await reached.wait()
    version_id = entity_id(hass, "sensor", "rules_version")
    unload = hass.async_create_task(hass.config_entries.async_unload(config_entry.entry_id))
    # The unload closes the rules coordinator right after the platforms, in the same step.
    for _ in range(1000):
        if unload.done() or hass.states.get(version_id) is None:
            break
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not unload.done()  # it waits for the refresh to let go of the database
    release.set()
    assert await unload
    await asyncio.gather(press, return_exceptions=True)
    await hass.async_block_till_done()

    assert page_requests(mam_sim) == {"rules.php": 1, "faq.php": 1}
    assert "Unexpected error" not in caplog.text
    assert "not open" not in caplog.text


# --- 15-18: upcoming events, first sightings, the real site's markup -----------------------------


def event_rows(db_path: str, entry_id: str) -> list[tuple[str, str, str | None, int]]:
    """(event_type, start_date, end_date, active) of the entry's events (run in the executor)."""
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(
            "SELECT event_type, start_date, end_date, active FROM event_status"
            " WHERE entry_id = ? ORDER BY id",
            (entry_id,),
        ).fetchall()
    finally:
        conn.close()


def utc_text(moment: datetime) -> str:
    """How the rules database writes a moment."""
    return dt_util.as_utc(moment).replace(tzinfo=None).isoformat() + "Z"


async def test_upcoming_event_turns_on_at_its_start_and_off_at_its_end(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A future start (SPEC §5): off with ``start_date`` until then, on from it, off at the end.

    No page is fetched for it: a timer starts the event, records it and reports it.
    """
    news: NewsItem = (
        "Site-wide freeleech starts 2026-03-11 06:00 and ends 2026-03-11 11:00!",
        "/f/t/86200/p/1",
    )
    freezer.move_to(local(2026, 3, 10, 12, 30, 0))
    mam_sim.pages.update(default_pages(news=[news]))
    site_events = async_capture_events(hass, EVENT_SITE_EVENT)

    await setup_entry(hass, config_entry)

    start, end = local(2026, 3, 11, 6, 0, 0), local(2026, 3, 11, 11, 0, 0)  # before the refresh
    state = state_of(hass, "binary_sensor", "freeleech_event")
    assert state.state == STATE_OFF
    assert dt_util.parse_datetime(state.attributes["start_date"]) == start
    assert dt_util.parse_datetime(state.attributes["end_date"]) == end
    assert state.attributes["description"] == news[0]
    assert site_events == []
    assert (await get_status(hass))["events"]["active_events"] == []
    db_path = hass.config.path(SQLITE_FILENAME)
    assert await hass.async_add_executor_job(event_rows, db_path, config_entry.entry_id) == []
    requests = total_page_requests(mam_sim)

    await fire_at(hass, freezer, start - timedelta(seconds=5))
    assert state_of(hass, "binary_sensor", "freeleech_event").state == STATE_OFF
    await fire_at(hass, freezer, start + timedelta(seconds=1))

    state = state_of(hass, "binary_sensor", "freeleech_event")
    assert state.state == STATE_ON
    assert dt_util.parse_datetime(state.attributes["start_date"]) == start
    assert dt_util.parse_datetime(state.attributes["end_date"]) == end
    assert [(e.data["event_type"], e.data["active"]) for e in site_events] == [("freeleech", True)]
    assert await hass.async_add_executor_job(event_rows, db_path, config_entry.entry_id) == [
        ("freeleech", utc_text(start), utc_text(end), 1)
    ]
    rules = (await get_status(hass))["rules"]
    assert rules["freeleech_active"] is True
    assert dt_util.parse_datetime(rules["event_details"]["freeleech"]["start_date"]) == start
    assert total_page_requests(mam_sim) == requests

    await fire_at(hass, freezer, end + timedelta(seconds=1))
    state = state_of(hass, "binary_sensor", "freeleech_event")
    assert state.state == STATE_OFF
    assert state.attributes["start_date"] is None
    assert [(e.data["event_type"], e.data["active"]) for e in site_events] == [
        ("freeleech", True),
        ("freeleech", False),
    ]


async def test_upcoming_event_survives_a_restart(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Reloaded before its start (no refresh: the last one is recent), it still starts on time."""
    news: NewsItem = ("Double upload starts Saturday 08:00, until Sunday 20:00", "/f/t/2/p/1")
    freezer.move_to(local(2026, 3, 11, 12, 30, 0))  # a Wednesday
    mam_sim.pages.update(default_pages(news=[news]))
    await setup_entry(hass, config_entry)
    start = local(2026, 3, 14, 8, 0, 0)
    state = state_of(hass, "binary_sensor", "multiplier_event")
    assert (state.state, dt_util.parse_datetime(state.attributes["start_date"])) == (
        STATE_OFF,
        start,
    )

    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
    freezer.move_to(local(2026, 3, 11, 18, 0, 0))
    requests = total_page_requests(mam_sim)
    await setup_entry(hass, config_entry)
    assert total_page_requests(mam_sim) == requests  # checked < 24 h ago: nothing fetched
    state = state_of(hass, "binary_sensor", "multiplier_event")
    assert (state.state, dt_util.parse_datetime(state.attributes["start_date"])) == (
        STATE_OFF,
        start,
    )

    await fire_at(hass, freezer, start + timedelta(seconds=1))
    assert state_of(hass, "binary_sensor", "multiplier_event").state == STATE_ON


async def test_relative_dates_count_from_the_first_sighting(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """ "For the next 48 hours" read again at the next daily refresh does not move the end."""
    news: NewsItem = ("Freeleech on everything for the next 48 hours!", "/f/t/3/p/1")
    first = local(2026, 3, 10, 12, 30, 0)
    freezer.move_to(first)
    mam_sim.pages.update(default_pages(news=[news]))
    site_events = async_capture_events(hass, EVENT_SITE_EVENT)
    await setup_entry(hass, config_entry)
    end = first + timedelta(hours=48)

    await fire_at(hass, freezer, local(2026, 3, 11, 12, 0, 0))  # the daily refresh
    state = state_of(hass, "binary_sensor", "freeleech_event")
    assert state.state == STATE_ON
    assert dt_util.parse_datetime(state.attributes["end_date"]) == end

    await fire_at(hass, freezer, end + timedelta(seconds=1))
    assert state_of(hass, "binary_sensor", "freeleech_event").state == STATE_OFF
    await fire_at(hass, freezer, local(2026, 3, 13, 12, 0, 0))  # the item is still shown
    assert state_of(hass, "binary_sensor", "freeleech_event").state == STATE_OFF
    assert [(e.data["event_type"], e.data["active"]) for e in site_events] == [
        ("freeleech", True),
        ("freeleech", False),
    ]


@pytest.mark.parametrize("ticker", ["list", "rendered", "simple"])
async def test_every_ticker_form_gives_the_event_and_notices_never_do(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
    ticker: TickerForm,
) -> None:
    """The ticker as served, as rendered with and without ids; notices and counters ignored."""
    freezer.move_to(local(2026, 3, 10, 9, 0, 0))
    notices = [
        TRACKER_ERRORS_NOTICE,
        '<a href="/messages.php" class="tmnb" id="pmMess">New message: 2x bonus points?</a>',
    ]
    mam_sim.pages.update(
        default_pages(news=[FREELEECH_NEWS], ticker=ticker, notices=notices, bonus=99_999)
    )
    await setup_entry(hass, config_entry)
    assert event_states(hass) == {
        "freeleech_event": STATE_ON,
        "bonus_event": STATE_OFF,
        "multiplier_event": STATE_OFF,
    }


@pytest.mark.parametrize("layout", ["headings", "table", "inline"])
async def test_update_notes_event_on_a_page_shaped_like_the_real_site(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
    layout: NotesLayout,
) -> None:
    """Dated entries in the site's layout; only the current announcement is an event."""
    freezer.move_to(local(2026, 3, 10, 9, 0, 0))
    notes = [
        ("2026-03-09", "<p>2x bonus points for everyone until 2026-03-12.</p>"),
        ("2026-02-01", "<p>Bonus points now show on the profile page.</p>"),
        ("2025-12-20", "<p>Freeleech weekend! All torrents are freeleech until Dec 22.</p>"),
    ]
    mam_sim.pages.update(default_pages(news=[]))
    mam_sim.pages["updateNotes.php"] = render_page(
        "updateNotes.php", update_notes_body(notes, layout=layout), ticker="rendered"
    )
    await setup_entry(hass, config_entry)
    assert event_states(hass) == {
        "freeleech_event": STATE_OFF,
        "bonus_event": STATE_ON,
        "multiplier_event": STATE_OFF,
    }
    state = state_of(hass, "binary_sensor", "bonus_event")
    assert dt_util.parse_datetime(state.attributes["end_date"]) == local(2026, 3, 12, 23, 59, 59)
    assert state.attributes["source_url"] == f"{mam_sim.base_url}/updateNotes.php"


# --- 19-: upcoming events that cannot be recorded, memory, database trouble, races ----------------


def delete_database(db_path: str) -> None:
    """Remove ``mam_guard.db`` and its journal files, as a user resetting the history does."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(db_path + suffix)


# A safety net, not a measurement: a start timer that fires again and again never lets HA idle.
@pytest.mark.timeout(120)
async def test_upcoming_event_without_a_rule_version_turns_on_once_and_off_at_its_end(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The database was deleted while HA was stopped: its history is gone, no rule version.

    The remembered upcoming event still turns on at its start and off at its end by itself,
    but it cannot be recorded (that needs a rule version): the start timer tries once, it
    does not fire again and again until the next refresh.
    """
    news: NewsItem = (
        "Site-wide freeleech starts 2026-03-11 20:00, ends 2026-03-12 08:00!",
        "/f/t/4/p/1",
    )
    freezer.move_to(local(2026, 3, 11, 9, 0, 0))
    mam_sim.pages.update(default_pages(news=[news]))
    await setup_entry(hass, config_entry)
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
    db_path = hass.config.path(SQLITE_FILENAME)
    await hass.async_add_executor_job(delete_database, db_path)

    freezer.move_to(local(2026, 3, 11, 18, 0, 0))
    requests = total_page_requests(mam_sim)
    await setup_entry(hass, config_entry)
    assert total_page_requests(mam_sim) == requests  # checked < 24 h ago: nothing fetched
    start, end = local(2026, 3, 11, 20, 0, 0), local(2026, 3, 12, 8, 0, 0)
    state = state_of(hass, "binary_sensor", "freeleech_event")
    assert (state.state, dt_util.parse_datetime(state.attributes["start_date"])) == (
        STATE_OFF,
        start,
    )
    rules = config_entry.runtime_data.rules
    updates: list[None] = []
    rules.async_add_listener(lambda: updates.append(None))
    site_events = async_capture_events(hass, EVENT_SITE_EVENT)

    await fire_at(hass, freezer, start + timedelta(seconds=1))

    assert len(updates) == 1
    state = state_of(hass, "binary_sensor", "freeleech_event")
    assert state.state == STATE_ON
    assert dt_util.parse_datetime(state.attributes["start_date"]) == start
    assert dt_util.parse_datetime(state.attributes["end_date"]) == end
    assert site_events == []  # nothing recorded, nothing reported
    assert await hass.async_add_executor_job(event_rows, db_path, config_entry.entry_id) == []

    await fire_at(hass, freezer, end + timedelta(seconds=1))
    assert state_of(hass, "binary_sensor", "freeleech_event").state == STATE_OFF
    assert len(updates) == 1


def drop_events_table(db_path: str) -> None:
    """Lose the events table behind the running entry's back (another process, a bad restore)."""
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("DROP TABLE event_status")
        conn.commit()
    finally:
        conn.close()


def warnings_about(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    """The integration's warnings (and worse) that contain ``text``."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("custom_components.mam_guard")
        and r.levelno >= logging.WARNING
        and text in r.getMessage()
    ]


@pytest.mark.timeout(120)  # a safety net, as above
async def test_database_going_bad_under_a_running_entry(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The events table disappears while the entry runs: every step logs, nothing crashes.

    The refresh fails with a translated error, the end and start timers log a warning, the
    cached rules are no longer shown, and the announced events still turn off and on on time.
    """
    ending: NewsItem = ("Site-wide freeleech until 2026-03-10 08:00!", "/f/t/5/p/1")
    starting: NewsItem = (
        "Double upload starts 2026-03-10 09:00, ends 2026-03-10 11:00!",
        "/f/t/6/p/1",
    )
    freezer.move_to(local(2026, 3, 10, 6, 0, 0))
    mam_sim.pages.update(default_pages(news=[ending, starting]))
    await setup_entry(hass, config_entry)
    assert state_of(hass, "binary_sensor", "freeleech_event").state == STATE_ON
    assert rules_version(hass).state == "1"
    db_path = hass.config.path(SQLITE_FILENAME)
    await hass.async_add_executor_job(drop_events_table, db_path)
    site_events = async_capture_events(hass, EVENT_SITE_EVENT)

    with pytest.raises(HomeAssistantError) as err:
        await refresh_rules(hass)
    assert err.value.translation_key == "rules_refresh_failed"
    assert err.value.translation_placeholders is not None
    assert "the rules database failed" in err.value.translation_placeholders["error"]
    assert rules_version(hass).state == "1"  # the failed run keeps what was shown

    await fire_at(hass, freezer, local(2026, 3, 10, 8, 0, 1))
    assert state_of(hass, "binary_sensor", "freeleech_event").state == STATE_OFF
    assert len(warnings_about(caplog, "Ending site events")) == 1

    await fire_at(hass, freezer, local(2026, 3, 10, 9, 0, 1))
    multiplier = state_of(hass, "binary_sensor", "multiplier_event")
    assert multiplier.state == STATE_ON  # shown from the announcement, not recorded
    assert dt_util.parse_datetime(multiplier.attributes["end_date"]) == local(2026, 3, 10, 11, 0, 0)
    assert len(warnings_about(caplog, "Starting announced site events")) == 1
    assert warnings_about(caplog, "Reading the rules database")
    assert rules_version(hass).state == "unknown"  # the file went bad: nothing cached is shown
    assert site_events == []
    assert config_entry.state is ConfigEntryState.LOADED

    await fire_at(hass, freezer, local(2026, 3, 10, 11, 0, 1))
    assert state_of(hass, "binary_sensor", "multiplier_event").state == STATE_OFF


def memory_key(entry: MockConfigEntry) -> str:
    """The ``.storage`` key of what the entry remembers about announcements."""
    return f"{DOMAIN}.{entry.entry_id}.announcements"


async def test_announcement_memory_of_a_newer_version_is_forgotten(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Written by a later MAM Guard (then downgraded): setup works and the file starts afresh."""
    now = local(2026, 3, 10, 9, 0, 0)
    freezer.move_to(now)
    news: NewsItem = ("Freeleech on everything for the next 48 hours!", "/f/t/3/p/1")
    mam_sim.pages.update(default_pages(news=[news]))
    hass_storage[memory_key(config_entry)] = {
        "version": 2,
        "minor_version": 1,
        "key": memory_key(config_entry),
        "data": {"sightings": {news[0]: "2026-03-01T00:00:00+00:00"}},
    }

    await setup_entry(hass, config_entry)

    assert len(warnings_about(caplog, "Forgetting unreadable announcement memory")) == 1
    state = state_of(hass, "binary_sensor", "freeleech_event")
    assert state.state == STATE_ON
    assert dt_util.parse_datetime(state.attributes["end_date"]) == now + timedelta(hours=48)
    memory = hass_storage[memory_key(config_entry)]
    assert memory["version"] == 1
    assert memory["data"] == {
        "first_seen": {news[0]: dt_util.as_utc(now).isoformat()},
        "upcoming": [],
    }


async def test_unreadable_memory_entries_are_skipped_the_rest_is_used(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    """A hand-edited memory file: a bad sighting or upcoming event is dropped, not the file.

    The good sighting still dates its item's "next 48 hours"; the bad one counts from now.
    Only the upcoming event of a known type with a readable start is shown.
    """
    now = local(2026, 3, 10, 9, 0, 0)
    seen = now - timedelta(hours=30)
    freezer.move_to(now)
    freeleech: NewsItem = ("Freeleech on everything for the next 48 hours!", "/f/t/3/p/1")
    bonus: NewsItem = ("2x bonus points for everyone for the next 24 hours!", "/f/t/7/p/1")
    mam_sim.pages.update(default_pages(news=[freeleech, bonus]))
    mark_checked(hass_storage, config_entry, now - timedelta(hours=1))
    upcoming_start = local(2026, 3, 12, 8, 0, 0)
    hass_storage[memory_key(config_entry)] = {
        "version": 1,
        "minor_version": 1,
        "key": memory_key(config_entry),
        "data": {
            "first_seen": {freeleech[0]: seen.isoformat(), bonus[0]: "yesterday morning"},
            "upcoming": [
                {
                    "event_type": "multiplier",
                    "description": "Double upload starts Thursday 08:00",
                    "start": upcoming_start.isoformat(),
                    "end": None,
                    "source_url": None,
                },
                {"event_type": "giveaway", "description": "Wedge giveaway", "start": "2026-03-12"},
                {"event_type": "bonus", "description": "2x BP soon", "start": "soon"},
            ],
        },
    }

    await setup_entry(hass, config_entry)

    assert total_page_requests(mam_sim) == 0  # checked an hour ago: the memory is what is shown
    multiplier = state_of(hass, "binary_sensor", "multiplier_event")
    assert multiplier.state == STATE_OFF
    assert dt_util.parse_datetime(multiplier.attributes["start_date"]) == upcoming_start
    assert state_of(hass, "binary_sensor", "bonus_event").attributes["start_date"] is None
    assert [e.event_type for e in config_entry.runtime_data.rules.data.upcoming] == ["multiplier"]

    await refresh_rules(hass)

    freeleech_state = state_of(hass, "binary_sensor", "freeleech_event")
    assert freeleech_state.state == STATE_ON
    end = dt_util.parse_datetime(freeleech_state.attributes["end_date"])
    assert end == seen + timedelta(hours=48)  # from the remembered first sighting
    bonus_state = state_of(hass, "binary_sensor", "bonus_event")
    assert bonus_state.state == STATE_ON
    end = dt_util.parse_datetime(bonus_state.attributes["end_date"])
    assert end == now + timedelta(hours=24)  # its sighting was unreadable: seen now
    first_seen = hass_storage[memory_key(config_entry)]["data"]["first_seen"]
    assert dt_util.parse_datetime(first_seen[freeleech[0]]) == seen
    assert dt_util.parse_datetime(first_seen[bonus[0]]) == now


def write_newer_schema_database(db_path: str) -> None:
    """A database of a later mam_guard (the user downgraded): it must not be touched."""
    store = RulesStore(db_path)
    store.open()
    store.close()
    conn = sqlite3.connect(db_path)
    try:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        conn.commit()
    finally:
        conn.close()


async def test_update_entity_with_an_unusable_database_fetches_no_page(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
) -> None:
    """``homeassistant.update_entity`` on a site-event sensor while the rules feature is off.

    It asks the rules coordinator for a refresh: the refresh fails with the database error
    and MAM is not asked for pages it could not store.
    """
    assert await async_setup_component(hass, "homeassistant", {})
    await hass.async_add_executor_job(
        write_newer_schema_database, hass.config.path(SQLITE_FILENAME)
    )
    await setup_entry(hass, config_entry)
    rules = config_entry.runtime_data.rules

    await hass.services.async_call(
        "homeassistant",
        "update_entity",
        {"entity_id": entity_id(hass, "binary_sensor", "freeleech_event")},
        blocking=True,
    )
    await hass.async_block_till_done()

    assert page_requests(mam_sim) == {}
    assert not rules.last_update_success
    assert isinstance(rules.last_exception, UpdateFailed)
    assert rules.last_exception.translation_key == "rules_database_unusable"
    assert state_of(hass, "binary_sensor", "freeleech_event").state == STATE_OFF


async def test_expired_session_stops_the_refresh_and_asks_to_sign_in_again(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    hass_storage: dict[str, Any],
) -> None:
    """MAM refuses the cookie on the first rules page: no other page, a reauth flow starts."""
    mark_checked(hass_storage, config_entry, dt_util.utcnow())
    await setup_entry(hass, config_entry)
    mam_sim.invalidate_all_cookies()

    with pytest.raises(HomeAssistantError) as err:
        await refresh_rules(hass)
    await hass.async_block_till_done()

    assert err.value.translation_key == "rules_refresh_failed"
    assert page_requests(mam_sim) == {RULES_PAGES[0]: 1}
    flows = config_entry.async_get_active_flows(hass, {SOURCE_REAUTH})
    assert [flow["context"]["entry_id"] for flow in flows] == [config_entry.entry_id]


async def test_start_during_a_refresh_is_recorded_once(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The start timer fires while a refresh reads the pages: the refresh records the event
    (it has started by then) and the timer, waiting for it, does not record or report it again.
    """
    news: NewsItem = (
        "Site-wide freeleech starts 2026-03-10 10:00, ends 2026-03-10 11:00!",
        "/f/t/8/p/1",
    )
    freezer.move_to(local(2026, 3, 10, 9, 0, 0))
    mam_sim.pages.update(default_pages(news=[news]))
    await setup_entry(hass, config_entry)
    assert state_of(hass, "binary_sensor", "freeleech_event").state == STATE_OFF
    site_events = async_capture_events(hass, EVENT_SITE_EVENT)
    client = config_entry.runtime_data.client
    fetch_page: Callable[[str], Awaitable[str]] = client.async_get_page
    reached, release = asyncio.Event(), asyncio.Event()

    async def held_page(path: str) -> str:
        if path == RULES_PAGES[1]:
            reached.set()
            await release.wait()
        return await fetch_page(path)

    monkeypatch.setattr(client, "async_get_page", held_page)
    press = hass.async_create_task(refresh_rules(hass))
    await reached.wait()
    started = local(2026, 3, 10, 10, 0, 1)
    freezer.move_to(started)
    async_fire_time_changed(hass, started)
    for _ in range(20):
        await asyncio.sleep(0)
    release.set()
    await press
    await hass.async_block_till_done(wait_background_tasks=True)

    assert state_of(hass, "binary_sensor", "freeleech_event").state == STATE_ON
    assert [(e.data["event_type"], e.data["active"]) for e in site_events] == [("freeleech", True)]
    rows = await hass.async_add_executor_job(
        event_rows, hass.config.path(SQLITE_FILENAME), config_entry.entry_id
    )
    assert [(row[0], row[3]) for row in rows] == [("freeleech", 1)]
    assert config_entry.runtime_data.rules.data.upcoming == ()


async def test_unload_while_timers_wait_for_a_refresh_writes_nothing(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An event ends and another starts during a refresh, and the entry is unloaded meanwhile.

    The timers waiting for the refresh see the unload and let the database go untouched: the
    ended event is not marked ended, the started one not recorded, nothing is reported.
    """
    ending: NewsItem = ("Site-wide freeleech until 2026-03-10 10:00!", "/f/t/5/p/1")
    starting: NewsItem = (
        "Double upload starts 2026-03-10 10:00, ends 2026-03-10 11:00!",
        "/f/t/6/p/1",
    )
    freezer.move_to(local(2026, 3, 10, 9, 0, 0))
    mam_sim.pages.update(default_pages(news=[ending, starting]))
    await setup_entry(hass, config_entry)
    db_path = hass.config.path(SQLITE_FILENAME)
    before = await hass.async_add_executor_job(event_rows, db_path, config_entry.entry_id)
    assert [(row[0], row[3]) for row in before] == [("freeleech", 1)]
    site_events = async_capture_events(hass, EVENT_SITE_EVENT)
    client = config_entry.runtime_data.client
    fetch_page: Callable[[str], Awaitable[str]] = client.async_get_page
    reached, release = asyncio.Event(), asyncio.Event()

    async def held_page(path: str) -> str:
        if path == RULES_PAGES[1]:
            reached.set()
            await release.wait()
        return await fetch_page(path)

    monkeypatch.setattr(client, "async_get_page", held_page)
    press = hass.async_create_task(refresh_rules(hass))
    await reached.wait()
    moment = local(2026, 3, 10, 10, 0, 1)
    freezer.move_to(moment)
    async_fire_time_changed(hass, moment)  # the end and the start timers: both wait
    for _ in range(20):
        await asyncio.sleep(0)
    version_id = entity_id(hass, "sensor", "rules_version")
    unload = hass.async_create_task(hass.config_entries.async_unload(config_entry.entry_id))
    for _ in range(1000):
        if unload.done() or hass.states.get(version_id) is None:
            break
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not unload.done()
    release.set()
    assert await unload
    await asyncio.gather(press, return_exceptions=True)
    await hass.async_block_till_done()

    assert site_events == []
    assert await hass.async_add_executor_job(event_rows, db_path, config_entry.entry_id) == before
    assert "Unexpected error" not in caplog.text
    assert "not open" not in caplog.text


async def test_diagnostics_name_event_types_not_announcement_texts(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The rules part of the diagnostics: versions, types and flags, no announcement text."""
    now = local(2026, 3, 10, 9, 0, 0)
    freezer.move_to(now)
    upcoming: NewsItem = ("Double upload starts 2026-03-12 08:00!", "/f/t/9/p/1")
    mam_sim.pages.update(default_pages(news=[FREELEECH_NEWS, upcoming]))
    await setup_entry(hass, config_entry)

    diagnostics = await async_get_config_entry_diagnostics(hass, config_entry)

    assert diagnostics["rules"] == {
        "rule_version": 1,
        "changed_pages": sorted(RULES_PAGES),
        "checked": dt_util.as_utc(now).isoformat(),
        "events": ["freeleech"],
        "upcoming": ["multiplier"],
        "selected_pages": list(RULES_PAGES),
        "last_update_success": True,
        "database_problem": None,
    }
