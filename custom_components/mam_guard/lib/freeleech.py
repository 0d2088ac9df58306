"""Freeleech known, not guessed (SPEC §11): which MAM downloads cost ratio, asked of MAM itself.

Three parts, each usable alone:

* :func:`freeze_reason` — pure classification of one torrent from MAM's answer and its tags;
* :class:`LookupQueue` — pure, time-injected scheduler and cache: which torrent to look up next
  within SPEC §11's budget, and what MAM said; serialisable for HA storage;
* :class:`FreeleechLookups` — the async runner that drives the queue with a
  :class:`~.mam.MamClient` as a background task; nothing ever waits for it.

How the Home Assistant layer uses it
------------------------------------
Setup, one per account (one ``MamClient``; all the account's qBittorrent clients feed it)::

    queue = LookupQueue.from_dict(await store.async_load(), now=dt_util.utcnow())
    lookups = FreeleechLookups(client, queue, persist=store.async_save)  # <= 60 writes an hour
    entry.async_create_background_task(hass, lookups.run(), "mam_guard_freeleech")
    # unload cancels the task; a lookup in flight still completes inside the client

The runner shares the account's ``MamClient`` (one request at a time, for cookie rotation), so
an account poll can wait for the one lookup in flight: at most :data:`~.mam.LOOKUP_TIMEOUT`
(10 s), in practice one search round trip. Nothing else about the poll or the freeze waits.

Each heartbeat, with a *successful* qBittorrent snapshot (an unreachable client's torrents must be
passed from its last good snapshot, or they are forgotten)::

    # every incomplete MAM torrent, stopped ones included: a frozen torrent keeps its answer
    queue.observe({t.hash for t in torrents if t.is_mam and not t.complete}, now)
    lookups.wake()            # new torrents are looked up at the next free slot

When an emergency is declared (before or after the freeze, never instead of it)::

    queue.on_emergency_declared(now)
    lookups.wake()

Deciding, per downloading MAM torrent, synchronously (the freeze never waits for a lookup)::

    reason = freeze_reason(
        queue.flags(t.hash),
        vip_account=is_vip_class(account.classname),
        tags=t.tags,
        exempt_tags=options.exempt_tags,
    )
    freeze = reason in FROZEN_REASONS                 # paid or unknown
    # paid_downloads sensor: downloads that cost ratio now, whatever the exempt tags say:
    costs = freeze_reason(queue.flags(t.hash), vip_account=..., tags=t.tags) in FROZEN_REASONS

A torrent frozen as ``unknown`` whose answer arrives as free gets reason ``free`` at the next
heartbeat: the caller unfreezes (and untags) it then; a running one found paid is frozen.

Decisions
---------
* **Free for this account** = ``free`` or ``personal_freeleech``, or (``vip`` or ``fl_vip``) when
  the account's class is VIP-class: ``VIP`` or ``Elite VIP`` (case-insensitive), the two classes
  Prowlarr's ``_vipFreeleechUserClasses`` treats as VIP-freeleech (research/mam.md §1.4,
  mam-economy.md §4). Staff and other classes are *not* counted: no source says they get VIP
  torrents free, and a wrong "free" costs ratio while a wrong "paid" only pauses a download.
* **Unknown counts as paid**: never looked up yet, the lookup failed, or MAM returned nothing
  for the hash ("Nothing returned": not a MAM torrent as far as the search knows).
* MAM updates ``personal_freeleech`` 5-20 min late: a wedge spent just before the download may
  read as paid at first sight, until the re-check at the next emergency declaration (if the
  answer is then older than 1 h). ``mam_guard_paid`` and exempt tags stay the manual overrides.
* **Tags.** Precedence, first match wins: the tag ``mam_guard_paid`` (:data:`TAG_PAID`) →
  ``paid``, always, even when MAM says free *and* the torrent carries an exempt tag: it is the one
  deliberate, per-torrent "this costs me ratio" a user can set, while exempt tags are often set
  wholesale by other tools' rules (a paid torrent tagged ``fl`` by a mistaken rule is the case
  issue 13 names). Then an exempt tag → ``exempt_tag`` (spared, as before). Then MAM's answer.
  Tags compare case-insensitively, as the engine's exempt tags do.

Budget (SPEC §11), all in :class:`LookupQueue`
-----------------------------------------------
* one lookup per incomplete MAM torrent when first seen; again when an emergency is declared if
  the answer is older than 1 h (strictly older);
* at least 5 s between lookups, measured from the end of the previous one;
* at most 60 lookups in any rolling hour ``(t - 1 h, t]``; every request sent counts, failed and
  rate-limited ones included; the window is persisted, so a restart does not reset it;
* a 429 pauses every lookup until the client's back-off ends (the client also refuses all MAM
  requests until then, as for any 429);
* a lookup that failed (connection, unreadable answer) is retried 15 min later, an auth failure
  pauses lookups for 30 min; an emergency declaration makes failed ones due at once;
* first lookups go before re-checks, each in order of first sight;
* hashes that are not 40 hex characters (BitTorrent v2-only) are never looked up: unknown;
* the cache forgets every torrent not in the latest ``observe`` set (it left qBittorrent, or it
  completed and no longer downloads); at most :data:`MAX_TRACKED` torrents are tracked (those
  beyond stay unknown, hence frozen) and at most ``hourly_budget`` send times are kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
import logging
from typing import Any, Final, Protocol

from .errors import MamAuthError, MamError, MamRateLimitedError
from .search import TorrentFlags, is_info_hash

_LOGGER = logging.getLogger(__name__)

TAG_PAID: Final = "mam_guard_paid"
VIP_CLASSES: Final = frozenset({"vip", "elite vip"})

MIN_GAP: Final = timedelta(seconds=5)
HOURLY_BUDGET: Final = 60
BUDGET_WINDOW: Final = timedelta(hours=1)
RECHECK_AFTER: Final = timedelta(hours=1)
FAILURE_RETRY: Final = timedelta(minutes=15)
AUTH_PAUSE: Final = timedelta(minutes=30)
# A stored pause is honoured up to this far ahead (the client's longest 429 back-off).
MAX_PAUSE: Final = timedelta(days=7)
MAX_TRACKED: Final = 2000
STORAGE_VERSION: Final = 1
# The runner re-reads the queue at least this often when nothing wakes it.
IDLE_WAIT: Final = timedelta(minutes=5)


class Reason(StrEnum):
    """Why a MAM download is frozen (``paid``, ``unknown``) or spared (the others)."""

    PAID = "paid"
    UNKNOWN = "unknown"
    FREE = "free"
    PERSONAL_FL = "personal_fl"
    VIP = "vip"
    EXEMPT_TAG = "exempt_tag"


FROZEN_REASONS: Final = frozenset({Reason.PAID, Reason.UNKNOWN})
# MAM's answer alone makes these free: a torrent frozen earlier is given back (thawed).
FREE_REASONS: Final = frozenset({Reason.FREE, Reason.PERSONAL_FL, Reason.VIP})


def is_vip_class(classname: str | None) -> bool:
    """True for the classes VIP torrents are free for: ``VIP`` and ``Elite VIP``."""
    return classname is not None and " ".join(classname.split()).casefold() in VIP_CLASSES


def freeze_reason(
    flags: TorrentFlags | None,
    *,
    vip_account: bool,
    tags: Iterable[str] = (),
    exempt_tags: Iterable[str] = (),
) -> Reason:
    """Why this MAM download is frozen or spared; frozen iff the result is in FROZEN_REASONS.

    ``flags`` is MAM's answer (None: unknown — not looked up yet, failed, or not on MAM).
    Precedence: :data:`TAG_PAID` → ``paid``; an exempt tag → ``exempt_tag``; unknown →
    ``unknown``; ``free`` → ``free``; ``personal_freeleech`` → ``personal_fl``; ``vip`` or
    ``fl_vip`` on a VIP-class account → ``vip``; otherwise ``paid``.
    """
    folded = {tag.casefold() for tag in tags}
    if TAG_PAID in folded:
        return Reason.PAID
    if not folded.isdisjoint(tag.casefold() for tag in exempt_tags):
        return Reason.EXEMPT_TAG
    if flags is None:
        return Reason.UNKNOWN
    if flags.free:
        return Reason.FREE
    if flags.personal_freeleech:
        return Reason.PERSONAL_FL
    if vip_account and (flags.vip or flags.fl_vip):
        return Reason.VIP
    return Reason.PAID


@dataclass(frozen=True, slots=True)
class Answer:
    """MAM's answer about one torrent and when it was received."""

    flags: TorrentFlags | None  # None: "Nothing returned" (not on MAM): counts as unknown
    checked_at: datetime


