"""The ratio-emergency executor: a persisted, crash-safe state machine (SPEC §4; no HA imports).

Every step is idempotent and the record is persisted *before* the step touches qBittorrent, so a
restart at any point re-runs the remaining steps without applying anything twice:

- the preference snapshot is taken once per emergency and persisted before any preference changes;
  a snapshot that exists is kept, so our own emergency values can never become "the original";
- the values we are about to set (``applied_prefs``) are persisted before they are set: on release
  a preference is restored only while it still holds our value (else the user changed it). A key
  whose current value is neither the snapshot's nor ours was changed by the user: it is dropped
  from ``applied_prefs`` and never set again in this emergency — also when the prefs step re-runs
  after a crash right after ``app/setPreferences`` and the user changed it while we were down;
- a torrent is tagged before it is stopped/force-started and un-stopped before it is untagged, so
  the tags in qBittorrent always cover every torrent we touched.

**The record owns, the tag confirms.** Several executors (one per MAM account, each with its own
record) may share one qBittorrent and its two tags, so a tag alone does not say whose a torrent
is. A batch's hashes are persisted in ``in_flight`` before they are tagged; once tagged they move
to ``frozen`` / ``forced`` (the next sync adopts the tagged ones after a crash, and drops the rest).
A torrent is ours while it carries our tag *and* is in ``frozen`` or ``in_flight`` (frozen tag),
``forced`` or ``in_flight`` (forced tag). A tagged torrent outside our record belongs to another
executor: never adopted, re-stopped, force-started, resumed, un-forced or untagged by us. One in
``frozen`` / ``forced`` without our tag was handed back by the user (tag removed) and is not
frozen/forced again in this emergency.

Release undoes exactly what we did, and nothing the user did since:

- a download the user had force-started is frozen like any other, but stopping it clears force
  start (the API then reports ``force_start`` false), so the freeze intent also persists which
  hashes had it (``frozen_force_start``, written with ``in_flight`` before anything is tagged;
  updated whenever we stop a tagged torrent again). Release gives those ``setForceStart(true)`` —
  which also starts them — instead of a plain start;
- a seed we force-started and the user stopped during the emergency stays stopped: only our tag
  goes. ``setForceStart(false)`` would start it again (qBittorrent applies it as a resume in
  auto-managed mode). Stopping keeps the forced operating mode inside qBittorrent, but
  ``force_start`` is reported only for a running torrent (``isForced()`` is "not stopped and
  forced"), and every start sets the mode anew: checked on 4.5.2 and 5.1, the stopped seed shows
  ``force_start`` false, and a later plain start by the user makes it an ordinary auto-managed seed
  (``stalledUP``/``queuedUP``, not forced). Our force start leaves no trace the user can trip on.

``enforcement`` is the caller's business: with it off, the caller simply does not call us.

**Cheap when nothing happens.** A heartbeat hands its own ``sync/maindata`` snapshot on
(``view``): the executor plans on it instead of reading qBittorrent a second time, plans only over
the torrents a plan could pick (the adapter's ``plannable`` index), releases from the mirror and
the record (no tag listings), and writes the record only when it differs from what was last
written: an idle heartbeat sends one request and writes nothing. The hash lists are stored in a
compact form (base64 of the 20-byte hashes, ~27 bytes a torrent instead of ~52 in HA's indented
JSON list); they cannot go away, since two executors share one qBittorrent and its two tags.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
import logging
import re
from typing import Any, Final, Self

from .engine import (
    EMERGENCY_PREF_KEYS,
    TAG_FORCED,
    TAG_FROZEN,
    Classifier,
    EmergencyOptions,
    ReleasePlan,
    TorrentState,
    foreign_prefs,
    plan_force,
    plan_freeze,
    plan_prefs,
    plan_refreeze,
    plan_release,
    plan_thaw,
)
from .qbt import QbtAdapter, QbtConnectionError, QbtNotReadyError, QbtSnapshot

_LOGGER = logging.getLogger(__name__)

RECORD_VERSION: Final = 2  # 2: hash lists packed (version 1 lists are still read)
_HASH: Final = re.compile(r"[0-9a-f]{40}")
_PACKED: Final = "b64:"
PHASE_IDLE: Final = "idle"
PHASE_ENTERING: Final = "entering"
PHASE_ACTIVE: Final = "active"
PHASE_RELEASING: Final = "releasing"
STEP_SNAPSHOT: Final = "snapshot"
STEP_FREEZE: Final = "freeze"
STEP_PREFS: Final = "prefs"
STEP_FORCE: Final = "force"
STEP_UNFREEZE: Final = "unfreeze"
STEP_UNFORCE: Final = "unforce"
STEP_RESTORE: Final = "restore"
ENTER_STEPS: Final = (STEP_SNAPSHOT, STEP_FREEZE, STEP_PREFS, STEP_FORCE)
RELEASE_STEPS: Final = (STEP_UNFREEZE, STEP_UNFORCE, STEP_RESTORE)


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def pack_hashes(hashes: list[str]) -> str | list[str]:
    """A list of info hashes as one base64 string of their 20-byte digests (order kept).

    About half the size of a JSON list of hex strings (and 2.6x less than HA's indented one).
    Anything that is not a lowercase 40-hex hash keeps the list form: nothing is ever lost (an
    empty list stays ``[]`` too).
    """
    if not hashes or not all(len(h) == 40 and _HASH.fullmatch(h) for h in hashes):
        return list(hashes)
    return _PACKED + base64.b64encode(bytes.fromhex("".join(hashes))).decode("ascii")


def unpack_hashes(value: Any) -> list[str]:
    """Inverse of :func:`pack_hashes`; also reads the plain list of record version 1."""
    if isinstance(value, str) and value.startswith(_PACKED):
        try:
            raw = base64.b64decode(value[len(_PACKED) :], validate=True)
        except binascii.Error as err:
            raise ValueError("corrupt packed hash list in the emergency record") from err
        if len(raw) % 20:
            raise ValueError("corrupt packed hash list in the emergency record")
        text = raw.hex()
        return [text[i : i + 40] for i in range(0, len(text), 40)]
    return [str(h) for h in value or ()]


@dataclass(slots=True)
class EmergencyRecord:
    """Everything an emergency must remember across restarts (stored as a versioned JSON dict)."""

    active: bool = False
    manual: bool = False
    since: datetime | None = None
    trigger_ratio: float | None = None
    hold_off_until: datetime | None = None
    phase: str = PHASE_IDLE
    prefs_snapshot: dict[str, Any] | None = None
    applied_prefs: dict[str, Any] = field(default_factory=dict)
    alt_speed_toggled: bool = False
    frozen: list[str] = field(default_factory=list)
    forced: list[str] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)  # hashes of the batch being frozen/forced
    pending: list[str] = field(default_factory=list)
    failures: int = 0
    frozen_force_start: list[str] = field(default_factory=list)  # frozen while force-started

    def begin_entering(self) -> None:
        """Start (re-)applying the emergency: all entry steps pending.

        Called from idle (the lists are empty) or over an unfinished release / undo: torrents of
        that release which still carry our tags are still ours, so ``frozen``, ``forced`` and
        ``in_flight`` move to ``in_flight`` (adopted by the next sync while tagged; the ones the
        release already handed back are dropped and may be frozen again). Never clear them
        instead: a still-tagged torrent outside every record stays frozen forever.
        """
        self.phase, self.pending = PHASE_ENTERING, list(ENTER_STEPS)
        self.in_flight = sorted({*self.frozen, *self.forced, *self.in_flight})
        self.frozen, self.forced = [], []

    def copy(self) -> EmergencyRecord:
        """An independent copy (lists and dicts copied; their items are immutable)."""
        return replace(
            self,
            prefs_snapshot=dict(self.prefs_snapshot) if self.prefs_snapshot is not None else None,
            applied_prefs=dict(self.applied_prefs),
            frozen=list(self.frozen),
            forced=list(self.forced),
            in_flight=list(self.in_flight),
            pending=list(self.pending),
            frozen_force_start=list(self.frozen_force_start),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (datetimes as ISO 8601, hash lists packed)."""
        return {
            "version": RECORD_VERSION,
            "active": self.active,
            "manual": self.manual,
            "since": self.since.isoformat() if self.since else None,
            "trigger_ratio": self.trigger_ratio,
            "hold_off_until": self.hold_off_until.isoformat() if self.hold_off_until else None,
            "phase": self.phase,
            "prefs_snapshot": dict(self.prefs_snapshot)
            if self.prefs_snapshot is not None
            else None,
            "applied_prefs": dict(self.applied_prefs),
            "alt_speed_toggled": self.alt_speed_toggled,
            "frozen": pack_hashes(self.frozen),
            "forced": pack_hashes(self.forced),
            "in_flight": pack_hashes(self.in_flight),
            "pending": list(self.pending),
            "failures": self.failures,
            "frozen_force_start": pack_hashes(self.frozen_force_start),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Self:
        """Inverse of :meth:`to_dict`; an empty/missing dict is an idle record."""
        if not data:
            return cls()
        if int(data.get("version", RECORD_VERSION)) > RECORD_VERSION:
            raise ValueError(
                f"emergency record version {data.get('version')} is newer than {RECORD_VERSION}"
            )
        ratio = data.get("trigger_ratio")
        snapshot = data.get("prefs_snapshot")
        return cls(
            active=bool(data.get("active", False)),
            manual=bool(data.get("manual", False)),
            since=_dt(data.get("since")),
            trigger_ratio=float(ratio) if ratio is not None else None,
            hold_off_until=_dt(data.get("hold_off_until")),
            phase=str(data.get("phase", PHASE_IDLE)),
            prefs_snapshot=dict(snapshot) if snapshot is not None else None,
            applied_prefs=dict(data.get("applied_prefs") or {}),
            alt_speed_toggled=bool(data.get("alt_speed_toggled", False)),
            frozen=unpack_hashes(data.get("frozen")),
            forced=unpack_hashes(data.get("forced")),
            in_flight=unpack_hashes(data.get("in_flight")),
            pending=list(data.get("pending") or []),
            failures=int(data.get("failures", 0)),
            frozen_force_start=unpack_hashes(data.get("frozen_force_start")),
        )


_NEVER: Final = object()


def _merge(known: list[str], more: set[str] | list[str]) -> list[str]:
    seen = set(known)
    return known + sorted(h for h in more if h not in seen)


class EmergencyExecutor:
    """Carries out enter / enforce / release against qBittorrent, persisting as it goes.

    One executor per qBittorrent adapter (and record): it holds nothing shared with another.
    """

    def __init__(
        self,
        adapter: QbtAdapter,
        persist: Callable[[EmergencyRecord], Awaitable[None]],
        record: EmergencyRecord,
        options: EmergencyOptions,
    ) -> None:
        """``persist`` must have written the record when it returns (HA storage, not delayed).

        ``record`` is the one in storage (or a new idle one, which equals an empty storage).
        """
        self.adapter = adapter
        self.options = options
        self._persist_cb = persist
        self._record = record
        self._saved = record.copy()  # what storage holds: a write of the same is skipped
        self._snap: QbtSnapshot | None = None
        self._view: QbtSnapshot | None = None
        self._unreachable = False  # the last run found qBittorrent unreachable (logged once)
        self._prefs: dict[str, Any] | None = None
        # SPEC §11: why each download is frozen or spared (None: by the exempt tags alone), and
        # a value that changes whenever its answers do: frozen torrents are re-judged only then.
        self.classify: Classifier | None = None
        self.classify_revision: object = None
        self._thawed_revision: object = _NEVER

    @property
    def record(self) -> EmergencyRecord:
        """The emergency record (mutated in place, written through :meth:`persist`)."""
        return self._record

    @record.setter
    def record(self, record: EmergencyRecord) -> None:
        """Adopt a record read from storage."""
        self._record, self._saved = record, record.copy()

    @property
    def unreachable(self) -> bool:
        """The last run could not reach qBittorrent (its pending steps wait for it)."""
        return self._unreachable

    async def persist(self) -> None:
        """Write the record, unless storage already holds exactly this (an idle heartbeat)."""
        if self._record == self._saved:
            return
        await self._persist_cb(self._record)
        self._saved = self._record.copy()

    _persist = persist

    # -- public API ----------------------------------------------------------------------------
    async def enter(
        self,
        ratio: float | None,
        *,
        manual: bool,
        now: datetime,
        view: QbtSnapshot | None = None,
    ) -> None:
        """Declare the emergency (persisted first), then run the entry steps."""
        rec = self.record
        if rec.active:  # already in an emergency: a manual trigger makes it manual, then enforce
            if manual and not rec.manual:
                rec.manual = True
                await self._persist()
            await self.enforce(now, view=view)
            return
        # From idle or from an unfinished release: the snapshot (if any) is still the original.
        rec.active, rec.manual, rec.since, rec.trigger_ratio = True, manual, now, ratio
        rec.hold_off_until = None
        rec.begin_entering()
        await self._persist()
        await self._run(view)

    async def enforce(self, now: datetime, *, view: QbtSnapshot | None = None) -> None:
        """Idempotent: finish pending steps (after a restart/outage), freeze new MAM downloads.

        ``view``: the snapshot of a ``sync`` the caller just made (the heartbeat's). It is used
        instead of a new ``sync/maindata`` while it is current (nothing sent since, see
        :meth:`QbtAdapter.is_current`); otherwise the executor reads qBittorrent itself.
        """
        if self.record.phase != PHASE_IDLE:
            await self._run(view)

    async def release(
        self,
        now: datetime,
        hold_off_until: datetime | None = None,
        *,
        view: QbtSnapshot | None = None,
    ) -> None:
        """End the emergency (persisted first) and undo exactly what we did."""
        rec = self.record
        rec.hold_off_until = hold_off_until
        if rec.phase == PHASE_IDLE and not rec.active:
            await self._persist()
            return
        if rec.phase != PHASE_RELEASING:
            rec.active, rec.manual = False, False
            rec.phase, rec.pending = PHASE_RELEASING, list(RELEASE_STEPS)
        await self._persist()
        await self._run(view)

    # -- machinery -----------------------------------------------------------------------------
    async def _run(self, view: QbtSnapshot | None = None) -> None:
        """Run pending steps in order; an unreachable qBittorrent leaves them pending."""
        rec = self.record
        self._snap = self._prefs = None  # fresh qBittorrent state for every run
        self._view = view
        steps: dict[str, Callable[[], Awaitable[None]]] = {
            STEP_SNAPSHOT: self._step_snapshot,
            STEP_FREEZE: self._step_freeze,
            STEP_PREFS: self._step_prefs,
            STEP_FORCE: self._step_force,
            STEP_UNFREEZE: self._step_unfreeze,
            STEP_UNFORCE: self._step_unforce,
            STEP_RESTORE: self._step_restore,
        }
        try:
            done: set[str] = set()
            while rec.pending:
                step = rec.pending[0]
                await steps[step]()
                done.add(step)
                rec.pending.pop(0)
                await self._persist()
            if rec.phase in (PHASE_ENTERING, PHASE_ACTIVE):
                # Torrents added (to freeze) or seeds stalled (to force) since the last run; both
                # plan on this run's snapshot, so this costs requests only when there is work.
                if STEP_FREEZE not in done:
                    await self._step_freeze()
                if STEP_FORCE not in done:
                    await self._step_force()
                rec.phase = PHASE_ACTIVE
            elif rec.phase == PHASE_RELEASING:
                rec.phase, rec.frozen, rec.forced, rec.in_flight = PHASE_IDLE, [], [], []
                rec.frozen_force_start = []
            rec.failures = 0
            if self._unreachable:
                _LOGGER.info("qBittorrent is reachable again; pending emergency steps are done")
            self._unreachable = False
            await self._persist()
        except QbtConnectionError as err:
            # Once per outage: the heartbeat retries every minute and must not fill the log.
            log = _LOGGER.debug if self._unreachable else _LOGGER.warning
            log("qBittorrent unreachable, emergency steps %s stay pending: %s", rec.pending, err)
            self._unreachable = True
            await self._persist()
        except Exception:
            rec.failures += 1
            await self._persist()
            raise
        finally:
            self._snap = self._prefs = self._view = None

    async def _sync(self) -> QbtSnapshot:
        """This run's snapshot; refuses to plan while qBittorrent is still loading MAM torrents.

        The first sync of a run also settles ``in_flight`` (a batch cut short by a crash): hashes
        that carry our tag by now are ours and join ``frozen`` / ``forced``; the others were never
        tagged and are planned afresh.
        """
        if self._snap is None:
            view = self._view
            if view is not None and self.adapter.is_current(view):
                snap = view  # the heartbeat's own sync: qBittorrent is read once per heartbeat
            else:
                snap = await self.adapter.sync()
            if snap.loading_mam:
                raise QbtNotReadyError("qBittorrent is still loading its torrents")
            self._snap = snap
            rec = self.record
            if rec.in_flight:
                found = [snap.torrents[h] for h in rec.in_flight if h in snap.torrents]
                rec.frozen = _merge(rec.frozen, [t.hash for t in found if TAG_FROZEN in t.tags])
                rec.forced = _merge(rec.forced, [t.hash for t in found if TAG_FORCED in t.tags])
                rec.in_flight = []
                await self._persist()
        return self._snap

    async def _current_prefs(self) -> dict[str, Any]:
        if self._prefs is None:
            self._prefs = await self.adapter.get_preferences()
        return self._prefs

    async def _step_snapshot(self) -> None:
        rec = self.record
        if rec.prefs_snapshot is None:  # once per emergency: never re-snapshot our own values
            prefs = await self._current_prefs()
            rec.prefs_snapshot = {k: prefs[k] for k in EMERGENCY_PREF_KEYS if k in prefs}
            await self._persist()

    async def _step_freeze(self) -> None:
        rec = self.record
        snap = await self._sync()
        thaw = await self._thaw(snap)
        torrents = list(snap.plannable.values())  # the only ones a plan can pick
        new = plan_freeze(
            torrents, self.options, TAG_FROZEN, skip=set(rec.frozen), classify=self.classify
        )
        restop = plan_refreeze(torrents, TAG_FROZEN, owned=set(rec.frozen), thawing=thaw)
        stopping = sorted({*new, *restop})
        # Stopping clears force start: remember who had it, to give it back on release.
        remember = sorted(
            (set(rec.frozen_force_start) - set(stopping))
            | {h for h in stopping if snap.torrents[h].force_start}
        )
        if new or remember != rec.frozen_force_start:
            rec.in_flight, rec.frozen_force_start = new, remember
            await self._persist()
        await self.adapter.add_tag(new, TAG_FROZEN)  # tag first: a crash leaves it tagged + owned
        await self.adapter.stop(stopping)
        if new:
            rec.frozen, rec.in_flight = _merge(rec.frozen, new), []
            await self._persist()

    async def _thaw(self, snap: QbtSnapshot) -> set[str]:
        """Give back frozen torrents MAM now says are free (SPEC §11); the hashes thawed.

        Judged only when the answers changed (``classify_revision``): O(frozen) a few times an
        hour, not every heartbeat. Like release: started (force start given back) before the tag
        goes, and the record keeps them until untagged — a crash in between leaves them tagged
        and owned, thawed again by the next run. A crash after the untag and before the record
        is written leaves them "handed back" (untagged, in ``frozen``) for the rest of this
        emergency: they are free, so nothing is lost.
        """
        rec, classify, revision = self.record, self.classify, self.classify_revision
        if classify is None or revision == self._thawed_revision or not rec.frozen:
            self._thawed_revision = revision
            return set()
        frozen = [t for h in rec.frozen if (t := snap.torrents.get(h)) is not None]
        thaw = plan_thaw(frozen, classify, TAG_FROZEN, owned=set(rec.frozen))
        if thaw:
            plan = plan_release(
                (snap.torrents[h] for h in thaw),
                snapshot=None,
                applied={},
                current_prefs={},
                frozen_owned=set(thaw),
                forced_owned=(),
                force_started=set(rec.frozen_force_start),
            )
            await self.adapter.start(plan.resume)
            await self.adapter.set_force_start(plan.force_resume, True)  # also starts them
            await self.adapter.remove_tag(plan.untag_frozen, TAG_FROZEN)
            gone = set(thaw)
            rec.frozen = [h for h in rec.frozen if h not in gone]
            rec.frozen_force_start = [h for h in rec.frozen_force_start if h not in gone]
            await self._persist()
            _LOGGER.info("%d frozen download(s) found free on MAM: given back", len(thaw))
        self._thawed_revision = revision
        return set(thaw)

    async def _step_prefs(self) -> None:
        rec = self.record
        current = await self._current_prefs()
        # Without a snapshot nothing could be restored: every key is then left alone.
        theirs = foreign_prefs(current, rec.prefs_snapshot or {}, rec.applied_prefs)
        kept = {k: v for k, v in rec.applied_prefs.items() if k not in theirs}
        changes = {k: v for k, v in plan_prefs(current, self.options).items() if k not in theirs}
        if changes or kept != rec.applied_prefs:
            rec.applied_prefs = {**kept, **changes}
            await self._persist()
        await self.adapter.set_preferences(changes)
        if self.options.unlimited_upload_rate and await self.adapter.alt_speed_enabled():
            rec.alt_speed_toggled = True
            await self._persist()
            await self.adapter.toggle_alt_speed()

    async def _step_force(self) -> None:
        rec = self.record
        snap = await self._sync()
        torrents = list(snap.plannable.values())  # the only ones a plan can pick
        # Over these, "tagged" decides exactly as over every torrent: skip only matters for them.
        tagged = {t.hash for t in torrents if TAG_FORCED in t.tags}
        owned = set(rec.forced)
        force, reannounce = plan_force(torrents, TAG_FORCED, skip=owned - tagged, owned=owned)
        if not force:
            return
        rec.in_flight = force
        await self._persist()
        await self.adapter.add_tag(force, TAG_FORCED)
        await self.adapter.set_force_start(force, True)
        await self.adapter.reannounce(reannounce)
        rec.forced, rec.in_flight = _merge(rec.forced, force), []
        await self._persist()

    def _release_plan(
        self, torrents: Iterable[TorrentState], prefs: dict[str, Any] | None = None
    ) -> ReleasePlan:
        rec = self.record
        return plan_release(
            torrents,
            snapshot=rec.prefs_snapshot,
            applied=rec.applied_prefs,
            current_prefs=prefs or {},
            frozen_owned={*rec.frozen, *rec.in_flight},
            forced_owned={*rec.forced, *rec.in_flight},
            force_started=set(rec.frozen_force_start),
        )

    async def _owned(self, tag: str) -> list[TorrentState]:
        """The torrents our record froze (``tag`` frozen) or forced, as the mirror shows them.

        Release acts on owned torrents only, so the record and the (fresh) mirror say everything:
        no ``torrents/info?tag=`` listing, whose cost grows with the tagged torrents. Gone
        torrents are skipped; the plan keeps only those still carrying the tag.
        """
        torrents = (await self._sync()).torrents  # first: it settles ``in_flight``
        rec = self.record
        owned = rec.frozen if tag == TAG_FROZEN else rec.forced
        return [t for h in dict.fromkeys([*owned, *rec.in_flight]) if (t := torrents.get(h))]

    async def _step_unfreeze(self) -> None:
        plan = self._release_plan(await self._owned(TAG_FROZEN))
        await self.adapter.start(plan.resume)  # start before untagging: a crash keeps the tag
        await self.adapter.set_force_start(plan.force_resume, True)  # also starts them
        await self.adapter.remove_tag(plan.untag_frozen, TAG_FROZEN)

    async def _step_unforce(self) -> None:
        plan = self._release_plan(await self._owned(TAG_FORCED))
        await self.adapter.set_force_start(plan.unforce, False)  # not for stopped ones: resumes
        await self.adapter.remove_tag(plan.untag_forced, TAG_FORCED)

    async def _step_restore(self) -> None:
        rec = self.record
        # Alt speed first: restoring the scheduler afterwards lets it rule as it did before.
        if rec.alt_speed_toggled and not await self.adapter.alt_speed_enabled():
            await self.adapter.toggle_alt_speed()
        if rec.applied_prefs:
            plan = self._release_plan((), await self._current_prefs())
            await self.adapter.set_preferences(plan.prefs)
        rec.prefs_snapshot, rec.applied_prefs, rec.alt_speed_toggled = None, {}, False
        await self._persist()
