"""Pure emergency decision logic (SPEC §4): decide and the plan_* functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import math
from typing import Any

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
    Classifier,
    Decision,
    EmergencyOptions,
    ReleasePlan,
    TorrentState,
    decide,
    foreign_prefs,
    plan_force,
    plan_freeze,
    plan_prefs,
    plan_refreeze,
    plan_release,
    plan_thaw,
    plannable,
    tag_classifier,
)
from custom_components.mam_guard.lib.freeleech import TAG_PAID, Reason

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


def test_plan_refreeze_only_owned_tagged_and_downloading() -> None:
    torrents = [
        tor("a", "downloading", tags=(TAG_FROZEN,)),
        tor("b", "pausedDL", tags=(TAG_FROZEN,)),
        tor("c", "stoppedDL", tags=(TAG_FROZEN,)),
        tor("d", "downloading"),
        tor("other", "downloading", tags=(TAG_FROZEN,)),  # another executor's
    ]
    assert plan_refreeze(torrents, owned={"a", "b", "c", "d"}) == ["a"]
    assert plan_refreeze(torrents, owned=()) == []


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


def test_plan_force_leaves_other_executors_tagged_seeds_alone() -> None:
    torrents = [
        tor("theirs", "stalledUP", tags=(TAG_FORCED,)),  # tagged, not forced yet: not ours
        tor("ours", "queuedUP", tags=(TAG_FORCED,)),  # we tagged it, then crashed: force it
        tor("new", "stalledUP"),
    ]
    assert plan_force(torrents, TAG_FORCED, owned={"ours"}) == (["new", "ours"], ["new"])
    assert plan_force(torrents, TAG_FORCED) == (["new"], ["new"])


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
def release(torrents: list[TorrentState], **kw: object) -> ReleasePlan:
    owned = {t.hash for t in torrents}
    args: dict[str, Any] = {
        "snapshot": {},
        "applied": {},
        "current_prefs": {},
        "frozen_owned": owned,
        "forced_owned": owned,
    }
    return plan_release(torrents, **(args | kw))


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
    plan = release([], snapshot=snapshot, applied=applied, current_prefs=current)
    # user set max_active_uploads to 7: kept; scheduler was never applied by us: untouched
    assert plan.prefs == {PREF_MAX_ACTIVE_TORRENTS: 5, PREF_UP_LIMIT: 1024}


def test_plan_release_without_snapshot_restores_nothing() -> None:
    plan = release([], snapshot=None, applied={PREF_UP_LIMIT: 0}, current_prefs={PREF_UP_LIMIT: 0})
    assert plan.prefs == {}


def test_plan_release_follows_tags() -> None:
    torrents = [
        tor("frozen", "pausedDL", tags=(TAG_FROZEN,)),
        tor("user_resumed_kept_tag", "downloading", tags=(TAG_FROZEN,)),
        tor("user_took_back", "downloading"),  # tag removed by the user: theirs
        tor("forced", "forcedUP", force=True, tags=(TAG_FORCED, "x")),
        tor("user_forced", "forcedUP", force=True),
    ]
    plan = release(torrents)
    assert plan.resume == ["frozen", "user_resumed_kept_tag"]
    assert plan.untag_frozen == plan.resume
    assert plan.force_resume == []
    assert plan.unforce == plan.untag_forced == ["forced"]


def test_plan_release_only_touches_owned_torrents() -> None:
    """Another executor's tagged torrents (same tags, not in our record) are left alone."""
    torrents = [
        tor("mine", "pausedDL", tags=(TAG_FROZEN,)),
        tor("theirs", "pausedDL", tags=(TAG_FROZEN,)),
        tor("my_seed", "forcedUP", force=True, tags=(TAG_FORCED,)),
        tor("their_seed", "forcedUP", force=True, tags=(TAG_FORCED,)),
    ]
    plan = release(torrents, frozen_owned={"mine", "my_seed"}, forced_owned={"my_seed", "mine"})
    assert (plan.resume, plan.untag_frozen) == (["mine"], ["mine"])
    assert (plan.unforce, plan.untag_forced) == (["my_seed"], ["my_seed"])
    nothing = release(torrents, frozen_owned=(), forced_owned=())
    assert nothing.untag_frozen == nothing.untag_forced == []


