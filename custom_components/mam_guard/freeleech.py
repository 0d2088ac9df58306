"""Freeleech known, not guessed (SPEC §11): MAM's own answer about each download, for the freeze.

The library does the work (``lib.freeleech``: the budgeted lookup queue, its background runner and
``freeze_reason``); this manager wires it to Home Assistant:

- the queue lives in the entry's storage (``freeleech``), written after each lookup (at most 60
  writes an hour), so answers and the hourly budget survive a restart;
- every heartbeat hands over the incomplete MAM torrents of each qBittorrent client (the adapter
  keeps that set incrementally and hands the same object while it is unchanged, so an unchanged
  heartbeat costs one identity check here); an unreachable client keeps its last set;
- a declared emergency re-checks answers older than an hour;
- lookups run on HA timers, one short task per lookup at the time the queue says (the library's
  ``run_once``), not as a task asleep between them: nothing lingers, and an unload waits at most
  for the one lookup in flight;
- :meth:`FreeleechManager.classify` is what the emergency executor freezes by, synchronously: the
  freeze never waits for a lookup (unknown counts as paid).

With the option ``freeleech_lookup`` off, nothing is sent and every download is judged by its tags
alone (as before lookups existed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.util import dt as dt_util

from .const import CONF_EXEMPT_TAGS, CONF_FREELEECH_LOOKUP, DOMAIN
from .data import entry_options
from .lib.engine import DOWNLOADING_STATES, TorrentState
from .lib.freeleech import (
    FROZEN_REASONS,
    FreeleechLookups,
    LookupQueue,
    Reason,
    freeze_reason,
    is_vip_class,
)
from .store import MamGuardStore

if TYPE_CHECKING:
    from .coordinator import MamAccountCoordinator
    from .data import MamGuardConfigEntry
    from .lib.mam import MamClient


def downloading_mam(torrents: Iterable[TorrentState]) -> list[TorrentState]:
    """The MAM torrents among these that are downloading (incomplete and not stopped)."""
    return [t for t in torrents if t.is_mam and not t.complete and t.state in DOWNLOADING_STATES]


class FreeleechManager:
    """The account's freeleech lookups: one queue and one runner for all its clients."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: MamGuardConfigEntry,
        *,
        client: MamClient,
        store: MamGuardStore,
        account: MamAccountCoordinator,
    ) -> None:
        """Read the stored queue; :meth:`async_start` starts the lookups."""
        self.hass = hass
        self.entry = entry
        self.store = store
        self.account = account
        options = entry_options(entry)
        self.enabled = bool(options[CONF_FREELEECH_LOOKUP])  # saving options reloads the entry
        self._exempt = frozenset(tag.casefold() for tag in options[CONF_EXEMPT_TAGS])
        self.queue = LookupQueue.from_dict(store.data.get("freeleech"), now=dt_util.utcnow())
        self.lookups = FreeleechLookups(
            client, self.queue, persist=self._save, clock=dt_util.utcnow
        )
        self._observed: dict[str, frozenset[str]] = {}
        # The clients whose downloads make up the account's: until each has been read once
        # since setup, the union is partial and nothing may be forgotten (a reload would
        # otherwise drop one client's answers and ask MAM again).
        self.client_keys: frozenset[str] = frozenset()
        self._task: asyncio.Task[None] | None = None  # the lookup in flight
        self._unsub_timer: CALLBACK_TYPE | None = None
        self._started = self._closed = False

    @callback
    def async_start(self) -> None:
        """Start looking up (the first due lookup now); nothing ever waits for the lookups."""
        self._started = True
        self._schedule()

    async def async_shutdown(self) -> None:
        """No more lookups; the one in flight completes (the client keeps its rotated cookie)."""
        self._closed = True
        self._cancel_timer()
        if (task := self._task) is not None:
            await asyncio.shield(task)

    @callback
    def _cancel_timer(self) -> None:
        if self._unsub_timer is not None:
            self._unsub_timer()
            self._unsub_timer = None

    @callback
    def _schedule(self, at: datetime | None = None) -> None:
        """Arm the timer for the next due lookup (``at``, else the queue's next time)."""
        if not (self.enabled and self._started) or self._closed or self._task is not None:
            return
        self._cancel_timer()
        if at is None and (at := self.queue.next_time(dt_util.utcnow())) is None:
            return  # nothing queued: observe() or an emergency arms it again
        self._unsub_timer = async_track_point_in_utc_time(self.hass, self._due, at)

    @callback
    def _due(self, _now: datetime) -> None:
        self._unsub_timer = None
        if self._closed or self._task is not None:
            return
        self._task = self.entry.async_create_background_task(
            self.hass, self._lookup(), f"{DOMAIN} freeleech lookup"
        )

    async def _lookup(self) -> None:
        try:
            at = await self.lookups.run_once()
        finally:
            self._task = None
        self._schedule(at)

    async def _save(self, data: dict[str, Any]) -> None:
        self.store.data["freeleech"] = data
        await self.store.async_save()

    # -- what the heartbeat and the emergency tell us -------------------------------------------

    @callback
    def observe(self, client_key: str, incomplete: frozenset[str]) -> None:
        """The incomplete MAM torrents of one client, from its latest successful sync."""
        if not self.enabled or self._observed.get(client_key) is incomplete:
            return
        self._observed[client_key] = incomplete
        every = frozenset().union(*self._observed.values())
        complete = self.client_keys <= self._observed.keys()
        self.queue.observe(every, dt_util.utcnow(), forget=complete)
        self._schedule()

    @callback
    def on_emergency_declared(self) -> None:
        """Answers older than an hour are asked again (a wedge may have been spent since)."""
        if self.enabled:
            self.queue.on_emergency_declared(dt_util.utcnow())
            self._schedule()

    # -- what the freeze and the entities ask -----------------------------------------------------

    @property
    def vip_account(self) -> bool:
        """The account's class gets VIP torrents free (VIP, Elite VIP)."""
        data = self.account.data
        return data is not None and is_vip_class(data.account.classname)

    @property
    def revision(self) -> object:
        """Changes whenever a judgement may change (a new answer, the account's class)."""
        return (self.queue.revision, self.vip_account)

    def classify(self, torrent: TorrentState) -> Reason:
        """Why this download is frozen (``paid``, ``unknown``) or spared; what the freeze uses."""
        return freeze_reason(
            self.queue.flags(torrent.hash) if self.enabled else None,
            vip_account=self.vip_account,
            tags=torrent.tags,
            exempt_tags=self._exempt,
        )

    def costs_ratio(self, torrent: TorrentState) -> bool:
        """Downloading it costs ratio as far as MAM's answer says (exempt tags do not change it)."""
        flags = self.queue.flags(torrent.hash) if self.enabled else None
        reason = freeze_reason(flags, vip_account=self.vip_account, tags=torrent.tags)
        return reason in FROZEN_REASONS

    def status(self) -> dict[str, Any]:
        """The lookups as ``get_status`` and diagnostics report them (no hashes, no cookie)."""
        now = dt_util.utcnow()
        paused = self.queue.paused_until
        return {
            "enabled": self.enabled,
            "vip_account": self.vip_account,
            "queued": len(self.queue.pending()),
            "lookups_last_hour": self.queue.sent_within_hour(now),
            "paused_until": paused.isoformat() if paused is not None and paused > now else None,
        }
