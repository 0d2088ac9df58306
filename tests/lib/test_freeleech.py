"""Freeleech classification and the lookup queue: pure, on a hand-driven clock (SPEC §11)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import itertools
import json
from typing import Any

import pytest

from custom_components.mam_guard.lib.freeleech import (
    FROZEN_REASONS,
    HOURLY_BUDGET,
    MIN_GAP,
    TAG_PAID,
    Answer,
    LookupQueue,
    Reason,
    freeze_reason,
    is_vip_class,
)
from custom_components.mam_guard.lib.search import TorrentFlags

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
PAID = TorrentFlags(free=False, personal_freeleech=False, vip=False, fl_vip=False, id=1)
FREE = TorrentFlags(free=True, personal_freeleech=False, vip=False, fl_vip=False, id=2)
PERSONAL = TorrentFlags(free=False, personal_freeleech=True, vip=False, fl_vip=False)
VIP = TorrentFlags(free=False, personal_freeleech=False, vip=True, fl_vip=True)
FL_VIP_ONLY = TorrentFlags(free=False, personal_freeleech=False, vip=False, fl_vip=True)
VIP_ONLY = TorrentFlags(free=False, personal_freeleech=False, vip=True, fl_vip=False)
EXEMPT = frozenset({"freeleech", "fl", "vip", "vip_critical"})


def h(n: int) -> str:
    """A distinct, valid info hash."""
    return f"{n:040x}"


def sec(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


# -- classification -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "vip_account", "tags", "reason"),
    [
        (None, False, (), Reason.UNKNOWN),
        (None, True, (), Reason.UNKNOWN),
        (PAID, False, (), Reason.PAID),
        (PAID, True, (), Reason.PAID),
        (FREE, False, (), Reason.FREE),
        (PERSONAL, False, (), Reason.PERSONAL_FL),
        (TorrentFlags(True, True, True, True), True, (), Reason.FREE),  # free is named first
        (VIP, True, (), Reason.VIP),
        (VIP, False, (), Reason.PAID),  # VIP torrents cost a non-VIP account ratio
        (FL_VIP_ONLY, True, (), Reason.VIP),
        (FL_VIP_ONLY, False, (), Reason.PAID),
        (VIP_ONLY, True, (), Reason.VIP),
        # Exempt tags stay the user's override, whatever MAM says (or does not say).
        (PAID, False, ("fl",), Reason.EXEMPT_TAG),
        (None, False, ("VIP",), Reason.EXEMPT_TAG),  # case-insensitive, as the engine
        (FREE, False, ("freeleech", "other"), Reason.EXEMPT_TAG),
        # mam_guard_paid forces "paid": over MAM's "free" and over exempt tags.
        (FREE, False, (TAG_PAID,), Reason.PAID),
        (PERSONAL, True, (TAG_PAID,), Reason.PAID),
        (VIP, True, ("MAM_GUARD_PAID",), Reason.PAID),
        (FREE, False, ("fl", TAG_PAID), Reason.PAID),
        (None, False, (TAG_PAID,), Reason.PAID),
        (PAID, False, ("mam_guard_frozen",), Reason.PAID),
    ],
)
def test_freeze_reason(
    flags: TorrentFlags | None, vip_account: bool, tags: tuple[str, ...], reason: Reason
) -> None:
    got = freeze_reason(flags, vip_account=vip_account, tags=tags, exempt_tags=EXEMPT)
    assert got is reason
    assert (got in FROZEN_REASONS) == (reason in {Reason.PAID, Reason.UNKNOWN})


def test_reason_values_are_the_documented_ones() -> None:
    assert [r.value for r in Reason] == [
        "paid",
        "unknown",
        "free",
        "personal_fl",
        "vip",
        "exempt_tag",
    ]
    assert {Reason.PAID, Reason.UNKNOWN} == FROZEN_REASONS


def test_exempt_tags_are_ignored_when_not_given() -> None:
    """paid_downloads counts what costs ratio, exempt or not: call without exempt tags."""
    assert freeze_reason(PAID, vip_account=False, tags=("fl",)) is Reason.PAID
    assert freeze_reason(FREE, vip_account=False, tags={"fl"}, exempt_tags=["FL"]) is (
        Reason.EXEMPT_TAG
    )


@pytest.mark.parametrize(
    ("classname", "vip"),
    [
        ("VIP", True),
        ("vip", True),
        ("Elite VIP", True),
        ("  elite   VIP ", True),
        ("Power User", False),
        ("User", False),
        ("Mouse", False),
        ("Mouseketeer", False),
        ("Uploader", False),
        ("SysOp", False),  # staff: not known to get VIP torrents free (paid side)
        ("Administrator", False),
        ("VIP Elite", False),
        ("", False),
        (None, False),
    ],
)
def test_vip_classes(classname: str | None, vip: bool) -> None:
    assert is_vip_class(classname) is vip


# -- the queue: first sight, gap, budget ------------------------------------------------------


def drain(queue: LookupQueue, start: datetime, until: datetime) -> list[tuple[datetime, str]]:
    """Run the schedule on a jumping clock (what the runner does), answering "paid" to all."""
    now, sent = start, []
    while now <= until:
        info_hash = queue.next_due(now)
        if info_hash is not None:
            sent.append((now, info_hash))
            queue.record(info_hash, PAID, now)
            continue
        at = queue.next_time(now)
        if at is None:
            break
        assert at > now  # nothing due now, so the next moment is later: no busy loop
        now = at
    return sent


def assert_within_budget(times: list[datetime]) -> None:
    times = sorted(times)
    for earlier, later in itertools.pairwise(times):
        assert later - earlier >= MIN_GAP
    for end in times:  # any rolling hour (t - 1 h, t] ending at a send holds at most 60
        assert sum(1 for t in times if end - timedelta(hours=1) < t <= end) <= HOURLY_BUDGET


def test_first_sight_one_lookup_each_in_order() -> None:
    queue = LookupQueue()
    queue.observe([h(2), h(1).upper(), "not-a-hash", "a" * 64], T0)
    assert queue.pending() == [h(1), h(2)]
    assert queue.next_due(T0) == h(1)
    assert queue.is_pending(h(1).upper())
    queue.record(h(1), FREE, T0)
    assert queue.known(h(1)) == Answer(FREE, T0)
    assert queue.flags(h(1).upper()) == FREE
    assert queue.next_due(T0 + sec(4.9)) is None  # the 5 s gap
    assert queue.next_time(T0) == T0 + MIN_GAP
    assert queue.next_due(T0 + MIN_GAP) == h(2)
    queue.record(h(2), None, T0 + MIN_GAP)  # "Nothing returned": answered, flags unknown
    assert queue.known(h(2)) == Answer(None, T0 + MIN_GAP)
    assert queue.flags(h(2)) is None
    assert queue.next_due(T0 + timedelta(days=1)) is None
    assert queue.next_time(T0) is None  # nothing queued
    queue.observe([h(1), h(2)], T0 + timedelta(hours=5))  # seen again: no second lookup
    assert queue.pending() == []
    assert queue.flags("not-a-hash") is None


def test_budget_holds_for_100_new_torrents() -> None:
    queue = LookupQueue()
    queue.observe([h(n) for n in range(100)], T0)
    sent = drain(queue, T0, T0 + timedelta(hours=3))
    times = [t for t, _ in sent]
    assert sorted(info_hash for _, info_hash in sent) == [h(n) for n in range(100)]
    assert_within_budget(times)
    assert sum(1 for t in times if t < T0 + timedelta(hours=1)) == 60
    assert times[59] == T0 + 59 * MIN_GAP  # the first 60 go as fast as the gap allows
    assert times[60] == T0 + timedelta(hours=1)  # the 61st waits for the first to leave
    assert times[-1] == T0 + timedelta(hours=1) + 39 * MIN_GAP
    assert queue.sent_within_hour(times[-1]) == 60  # 20 from the first burst + 40


def test_budget_counts_failures_and_keeps_at_most_a_budget_of_times() -> None:
    queue = LookupQueue(hourly_budget=3, min_gap=timedelta(0))
    queue.observe([h(n) for n in range(5)], T0)
    for n in range(3):
        queue.record_failure(h(n), T0 + sec(n))
    assert queue.next_due(T0 + sec(10)) is None  # 3 sent in the hour, although none answered
    assert queue.next_time(T0 + sec(10)) == T0 + timedelta(hours=1)
    assert queue.next_due(T0 + timedelta(hours=1)) == h(0)  # failed ones are due again
    for n in range(10):
        queue.record(h(4), PAID, T0 + timedelta(hours=2) + sec(n))
    assert len(queue.to_dict()["sent"]) == 3


def test_budget_of_one_an_hour() -> None:
    queue = LookupQueue(hourly_budget=1)
    queue.observe([h(1), h(2), h(3)], T0)
    sent = drain(queue, T0, T0 + timedelta(hours=5))
    assert [t for t, _ in sent] == [T0 + timedelta(hours=n) for n in range(3)]


# -- emergency re-checks ------------------------------------------------------------------------


def test_recheck_at_emergency_only_when_older_than_an_hour() -> None:
    queue = LookupQueue()
    queue.observe([h(1), h(2)], T0)
    queue.record(h(1), PAID, T0)
    queue.record(h(2), PAID, T0 + timedelta(minutes=30))
    queue.on_emergency_declared(T0 + timedelta(hours=1))  # exactly 1 h: not older
    assert queue.pending() == []
    queue.on_emergency_declared(T0 + timedelta(hours=1, seconds=1))
    assert queue.pending() == [h(1)]
    queue.on_emergency_declared(T0 + timedelta(hours=1, seconds=2))  # no duplicate
    assert queue.pending() == [h(1)]
    assert queue.known(h(1)) == Answer(PAID, T0)  # the old answer holds meanwhile
    queue.record(h(1), FREE, T0 + timedelta(hours=2))
    assert queue.flags(h(1)) == FREE


def test_first_lookups_go_before_rechecks() -> None:
    queue = LookupQueue(min_gap=timedelta(0))
    queue.observe([h(1)], T0)
    queue.record(h(1), PAID, T0)
    later = T0 + timedelta(hours=2)
    queue.on_emergency_declared(later)
    queue.observe([h(1), h(9)], later)  # seen after the recheck was queued
    assert queue.pending() == [h(9), h(1)]
    assert queue.next_due(later) == h(9)


# -- failures, pauses, departures --------------------------------------------------------------


def test_failed_lookup_is_retried_later_or_at_an_emergency() -> None:
    queue = LookupQueue()
    queue.observe([h(1), h(2)], T0)
    queue.record_failure(h(1), T0)
    assert queue.known(h(1)) is None
    assert queue.is_pending(h(1))
    assert queue.next_due(T0 + MIN_GAP) == h(2)
    queue.record(h(2), PAID, T0 + MIN_GAP)
    assert queue.next_due(T0 + timedelta(minutes=14)) is None
    assert queue.next_time(T0 + timedelta(minutes=14)) == T0 + timedelta(minutes=15)
    assert queue.next_due(T0 + timedelta(minutes=15)) == h(1)
    queue.record_failure(h(1), T0 + timedelta(minutes=15))
    queue.on_emergency_declared(T0 + timedelta(minutes=16))  # due at once in an emergency
    assert queue.next_due(T0 + timedelta(minutes=16)) == h(1)


def test_failed_recheck_keeps_the_old_answer_and_retries() -> None:
    queue = LookupQueue()
    queue.observe([h(1)], T0)
    queue.record(h(1), FREE, T0)
    queue.record_failure(h(1), T0 + timedelta(hours=3), retry_after=timedelta(minutes=1))
    assert queue.flags(h(1)) == FREE
    assert queue.is_pending(h(1))
    assert queue.next_due(T0 + timedelta(hours=3, seconds=59)) is None
    assert queue.next_due(T0 + timedelta(hours=3, minutes=1)) == h(1)


def test_pause_stops_every_lookup_until_it_ends() -> None:
    queue = LookupQueue()
    queue.observe([h(1)], T0)
    queue.pause_until(T0 + timedelta(minutes=30))
    queue.pause_until(T0 + timedelta(minutes=10))  # an earlier end never shortens a pause
    assert queue.paused_until == T0 + timedelta(minutes=30)
    assert queue.next_due(T0 + timedelta(minutes=29)) is None
    assert queue.next_time(T0) == T0 + timedelta(minutes=30)
    assert queue.next_due(T0 + timedelta(minutes=30)) == h(1)


def test_departed_torrents_are_forgotten() -> None:
    queue = LookupQueue()
    queue.observe([h(1), h(2), h(3)], T0)
    queue.record(h(1), FREE, T0)
    queue.record_failure(h(2), T0 + MIN_GAP)
    queue.observe([h(3)], T0 + timedelta(minutes=1))  # 1 and 2 left qBittorrent (or completed)
    assert queue.known(h(1)) is None
    assert not queue.is_pending(h(2))
    assert queue.pending() == [h(3)]
    assert set(queue.to_dict()["answers"]) == set()
    # An answer arriving for a torrent forgotten meanwhile counts, but is not kept.
    queue.record(h(1), FREE, T0 + timedelta(minutes=2))
    queue.record_failure(h(2), T0 + timedelta(minutes=3))
    assert queue.known(h(1)) is None
    assert not queue.is_pending(h(2))
    assert queue.sent_within_hour(T0 + timedelta(minutes=3)) == 4
    queue.observe([h(1)], T0 + timedelta(minutes=4))  # back again: looked up afresh
    assert queue.pending() == [h(1)]


def test_tracking_is_bounded() -> None:
    queue = LookupQueue(max_tracked=3)
    queue.observe([h(n) for n in range(5)], T0)
    assert queue.pending() == [h(0), h(1), h(2)]  # the rest stay unknown (frozen)
    queue.record(h(0), PAID, T0)
    queue.observe([h(n) for n in range(1, 5)], T0 + timedelta(minutes=1))
    assert queue.pending() == [h(1), h(2), h(3)]


# -- storage ------------------------------------------------------------------------------------


def busy_queue() -> LookupQueue:
    queue = LookupQueue()
    queue.observe([h(n) for n in range(6)], T0)
    queue.record(h(0), FREE, T0)
    queue.record(h(1), None, T0 + sec(5))
    queue.record(h(2), PERSONAL, T0 + sec(10))
    queue.record_failure(h(3), T0 + sec(15))
    queue.pause_until(T0 + timedelta(minutes=45))
    return queue


def test_round_trip_through_json() -> None:
    queue = busy_queue()
    data = json.loads(json.dumps(queue.to_dict()))  # what HA storage keeps
    now = T0 + timedelta(minutes=1)
    restored = LookupQueue.from_dict(data, now=now)
    assert restored.to_dict() == queue.to_dict()
    assert restored.known(h(0)) == Answer(FREE, T0)
    assert restored.known(h(1)) == Answer(None, T0 + sec(5))
    assert restored.flags(h(2)) == PERSONAL
    assert restored.pending() == [h(3), h(4), h(5)]
    assert restored.sent_within_hour(now) == 4
    assert restored.paused_until == T0 + timedelta(minutes=45)
    assert restored.next_due(now) is None  # the pause and the budget survive a restart
    assert restored.next_time(now) == T0 + timedelta(minutes=45)
    # The cache still forgets departed torrents after a restart.
    restored.observe([h(0), h(4)], now)
    assert set(restored.to_dict()["answers"]) == {h(0)}
    assert restored.pending() == [h(4)]


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "junk",
        {},
        {"version": 99, "answers": {}},
        {"version": 1, "answers": [], "pending": {}, "sent": "x", "last": 5, "paused_until": []},
    ],
)
def test_from_dict_of_garbage_is_an_empty_queue(data: Any) -> None:
    queue = LookupQueue.from_dict(data, now=T0)
    assert queue.to_dict() == LookupQueue().to_dict()


def test_from_dict_skips_bad_entries_and_caps_times() -> None:
    future = (T0 + timedelta(days=400)).isoformat()
    data = {
        "version": 1,
        "answers": {
            h(1): {"checked_at": "2026-11-24T11:00:00", "found": True, "free": True}
            | {"personal_freeleech": False, "vip": False, "fl_vip": False, "id": None},
            h(2): {"checked_at": future, "found": False},  # a clock that went back
            h(3): {"checked_at": "yesterday", "found": False},
            h(4): {"checked_at": T0.isoformat(), "found": "yes"},
            h(5): {"checked_at": T0.isoformat(), "found": True, "free": 1},
            h(6): {"checked_at": T0.isoformat(), "found": True, "id": True}
            | dict.fromkeys(("free", "personal_freeleech", "vip", "fl_vip"), False),
            h(7): "junk",
            "not-a-hash": {"checked_at": T0.isoformat(), "found": False},
        },
        "pending": [
            {"hash": h(8), "not_before": T0.isoformat(), "recheck": False},
            {"hash": "nope", "not_before": T0.isoformat()},
            {"hash": h(9), "not_before": None},
            "junk",
            {"hash": h(10).upper(), "not_before": future, "recheck": True},
        ],
        "sent": [T0.isoformat(), future, "junk", 7],
        "last": future,
        "paused_until": future,  # honoured up to 7 days ahead
    }
    queue = LookupQueue.from_dict(data, now=T0)
    assert queue.known(h(1)) == Answer(
        TorrentFlags(True, False, False, False), datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
    )
    assert queue.known(h(2)) == Answer(None, T0)
    assert [n for n in range(1, 8) if queue.known(h(n))] == [1, 2]
    assert queue.pending() == [h(8), h(10)]
    assert queue.next_time(T0) == T0 + timedelta(days=7)
    assert queue.sent_within_hour(T0) == 2


def test_from_dict_past_pause_is_dropped_and_bounds_apply() -> None:
    queue = busy_queue()
    data = queue.to_dict()
    later = T0 + timedelta(hours=2)
    restored = LookupQueue.from_dict(data, now=later)
    assert restored.paused_until is None
    assert restored.next_due(later) == h(3)
    # A smaller bound (a newer version) keeps pending first lookups before the oldest answers.
    small = LookupQueue.from_dict(data, now=later, max_tracked=4)
    assert {n for n in range(6) if small.known(h(n))} == {2}
    assert small.pending() == [h(3), h(4), h(5)]
    tiny = LookupQueue.from_dict(data, now=later, max_tracked=2)
    assert [n for n in range(6) if tiny.known(h(n))] == []
    assert tiny.pending() == [h(3), h(4)]


def test_observe_without_forget_keeps_what_a_partial_view_lacks() -> None:
    """Until every client was read, the union is partial: nothing is forgotten, new ones queue."""
    queue = LookupQueue()
    a, b, c = "a" * 40, "b" * 40, "c" * 40
    queue.observe([a, b], T0)
    queue.record(a, None, T0)
    queue.record(b, None, T0)
    queue.observe([a, c], T0, forget=False)  # the client holding b not read yet
    assert queue.known(b) is not None
    assert queue.is_pending(c)
    queue.observe([a, c], T0)  # every client read: b left qBittorrent
    assert queue.known(b) is None