def test_plan_release_restores_force_start_and_keeps_user_stopped_seeds_stopped() -> None:
    torrents = [
        tor("was_forced", "pausedDL", tags=(TAG_FROZEN,)),
        tor("plain", "stoppedDL", tags=(TAG_FROZEN,)),
        tor("seed", "forcedUP", force=True, tags=(TAG_FORCED,)),
        tor("user_paused", "pausedUP", tags=(TAG_FORCED,)),
        tor("user_stopped", "stoppedUP", tags=(TAG_FORCED,)),
    ]
    plan = release(torrents, force_started={"was_forced", "gone"})
    assert plan.resume == ["plain"]
    assert plan.force_resume == ["was_forced"]
    assert plan.untag_frozen == ["plain", "was_forced"]
    assert plan.unforce == ["seed"]  # setForceStart(false) would start the stopped ones
    assert plan.untag_forced == ["seed", "user_paused", "user_stopped"]


# -- foreign_prefs --------------------------------------------------------------------------------
SNAPSHOT = {
    PREF_MAX_ACTIVE_UPLOADS: 3,
    PREF_MAX_ACTIVE_TORRENTS: 5,
    PREF_UP_LIMIT: 1024,
    PREF_SCHEDULER: True,
}


def test_foreign_prefs_first_run_nothing_changed() -> None:
    assert foreign_prefs(SNAPSHOT, SNAPSHOT, {}) == frozenset()


def test_foreign_prefs_rerun_after_set_preferences() -> None:
    """Crash right after setPreferences; meanwhile the user lowered max_active_uploads."""
    applied = {PREF_MAX_ACTIVE_UPLOADS: 50, PREF_MAX_ACTIVE_TORRENTS: 50, PREF_UP_LIMIT: 0}
    current = SNAPSHOT | {PREF_MAX_ACTIVE_UPLOADS: 7, PREF_MAX_ACTIVE_TORRENTS: 50}
    # up_limit still holds the snapshot value (the set did not take): ours to apply again
    assert foreign_prefs(current, SNAPSHOT, applied) == {PREF_MAX_ACTIVE_UPLOADS}


def test_foreign_prefs_user_change_of_a_key_we_never_set() -> None:
    current = SNAPSHOT | {PREF_SCHEDULER: False, PREF_UP_LIMIT: 0}
    assert foreign_prefs(current, SNAPSHOT, {PREF_UP_LIMIT: 0}) == {PREF_SCHEDULER}


def test_foreign_prefs_no_snapshot_value_means_hands_off() -> None:
    assert foreign_prefs(SNAPSHOT, {}, {}) == frozenset(SNAPSHOT)
    assert foreign_prefs({}, {}, {PREF_UP_LIMIT: 0}) == frozenset()  # absent: nothing to change


@given(
    st.fixed_dictionaries({k: st.integers(-1, 100) for k in SNAPSHOT}),
    st.fixed_dictionaries({k: st.integers(-1, 100) for k in SNAPSHOT}),
    st.dictionaries(st.sampled_from(sorted(SNAPSHOT)), st.integers(-1, 100)),
)
def test_foreign_prefs_property(
    current: dict[str, int], snapshot: dict[str, int], applied: dict[str, int]
) -> None:
    theirs = foreign_prefs(current, snapshot, applied)
    for key, value in current.items():
        ours = applied.get(key, snapshot[key])
        assert (key in theirs) is (value not in (snapshot[key], ours))


# -- plannable: planning over the adapter's index equals planning over every torrent -------------
_TORRENTS = st.lists(
    st.builds(
        tor,
        st.text("abc012", min_size=1, max_size=3),
        st.sampled_from([*ALL_STATES, "checkingResumeData", "unknown"]),
        progress=st.sampled_from([0.0, 0.5, 0.999, 1.0]),
        tags=st.lists(st.sampled_from(["fl", "x", TAG_FROZEN, TAG_FORCED])).map(tuple),
        force=st.booleans(),
        mam=st.booleans(),
    ),
    max_size=30,
    unique_by=lambda t: t.hash,
)
_HASHES = st.sets(st.text("abc012", min_size=1, max_size=3), max_size=15)


