"""The ratio emergency in Home Assistant: declaration, events, repairs and the breaker (SPEC §4).

Two things are kept apart:
- *declared*: ``record.active`` — decided from the ratio (``lib.engine.decide``) or by the manual
  actions. The binary sensor, ``ratio_status`` and ``check_download`` follow it, whatever
  qBittorrent does.
- *applied*: the executor's phase — qBittorrent actually frozen/boosted. It follows the declaration
  only while enforcement is on; with enforcement off (switch, option, or the breaker) everything we
  applied is undone while the emergency stays declared. Undoing is always allowed.

What the UI says follows :attr:`EmergencyManager.protection` (``lib.status.protection_state``):
never "protected" while an action is pending or qBittorrent cannot be reached. The started event
fires after the first attempt to apply, saying whether actions are still pending; when they
complete later, ``mam_guard_emergency_applied`` fires. The ended event fires after the undo ran.

The executor (``lib.emergency``) persists every step through :meth:`EmergencyManager._write`
into HA storage before it acts, so a restart mid-emergency or mid-release resumes where it stopped.
Every write, ours included, goes through ``executor.persist``, which skips a record identical to the
stored one: a heartbeat that changed nothing writes nothing (an SD card lives longer).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from itertools import islice
from typing import TYPE_CHECKING, Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util

from .const import (
    BREAKER_FAILURES,
    CONF_EMERGENCY_ACTIVE_UPLOADS,
    CONF_ENFORCEMENT,
    CONF_EXEMPT_TAGS,
    CONF_QBT_URL,
    CONF_RATIO_THRESHOLD,
    CONF_RELEASE_MARGIN,
    CONF_UNLIMITED_UPLOAD_RATE,
    DOMAIN,
    EVENT_EMERGENCY_APPLIED,
    EVENT_EMERGENCY_ENDED,
    EVENT_EMERGENCY_STARTED,
    ISSUE_BREAKER,
    ISSUE_CLIENT_REMOVED_FROZEN,
    ISSUE_EMERGENCY,
    ISSUE_EMERGENCY_NOT_ENFORCING,
    ISSUE_EMERGENCY_PENDING,
    ISSUE_QBT_UNREACHABLE,
    LIST_ATTRIBUTE_LIMIT,
    LOGGER,
    QBT_SETTLE_SECONDS,
)
from .data import entry_options
from .freeleech import downloading_mam
from .lib.clients import run_each
from .lib.emergency import (
    PHASE_ACTIVE,
    PHASE_ENTERING,
    PHASE_IDLE,
    PHASE_RELEASING,
    RELEASE_STEPS,
    EmergencyExecutor,
    EmergencyRecord,
)
from .lib.engine import Decision, EmergencyOptions, decide
from .lib.freeleech import FROZEN_REASONS, Reason
from .lib.qbt import QbtAdapter, QbtSnapshot, redact_url
from .lib.status import Protection, protection_state
from .listeners import ListenerMixin
from .store import MamGuardStore

if TYPE_CHECKING:
    from .coordinator import MamAccountCoordinator
    from .data import MamGuardConfigEntry
    from .freeleech import FreeleechManager

APPLIED_PHASES = (PHASE_ENTERING, PHASE_ACTIVE)

# Plain-language reasons of the protection state (entity attribute, get_status, events).
REASONS: dict[str, str] = {
    "idle": "No ratio emergency: nothing is frozen.",
    "protected": "Ratio emergency: every action is in place in qBittorrent.",
    "pending": "Ratio emergency declared, but its qBittorrent actions are not done yet.",
    "unreachable": "Ratio emergency, but qBittorrent cannot be reached: downloads are NOT frozen.",
    "failing": "Ratio emergency, but qBittorrent refuses the actions: downloads are NOT frozen.",
    "not_enforcing": "Ratio emergency, but enforcement is off: qBittorrent is not touched.",
    "breaker": "Ratio emergency, but enforcement switched itself off after repeated failures.",
    "no_client": "Ratio emergency, but no qBittorrent is configured: nothing is frozen.",
}
# The same, naming the clients concerned (``{clients}``: "qBittorrent 'Home', 'Seedbox'").
CLIENT_REASONS: dict[str, str] = {
    "pending": "Ratio emergency declared, but the actions in {clients} are not done yet.",
    "unreachable": "Ratio emergency, but {clients} cannot be reached: downloads are NOT frozen.",
    "failing": "Ratio emergency, but {clients} refuses the actions: downloads are NOT frozen.",
}
# The emergency repair's text follows what was really done.
ISSUE_KEYS: dict[str, str] = {
    "protected": ISSUE_EMERGENCY,
    "pending": ISSUE_EMERGENCY_PENDING,
    "unreachable": ISSUE_EMERGENCY_PENDING,
    "not_enforcing": ISSUE_EMERGENCY_NOT_ENFORCING,
}


def emergency_options(options: dict[str, Any]) -> EmergencyOptions:
    """The executor's options from the entry's options."""
    return EmergencyOptions(
        ratio_threshold=float(options[CONF_RATIO_THRESHOLD]),
        release_margin=float(options[CONF_RELEASE_MARGIN]),
        exempt_tags=frozenset(tag.casefold() for tag in options[CONF_EXEMPT_TAGS]),
        emergency_active_uploads=int(options[CONF_EMERGENCY_ACTIVE_UPLOADS]),
        unlimited_upload_rate=bool(options[CONF_UNLIMITED_UPLOAD_RATE]),
    )


DECLARATION_KEYS = ("active", "manual", "since", "trigger_ratio", "hold_off_until")
# Worst first: the account's protection is its worst client's.
PROTECTION_ORDER: tuple[Protection, ...] = (
    "unreachable",
    "pending",
    "not_enforcing",
    "protected",
    "idle",
)


def client_part(record: EmergencyRecord) -> EmergencyRecord:
    """Only a client's executor state (what was applied in that qBittorrent)."""
    return replace(
        record.copy(),
        active=False,
        manual=False,
        since=None,
        trigger_ratio=None,
        hold_off_until=None,
    )