@dataclass(slots=True)
class _Pending:
    not_before: datetime
    recheck: bool  # False: never answered (goes first); True: a re-check of an older answer
    seq: int


class LookupQueue:
    """Which torrent to look up next, within the budget, and the answers so far. No I/O.

    Every method takes ``now`` (aware UTC) from the caller; nothing here reads a clock or sleeps.
    """

    def __init__(
        self,
        *,
        min_gap: timedelta = MIN_GAP,
        hourly_budget: int = HOURLY_BUDGET,
        recheck_after: timedelta = RECHECK_AFTER,
        failure_retry: timedelta = FAILURE_RETRY,
        max_tracked: int = MAX_TRACKED,
    ) -> None:
        """Create an empty queue; the limits default to SPEC §11's budget."""
        self.min_gap = min_gap
        self.hourly_budget = hourly_budget
        self.recheck_after = recheck_after
        self.failure_retry = failure_retry
        self.max_tracked = max_tracked
        self._answers: dict[str, Answer] = {}
        self._pending: dict[str, _Pending] = {}
        self._sent: list[datetime] = []  # send times, oldest first, at most hourly_budget
        self._last: datetime | None = None  # end of the latest lookup
        self._paused_until: datetime | None = None
        self._seq = 0
        # Bumped whenever an answer is stored or forgotten: callers re-judge only then.
        self.revision = 0

    # -- what the caller tells the queue -----------------------------------------------------

    def observe(self, hashes: Iterable[str], now: datetime, *, forget: bool = True) -> None:
        """The incomplete MAM torrents in qBittorrent now (all clients of the account).

        New ones are queued for a first lookup; with ``forget``, every torrent not in ``hashes``
        is forgotten (answer and pending lookup) — pass False while ``hashes`` may be partial (a
        client not read yet). Hashes are compared in lower case; invalid ones are ignored.
        """
        current = {h.lower() for h in hashes if is_info_hash(h)}
        if not forget:
            current |= self._answers.keys() | self._pending.keys()
        if not self._answers.keys() <= current:
            self._answers = {h: a for h, a in self._answers.items() if h in current}
            self.revision += 1
        self._pending = {h: p for h, p in self._pending.items() if h in current}
        room = self.max_tracked - len(self._answers.keys() | self._pending.keys())
        for info_hash in sorted(current - self._answers.keys() - self._pending.keys()):
            if room <= 0:
                break
            self._queue(info_hash, now, recheck=False)
            room -= 1

    def on_emergency_declared(self, now: datetime) -> None:
        """Re-check every answer older than ``recheck_after``; failed lookups become due now."""
        for info_hash, answer in self._answers.items():
            if info_hash not in self._pending and now - answer.checked_at > self.recheck_after:
                self._queue(info_hash, now, recheck=True)
        for pending in self._pending.values():
            pending.not_before = min(pending.not_before, now)

    def record(self, info_hash: str, flags: TorrentFlags | None, now: datetime) -> None:
        """MAM answered (``flags``, or None for "Nothing returned"); the request counts."""
        key = info_hash.lower()
        self._count_sent(now)
        if key in self._pending or key in self._answers:  # not forgotten meanwhile
            self._answers[key] = Answer(flags, now)
            self._pending.pop(key, None)
            self.revision += 1

    def record_failure(
        self, info_hash: str, now: datetime, *, retry_after: timedelta | None = None
    ) -> None:
        """A lookup was sent but brought no usable answer: it counts, and is retried later.

        ``retry_after`` defaults to ``failure_retry``; a previous answer is kept meanwhile.
        """
        key = info_hash.lower()
        self._count_sent(now)
        retry_at = now + (self.failure_retry if retry_after is None else retry_after)
        if (pending := self._pending.get(key)) is not None:
            pending.not_before = retry_at
        elif key in self._answers:
            self._queue(key, retry_at, recheck=True)

    def pause_until(self, until: datetime) -> None:
        """No lookup before ``until`` (the client's 429 back-off, an auth pause)."""
        if self._paused_until is None or until > self._paused_until:
            self._paused_until = until

    # -- what the caller asks -------------------------------------------------------------------

    def next_due(self, now: datetime) -> str | None:
        """The hash to look up now, or None (nothing due, or the gap/budget/pause forbids it)."""
        if self._earliest_send(now) > now:
            return None
        due = [(p.recheck, p.seq, h) for h, p in self._pending.items() if p.not_before <= now]
        return min(due)[2] if due else None

    def next_time(self, now: datetime) -> datetime | None:
        """When :meth:`next_due` will next return a hash if nothing changes; None: nothing queued.

        Never earlier than ``now``.
        """
        if not self._pending:
            return None
        due = min(p.not_before for p in self._pending.values())
        return max(now, due, self._earliest_send(now))

    def known(self, info_hash: str) -> Answer | None:
        """MAM's latest answer about this torrent, or None when it has none yet."""
        return self._answers.get(info_hash.lower())

    def flags(self, info_hash: str) -> TorrentFlags | None:
        """The flags of the latest answer; None when unknown (no answer, or not on MAM)."""
        answer = self._answers.get(info_hash.lower())
        return answer.flags if answer is not None else None

    def is_pending(self, info_hash: str) -> bool:
        """A lookup of this torrent is queued (first sight, re-check or retry)."""
        return info_hash.lower() in self._pending

    def pending(self) -> list[str]:
        """The queued hashes in the order they would be looked up (ignoring retry times)."""
        return [h for _r, _s, h in sorted((p.recheck, p.seq, h) for h, p in self._pending.items())]

    def sent_within_hour(self, now: datetime) -> int:
        """How many lookups went out in the rolling hour ending at ``now``."""
        return sum(1 for sent in self._sent if now - BUDGET_WINDOW < sent <= now)

    @property
    def paused_until(self) -> datetime | None:
        """The end of the current pause (429 back-off, auth pause), possibly in the past."""
        return self._paused_until

    # -- storage ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot (answers, queue, budget) for HA storage."""
        return {
            "version": STORAGE_VERSION,
            "answers": {h: _answer_to_json(a) for h, a in sorted(self._answers.items())},
            "pending": [
                {"hash": h, "not_before": p.not_before.isoformat(), "recheck": p.recheck}
                for h, p in sorted(self._pending.items(), key=lambda item: item[1].seq)
            ],
            "sent": [sent.isoformat() for sent in self._sent],
            "last": _iso(self._last),
            "paused_until": _iso(self._paused_until),
        }

    @classmethod
    def from_dict(cls, data: object, *, now: datetime | None = None, **limits: Any) -> LookupQueue:
        """Rebuild from :meth:`to_dict` output; anything unreadable is skipped, never raised.

        ``now`` (default: the wall clock) caps stored times: a time in the future (a clock that
        went back) is read as ``now``; a retry as at most ``failure_retry`` ahead, a pause as at
        most :data:`MAX_PAUSE` ahead. ``limits`` are the constructor's keyword arguments.
        """
        queue = cls(**limits)
        now = now or datetime.now(UTC)
        if not isinstance(data, Mapping) or data.get("version") != STORAGE_VERSION:
            return queue
        answers = data.get("answers")
        for info_hash, item in answers.items() if isinstance(answers, Mapping) else ():
            answer = _answer_from_json(item, now)
            if answer is not None and is_info_hash(info_hash):
                queue._answers[info_hash.lower()] = answer
        pending = data.get("pending")
        for item in pending if isinstance(pending, list) else ():
            if not isinstance(item, Mapping) or not is_info_hash(key := item.get("hash")):
                continue
            not_before = _time(item.get("not_before"), now + queue.failure_retry)
            if not_before is not None:
                queue._queue(key.lower(), not_before, recheck=item.get("recheck") is True)
        sent = data.get("sent")
        times = [_time(s, now) for s in sent] if isinstance(sent, list) else []
        queue._sent = sorted(t for t in times if t is not None)[-queue.hourly_budget :]
        queue._last = _time(data.get("last"), now)
        paused = _time(data.get("paused_until"), now + MAX_PAUSE)
        queue._paused_until = paused if paused is not None and paused > now else None
        queue._trim()
        return queue

    # -- internals -------------------------------------------------------------------------------

    def _queue(self, info_hash: str, not_before: datetime, *, recheck: bool) -> None:
        self._seq += 1
        self._pending[info_hash] = _Pending(not_before, recheck, self._seq)

    def _count_sent(self, now: datetime) -> None:
        recent = sorted([s for s in self._sent if now - BUDGET_WINDOW < s] + [now])
        self._sent = recent[-self.hourly_budget :]  # older ones can no longer matter
        self._last = now if self._last is None else max(self._last, now)

    def _earliest_send(self, now: datetime) -> datetime:
        """The first moment the gap, the hourly budget and the pause all allow a lookup."""
        earliest = now
        if self._last is not None:
            earliest = max(earliest, self._last + self.min_gap)
        if self._paused_until is not None:
            earliest = max(earliest, self._paused_until)
        recent = [s for s in self._sent if now - BUDGET_WINDOW < s]
        if len(recent) >= self.hourly_budget:  # the oldest counted send must leave the window
            earliest = max(earliest, recent[-self.hourly_budget] + BUDGET_WINDOW)
        return earliest

    def _trim(self) -> None:
        """At most ``max_tracked`` torrents: pending first lookups are kept before old answers."""
        excess = len(self._answers.keys() | self._pending.keys()) - self.max_tracked
        if excess <= 0:
            return
        by_age = sorted(self._answers, key=lambda h: self._answers[h].checked_at)
        for info_hash in by_age[:excess]:
            del self._answers[info_hash]
            self._pending.pop(info_hash, None)
        excess = len(self._answers.keys() | self._pending.keys()) - self.max_tracked
        for info_hash in sorted(self._pending, key=lambda h: self._pending[h].seq)[::-1]:
            if excess <= 0:
                break
            if info_hash not in self._answers:
                del self._pending[info_hash]
                excess -= 1


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: object, cap: datetime) -> datetime | None:
    """An aware datetime from ISO text (naive = UTC), at most ``cap``."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return min(parsed, cap)


def _answer_to_json(answer: Answer) -> dict[str, Any]:
    item: dict[str, Any] = {"checked_at": answer.checked_at.isoformat()}
    if (flags := answer.flags) is None:
        return item | {"found": False}
    return item | {
        "found": True,
        "free": flags.free,
        "personal_freeleech": flags.personal_freeleech,
        "vip": flags.vip,
        "fl_vip": flags.fl_vip,
        "id": flags.id,
    }


def _answer_from_json(item: object, now: datetime) -> Answer | None:
    if not isinstance(item, Mapping):
        return None
    checked_at = _time(item.get("checked_at"), now)
    if checked_at is None or not isinstance(item.get("found"), bool):
        return None
    if not item["found"]:
        return Answer(None, checked_at)
    values = [item.get(name) for name in ("free", "personal_freeleech", "vip", "fl_vip")]
    torrent_id = item.get("id")
    if not all(isinstance(v, bool) for v in values) or not (
        torrent_id is None or (isinstance(torrent_id, int) and not isinstance(torrent_id, bool))
    ):
        return None
    free, personal, vip, fl_vip = (bool(v) for v in values)
    return Answer(TorrentFlags(free, personal, vip, fl_vip, torrent_id), checked_at)


# -- the runner ----------------------------------------------------------------------------------


class LookupClient(Protocol):
    """What the runner needs of :class:`~.mam.MamClient`."""

    @property
    def rate_limited_until(self) -> datetime | None:
        """When the client's 429 back-off ends (None: not backing off)."""

    async def async_lookup_hash(self, info_hash: str) -> TorrentFlags | None:
        """MAM's flags for the torrent, None when MAM has nothing for the hash."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FreeleechLookups:
    """Background runner: takes :meth:`LookupQueue.next_due`, asks MAM, records, persists, waits.

    Run :meth:`run` as a background task; cancel it to stop (a request in flight completes
    inside the client, which adopts and persists a rotated cookie). Nothing else awaits it: the
    queue is read synchronously. ``clock`` and ``sleep`` are injectable for tests and benchmarks
    (a fake ``sleep`` advancing a fake clock runs hours of schedule in milliseconds).
    """

    def __init__(
        self,
        client: LookupClient,
        queue: LookupQueue,
        persist: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
        *,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        idle_wait: timedelta = IDLE_WAIT,
        auth_pause: timedelta = AUTH_PAUSE,
        on_answer: Callable[[str, Answer], None] | None = None,
    ) -> None:
        """``persist`` receives :meth:`LookupQueue.to_dict` after each lookup (failures logged).

        ``on_answer`` is called with each new answer (e.g. to refresh entities early).
        """
        self.client = client
        self.queue = queue
        self._persist = persist
        self._clock = clock
        self._sleep = sleep
        self._idle_wait = idle_wait
        self._auth_pause = auth_pause
        self._on_answer = on_answer
        self._woken = asyncio.Event()
        self.lookups_sent = 0

    def wake(self) -> None:
        """The queue changed (observe, emergency): re-read it now instead of after a wait."""
        self._woken.set()

    async def run(self) -> None:
        """Look up due torrents until cancelled; never raises anything but CancelledError."""
        while True:
            self._woken.clear()
            at = await self.run_once()
            if at is None or at > (now := self._clock()):
                wait = self._idle_wait if at is None else min(at - now, self._idle_wait)
                await self._wait(wait.total_seconds())

    async def run_once(self) -> datetime | None:
        """At most one due lookup (recorded and persisted); when one is next due (None: none).

        The step :meth:`run` repeats; a caller with its own timers (Home Assistant) calls it at
        the returned time instead of keeping a task asleep. Never raises.
        """
        if (until := self.client.rate_limited_until) is not None:
            self.queue.pause_until(until)  # a 429 on any MAM request stops lookups too
        if (info_hash := self.queue.next_due(self._clock())) is not None:
            await self._lookup(info_hash)
            await self._save()
        return self.queue.next_time(self._clock())

    async def _lookup(self, info_hash: str) -> None:
        """One request; its outcome recorded in the queue (a failure never escapes)."""
        self.lookups_sent += 1
        try:
            flags = await self.client.async_lookup_hash(info_hash)
        except MamRateLimitedError as err:
            self.queue.record_failure(info_hash, self._clock(), retry_after=timedelta(0))
            self.queue.pause_until(err.retry_at)
            _LOGGER.info("Freeleech lookups paused until %s (rate limit)", err.retry_at)
        except MamAuthError as err:
            now = self._clock()
            self.queue.record_failure(info_hash, now)
            self.queue.pause_until(now + self._auth_pause)
            _LOGGER.debug("Freeleech lookup refused: %s", err)
        except MamError as err:
            self.queue.record_failure(info_hash, self._clock())
            _LOGGER.debug("Freeleech lookup failed: %s", err)
        except Exception:  # a bug must not end the background task for good
            self.queue.record_failure(info_hash, self._clock())
            _LOGGER.exception("Unexpected error in a freeleech lookup")
        else:
            now = self._clock()
            self.queue.record(info_hash, flags, now)
            if self._on_answer is not None and (answer := self.queue.known(info_hash)):
                self._on_answer(info_hash, answer)

    async def _save(self) -> None:
        if self._persist is None:
            return
        try:
            await self._persist(self.queue.to_dict())
        except Exception as err:  # storage trouble must not stop the lookups
            _LOGGER.warning("Could not store the freeleech lookups: %s", type(err).__name__)

    async def _wait(self, seconds: float) -> None:
        """Sleep ``seconds`` (the injected sleep) or until :meth:`wake`, whichever comes first."""
        if self._woken.is_set():
            return
        sleeper = asyncio.ensure_future(self._sleep(max(0.0, seconds)))
        waker = asyncio.ensure_future(self._woken.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waker):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
