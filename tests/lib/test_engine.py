"""Pure emergency decision logic (SPEC §4): decide and the plan_* functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import math

from hypothesis import given, strategies as st
import pytest

from custom_components.mam_guard.lib.engine import (
    DOWNLOADING_STATES,
    PREF_MAX_ACTIVE_TORRENTS,
    PREF_MAX_ACTIVE_UPLOADS,
    PREF_SCHEDULER,
    PREF_UP_LIMIT,
    TAG_FORCED,
    TAG_FROZEN,
    Decision,
    EmergencyOptions,
    TorrentState,
    decide,
    plan_force,
    plan_freeze,
    plan_prefs,
    plan_refreeze,
    plan_release,
)

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
OPTS = EmergencyOptions()
ALL_STATES = [
    *sorted(DOWNLOADING_STATES),
    "pausedDL",
    "stoppedDL",
    "pausedUP",
    "stoppedUP",
    "stalledUP",
    "queuedUP",
    "uploading",
    "forcedUP",
    "missingFiles",
    "error",
    "moving",
    "checkingUP",
]


def tor(
    h: str,
    state: str = "stalledDL",
    *,
    progress: float | None = None,
    tags: tuple[str, ...] = (),
    force: bool = False,
    mam: bool = True,
) -> TorrentState:
    if progress is None:
        progress = 1.0 if state.endswith("UP") else 0.5
    return TorrentState(h, h, state, progress, frozenset(tags), force, mam)


def d(ratio: float | None, *, active: bool = False, manual: bool = False, **kw: object) -> Decision:
    opts = kw.pop("options", OPTS)
    hold = kw.pop("hold_off_until", None)
    assert isinstance(opts, EmergencyOptions)
    assert hold is None or isinstance(hold, datetime)
    return decide(ratio, active=active, manual=manual, hold_off_until=hold, now=NOW, options=opts)


# -- decide ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ratio", "expected"),
    [
        (0.5, Decision.ENTER),
        (1.0, Decision.ENTER),
        (1.0001, Decision.NONE),
        (float("inf"), Decision.NONE),
    ],
)
def test_decide_enter_boundary_is_inclusive(ratio: float, expected: Decision) -> None:
    assert d(ratio) is expected


def test_decide_unknown_ratio_never_changes_state() -> None:
    for active in (False, True):
        for manual in (False, True):
            assert d(None, active=active, manual=manual) is Decision.NONE
            assert d(float("nan"), active=active, manual=manual) is Decision.NONE


def test_decide_infinite_ratio_releases_an_automatic_emergency() -> None:
    assert d(float("inf"), active=True) is Decision.RELEASE
    assert d(float("inf"), active=True, manual=True) is Decision.NONE


def test_decide_hysteresis_with_margin() -> None:
    opts = EmergencyOptions(ratio_threshold=1.0, release_margin=0.2)
    assert d(1.0, options=opts) is Decision.ENTER
    assert d(1.1, options=opts) is Decision.NONE  # not active: above threshold, no entry
    assert d(1.1, active=True, options=opts) is Decision.NONE  # active: inside band, stay
    assert d(1.2, active=True, options=opts) is Decision.NONE  # boundary: must be strictly above
    assert d(1.21, active=True, options=opts) is Decision.RELEASE
    assert d(0.9, active=True, options=opts) is Decision.NONE  # already active


def test_decide_zero_margin_releases_just_above_threshold() -> None:
    assert d(1.0, active=True) is Decision.NONE
    assert d(1.01, active=True) is Decision.RELEASE


def test_decide_hold_off() -> None:
    assert d(0.5, hold_off_until=NOW + timedelta(seconds=1)) is Decision.NONE
    assert d(0.5, hold_off_until=NOW) is Decision.ENTER  # hold-off ended exactly now
    assert d(0.5, hold_off_until=NOW - timedelta(hours=1)) is Decision.ENTER


def test_decide_manual_only_left_by_explicit_release() -> None:
    assert d(5.0, active=True, manual=True) is Decision.NONE
    assert d(5.0, active=True, manual=False) is Decision.RELEASE


@given(
    ratio=st.none() | st.floats(allow_nan=True),
    active=st.booleans(),
    manual=st.booleans(),
    threshold=st.floats(0, 10),
    margin=st.floats(0, 2),
    hold=st.none() | st.integers(-1000, 1000),
)
def test_decide_properties(
    ratio: float | None,
    active: bool,
    manual: bool,
    threshold: float,
    margin: float,
    hold: int | None,
) -> None:
    opts = EmergencyOptions(ratio_threshold=threshold, release_margin=margin)
    hold_off = None if hold is None else NOW + timedelta(seconds=hold)
    result = d(ratio, active=active, manual=manual, options=opts, hold_off_until=hold_off)
    if ratio is None or math.isnan(ratio):
        assert result is Decision.NONE
    if result is Decision.ENTER:
        assert not active
        assert ratio is not None
        assert ratio <= threshold
        assert hold_off is None or hold_off <= NOW
    if result is Decision.RELEASE:
        assert active
        assert not manual
        assert ratio is not None
        assert ratio > threshold + margin
    if not active and ratio is not None and ratio > threshold:
        assert result is Decision.NONE


# -- plan_freeze ----------------------------------------------------------------------------------
def test_plan_freeze_states() -> None:
    torrents = [tor(f"h{i}", s) for i, s in enumerate(ALL_STATES)]
    frozen = plan_freeze(torrents, OPTS)
    assert {t.state for t in torrents if t.hash in frozen} == set(DOWNLOADING_STATES)
    assert "pausedDL" not in {t.state for t in torrents if t.hash in frozen}


@pytest.mark.parametrize("tag", ["freeleech", "FreeLeech", "FL", "vip", "VIP_Critical"])
def test_plan_freeze_exempt_tags_case_insensitive(tag: str) -> None:
    assert plan_freeze([tor("a", tags=(tag, "other"))], OPTS) == []


def test_plan_freeze_custom_exempt_tags_case_insensitive() -> None:
    opts = EmergencyOptions(exempt_tags=frozenset({"Keep"}))
    assert plan_freeze([tor("a", tags=("kEEP",)), tor("b", tags=("freeleech",))], opts) == ["b"]


def test_plan_freeze_ignores_non_mam_complete_frozen_and_skipped() -> None:
    torrents = [
        tor("nonmam", mam=False),
        tor("complete", "checkingDL", progress=1.0),
        tor("frozen", tags=(TAG_FROZEN,)),
        tor("user", "downloading"),
        tor("ok", "queuedDL"),
    ]
    assert plan_freeze(torrents, OPTS, skip={"user"}) == ["ok"]
    assert plan_freeze(torrents, OPTS) == ["ok", "user"]


@given(
    st.lists(
        st.builds(
            tor,
            st.text("abcdef0123", min_size=1, max_size=6),
            st.sampled_from(ALL_STATES),
            progress=st.floats(0, 1),
            tags=st.lists(st.sampled_from(["fl", "FL", "vip", "x", TAG_FROZEN, "Freeleech"])).map(
                tuple
            ),
            force=st.booleans(),
            mam=st.booleans(),
        ),
        max_size=20,
        unique_by=lambda t: t.hash,
    )
)
def test_plan_freeze_never_returns_exempt_nonmam_complete_or_stopped(
    torrents: list[TorrentState],
) -> None:
    frozen = set(plan_freeze(torrents, OPTS))
    exempt = {"freeleech", "fl", "vip", "vip_critical"}
    for t in torrents:
        if t.hash in frozen:
            assert t.is_mam
            assert not t.complete
            assert t.state in DOWNLOADING_STATES
            assert not {tag.lower() for tag in t.tags} & exempt
            assert TAG_FROZEN not in t.tags


def test_plan_refreeze_only_tagged_and_downloading() -> None:
    torrents = [
        tor("a", "downloading", tags=(TAG_FROZEN,)),
        tor("b", "pausedDL", tags=(TAG_FROZEN,)),
        tor("c", "stoppedDL", tags=(TAG_FROZEN,)),
        tor("d", "downloading"),
    ]
    assert plan_refreeze(torrents) == ["a"]


# -- plan_force -----------------------------------------------------------------------------------
def test_plan_force() -> None:
    torrents = [
        tor("stalled", "stalledUP"),
        tor("queued", "queuedUP"),
        tor("uploading", "uploading"),
        tor("user_forced", "stalledUP", force=True),
        tor("nonmam", "stalledUP", mam=False),
        tor("paused", "pausedUP"),
        tor("dl", "stalledDL"),
        tor("partial", "queuedUP", progress=0.99),
    ]
    force, reannounce = plan_force(torrents, TAG_FORCED)
    assert force == ["queued", "stalled"]
    # A seed we forced earlier whose tag the user removed is theirs: never forced again.
    assert plan_force(torrents, TAG_FORCED, skip={"stalled"})[0] == ["queued"]
    assert reannounce == ["stalled"]


# -- plan_prefs -----------------------------------------------------------------------------------
def test_plan_prefs_raises_limits_and_unlimits_rate() -> None:
    current = {
        PREF_MAX_ACTIVE_UPLOADS: 3,
        PREF_MAX_ACTIVE_TORRENTS: 5,
        PREF_UP_LIMIT: 10240,
        PREF_SCHEDULER: True,
    }
    assert plan_prefs(current, OPTS) == {
        PREF_MAX_ACTIVE_UPLOADS: 50,
        PREF_MAX_ACTIVE_TORRENTS: 50,
        PREF_UP_LIMIT: 0,
        PREF_SCHEDULER: False,
    }


def test_plan_prefs_never_lowers_or_touches_unlimited() -> None:
    current = {
        PREF_MAX_ACTIVE_UPLOADS: -1,
        PREF_MAX_ACTIVE_TORRENTS: 80,
        PREF_UP_LIMIT: 0,
        PREF_SCHEDULER: False,
    }
    assert plan_prefs(current, OPTS) == {}
    assert plan_prefs({PREF_MAX_ACTIVE_UPLOADS: 50}, OPTS) == {}  # equal is enough


def test_plan_prefs_rate_untouched_when_option_off() -> None:
    opts = EmergencyOptions(unlimited_upload_rate=False, emergency_active_uploads=10)
    current = {
        PREF_MAX_ACTIVE_UPLOADS: 3,
        PREF_MAX_ACTIVE_TORRENTS: 20,
        PREF_UP_LIMIT: 1024,
        PREF_SCHEDULER: True,
    }
    assert plan_prefs(current, opts) == {PREF_MAX_ACTIVE_UPLOADS: 10}


@given(
    st.dictionaries(
        st.sampled_from([PREF_MAX_ACTIVE_UPLOADS, PREF_MAX_ACTIVE_TORRENTS]), st.integers(-1, 200)
    )
)
def test_plan_prefs_property_only_raises(current: dict[str, int]) -> None:
    for key, value in plan_prefs(current, OPTS).items():
        if key in (PREF_MAX_ACTIVE_UPLOADS, PREF_MAX_ACTIVE_TORRENTS):
            assert current[key] != -1
            assert value > current[key]
            assert value == OPTS.emergency_active_uploads


# -- plan_release ---------------------------------------------------------------------------------
def test_plan_release_restores_only_unchanged_prefs() -> None:
    snapshot = {
        PREF_MAX_ACTIVE_UPLOADS: 3,
        PREF_MAX_ACTIVE_TORRENTS: 5,
        PREF_UP_LIMIT: 1024,
        PREF_SCHEDULER: True,
    }
    applied = {PREF_MAX_ACTIVE_UPLOADS: 50, PREF_MAX_ACTIVE_TORRENTS: 50, PREF_UP_LIMIT: 0}
    current = {
        PREF_MAX_ACTIVE_UPLOADS: 7,
        PREF_MAX_ACTIVE_TORRENTS: 50,
        PREF_UP_LIMIT: 0,
        PREF_SCHEDULER: True,
    }
    plan = plan_release([], snapshot=snapshot, applied=applied, current_prefs=current)
    # user set max_active_uploads to 7: kept; scheduler was never applied by us: untouched
    assert plan.prefs == {PREF_MAX_ACTIVE_TORRENTS: 5, PREF_UP_LIMIT: 1024}


def test_plan_release_without_snapshot_restores_nothing() -> None:
    plan = plan_release(
        [], snapshot=None, applied={PREF_UP_LIMIT: 0}, current_prefs={PREF_UP_LIMIT: 0}
    )
    assert plan.prefs == {}


def test_plan_release_follows_tags() -> None:
    torrents = [
        tor("frozen", "pausedDL", tags=(TAG_FROZEN,)),
        tor("user_resumed_kept_tag", "downloading", tags=(TAG_FROZEN,)),
        tor("user_took_back", "downloading"),  # tag removed by the user: theirs
        tor("forced", "forcedUP", force=True, tags=(TAG_FORCED, "x")),
        tor("user_forced", "forcedUP", force=True),
    ]
    plan = plan_release(torrents, snapshot={}, applied={}, current_prefs={})
    assert plan.resume == ["frozen", "user_resumed_kept_tag"]
    assert plan.unforce == ["forced"]
