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
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util

from .const import (
    BREAKER_FAILURES,
    CONF_EMERGENCY_ACTIVE_UPLOADS,
    CONF_ENFORCEMENT,
    CONF_EXEMPT_TAGS,
    CONF_RATIO_THRESHOLD,
    CONF_RELEASE_MARGIN,
    CONF_UNLIMITED_UPLOAD_RATE,
    DOMAIN,
    EVENT_EMERGENCY_APPLIED,
    EVENT_EMERGENCY_ENDED,
    EVENT_EMERGENCY_STARTED,
    ISSUE_BREAKER,
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
from .lib.qbt import QbtAdapter, QbtSnapshot
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


class EmergencyManager(ListenerMixin):
    """Decides, declares and (when enforcing) applies or undoes the ratio emergency."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: MamGuardConfigEntry,
        store: MamGuardStore,
        adapter: QbtAdapter,
        account: MamAccountCoordinator,
        *,
        freeleech: FreeleechManager,
    ) -> None:
        """Bind everything; :meth:`async_load` reads the persisted record."""
        self.hass = hass
        self.entry = entry
        self.store = store
        self.account = account
        self.freeleech = freeleech
        self.executor = EmergencyExecutor(
            adapter, self._write, EmergencyRecord(), emergency_options(entry_options(entry))
        )
        self.executor.classify = freeleech.classify  # SPEC §11: MAM's answer, then the tags
        self._lock = asyncio.Lock()
        ListenerMixin.__init__(self)
        self._unsub_account: CALLBACK_TYPE | None = None
        self._started_event_pending = False
        self._applied_event_pending = False  # started with actions pending: say when they land
        self._ended_event: dict[str, Any] | None = None  # fired once the undo ran
        self._undone_at = float("-inf")  # loop time of our last undo (see QBT_SETTLE_SECONDS)
        self._closed = False
        self._run_failed = False  # the last attempt to apply raised (not an outage)

    @property
    def record(self) -> EmergencyRecord:
        """The persisted emergency record."""
        return self.executor.record

    @property
    def active(self) -> bool:
        """A ratio emergency is declared."""
        return self.record.active

    @property
    def applied(self) -> bool:
        """qBittorrent is (being) frozen and boosted by us right now."""
        return self.record.phase in APPLIED_PHASES

    @property
    def enforcing(self) -> bool:
        """qBittorrent actions are allowed (option / switch, the breaker turns it off)."""
        return bool(entry_options(self.entry)[CONF_ENFORCEMENT])

    @property
    def protection(self) -> Protection:
        """SPEC §2 ``protection``: what is really in place right now."""
        record = self.record
        return protection_state(
            declared=record.active,
            enforcing=self.enforcing,
            pending=bool(record.pending) or record.phase != PHASE_ACTIVE,
            unreachable=self.executor.unreachable or self._run_failed,
        )

    @property
    def reason(self) -> str:
        """The protection state in one plain sentence."""
        state: str = self.protection
        if state == "unreachable" and not self.executor.unreachable:
            state = "failing"
        elif state == "not_enforcing" and self.record.failures >= BREAKER_FAILURES:
            state = "breaker"
        return REASONS[state]

    def torrent_lists(self) -> dict[str, Any]:
        """Names of what we froze and force-started (capped), for attributes and get_status.

        The frozen list also says why each is frozen (``paid`` or ``unknown``, SPEC §11; ``free``
        for a moment when MAM's answer just arrived and the next heartbeat gives it back).
        """
        record = self.record
        adapter = self.executor.adapter
        result: dict[str, Any] = {}
        for key, hashes in (("frozen", record.frozen), ("forced", record.forced)):
            shown = adapter.torrent_names(hashes[:LIST_ATTRIBUTE_LIMIT])
            result[key] = {"torrents": sorted(shown), "more": max(0, len(hashes) - len(shown))}
        torrents = adapter.view().torrents
        shown_frozen = record.frozen[:LIST_ATTRIBUTE_LIMIT]
        names = adapter.torrent_names(shown_frozen)
        result["frozen"]["reasons"] = {
            name: self.freeleech.classify(state) if (state := torrents.get(h)) else Reason.UNKNOWN
            for h, name in zip(shown_frozen, names, strict=True)
        }
        return result

    def spared(self) -> dict[str, Any]:
        """Downloads an emergency leaves running because they cost no ratio, and why (capped).

        Empty outside an emergency: nothing is spared when nothing is frozen.
        """
        if not self.record.active:
            return {"count": 0, "torrents": {}, "more": 0}
        torrents = downloading_mam(self.executor.adapter.view().plannable.values())
        spared = sorted(
            (t.name or t.hash, reason)
            for t in torrents
            if (reason := self.freeleech.classify(t)) not in FROZEN_REASONS
        )
        shown = spared[:LIST_ATTRIBUTE_LIMIT]
        return {"count": len(spared), "torrents": dict(shown), "more": len(spared) - len(shown)}

    def status_document(self) -> dict[str, Any]:
        """The emergency as ``get_status`` reports it (past values are not shown as current)."""
        record = self.record
        hold_off = record.hold_off_until
        lists = self.torrent_lists()
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
            "pending_actions": list(record.pending),
            "frozen": {"count": len(record.frozen), **lists["frozen"]},
            "forced": {"count": len(record.forced), **lists["forced"]},
            "spared": self.spared(),
        }

    async def async_load(self) -> None:
        """Restore the record (restart-safe) and follow account polls."""
        self.executor.record = EmergencyRecord.from_dict(self.store.data.get("emergency"))
        self._unsub_account = self.account.async_add_listener(self._account_updated)
        if self.active:
            self._update_issues()

    async def async_shutdown(self) -> None:
        """Entry unload: stop following the account and wait for a running operation to end.

        A ``trigger_freeze``/``release_freeze`` or heartbeat in progress finishes (and persists
        its record) before the entry's storage closes; anything that starts later does nothing.
        """
        if self._unsub_account is not None:
            self._unsub_account()
            self._unsub_account = None
        async with self._lock:
            self._closed = True

    @callback
    def _account_updated(self) -> None:
        # A new ratio: decide now instead of waiting for the next minute heartbeat.
        self.entry.async_create_background_task(
            self.hass, self.async_tick(), f"{DOMAIN} emergency tick"
        )

    async def _write(self, record: EmergencyRecord) -> None:
        """The executor's storage callback (called only when the record changed)."""
        self.store.data["emergency"] = record.to_dict()
        await self.store.async_save()

    async def _persist(self) -> None:
        await self.executor.persist()

    def current_ratio(self) -> float | None:
        """The last polled ratio, ``inf`` for MAM's ∞; None (unknown) when the last poll failed."""
        data = self.account.data
        if data is None or not self.account.last_update_success:
            return None
        if data.account.ratio_infinite:
            return float("inf")
        return data.account.ratio

    # -- public operations ----------------------------------------------------------------------

    async def async_tick(self, view: QbtSnapshot | None = None) -> None:
        """Heartbeat (every minute and after each account poll): decide, then apply or undo.

        ``view``: the snapshot of the heartbeat's own ``sync``, planned on while still current
        (qBittorrent is then read once per heartbeat, not twice).
        """
        async with self._lock:
            if self._closed:
                return
            now = dt_util.utcnow()
            options = entry_options(self.entry)
            self.executor.options = emergency_options(options)
            record = self.record
            ratio = self.current_ratio()
            decision = decide(
                ratio,
                active=record.active,
                manual=record.manual,
                hold_off_until=record.hold_off_until,
                now=now,
                options=self.executor.options,
            )
            if decision is Decision.ENTER:
                await self._declare(ratio, manual=False, now=now)
            elif decision is Decision.RELEASE:
                await self._undeclare(ratio, hold_off_until=None)
            await self._reconcile(now, view)

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
            await self._reconcile(now)

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
            await self._reconcile(now)

    async def async_enforcement_changed(self, enforcing: bool) -> None:
        """The switch/option changed: apply or undo now. Turning it on re-arms the breaker."""
        if enforcing:
            self.record.failures = 0
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
            "frozen": len(record.frozen),
            "forced": len(record.forced),
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

    async def _reconcile(self, now: datetime, view: QbtSnapshot | None = None) -> None:
        """Make qBittorrent follow the declaration; count unexpected failures for the breaker."""
        record = self.record
        want_applied = record.active and self.enforcing
        self.executor.classify_revision = self.freeleech.revision
        try:
            if want_applied and record.phase in APPLIED_PHASES:
                await self.executor.enforce(now, view=view)
            elif want_applied:
                await self._apply(now, view)
            elif record.phase != PHASE_IDLE:
                await self._undo(now, view)
            self._run_failed = False
        except Exception as err:  # the executor counted it in record.failures
            self._run_failed = True
            if record.failures <= BREAKER_FAILURES:  # a persistent fault is logged, not repeated
                LOGGER.exception("mam_guard could not carry out the emergency actions")
            if want_applied and record.failures >= BREAKER_FAILURES:
                await self._trip_breaker(err)
        self._fire_events()
        if record.active:
            self._update_issues()
        self._notify()

    @callback
    def _fire_events(self) -> None:
        """The bus events, each saying only what really happened (SPEC §3)."""
        record, protection = self.record, self.protection
        counts = {"frozen": len(record.frozen), "forced": len(record.forced)}
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
                {**self._ended_event, "pending": record.phase != PHASE_IDLE},
            )
            self._ended_event = None

    async def _apply(self, now: datetime, view: QbtSnapshot | None = None) -> None:
        """Start applying a declared emergency (from idle, or over an unfinished undo)."""
        if (wait := self._undone_at + QBT_SETTLE_SECONDS - self.hass.loop.time()) > 0:
            await asyncio.sleep(wait)  # let qBittorrent's view catch up with our own release
            view = None  # read again after the wait
        record = self.record
        record.begin_entering()  # over an unfinished undo: what is still tagged stays ours
        await self._persist()
        await self.executor.enforce(now, view=view)

    async def _undo(self, now: datetime, view: QbtSnapshot | None = None) -> None:
        """Undo what we applied (SPEC §4 release steps); the declaration is not touched."""
        record = self.record
        if record.phase != PHASE_RELEASING:
            record.phase, record.pending = PHASE_RELEASING, list(RELEASE_STEPS)
            await self._persist()
        await self.executor.enforce(now, view=view)
        self._undone_at = self.hass.loop.time()

    async def _trip_breaker(self, err: Exception) -> None:
        """Three unexpected failures in a row: stop acting, say so, keep monitoring (SPEC §4)."""
        LOGGER.error(
            "Emergency actions failed %s times in a row; enforcement is switched off for %s",
            self.record.failures,
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
            await self._undo(dt_util.utcnow())
        except Exception:
            LOGGER.debug("Undo after the breaker failed; retried on the next heartbeat")

    # -- repairs ---------------------------------------------------------------------------------

    def _issue_id(self, kind: str) -> str:
        return f"{kind}_{self.entry.entry_id}"

    @callback
    def _update_issues(self) -> None:
        """Repairs that say what is really in place (re-created to refresh their text).

        The emergency repair (warning, fixable: release now or keep) reads differently when
        everything is applied, when actions are pending and when enforcement is off; while
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
                translation_placeholders={"account": self.entry.title},
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
                "frozen": str(len(record.frozen)),
                "forced": str(len(record.forced)),
                "pending": ", ".join(record.pending) or "none",
            },
        )
