"""Daily refresh of MAM's rules pages, rule versions in SQLite, and site events (SPEC §5).

Requests: only the pages chosen in the ``rules_pages`` option (default all 7), one at a time and
``RULES_PAGE_GAP_SECONDS`` apart, with the session cookie (never a password login); a 429 stops the
run. Runs once a day at ``rules_refresh_time`` (hour, minute *and* second set, so exactly once),
at startup when the last success is older than 24 h, and on the button / ``refresh_rules`` action.
A failed run keeps the previous rules and events and is retried at the next scheduled time.

Site events (SPEC §5) are read from the announcements of every fetched page (the header news
ticker and the dated update notes; see ``lib/announcements.py`` for what counts). An event whose
announced start is still ahead is *upcoming*: it is kept apart (the database records an event
when it starts), shown by the binary sensor's ``start_date`` while off, and started by a timer
at its start, which records it then and fires ``mam_guard_site_event``. Upcoming events and when
each ticker item was first seen (relative dates like "tomorrow" or "for 48 hours" count from
then, not from every later refresh) survive restarts, in
``.storage/mam_guard.<entry_id>.announcements``.

The SQLite file is shared by every entry, through one store per process (``acquire_store``). A
file that cannot be used never fails the entry: the account, the emergency and every action keep
working, only the rules feature is off, and a repair issue says what is wrong with the file. A
corrupt file is moved aside and replaced by a fresh one (the issue says where it went); a file of
a newer schema (after a downgrade) is never touched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, tzinfo
from functools import partial
import os
import sqlite3
from typing import TYPE_CHECKING, Any, TypedDict, override

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_point_in_utc_time, async_track_time_change
from homeassistant.helpers.storage import Store
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .const import (
    CONF_MAM_BASE_URL,
    CONF_RULES_PAGES,
    CONF_RULES_REFRESH_TIME,
    DOMAIN,
    EVENT_RULES_CHANGED,
    EVENT_SITE_EVENT,
    ISSUE_RULES_DB_CANNOT_OPEN,
    ISSUE_RULES_DB_CORRUPT,
    ISSUE_RULES_DB_NEWER,
    LOGGER,
    RULES_MAX_AGE,
    RULES_PAGE_GAP_SECONDS,
    SQLITE_FILENAME,
)
from .data import entry_options
from .lib.errors import MamAuthError, MamError, MamRateLimitedError
from .lib.mam import MamClient
from .lib.pages import PageContent, SiteEvent, classify, read_page
from .lib.rules_store import (
    SCHEMA_VERSION,
    EventRow,
    RefreshResult,
    RulesDatabaseError,
    RulesStore,
    RuleVersion,
    acquire_store,
    release_store,
)
from .store import MamGuardStore

if TYPE_CHECKING:
    from .data import MamGuardConfigEntry

# What an active event means for downloading (the seed's ``current_impact``).
IMPACTS = {
    "freeleech": "increase_download_rate",  # downloads cost no ratio
    "multiplier": "increase_seeding",  # uploads count more
    "bonus": "increase_seeding",  # seeding earns more points
}


@dataclass(frozen=True, slots=True)
class SiteEventState:
    """An announced site event as the entities and the status response show it."""

    event_type: str
    description: str
    start: datetime
    end: datetime | None
    source_url: str | None


@dataclass(frozen=True, slots=True)
class RulesData:
    """The newest stored rule version, its events and the last successful refresh.

    ``events`` are the recorded (started) events still announced; ``upcoming`` the announced
    events whose start was still ahead at the last refresh (started ones leave it).
    """

    version: int | None
    effective_date: datetime | None
    changed_pages: tuple[str, ...]
    page_hashes: dict[str, str]
    checked: datetime | None
    events: tuple[SiteEventState, ...]
    upcoming: tuple[SiteEventState, ...] = ()


class _UpcomingJson(TypedDict):
    event_type: str
    description: str
    start: str
    end: str | None
    source_url: str | None


class _MemoryJson(TypedDict, total=False):
    """``.storage/mam_guard.<entry_id>.announcements`` (version 1)."""

    first_seen: dict[str, str]  # ticker item text -> when first seen (ISO)
    upcoming: list[_UpcomingJson]


MEMORY_VERSION = 1


def _memory_key(entry_id: str) -> str:
    return f"{DOMAIN}.{entry_id}.announcements"


def _parse_page(
    path: str,
    html: str,
    *,
    base_url: str,
    now: datetime,
    tz: tzinfo,
    first_seen: Mapping[str, datetime],
) -> tuple[PageContent, list[SiteEvent], list[str]]:
    """Main content, announced site events and ticker items of one page (in the executor).

    A ticker item's relative dates count from when it was first seen (``first_seen``), else
    from ``now``; an update note's from its date.
    """
    page, announcements = read_page(path, html, base_url)
    events = [
        event
        for announcement in announcements
        for event in classify(announcement, now=now, tz=tz, seen=first_seen.get(announcement.text))
    ]
    ticker = [a.text for a in announcements if a.source == "news_ticker"]
    return page, events, ticker


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _event_state(row: EventRow) -> SiteEventState:
    return SiteEventState(
        row.event_type, row.description, row.start_date, row.end_date, row.source_url
    )


def _site_event(state: SiteEventState) -> SiteEvent:
    return SiteEvent(
        state.event_type,  # type: ignore[arg-type]  # the store only holds the three types
        state.description,
        state.end,
        state.source_url,
        state.start,
    )


def _rules_data(
    version: RuleVersion | None,
    events: list[EventRow],
    checked: datetime | None,
    upcoming: tuple[SiteEventState, ...] = (),
) -> RulesData:
    return RulesData(
        version=version.rule_version if version else None,
        effective_date=version.effective_date if version else None,
        changed_pages=version.changed_pages if version else (),
        page_hashes={p: c.content_hash for p, c in version.pages.items()} if version else {},
        checked=checked,
        events=tuple(_event_state(row) for row in events),
        upcoming=upcoming,
    )


def _upcoming_states(events: list[SiteEvent], now: datetime) -> tuple[SiteEventState, ...]:
    """Announced events whose start is ahead, one per (type, description), soonest first."""
    found: dict[tuple[str, str], SiteEventState] = {}
    for event in events:
        if event.start is not None and event.start > now:
            found.setdefault(
                (event.event_type, event.description),
                SiteEventState(
                    event.event_type, event.description, event.start, event.end, event.source_url
                ),
            )
    return tuple(sorted(found.values(), key=lambda e: e.start))


class RulesCoordinator(DataUpdateCoordinator[RulesData]):
    """No polling interval: a daily timer and explicit requests drive it."""

    config_entry: MamGuardConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: MamGuardConfigEntry,
        client: MamClient,
        store: MamGuardStore,
    ) -> None:
        """Bind the MAM client (shared with the account poll: one request in flight) and storage."""
        super().__init__(
            hass, LOGGER, config_entry=entry, name=f"{DOMAIN} rules", update_interval=None
        )
        self.client = client
        self.store = store
        self.db_path = hass.config.path(SQLITE_FILENAME)
        self._db: RulesStore | None = None  # the shared store, between setup and close
        self._db_error: RulesDatabaseError | None = None  # why the file cannot be used
        self._db_replaced = False  # a corrupt file was replaced by an empty one at this setup
        self._run_lock = asyncio.Lock()
        self._unsub_timer: CALLBACK_TYPE | None = None
        self._unsub_expiry: CALLBACK_TYPE | None = None
        self._unsub_start: CALLBACK_TYPE | None = None
        # Upcoming events and when each ticker item was first seen, across restarts.
        self._memory: Store[_MemoryJson] = Store(
            hass, MEMORY_VERSION, _memory_key(entry.entry_id), private=True, atomic_writes=True
        )
        self._first_seen: dict[str, datetime] = {}
        self._upcoming: tuple[SiteEventState, ...] = ()
        # The start timer has dealt with the starts up to here (None: none yet since setup).
        self._starts_done: datetime | None = None
        self._unsub_rearm: CALLBACK_TYPE = lambda: None
        self._closing = False
        self._fetch_error: str | None = None  # why the last run fetched nothing (for the message)

    @property
    def db(self) -> RulesStore:
        """The shared rules database (RuntimeError when it is unusable or closed)."""
        if self._db is None:
            raise RuntimeError("The rules database is not open")
        return self._db

    async def async_setup(self) -> None:
        """Open the database, show the cached rules, arm the daily timer, catch up if stale.

        Never raises because of the database: a bad file turns the rules feature off only.
        """
        await self._async_open_db()
        await self._async_load_memory()
        self.data = await self._cached()
        self._arm_expiry()
        self._unsub_rearm = self.async_add_listener(self._arm_expiry)  # after every data update
        refresh_at = time.fromisoformat(entry_options(self.config_entry)[CONF_RULES_REFRESH_TIME])
        self._unsub_timer = async_track_time_change(
            self.hass,
            self._scheduled,
            hour=refresh_at.hour,
            minute=refresh_at.minute,
            second=refresh_at.second,
        )
        checked = self.data.checked
        # A replaced (empty) database has lost the rules and events: fetch them again now.
        stale = checked is None or dt_util.utcnow() - checked > RULES_MAX_AGE or self._db_replaced
        if self._db is not None and self._pages() and stale:
            self.config_entry.async_create_background_task(
                self.hass, self.async_refresh(), f"{DOMAIN} startup rules refresh"
            )

    async def async_close(self) -> None:
        """Stop the timers and give the shared database back (entry unload; safe to call twice).

        A running refresh stops at its next page and records nothing; the store is released (and
        closed by the last entry) only once it has let go of it (never under a running refresh).
        """
        self._closing = True
        unsub_rearm, self._unsub_rearm = self._unsub_rearm, lambda: None  # safe to call twice
        unsub_rearm()
        for unsub in (self._unsub_timer, self._unsub_expiry, self._unsub_start):
            if unsub is not None:
                unsub()
        self._unsub_timer = self._unsub_expiry = self._unsub_start = None
        await self.async_shutdown()
        async with self._run_lock:
            if self._db is not None:  # once: the store is shared, one release per entry
                db, self._db = self._db, None
                await self.hass.async_add_executor_job(release_store, db)

    # -- the database file -------------------------------------------------------------------

    async def _async_open_db(self) -> None:
        """Take the shared store; on a bad file, turn the rules feature off and raise an issue."""
        hass, path = self.hass, self.db_path
        try:
            self._db, recovered = await hass.async_add_executor_job(acquire_store, path)
        except RulesDatabaseError as err:
            self._db_error = err
            LOGGER.error(
                "The rules database %s cannot be used: %s. The rules feature is off; the account"
                " and the ratio emergency are not affected",
                path,
                err,
            )
            _create_db_issue(hass, err)
            return
        self._db_error = None
        ir.async_delete_issue(hass, DOMAIN, ISSUE_RULES_DB_NEWER)
        ir.async_delete_issue(hass, DOMAIN, ISSUE_RULES_DB_CANNOT_OPEN)
        if recovered is not None:
            LOGGER.error(
                "The rules database %s was unreadable (%s); it was moved to %s and a new one was"
                " started",
                path,
                recovered.detail,
                recovered.moved_to,
            )
            _create_db_issue(hass, recovered)
            self._db_replaced = True
            return
        # The notice about a moved-aside file goes once the user has dealt with that file.
        issue = ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_RULES_DB_CORRUPT)
        if issue is not None:
            moved_to = (issue.translation_placeholders or {}).get("moved_to")
            if not moved_to or not await hass.async_add_executor_job(os.path.lexists, moved_to):
                ir.async_delete_issue(hass, DOMAIN, ISSUE_RULES_DB_CORRUPT)

    # -- what is remembered about announcements ------------------------------------------------

    async def _async_load_memory(self) -> None:
        """Upcoming events and first sightings of ticker items (a bad file is forgotten)."""
        try:
            memory = await self._memory.async_load() or {}
        except HomeAssistantError as err:  # an unreadable file: start afresh
            LOGGER.warning("Forgetting unreadable announcement memory: %s", err)
            memory = {}
        first_seen: dict[str, datetime] = {}
        for text, seen in (memory.get("first_seen") or {}).items():
            if (moment := dt_util.parse_datetime(str(seen))) is not None:
                first_seen[str(text)] = moment
        upcoming: list[SiteEventState] = []
        for item in memory.get("upcoming") or []:
            start = dt_util.parse_datetime(str(item.get("start")))
            end = dt_util.parse_datetime(str(item["end"])) if item.get("end") else None
            if start is None or item.get("event_type") not in IMPACTS:
                continue
            upcoming.append(
                SiteEventState(
                    str(item["event_type"]),
                    str(item.get("description", "")),
                    start,
                    end,
                    item.get("source_url"),
                )
            )
        self._first_seen = first_seen
        self._upcoming = tuple(sorted(upcoming, key=lambda e: e.start))

    async def _async_save_memory(self) -> None:
        memory: _MemoryJson = {
            "first_seen": {text: seen.isoformat() for text, seen in self._first_seen.items()},
            "upcoming": [
                {
                    "event_type": e.event_type,
                    "description": e.description,
                    "start": e.start.isoformat(),
                    "end": _iso(e.end),
                    "source_url": e.source_url,
                }
                for e in self._upcoming
            ],
        }
        await self._memory.async_save(memory)

    def _unusable(self) -> dict[str, str]:
        """Placeholders of the ``rules_database_unusable`` error."""
        error = str(self._db_error) if self._db_error is not None else "it is closed"
        return {"path": self.db_path, "error": error}

    def _pages(self) -> list[str]:
        return list(entry_options(self.config_entry)[CONF_RULES_PAGES])

    async def _cached(self) -> RulesData:
        now = dt_util.utcnow()
        checked = self.store.data.get("rules_checked")
        version: RuleVersion | None = None
        events: list[EventRow] = []
        if self._db is not None:
            try:
                version, events = await self.hass.async_add_executor_job(
                    _read_db, self._db, self.config_entry.entry_id, now
                )
            except sqlite3.Error as err:  # the file went bad under us: show nothing cached
                LOGGER.warning("Reading the rules database %s failed: %s", self.db_path, err)
        checked_at = dt_util.parse_datetime(checked) if checked else None
        return _rules_data(version, events, checked_at, self._upcoming)

    @callback
    def _scheduled(self, _now: datetime) -> None:
        if self._pages() and self._db is not None:  # an unusable file: the repair issue says so
            self.config_entry.async_create_background_task(
                self.hass, self.async_refresh(), f"{DOMAIN} daily rules refresh"
            )

    async def async_refresh_now(self) -> None:
        """Button and action: refresh now; raise a translated error when it fails."""
        if self._db_error is not None:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="rules_database_unusable",
                translation_placeholders=self._unusable(),
            )
        await self.async_refresh()
        if not self.last_update_success:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="rules_refresh_failed",
                translation_placeholders={"error": str(self.last_exception)},
            )

    @override
    async def _async_update_data(self) -> RulesData:
        async with self._run_lock:
            pages = self._pages()
            if not pages:  # the user chose no pages: nothing is fetched
                return self.data
            db = self._db
            if db is None:  # nothing could be stored: do not ask MAM for the pages
                raise UpdateFailed(
                    translation_domain=DOMAIN,
                    translation_key="rules_database_unusable",
                    translation_placeholders=self._unusable(),
                )
            fetched, events, ticker, complete = await self._fetch(pages)
            if self._closing:  # unloading (maybe while waiting for the lock): drop the run
                return self.data
            if not fetched:
                raise UpdateFailed(
                    translation_domain=DOMAIN,
                    translation_key="rules_refresh_failed",
                    translation_placeholders={"error": self._fetch_error or "no page fetched"},
                )
            now = dt_util.utcnow()
            if not complete:
                # A partial run cannot tell that an event ended: keep the known ones announced.
                events.extend(_site_event(e) for e in (*self.data.events, *self._upcoming))
            # Started (or without a start) events are recorded now; upcoming ones at their start.
            current = [e for e in events if e.start is None or e.start <= now]
            upcoming = _upcoming_states(events, now)
            try:
                result = await self.hass.async_add_executor_job(
                    db.record_refresh, self.config_entry.entry_id, fetched, current, now
                )
            except sqlite3.Error as err:
                raise UpdateFailed(
                    translation_domain=DOMAIN,
                    translation_key="rules_refresh_failed",
                    translation_placeholders={"error": f"the rules database failed: {err}"},
                ) from err
            self.store.data["rules_checked"] = now.isoformat()
            await self.store.async_save()
            self._upcoming = upcoming
            for text in ticker:
                self._first_seen.setdefault(text, now)
            if complete:  # forget items no longer in the ticker
                shown = set(ticker)
                self._first_seen = {t: s for t, s in self._first_seen.items() if t in shown}
            await self._async_save_memory()
            self._fire_events(result)
            return await self._cached()

    async def _fetch(
        self, pages: list[str]
    ) -> tuple[dict[str, PageContent], list[SiteEvent], list[str], bool]:
        """Fetch the pages one by one, 2 s apart; stop on 429; a failed page is skipped.

        Returns the pages, their events, the ticker items seen and whether every page came.
        """
        fetched: dict[str, PageContent] = {}
        events: list[SiteEvent] = []
        ticker: list[str] = []
        now, tz = dt_util.utcnow(), dt_util.get_default_time_zone()
        first_seen = dict(self._first_seen)
        complete = True
        self._fetch_error = None
        for index, path in enumerate(pages):
            if index:
                await asyncio.sleep(RULES_PAGE_GAP_SECONDS)
            if self._closing:
                break
            try:
                html = await self.client.async_get_page(path)
            except MamAuthError as err:
                raise ConfigEntryAuthFailed(
                    translation_domain=DOMAIN, translation_key="mam_auth_failed"
                ) from err
            except MamRateLimitedError as err:
                LOGGER.info("MAM asked to slow down; the rules refresh stops after %s pages", index)
                self._fetch_error = (
                    f"rate limited until {err.retry_at.isoformat(timespec='minutes')}"
                )
                return fetched, events, ticker, False
            except MamError as err:
                LOGGER.debug("Rules page %s failed: %s", path, type(err).__name__)
                self._fetch_error = f"{path}: {type(err).__name__}"
                complete = False
                continue
            # BeautifulSoup takes ~0.1 s a page: parse in the executor, not in the event loop.
            fetched[path], page_events, page_ticker = await self.hass.async_add_executor_job(
                partial(
                    _parse_page,
                    path,
                    html,
                    base_url=self.config_entry.data[CONF_MAM_BASE_URL],
                    now=now,
                    tz=tz,
                    first_seen=first_seen,
                )
            )
            events.extend(page_events)
            ticker.extend(text for text in page_ticker if text not in ticker)
        return fetched, events, ticker, complete

    @callback
    def _fire_events(self, result: RefreshResult) -> None:
        entry_id = self.config_entry.entry_id
        if result.new_version and result.rule_version > 1:
            self.hass.bus.async_fire(
                EVENT_RULES_CHANGED,
                {
                    "entry_id": entry_id,
                    "rule_version": result.rule_version,
                    "changed_pages": list(result.changed_pages),
                },
            )
        for row, active in [(r, True) for r in result.started] + [(r, False) for r in result.ended]:
            self._fire_site_event(row, active=active)

    @callback
    def _fire_site_event(self, row: EventRow, *, active: bool) -> None:
        self.hass.bus.async_fire(
            EVENT_SITE_EVENT,
            {
                "entry_id": self.config_entry.entry_id,
                "event_type": row.event_type,
                "active": active,
                "description": row.description,
                "end_date": _iso(row.end_date),
                "start_date": _iso(row.start_date),
            },
        )

    @callback
    def _arm_expiry(self) -> None:
        """Timers at the earliest announced end and the earliest upcoming start.

        So an event's end is reported when it comes, and an upcoming event starts on time.
        """
        for unsub in (self._unsub_expiry, self._unsub_start):
            if unsub is not None:
                unsub()
        self._unsub_expiry = self._unsub_start = None
        ends = [e.end for e in self.data.events if e.end is not None]
        if ends:
            self._unsub_expiry = async_track_point_in_utc_time(self.hass, self._expire, min(ends))
        # Once per start: an event that could not be recorded stays upcoming (and shown as on)
        # until the next refresh, without firing the timer again and again meanwhile.
        done = self._starts_done
        starts = [e.start for e in self.data.upcoming if done is None or e.start > done]
        if starts:
            self._unsub_start = async_track_point_in_utc_time(
                self.hass, self._start_due, min(starts)
            )

    async def _start_due(self, _now: datetime) -> None:
        """Start the upcoming events whose start has come: record them, report them.

        Each is recorded at its announced start (the database's ``start_date``), together with
        the events already running (so none of those ends). Without a stored rule version (a
        database replaced since) or when the database fails, they stay upcoming (``active_events``
        shows them anyway) until the next refresh records them: each start is tried once.
        """
        self._unsub_start = None
        async with self._run_lock:
            if self._closing or self._db is None:
                return
            now = dt_util.utcnow()
            due = [e for e in self._upcoming if e.start <= now]
            if not due:
                return
            self._starts_done = now
            db, entry_id = self._db, self.config_entry.entry_id
            started: list[SiteEventState] = []
            try:
                latest = await self.hass.async_add_executor_job(db.latest_version, entry_id)
                if latest is not None:
                    running = [_site_event(e) for e in self.data.events]
                    for start in sorted({e.start for e in due}):
                        batch = [_site_event(e) for e in due if e.start == start]
                        result = await self.hass.async_add_executor_job(
                            db.record_refresh, entry_id, latest.pages, running + batch, start
                        )
                        running.extend(batch)
                        started.extend(e for e in due if e.start == start)
                        self._fire_events(result)
            except sqlite3.Error as err:
                LOGGER.warning("Starting announced site events in %s failed: %s", self.db_path, err)
            self._upcoming = tuple(
                e for e in self._upcoming if e not in started and (e.end is None or e.end > now)
            )
            await self._async_save_memory()
            self.async_set_updated_data(await self._cached())

    async def _expire(self, _now: datetime) -> None:
        self._unsub_expiry = None
        async with self._run_lock:
            if self._closing or self._db is None:
                return
            try:
                ended = await self.hass.async_add_executor_job(
                    self._db.expire_events, self.config_entry.entry_id, dt_util.utcnow()
                )
            except sqlite3.Error as err:
                LOGGER.warning("Ending site events in %s failed: %s", self.db_path, err)
                return
            for row in ended:
                self._fire_site_event(row, active=False)
            self.async_set_updated_data(await self._cached())

    def active_events(self, now: datetime) -> list[SiteEventState]:
        """Announced events running at ``now``: started, end not passed (also between refreshes).

        An upcoming event counts from its start on, even before the start timer recorded it.
        """
        return [
            e
            for e in (*self.data.events, *self.data.upcoming)
            if e.start <= now and (e.end is None or e.end > now)
        ]

    def upcoming_events(self, now: datetime) -> list[SiteEventState]:
        """Announced events that start after ``now``, soonest first."""
        return [e for e in self.data.upcoming if e.start > now]

    def status_documents(self, now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
        """The seed's ``/api/system/mam-rules`` and ``/api/system/events`` documents."""
        data = self.data
        active = self.active_events(now)
        kinds = {e.event_type for e in active}
        rules = {
            "rule_version": data.version,
            "effective_date": _iso(data.effective_date),
            "freeleech_active": "freeleech" in kinds,
            "bonus_event_active": "bonus" in kinds,
            "multiplier_active": "multiplier" in kinds,
            "event_details": {
                e.event_type: {
                    "description": e.description,
                    "start_date": _iso(e.start),
                    "end_date": _iso(e.end),
                    "source_url": e.source_url,
                }
                for e in active
            },
            "rules_summary": {
                "pages": dict(data.page_hashes),
                "changed_pages": list(data.changed_pages),
                "selected_pages": self._pages(),
            },
            "last_updated": _iso(data.checked),
        }
        impacts = sorted({IMPACTS[e.event_type] for e in active})
        events = {
            "active_events": [
                {"type": e.event_type, "description": e.description, "end_date": _iso(e.end)}
                for e in active
            ],
            "current_impact": impacts[0] if len(impacts) == 1 else ("mixed" if impacts else "none"),
        }
        return rules, events

    def diagnostics(self) -> dict[str, Any]:
        """Metadata only (no page texts)."""
        data = self.data
        return {
            "rule_version": data.version,
            "changed_pages": list(data.changed_pages),
            "checked": _iso(data.checked),
            "events": [e.event_type for e in data.events],
            "upcoming": [e.event_type for e in data.upcoming],
            "selected_pages": self._pages(),
            "last_update_success": self.last_update_success,
            "database_problem": self._db_error.problem if self._db_error else None,
        }


async def async_remove_rules_data(hass: HomeAssistant, entry_id: str) -> None:
    """Delete an entry's rows when the entry is removed (the file is shared by entries).

    A bad file is left as it is (the next setup deals with it): removal never fails on it.
    """
    path = hass.config.path(SQLITE_FILENAME)

    def _delete() -> None:
        db, _ = acquire_store(path, recover=False)
        try:
            db.delete_entry(entry_id)
        finally:
            release_store(db)

    await Store[_MemoryJson](hass, MEMORY_VERSION, _memory_key(entry_id)).async_remove()

    try:
        await hass.async_add_executor_job(_delete)
    except (RulesDatabaseError, sqlite3.Error) as err:
        LOGGER.warning("The rules history of the removed entry stays in %s: %s", path, err)


def _read_db(
    db: RulesStore, entry_id: str, now: datetime
) -> tuple[RuleVersion | None, list[EventRow]]:
    return db.latest_version(entry_id), db.active_events(entry_id, now)


@callback
def _create_db_issue(hass: HomeAssistant, err: RulesDatabaseError) -> None:
    """The repair issue that says what is wrong with the rules database file and what to do."""

    def create(issue_id: str, translation_key: str, *, persistent: bool, **info: str) -> None:
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            is_persistent=persistent,
            severity=ir.IssueSeverity.ERROR,
            translation_key=translation_key,
            translation_placeholders={"path": err.path, **info},
        )

    if err.moved_to is not None:  # kept across restarts until the old file is gone
        create(
            ISSUE_RULES_DB_CORRUPT,
            translation_key="rules_database_corrupt",
            persistent=True,
            moved_to=err.moved_to,
            error=err.detail,
        )
    elif err.problem == "newer_schema":  # checked again at every setup
        create(
            ISSUE_RULES_DB_NEWER,
            translation_key="rules_database_newer_schema",
            persistent=False,
            version=str(err.version),
            supported=str(SCHEMA_VERSION),
        )
    else:
        create(
            ISSUE_RULES_DB_CANNOT_OPEN,
            translation_key="rules_database_cannot_open",
            persistent=False,
            error=err.detail,
        )