@given(_TORRENTS, _HASHES, _HASHES, _HASHES)
def test_plans_over_the_plannable_index_equal_plans_over_all(
    torrents: list[TorrentState], frozen: set[str], forced: set[str], skip: set[str]
) -> None:
    """What the executor does each heartbeat (plan over ``plannable`` only) changes no plan."""
    subset = [t for t in torrents if plannable(t)]
    assert plan_freeze(subset, OPTS, skip=skip) == plan_freeze(torrents, OPTS, skip=skip)
    assert plan_refreeze(subset, owned=frozen) == plan_refreeze(torrents, owned=frozen)

    def force(items: list[TorrentState]) -> tuple[list[str], list[str]]:
        tagged = {t.hash for t in items if TAG_FORCED in t.tags}  # as the executor derives it
        return plan_force(items, skip=forced - tagged, owned=forced)

    assert force(subset) == force(torrents)


# -- SPEC §11: what MAM says decides, the tags override ---------------------------------------


def by_answer(answers: dict[str, Reason]) -> Classifier:
    """A classifier from fixed answers (unknown otherwise), with the tags' precedence."""
    fallback = tag_classifier(OPTS)

    def classify(t: TorrentState) -> Reason:
        tagged = fallback(t)
        if tagged in {Reason.PAID, Reason.EXEMPT_TAG} and (
            TAG_PAID in t.tags or tagged is Reason.EXEMPT_TAG
        ):
            return tagged
        return answers.get(t.hash, Reason.UNKNOWN)

    return classify


def test_plan_freeze_spares_what_the_classifier_calls_free() -> None:
    torrents = [
        tor("free"),
        tor("pfl"),
        tor("vip"),
        tor("paid"),
        tor("unknown"),
        tor("fl", tags=("fl",)),
    ]
    answers = {
        "free": Reason.FREE,
        "pfl": Reason.PERSONAL_FL,
        "vip": Reason.VIP,
        "paid": Reason.PAID,
        "fl": Reason.PAID,
    }
    assert plan_freeze(torrents, OPTS, classify=by_answer(answers)) == ["paid", "unknown"]


def test_tag_classifier_keeps_the_old_rule_and_mam_guard_paid_overrides_exempt_tags() -> None:
    torrents = [tor("plain"), tor("fl", tags=("FL",)), tor("both", tags=("fl", TAG_PAID))]
    assert plan_freeze(torrents, OPTS) == ["both", "plain"]


def test_plan_thaw_only_for_mam_answers_and_never_a_foreign_or_paid_tagged_one() -> None:
    frozen = (TAG_FROZEN,)
    torrents = [
        tor("free", "stoppedDL", tags=frozen),
        tor("vip", "stoppedDL", tags=frozen),
        tor("paid", "stoppedDL", tags=frozen),
        tor("exempt", "stoppedDL", tags=(*frozen, "fl")),  # an exempt tag added later: not MAM
        tor("forced-paid", "stoppedDL", tags=(*frozen, TAG_PAID)),
        tor("foreign", "stoppedDL", tags=frozen),  # another account's
        tor("untagged", "stoppedDL"),  # handed back by the user already
    ]
    answers = dict.fromkeys(["free", "exempt", "forced-paid", "foreign", "untagged"], Reason.FREE)
    classify = by_answer(answers | {"vip": Reason.VIP, "paid": Reason.PAID})
    owned = {"free", "vip", "paid", "exempt", "forced-paid", "untagged"}
    assert plan_thaw(torrents, classify, owned=owned) == ["free", "vip"]


def test_plan_refreeze_leaves_thawing_ones_alone() -> None:
    torrents = [tor("a", tags=(TAG_FROZEN,)), tor("b", tags=(TAG_FROZEN,))]
    assert plan_refreeze(torrents, owned={"a", "b"}, thawing={"a"}) == ["b"]
