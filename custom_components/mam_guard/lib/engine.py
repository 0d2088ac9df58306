"""Pure decision logic of the ratio emergency (SPEC §4): no I/O, no asyncio.

The executor (:mod:`.emergency`) feeds these functions a qBittorrent snapshot and carries out what
they return, so every rule about *which* torrent or preference is touched lives here and is unit
tested without a daemon. qBittorrent-specific names (tags, preference keys, state names) are
module-level constants the Home Assistant layer imports as well.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
import math
from typing import Any, Final

from .freeleech import FREE_REASONS, FROZEN_REASONS, Reason, freeze_reason

TAG_FROZEN: Final = "mam_guard_frozen"
TAG_FORCED: Final = "mam_guard_forced"

# qBittorrent preference keys (``app/preferences``) step 3 may change; -1 means "unlimited" for the
# two counters. Alternative speed limits are not a preference: they are the global
# ``transfer/speedLimitsMode`` (toggled by ``transfer/toggleSpeedLimitsMode``), which the scheduler
# (``scheduler_enabled``) would switch back on at its set times, so the scheduler goes off too.
PREF_MAX_ACTIVE_UPLOADS: Final = "max_active_uploads"
PREF_MAX_ACTIVE_TORRENTS: Final = "max_active_torrents"
PREF_UP_LIMIT: Final = "up_limit"
PREF_SCHEDULER: Final = "scheduler_enabled"
EMERGENCY_PREF_KEYS: Final = (
    PREF_MAX_ACTIVE_UPLOADS,
    PREF_MAX_ACTIVE_TORRENTS,
    PREF_UP_LIMIT,
    PREF_SCHEDULER,
)
UNLIMITED: Final = -1

# Torrent states (``state`` of torrents/info and sync/maindata) on 4.x and 5.x. Stopped/paused ones
# are deliberately absent from DOWNLOADING_STATES: the user (or we) stopped those.
DOWNLOADING_STATES: Final = frozenset(
    {
        "downloading",
        "stalledDL",
        "metaDL",
        "queuedDL",
        "forcedDL",
        "allocating",
        "checkingDL",
        "forcedMetaDL",
    }
)
FORCEABLE_STATES: Final = frozenset({"stalledUP", "queuedUP"})
STALLED_STATES: Final = frozenset({"stalledUP", "stalledDL"})
STOPPED_STATES: Final = frozenset({"pausedDL", "pausedUP", "stoppedDL", "stoppedUP"})
# Right after qBittorrent starts, torrents sit in these until their resume data is read: their real
# state is not known yet, so nothing may be planned on them.
LOADING_STATES: Final = frozenset({"checkingResumeData", "unknown"})


@dataclass(frozen=True, slots=True)
class TorrentState:
    """One torrent as the engine needs it (built by the qBittorrent adapter from sync/maindata)."""

    hash: str
    name: str
    state: str
    progress: float
    tags: frozenset[str]
    force_start: bool
    is_mam: bool
    category: str = ""
    added_on: int = 0

    @property
    def complete(self) -> bool:
        """All pieces are there (a complete torrent is never frozen)."""
        return self.progress >= 1.0


@dataclass(frozen=True, slots=True)
class EmergencyOptions:
    """The options of SPEC §1 that shape an emergency (``enforcement`` is the caller's business)."""

    ratio_threshold: float = 1.0
    release_margin: float = 0.0
    exempt_tags: frozenset[str] = frozenset({"freeleech", "fl", "vip", "vip_critical"})
    emergency_active_uploads: int = 50
    unlimited_upload_rate: bool = True


class Decision(StrEnum):
    """What the account poll means for the emergency state."""

    ENTER = "enter"
    RELEASE = "release"
    NONE = "none"


def decide(
    ratio: float | None,
    *,
    active: bool,
    manual: bool,
    hold_off_until: datetime | None,
    now: datetime,
    options: EmergencyOptions,
) -> Decision:
    """Apply SPEC §4's entry/exit rules to one poll.

    ``ratio`` is None only when it is unknown (failed poll): that never changes the state. MAM's ∞
    (nothing downloaded) is passed as ``float("inf")`` and is simply a very good ratio. Between
    the threshold and threshold + margin the state is kept (hysteresis). A manual emergency ends
    only via an explicit release, never here.
    """
    if ratio is None or math.isnan(ratio):  # unknown
        return Decision.NONE
    if not active:
        if ratio <= options.ratio_threshold and (hold_off_until is None or now >= hold_off_until):
            return Decision.ENTER
        return Decision.NONE
    if not manual and ratio > options.ratio_threshold + options.release_margin:
        return Decision.RELEASE
    return Decision.NONE


type Classifier = Callable[[TorrentState], Reason]
"""Why a MAM download is frozen or spared (SPEC §11): the caller's view of MAM's answers."""


def tag_classifier(options: EmergencyOptions) -> Classifier:
    """The classification without MAM's answers: every download is unknown (paid) unless tagged.

    An exempt tag spares it, ``mam_guard_paid`` freezes it whatever else it carries (the same
    precedence as with answers, :func:`.freeleech.freeze_reason`).
    """
    exempt = options.exempt_tags
    return lambda t: freeze_reason(None, vip_account=False, tags=t.tags, exempt_tags=exempt)


def plan_freeze(
    torrents: Iterable[TorrentState],
    options: EmergencyOptions,
    frozen_tag: str = TAG_FROZEN,
    skip: Collection[str] = (),
    classify: Classifier | None = None,
) -> list[str]:
    """Hashes to tag ``frozen_tag`` and stop: downloading, incomplete MAM torrents that cost ratio.

    ``classify`` says why each would be frozen or spared (default: the tags alone, see
    :func:`tag_classifier`); only ``paid`` and ``unknown`` are frozen. ``skip`` holds torrents
    frozen earlier in this emergency whose tag the user removed: removing the tag hands the
    torrent back to the user, so it is not frozen again.
    """
    reason = classify or tag_classifier(options)
    return sorted(
        t.hash
        for t in torrents
        if t.is_mam
        and t.state in DOWNLOADING_STATES
        and not t.complete
        and frozen_tag not in t.tags
        and t.hash not in skip
        and reason(t) in FROZEN_REASONS
    )


def plan_refreeze(
    torrents: Iterable[TorrentState],
    frozen_tag: str = TAG_FROZEN,
    *,
    owned: Collection[str],
    thawing: Collection[str] = (),
) -> list[str]:
    """Torrents we froze (``owned``) that carry our tag and are downloading again: stop them again.

    Covers a crash between tagging and stopping; a user who wants a frozen torrent back removes the
    tag (then it is theirs), resuming alone is undone at the next enforcement. A tagged torrent
    that is not ``owned`` belongs to another executor (another MAM account on this qBittorrent).
    ``thawing`` (see :func:`plan_thaw`) are being given back: never stopped again.
    """
    return sorted(
        t.hash
        for t in torrents
        if frozen_tag in t.tags
        and t.hash in owned
        and t.hash not in thawing
        and t.state in DOWNLOADING_STATES
    )


def plan_thaw(
    torrents: Iterable[TorrentState],
    classify: Classifier,
    frozen_tag: str = TAG_FROZEN,
    *,
    owned: Collection[str],
) -> list[str]:
    """Torrents we froze that MAM now says are free for this account: give them back (SPEC §11).

    Only MAM's answer thaws (``free``, ``personal_fl``, ``vip``): an exempt tag added to a frozen
    torrent does not, as before lookups existed (removing our tag is how a user takes one back),
    and ``mam_guard_paid`` keeps it frozen whatever MAM says.
    """
    return sorted(
        t.hash
        for t in torrents
        if frozen_tag in t.tags and t.hash in owned and classify(t) in FREE_REASONS
    )


def plan_force(
    torrents: Iterable[TorrentState],
    forced_tag: str = TAG_FORCED,
    skip: Collection[str] = (),
    *,
    owned: Collection[str] = (),
) -> tuple[list[str], list[str]]:
    """(force-start, re-announce): complete MAM torrents that are stalled or queued and not forced.

    A torrent the user force-started already has ``force_start`` set and is left alone (not ours).
    Only stalled ones are re-announced: a queued torrent has not announced yet anyway. ``skip``
    holds torrents forced earlier in this emergency whose tag the user removed (theirs now). A
    torrent carrying ``forced_tag`` that is not ``owned`` was forced by another executor (another
    MAM account on this qBittorrent): never adopted. One we own is forced again (a crash between
    tagging and forcing, or the user started it plainly but kept the tag).
    """
    chosen = sorted(
        (
            t
            for t in torrents
            if t.is_mam
            and t.complete
            and t.state in FORCEABLE_STATES
            and not t.force_start
            and t.hash not in skip
            and (forced_tag not in t.tags or t.hash in owned)
        ),
        key=lambda t: t.hash,
    )
    return [t.hash for t in chosen], [t.hash for t in chosen if t.state == "stalledUP"]


def plannable(torrent: TorrentState) -> bool:
    """Could :func:`plan_freeze`, :func:`plan_refreeze` or :func:`plan_force` ever pick it?

    True for a torrent that one of them picks under *some* record and options (with the default
    tags): a downloading MAM torrent that is not complete, a downloading one carrying
    :data:`TAG_FROZEN`, a complete MAM seed that is stalled or queued and not forced. The adapter
    keeps these in an index updated from each diff, so a heartbeat plans over them only and not
    over every torrent: the plans over this subset equal the plans over all torrents (a property
    test holds it), as each plan judges every torrent on its own.
    """
    if torrent.state in DOWNLOADING_STATES:
        return (torrent.is_mam and not torrent.complete) or TAG_FROZEN in torrent.tags
    return (
        torrent.is_mam
        and torrent.complete
        and torrent.state in FORCEABLE_STATES
        and not torrent.force_start
    )


def plan_prefs(current: Mapping[str, Any], options: EmergencyOptions) -> dict[str, Any]:
    """Only the preference changes step 3 needs (empty when qBittorrent is already generous).

    The active-torrent limits are raised to at least the option, never lowered; -1 (unlimited)
    stays. With ``unlimited_upload_rate`` the global upload limit goes to 0 (= unlimited) and the
    alternative-speed scheduler off; the alt-speed mode itself is handled by the executor.
    """
    changes: dict[str, Any] = {}
    floor = options.emergency_active_uploads
    for key in (PREF_MAX_ACTIVE_UPLOADS, PREF_MAX_ACTIVE_TORRENTS):
        value = current.get(key)
        if isinstance(value, int) and value != UNLIMITED and value < floor:
            changes[key] = floor
    if options.unlimited_upload_rate:
        if current.get(PREF_UP_LIMIT, 0) not in (0, UNLIMITED):
            changes[PREF_UP_LIMIT] = 0
        if current.get(PREF_SCHEDULER) is True:
            changes[PREF_SCHEDULER] = False
    return changes


def foreign_prefs(
    current: Mapping[str, Any], snapshot: Mapping[str, Any], applied: Mapping[str, Any]
) -> frozenset[str]:
    """Preference keys the emergency must leave alone: the user changed them after the snapshot.

    A key's current value is either the snapshot's (not changed yet: ours to raise), the value we
    set (``applied``), or the user's — then it is theirs for the rest of the emergency (SPEC §4):
    not raised again, not restored on release. Re-running the prefs step after a crash right
    after ``app/setPreferences`` therefore keeps a change the user made while we were down. A key
    missing from the snapshot has no original to restore, so it is never ours either.
    """
    return frozenset(
        key
        for key in {*EMERGENCY_PREF_KEYS, *applied}
        if key in current
        and (
            key not in snapshot
            or current[key] not in (snapshot[key], applied.get(key, snapshot[key]))
        )
    )


@dataclass(frozen=True, slots=True)
class ReleasePlan:
    """What release does, by qBittorrent call.

    ``resume``: plain start; ``force_resume``: ``setForceStart(true)`` (frozen downloads the user
    had force-started); ``untag_frozen`` = both. ``unforce``: ``setForceStart(false)`` (which
    also starts a stopped torrent, so never for one the user stopped); ``untag_forced`` also
    holds those stopped ones. ``prefs``: the preference values to write back.
    """

    resume: list[str]
    unforce: list[str]
    prefs: dict[str, Any] = field(default_factory=dict)
    force_resume: list[str] = field(default_factory=list)
    untag_frozen: list[str] = field(default_factory=list)
    untag_forced: list[str] = field(default_factory=list)


def plan_release(
    torrents: Iterable[TorrentState],
    *,
    snapshot: Mapping[str, Any] | None,
    applied: Mapping[str, Any],
    current_prefs: Mapping[str, Any],
    frozen_owned: Collection[str],
    forced_owned: Collection[str],
    force_started: Collection[str] = (),
    frozen_tag: str = TAG_FROZEN,
    forced_tag: str = TAG_FORCED,
) -> ReleasePlan:
    """Undo exactly our own actions: a torrent is ours while it carries our tag *and* is owned.

    ``frozen_owned`` / ``forced_owned`` are the hashes this executor's record froze / forced (or
    was about to): a tagged torrent outside them belongs to another executor sharing this
    qBittorrent, one without the tag was taken back by the user. Frozen torrents in
    ``force_started`` had force start when we stopped them: they get it back (stopping clears
    it). A forced torrent the user stopped stays stopped: only its tag goes. A preference is
    restored from ``snapshot`` only while it still holds the value we set: if the user changed it
    during the emergency, their value wins. Resuming a tagged torrent the user already resumed is
    harmless.
    """
    items = list(torrents)
    prefs = {
        key: snapshot[key]
        for key, ours in applied.items()
        if snapshot is not None and key in snapshot and current_prefs.get(key) == ours
    }
    frozen = sorted(t.hash for t in items if frozen_tag in t.tags and t.hash in frozen_owned)
    forced = [t for t in items if forced_tag in t.tags and t.hash in forced_owned]
    return ReleasePlan(
        resume=[h for h in frozen if h not in force_started],
        unforce=sorted(t.hash for t in forced if t.state not in STOPPED_STATES),
        prefs=prefs,
        force_resume=[h for h in frozen if h in force_started],
        untag_frozen=frozen,
        untag_forced=sorted(t.hash for t in forced),
    )