def declaration_dict(record: EmergencyRecord) -> dict[str, Any]:
    """The declaration as stored in ``store.data["emergency"]``."""
    data = record.to_dict()
    return {"version": data["version"], **{key: data[key] for key in DECLARATION_KEYS}}


def split_stored_record(data: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """A version 1 store's single record: (the declaration, the one client's executor state)."""
    record = EmergencyRecord.from_dict(data)
    return declaration_dict(record), client_part(record).to_dict()


class ClientEmergency:
    """One qBittorrent client's side of the emergency: its executor, record and lock.

    A *detached* client is one whose subentry is gone while its record was not idle: it is
    only ever undone (with the connection data stored beside its record), then forgotten.
    """

    def __init__(
        self,
        key: str,
        name: str,
        executor: EmergencyExecutor,
        connection: dict[str, Any] | None,
        *,
        detached: bool = False,
    ) -> None:
        """Bind the client's executor; ``connection`` is stored while the record is not idle."""
        self.key = key
        self.name = name
        self.executor = executor
        self.connection = connection
        self.detached = detached
        self.lock = asyncio.Lock()
        self.run_failed = False  # the last attempt to apply raised (not an outage)
        self.undone_at = float("-inf")  # loop time of our last undo (see QBT_SETTLE_SECONDS)

    @property
    def record(self) -> EmergencyRecord:
        """The client's persisted executor record."""
        return self.executor.record

    @property
    def adapter(self) -> QbtAdapter:
        """The client's qBittorrent adapter."""
        return self.executor.adapter


class EmergencyManager(ListenerMixin):
    """Decides and declares the account's emergency once; applies or undoes it per client.

    Each client has its own executor, record and lock: a hung client's heartbeat blocks neither
    another client nor the declaration. An account poll, a manual trigger or release reconciles
    every client at once (``lib.clients.run_each``, each failing alone); a client's heartbeat
    reconciles that client on its own snapshot. The breaker counts failures per client (in its
    record) but acts account-wide: one client failing three times in a row switches enforcement
    off for the account (the option is the account's), and everything applied is undone.
    """

    def __init__(
        self,
        hass: HomeAssistant,
        entry: MamGuardConfigEntry,
        store: MamGuardStore,
        account: MamAccountCoordinator,
        *,
        freeleech: FreeleechManager,
    ) -> None:
        """Bind everything; add the clients, then :meth:`async_load` reads the records."""
        self.hass = hass
        self.entry = entry
        self.store = store
        self.account = account
        self.freeleech = freeleech
        self.options = emergency_options(entry_options(entry))
        self.record = EmergencyRecord()  # the declaration only
        self._saved = self.record.copy()
        self.clients: dict[str, ClientEmergency] = {}
        self._lock = asyncio.Lock()  # the declaration's
        ListenerMixin.__init__(self)
        self._unsub_account: CALLBACK_TYPE | None = None
        self._started_event_pending = False
        self._applied_event_pending = False  # started with actions pending: say when they land
        self._ended_event: dict[str, Any] | None = None  # fired once the undo ran
        self._closed = False

    def add_client(
        self,
        key: str,
        name: str,
        adapter: QbtAdapter,
        connection: dict[str, Any] | None,
        *,
        detached: bool = False,
    ) -> ClientEmergency:
        """One qBittorrent client (a subentry, or a removed one still to be undone)."""
        executor = EmergencyExecutor(
            adapter, partial(self._write_key, key), EmergencyRecord(), self.options
        )
        client = ClientEmergency(key, name, executor, connection, detached=detached)
        client.executor.classify = self.freeleech.classify  # SPEC §11: MAM's answer, then tags
        self.clients[key] = client
        return client

    @property
    def attached(self) -> list[ClientEmergency]:
        """The configured clients (not the removed ones still being undone)."""
        return [c for c in self.clients.values() if not c.detached]

    @property
    def active(self) -> bool:
        """A ratio emergency is declared."""
        return self.record.active

    @property
    def enforcing(self) -> bool:
        """qBittorrent actions are allowed (option / switch, the breaker turns it off)."""
        return bool(entry_options(self.entry)[CONF_ENFORCEMENT])

    def client_protection(self, client: ClientEmergency) -> Protection:
        """What is really in place in this client right now."""
        record = client.record
        return protection_state(
            declared=self.record.active,
            enforcing=self.enforcing,
            pending=bool(record.pending) or record.phase != PHASE_ACTIVE,
            unreachable=client.executor.unreachable or client.run_failed,
        )

    @property
    def protection(self) -> Protection:
        """SPEC §2 ``protection``: the worst client's state (never protected when one is not)."""
        if not self.record.active:
            return "idle"
        states = [self.client_protection(c) for c in self.attached]
        if not states:  # no client configured: nothing is frozen
            return "not_enforcing" if not self.enforcing else "pending"
        return min(states, key=PROTECTION_ORDER.index)

    @property
    def reason(self) -> str:
        """The protection state in one plain sentence, naming the clients not protected."""
        state: str = self.protection
        if state == "not_enforcing" and self.breaker_tripped:
            state = "breaker"
        if state not in CLIENT_REASONS:
            return REASONS[state]
        if not self.attached:
            return REASONS["no_client"]
        worst = [c for c in self.attached if self.client_protection(c) == state]
        if state == "unreachable" and all(not c.executor.unreachable for c in worst):
            state = "failing"
        names = ", ".join(f"'{c.name}'" for c in worst)
        return CLIENT_REASONS[state].format(clients=f"qBittorrent {names}")

    def busy(self, client_key: str) -> bool:
        """Work waits in this client, or in a removed one (both retried on its heartbeat)."""
        return any(
            c.record.phase != PHASE_IDLE
            for key, c in self.clients.items()
            if key == client_key or c.detached
        )

    @property
    def breaker_tripped(self) -> bool:
        """A client's failures reached the breaker's count."""
        return any(c.record.failures >= BREAKER_FAILURES for c in self.clients.values())

    def _lists(self, clients: list[ClientEmergency]) -> dict[str, Any]:
        """Names of what we froze and force-started in these clients (capped), with reasons."""
        result: dict[str, Any] = {}
        for key in ("frozen", "forced"):
            total = sum(len(getattr(c.record, key)) for c in clients)
            owned = ((c, h) for c in clients for h in getattr(c.record, key))
            shown = list(islice(owned, LIST_ATTRIBUTE_LIMIT))
            names: dict[tuple[str, str], str] = {}
            for client in clients:
                mine = [h for owner, h in shown if owner is client]
                names.update(
                    ((client.key, h), name)
                    for h, name in zip(mine, client.adapter.torrent_names(mine), strict=True)
                )
            result[key] = {
                "torrents": sorted(names.values()),
                "more": max(0, total - len(names)),
            }
            if key == "frozen":
                result[key]["reasons"] = {
                    names[c.key, h]: self.freeleech.classify(t)
                    if (t := c.adapter.view().torrents.get(h))
                    else Reason.UNKNOWN
                    for c, h in shown
                }
        return result

    def torrent_lists(self, client_key: str | None = None) -> dict[str, Any]:
        """What we froze and force-started: in one client, or in all of them (capped).

        The frozen list also says why each is frozen (``paid`` or ``unknown``, SPEC §11; ``free``
        for a moment when MAM's answer just arrived and the next heartbeat gives it back).
        """
        if client_key is not None:
            return self._lists([self.clients[client_key]])
        return self._lists(list(self.clients.values()))

    def _spared(self, clients: list[ClientEmergency]) -> dict[str, Any]:
        if not self.record.active:  # nothing is spared when nothing is frozen
            return {"count": 0, "torrents": {}, "more": 0}
        spared = sorted(
            (t.name or t.hash, reason)
            for client in clients
            for t in downloading_mam(client.adapter.view().plannable.values())
            if (reason := self.freeleech.classify(t)) not in FROZEN_REASONS
        )
        shown = spared[:LIST_ATTRIBUTE_LIMIT]
        return {"count": len(spared), "torrents": dict(shown), "more": len(spared) - len(shown)}

    def spared(self, client_key: str | None = None) -> dict[str, Any]:
        """Downloads that keep running because they cost no ratio, and why (capped)."""
        if client_key is not None:
            return self._spared([self.clients[client_key]])
        return self._spared(self.attached)

    def count(self, key: str, client_key: str | None = None) -> int:
        """How many torrents we froze (``frozen``) or force-started (``forced``)."""
        clients = [self.clients[client_key]] if client_key else list(self.clients.values())
        return sum(len(getattr(c.record, key)) for c in clients)

    def pending_actions(self) -> list[str]:
        """The steps still to do, over every client (each named once)."""
        return list(dict.fromkeys(step for c in self.clients.values() for step in c.record.pending))

    def status_document(self) -> dict[str, Any]:
        """The emergency as ``get_status`` reports it (past values are not shown as current)."""
        record = self.record
        hold_off = record.hold_off_until
        lists = self.torrent_lists()
        clients: dict[str, Any] = {}
        for client in self.clients.values():
            client_lists = self.torrent_lists(client.key)
            clients[client.key] = {
                "name": client.name,
                "removed": client.detached,
                "protection": self.client_protection(client),
                "pending_actions": list(client.record.pending),
                "frozen": {"count": len(client.record.frozen), **client_lists["frozen"]},
                "forced": {"count": len(client.record.forced), **client_lists["forced"]},
                "spared": self.spared(client.key),
            }
        return {
            "declared": record.active,
            "protection": self.protection,
            "reason": self.reason,
            "manual": record.manual if record.active else False,
            "since": record.since.isoformat() if record.active and record.since else None,
            "trigger_ratio": record.trigger_ratio if record.active else None,
            "hold_off_until": hold_off.isoformat()
            if hold_off and hold_off > dt_util.utcnow()
            else None,
            "pending_actions": self.pending_actions(),
            "frozen": {"count": self.count("frozen"), **lists["frozen"]},
            "forced": {"count": self.count("forced"), **lists["forced"]},
            "spared": self.spared(),
            "clients": clients,
        }

    async def async_load(self) -> None:
        """Restore the declaration and every client's record (restart-safe); follow the polls."""
        self.record = EmergencyRecord.from_dict(self.store.data.get("emergency"))
        self._saved = self.record.copy()
        stored = self.store.data.get("clients", {})
        for client in self.clients.values():
            client.executor.record = EmergencyRecord.from_dict(
                stored.get(client.key, {}).get("emergency")
            )
            if client.record.phase != PHASE_IDLE and not client.detached:
                # Its connection data as configured now (a removal later still finds it).
                await self._write_client(client, client.record)
        self._unsub_account = self.account.async_add_listener(self._account_updated)
        if self.active:
            self._update_issues()

    async def async_shutdown(self) -> None:
        """Entry unload: stop following the account and wait for running operations to end.

        A ``trigger_freeze``/``release_freeze`` or heartbeat in progress finishes (and persists
        its record) before the entry's storage closes; anything that starts later does nothing.
        """
        if self._unsub_account is not None:
            self._unsub_account()
            self._unsub_account = None
        async with self._lock:
            self._closed = True
        for client in list(self.clients.values()):
            async with client.lock:
                pass

    @callback
    def _account_updated(self) -> None:
        # A new ratio: decide now instead of waiting for the next minute heartbeat.
        self.entry.async_create_background_task(
            self.hass, self.async_tick(), f"{DOMAIN} emergency tick"
        )

    async def _write_key(self, key: str, record: EmergencyRecord) -> None:
        await self._write_client(self.clients[key], record)

    async def _write_client(self, client: ClientEmergency, record: EmergencyRecord) -> None:
        """A client executor's storage callback (called only when its record changed).

        While the record is not idle the client's connection data is stored beside it: should
        its subentry (or the entry) be removed meanwhile, the release still knows where to go.
        """
        clients = self.store.data.setdefault("clients", {})
        if record.phase == PHASE_IDLE and client.detached:
            clients.pop(client.key, None)
        else:
            stored: dict[str, Any] = {"emergency": record.to_dict()}
            if record.phase != PHASE_IDLE and client.connection is not None:
                stored["connection"] = dict(client.connection)
                stored["name"] = client.name
            clients[client.key] = stored
        await self.store.async_save()

    async def _persist(self) -> None:
        """Write the declaration, unless storage already holds exactly this."""
        if self.record == self._saved:
            return
        self.store.data["emergency"] = declaration_dict(self.record)
        await self.store.async_save()
        self._saved = self.record.copy()

    def current_ratio(self) -> float | None:
        """The last polled ratio, ``inf`` for MAM's ∞; None (unknown) when the last poll failed."""
        data = self.account.data
        if data is None or not self.account.last_update_success:
            return None
        if data.account.ratio_infinite:
            return float("inf")
        return data.account.ratio

    # -- public operations ----------------------------------------------------------------------

    async def async_tick(
        self, view: QbtSnapshot | None = None, *, client: str | None = None
    ) -> None:
        """Heartbeat: decide, then apply or undo in one client (``client``) or in every one.

        ``view``: the snapshot of that client's heartbeat ``sync``, planned on while still
        current (qBittorrent is then read once per heartbeat, not twice).
        """
        async with self._lock:
            if self._closed:
                return
            now = dt_util.utcnow()
            self.options = emergency_options(entry_options(self.entry))
            record = self.record
            ratio = self.current_ratio()
            decision = decide(
                ratio,
                active=record.active,
                manual=record.manual,
                hold_off_until=record.hold_off_until,
                now=now,
                options=self.options,
            )
            if decision is Decision.ENTER:
                await self._declare(ratio, manual=False, now=now)
            elif decision is Decision.RELEASE:
                await self._undeclare(ratio, hold_off_until=None)
        if client is None:
            await self._reconcile_all(now)
        else:
            # That client on its own snapshot, and the removed clients still to be undone
            # (retried every minute, like any pending action).
            jobs = {
                key: partial(self._reconcile, c, now, view if key == client else None)
                for key, c in list(self.clients.items())
                if key == client or c.detached
            }
            await run_each(jobs)
            self._after_reconcile()

    async def async_trigger_manual(self) -> None:
        """``trigger_freeze``: declare a manual emergency (kept until ``release_freeze``)."""
        async with self._lock:
            if self._closed:
                return
            now = dt_util.utcnow()
            if self.active:
                self.record.manual = True
                await self._persist()
            else:
                await self._declare(self.current_ratio(), manual=True, now=now)
        await self._reconcile_all(now)

    async def async_release_manual(self, hold_off: timedelta) -> None:
        """``release_freeze``: end any emergency now; no automatic one before the hold-off ends."""
        async with self._lock:
            if self._closed:
                return
            now = dt_util.utcnow()
            hold_off_until = now + hold_off
            if self.active:
                await self._undeclare(self.current_ratio(), hold_off_until=hold_off_until)
            else:
                self.record.hold_off_until = hold_off_until
                await self._persist()
        await self._reconcile_all(now)

    async def async_enforcement_changed(self, enforcing: bool) -> None:
        """The switch/option changed: apply or undo now. Turning it on re-arms the breaker."""
        if enforcing:
            for client in self.clients.values():
                client.record.failures = 0
            ir.async_delete_issue(self.hass, DOMAIN, self._issue_id(ISSUE_BREAKER))
        await self.async_tick()

    # -- declaration ----------------------------------------------------------------------------

    async def _declare(self, ratio: float | None, *, manual: bool, now: datetime) -> None:
        record = self.record
        record.active, record.manual, record.since = True, manual, now
        record.trigger_ratio = None if ratio is None or ratio == float("inf") else ratio
        record.hold_off_until = None
        await self._persist()
        LOGGER.warning(
            "MAM ratio emergency declared for %s (ratio %s, manual %s)",
            self.entry.title,
            record.trigger_ratio,
            manual,
        )
        self._started_event_pending = True  # fired once the first actions ran (with counts)
        self.freeleech.on_emergency_declared()
        self._update_issues()
        self._notify()

    async def _undeclare(self, ratio: float | None, *, hold_off_until: datetime | None) -> None:
        record = self.record
        self._ended_event = {
            "entry_id": self.entry.entry_id,
            "ratio": None if ratio == float("inf") else ratio,
            "frozen": self.count("frozen"),
            "forced": self.count("forced"),
            "manual": record.manual,
        }
        record.active, record.manual, record.hold_off_until = False, False, hold_off_until
        await self._persist()
        LOGGER.info("MAM ratio emergency ended for %s (ratio %s)", self.entry.title, ratio)
        for kind in (ISSUE_EMERGENCY, ISSUE_QBT_UNREACHABLE):
            ir.async_delete_issue(self.hass, DOMAIN, self._issue_id(kind))
        self._started_event_pending = self._applied_event_pending = False
        self._notify()

    # -- applying and undoing ---------------------------------------------------------------------

    async def _reconcile_all(self, now: datetime) -> None:
        """Every client at once, each failing alone (a failure is counted in its record)."""
        await run_each(
            {
                key: partial(self._reconcile, client, now)
                for key, client in list(self.clients.items())
            }
        )
        self._after_reconcile()

    @callback
    def _after_reconcile(self) -> None:
        self._fire_events()
        if self.record.active:
            self._update_issues()
        self._notify()

    async def _reconcile(
        self,
        client: ClientEmergency,
        now: datetime,
        view: QbtSnapshot | None = None,
    ) -> None:
        """Make one client follow the declaration; count unexpected failures for the breaker."""
        async with client.lock:
            if self._closed:
                return
            record = client.record
            want_applied = self.record.active and self.enforcing and not client.detached
            client.executor.options = self.options
            client.executor.classify_revision = self.freeleech.revision
            try:
                if want_applied and record.phase in APPLIED_PHASES:
                    await client.executor.enforce(now, view=view)
                elif want_applied:
                    await self._apply(client, now, view)
                elif record.phase != PHASE_IDLE:
                    await self._undo(client, now, view)
                client.run_failed = False
            except Exception as err:  # the executor counted it in record.failures
                client.run_failed = True
                if record.failures <= BREAKER_FAILURES:  # a persistent fault is logged once
                    LOGGER.exception(
                        "mam_guard could not carry out the emergency actions in qBittorrent '%s'",
                        client.name,
                    )
                if want_applied and record.failures >= BREAKER_FAILURES:
                    await self._trip_breaker(client, err)
            if client.detached:
                await self._detached_done(client)

    async def _detached_done(self, client: ClientEmergency) -> None:
        """A removed client: forget it once undone, else say it still holds our actions."""
        issue_id = f"{ISSUE_CLIENT_REMOVED_FROZEN}_{client.key}"
        if client.record.phase == PHASE_IDLE:
            self.clients.pop(client.key, None)
            self.store.data.setdefault("clients", {}).pop(client.key, None)
            await self.store.async_save()
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            LOGGER.info("Emergency actions of the removed qBittorrent '%s' undone", client.name)
            self.entry.async_create_background_task(
                self.hass, client.adapter.close(), f"{DOMAIN} close removed client"
            )
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_CLIENT_REMOVED_FROZEN,
            translation_placeholders={
                "account": self.entry.title,
                "client": client.name,
                "url": redact_url((client.connection or {}).get(CONF_QBT_URL, "")),
                "frozen": str(len(client.record.frozen)),
            },
        )

    @callback
    def _fire_events(self) -> None:
        """The bus events, each saying only what really happened (SPEC §3); counts are totals."""
        record, protection = self.record, self.protection
        counts = {"frozen": self.count("frozen"), "forced": self.count("forced")}
        if self._started_event_pending and record.active:
            self._started_event_pending = False
            pending = protection != "protected"
            self._applied_event_pending = pending and protection != "not_enforcing"
            self.hass.bus.async_fire(
                EVENT_EMERGENCY_STARTED,
                {
                    "entry_id": self.entry.entry_id,
                    "ratio": record.trigger_ratio,
                    **counts,
                    "manual": record.manual,
                    "pending": pending,
                    "protection": protection,
                },
            )
        elif self._applied_event_pending and protection == "protected":
            self._applied_event_pending = False
            self.hass.bus.async_fire(
                EVENT_EMERGENCY_APPLIED, {"entry_id": self.entry.entry_id, **counts}
            )
        if self._ended_event is not None and not record.active:
            self.hass.bus.async_fire(
                EVENT_EMERGENCY_ENDED,
                {
                    **self._ended_event,
                    "pending": any(c.record.phase != PHASE_IDLE for c in self.clients.values()),
                },
            )
            self._ended_event = None

    async def _apply(
        self, client: ClientEmergency, now: datetime, view: QbtSnapshot | None = None
    ) -> None:
        """Start applying a declared emergency (from idle, or over an unfinished undo)."""
        if (wait := client.undone_at + QBT_SETTLE_SECONDS - self.hass.loop.time()) > 0:
            await asyncio.sleep(wait)  # let qBittorrent's view catch up with our own release
            view = None  # read again after the wait
        client.record.begin_entering()  # over an unfinished undo: what is still tagged stays ours
        await client.executor.persist()
        await client.executor.enforce(now, view=view)

    async def _undo(
        self, client: ClientEmergency, now: datetime, view: QbtSnapshot | None = None
    ) -> None:
        """Undo what we applied (SPEC §4 release steps); the declaration is not touched."""
        record = client.record
        if record.phase != PHASE_RELEASING:
            record.phase, record.pending = PHASE_RELEASING, list(RELEASE_STEPS)
            await client.executor.persist()
        await client.executor.enforce(now, view=view)
        client.undone_at = self.hass.loop.time()

    async def _trip_breaker(self, client: ClientEmergency, err: Exception) -> None:
        """Three unexpected failures in a row: stop acting, say so, keep monitoring (SPEC §4)."""
        LOGGER.error(
            "Emergency actions failed %s times in a row in qBittorrent '%s'; enforcement is"
            " switched off for %s",
            client.record.failures,
            client.name,
            self.entry.title,
        )
        self.hass.config_entries.async_update_entry(
            self.entry, options={**self.entry.options, CONF_ENFORCEMENT: False}
        )
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            self._issue_id(ISSUE_BREAKER),
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_BREAKER,
            translation_placeholders={"account": self.entry.title, "error": type(err).__name__},
        )
        try:  # enforcement is off now: give qBittorrent back what we changed, if we can
            await self._undo(client, dt_util.utcnow())
        except Exception:
            LOGGER.debug("Undo after the breaker failed; retried on the next heartbeat")
        if len(self.clients) > 1:  # the other clients are undone now too, not at their heartbeat
            self.entry.async_create_background_task(
                self.hass, self.async_tick(), f"{DOMAIN} undo after the breaker"
            )

    # -- repairs ---------------------------------------------------------------------------------

    def _issue_id(self, kind: str) -> str:
        return f"{kind}_{self.entry.entry_id}"

    @callback
    def _update_issues(self) -> None:
        """Repairs that say what is really in place (re-created to refresh their text).

        The emergency repair (warning, fixable: release now or keep) reads differently when
        everything is applied, when actions are pending and when enforcement is off; while a
        qBittorrent cannot be reached a separate error says that downloads are NOT frozen.
        """
        record = self.record
        protection = self.protection
        if protection == "unreachable":
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                self._issue_id(ISSUE_QBT_UNREACHABLE),
                is_fixable=False,
                is_persistent=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=ISSUE_QBT_UNREACHABLE,
                translation_placeholders={
                    "account": self.entry.title,
                    "clients": ", ".join(
                        c.name for c in self.attached if self.client_protection(c) == "unreachable"
                    ),
                },
            )
        else:
            ir.async_delete_issue(self.hass, DOMAIN, self._issue_id(ISSUE_QBT_UNREACHABLE))
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            self._issue_id(ISSUE_EMERGENCY),
            data={"entry_id": self.entry.entry_id},
            is_fixable=True,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_KEYS[protection],
            translation_placeholders={
                "account": self.entry.title,
                "ratio": "unknown"
                if record.trigger_ratio is None
                else f"{record.trigger_ratio:.2f}",
                "threshold": f"{entry_options(self.entry)[CONF_RATIO_THRESHOLD]:.2f}",
                "frozen": str(self.count("frozen")),
                "forced": str(self.count("forced")),
                "pending": ", ".join(self.pending_actions()) or "none",
            },
        )
