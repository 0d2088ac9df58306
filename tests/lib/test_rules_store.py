"""RulesStore: rule versions, event lifecycle, migrations, entries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
import hashlib
import os
from pathlib import Path
import re
import sqlite3
import threading

import pytest

from custom_components.mam_guard.lib.pages import PageContent, SiteEvent
from custom_components.mam_guard.lib.rules_store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    PurchaseRow,
    RulesDatabaseError,
    RulesStore,
    _move_aside,
    acquire_store,
    release_store,
)

T0 = datetime(2025, 11, 21, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
BONUS = SiteEvent("bonus", "2x bonus points", None, "https://x/f/t/1")
FL = SiteEvent("freeleech", "Site-wide freeleech until Sunday", T0 + 2 * DAY, "https://x/f/t/2")


def _page(path: str, text: str) -> PageContent:
    return PageContent(path, text, hashlib.sha256(text.encode()).hexdigest())


def _pages(**overrides: str) -> dict[str, PageContent]:
    texts = {"rules.php": "Rules\n1.4 ratio 1.0", "faq.php": "FAQ\nWhat is freeleech?"}
    texts.update({key.replace("_", "."): value for key, value in overrides.items()})
    return {path: _page(path, text) for path, text in texts.items()}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RulesStore]:
    rules_store = RulesStore(str(tmp_path / "mam_guard.db"))
    rules_store.open()
    yield rules_store
    rules_store.close()


def test_first_refresh_is_version_one(store: RulesStore) -> None:
    assert store.latest_version("e1") is None
    result = store.record_refresh("e1", _pages(), [], T0)
    assert (result.rule_version, result.new_version) == (1, True)
    assert result.changed_pages == ("faq.php", "rules.php")
    version = store.latest_version("e1")
    assert version is not None
    assert version.rule_version == 1
    assert version.effective_date == version.created_at == T0
    assert version.pages == _pages()
    assert version.diffs == {}
    assert len(version.content_hash) == 64
    assert not version.freeleech_active
    assert not version.bonus_event_active
    assert version.event_details == {"refreshed_at": "2025-11-21T12:00:00Z", "events": []}


def test_identical_refresh_keeps_the_version(store: RulesStore) -> None:
    store.record_refresh("e1", _pages(), [], T0)
    result = store.record_refresh("e1", _pages(), [], T0 + DAY)
    assert (result.rule_version, result.new_version, result.changed_pages) == (1, False, ())
    version = store.latest_version("e1")
    assert version is not None
    assert version.effective_date == T0
    assert version.event_details["refreshed_at"] == "2025-11-22T12:00:00Z"


def test_changed_page_makes_version_two_with_a_diff(store: RulesStore) -> None:
    first = store.record_refresh("e1", _pages(), [], T0)
    result = store.record_refresh("e1", _pages(rules_php="Rules\n1.4 ratio 1.2"), [], T0 + DAY)
    assert (result.rule_version, result.new_version, result.changed_pages) == (
        2,
        True,
        ("rules.php",),
    )
    version = store.latest_version("e1")
    assert version is not None
    assert version.changed_pages == ("rules.php",)
    assert set(version.diffs) == {"rules.php"}
    assert "-1.4 ratio 1.0" in version.diffs["rules.php"]
    assert "+1.4 ratio 1.2" in version.diffs["rules.php"]
    assert version.effective_date == T0 + DAY
    assert version.pages["faq.php"] == _pages()["faq.php"]
    assert first.rule_version == 1


def test_missing_page_is_carried_and_new_page_is_a_change(store: RulesStore) -> None:
    store.record_refresh("e1", _pages(), [], T0)
    only_rules = {"rules.php": _pages()["rules.php"]}
    assert store.record_refresh("e1", only_rules, [], T0 + DAY).new_version is False
    version = store.latest_version("e1")
    assert version is not None
    assert set(version.pages) == {"faq.php", "rules.php"}

    more = {**_pages(), "api/list.php": _page("api/list.php", "API\n/jsonLoad.php")}
    result = store.record_refresh("e1", more, [], T0 + 2 * DAY)
    assert (result.rule_version, result.changed_pages) == (2, ("api/list.php",))
    version = store.latest_version("e1")
    assert version is not None
    assert set(version.pages) == {"api/list.php", "faq.php", "rules.php"}
    assert "+/jsonLoad.php" in version.diffs["api/list.php"]


def test_empty_refresh_is_refused(store: RulesStore) -> None:
    with pytest.raises(ValueError, match="failed refresh"):
        store.record_refresh("e1", {}, [BONUS], T0)
    assert store.active_events("e1", T0) == []


def test_event_lifecycle(store: RulesStore) -> None:
    first = store.record_refresh("e1", _pages(), [BONUS, BONUS, FL], T0)
    assert [row.event_type for row in first.started] == ["bonus", "freeleech"]
    assert first.ended == ()
    active = store.active_events("e1", T0)
    assert [(r.event_type, r.start_date, r.end_date, r.active) for r in active] == [
        ("bonus", T0, None, True),
        ("freeleech", T0, T0 + 2 * DAY, True),
    ]
    version = store.latest_version("e1")
    assert version is not None
    assert (version.freeleech_active, version.bonus_event_active, version.multiplier_active) == (
        True,
        True,
        False,
    )
    assert version.event_details["events"][1] == {
        "type": "freeleech",
        "description": FL.description,
        "start_date": "2025-11-21T12:00:00Z",
        "end_date": "2025-11-23T12:00:00Z",
        "source_url": FL.source_url,
    }

    # Still announced: kept, start unchanged.
    second = store.record_refresh("e1", _pages(), [FL, BONUS], T0 + DAY)
    assert (second.started, second.ended) == ((), ())
    assert [row.start_date for row in second.active] == [T0, T0]

    # The bonus vanishes: inactive, ended now. The freeleech's end passes without a refresh.
    third = store.record_refresh("e1", _pages(), [FL], T0 + DAY + timedelta(hours=1))
    (ended,) = third.ended
    assert (ended.event_type, ended.active, ended.end_date) == (
        "bonus",
        False,
        T0 + DAY + timedelta(hours=1),
    )
    assert [row.event_type for row in store.active_events("e1", T0 + DAY + timedelta(hours=2))] == [
        "freeleech"
    ]
    assert store.active_events("e1", T0 + 3 * DAY) == []

    # A refresh after the end (even if still announced) deactivates it with its own end.
    fourth = store.record_refresh("e1", _pages(), [FL], T0 + 3 * DAY)
    (ended,) = fourth.ended
    assert (ended.event_type, ended.end_date) == ("freeleech", T0 + 2 * DAY)
    version = store.latest_version("e1")
    assert version is not None
    assert not version.freeleech_active
    assert not version.bonus_event_active
    assert version.rule_version == 1

    # Announced again later: a new occurrence.
    fifth = store.record_refresh("e1", _pages(), [BONUS], T0 + 4 * DAY)
    assert [(row.event_type, row.start_date) for row in fifth.started] == [("bonus", T0 + 4 * DAY)]


def test_expire_events_reports_each_ended_event_once(store: RulesStore) -> None:
    store.record_refresh("e1", _pages(), [FL, BONUS], T0)
    store.record_refresh("e2", _pages(), [FL], T0)
    assert store.expire_events("e1", T0 + DAY) == []  # nothing ended yet
    (ended,) = store.expire_events("e1", T0 + 2 * DAY)
    assert (ended.event_type, ended.active, ended.end_date) == ("freeleech", False, T0 + 2 * DAY)
    assert store.expire_events("e1", T0 + 3 * DAY) == []  # reported once
    assert [r.event_type for r in store.active_events("e1", T0 + 3 * DAY)] == ["bonus"]
    # The next refresh, with the expired news still on the page, does not end it again.
    later = store.record_refresh("e1", _pages(), [FL, BONUS], T0 + 3 * DAY)
    assert (later.started, later.ended) == ((), ())
    assert [r.event_type for r in store.expire_events("e2", T0 + 3 * DAY)] == ["freeleech"]


def test_new_end_for_a_running_event_is_stored(store: RulesStore) -> None:
    store.record_refresh("e1", _pages(), [BONUS], T0)
    extended = SiteEvent("bonus", BONUS.description, T0 + 5 * DAY, BONUS.source_url)
    result = store.record_refresh("e1", _pages(), [extended], T0 + DAY)
    assert result.started == result.ended == ()
    (row,) = store.active_events("e1", T0 + DAY)
    assert (row.start_date, row.end_date) == (T0, T0 + 5 * DAY)


def test_fresh_database_has_latest_schema(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = RulesStore(str(path))
    store.open()
    assert store.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        columns = {
            table: [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
            for table in ("rule_versions", "event_status")
        }
    conn.close()
    assert columns == {
        "rule_versions": [
            "rule_version",
            "entry_id",
            "effective_date",
            "content_hash",
            "rules_json",
            "changed_pages",
            "freeleech_active",
            "bonus_event_active",
            "multiplier_active",
            "event_details",
            "created_at",
        ],
        "event_status": [
            "id",
            "entry_id",
            "event_type",
            "start_date",
            "end_date",
            "active",
            "description",
            "source_url",
        ],
    }


def test_reopening_keeps_data(tmp_path: Path) -> None:
    path = str(tmp_path / "db.sqlite")
    store = RulesStore(path)
    store.open()
    store.record_refresh("e1", _pages(), [BONUS], T0)
    store.record_refresh("e1", _pages(rules_php="changed"), [BONUS], T0 + DAY)
    store.close()
    store.close()  # idempotent

    again = RulesStore(path)
    again.open()
    version = again.latest_version("e1")
    assert version is not None
    assert version.rule_version == 2
    assert [row.description for row in again.active_events("e1", T0 + DAY)] == [BONUS.description]
    assert again.schema_version() == SCHEMA_VERSION
    again.close()


def _newer_schema_file(path: Path) -> bytes:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE from_the_future (x)")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    return path.read_bytes()


def test_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    tmp_path = tmp_path / "config"
    tmp_path.mkdir()
    path = tmp_path / "db.sqlite"
    original = _newer_schema_file(path)
    store = RulesStore(str(path))
    with pytest.raises(RulesDatabaseError, match="newer version of mam_guard") as err:
        store.open()
    assert (err.value.problem, err.value.version) == ("newer_schema", SCHEMA_VERSION + 1)
    with pytest.raises(RuntimeError, match="not open"):
        store.latest_version("e1")
    with pytest.raises(RulesDatabaseError, match="newer"):
        acquire_store(str(path))  # never recovered: a later version may still want it
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db.sqlite"]


def _random_file(path: Path) -> bytes:
    path.write_bytes(os.urandom(32 * 1024))
    return path.read_bytes()


def _truncated_file(path: Path) -> bytes:
    store = RulesStore(str(path))
    store.open()
    for day in range(10):
        text = "\n".join(f"rule {n} of day {day}" for n in range(500))
        store.record_refresh("e1", _pages(rules_php=text), [BONUS], T0 + day * DAY)
    store.close()
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path.read_bytes()


def _damaged_file(path: Path) -> bytes:
    _truncated_file(path)
    data = bytearray(path.read_bytes())
    data[4096 : 2 * 4096] = os.urandom(4096)  # page 2 overwritten: the header is intact
    path.write_bytes(bytes(data))
    return bytes(data)


def _foreign_file(path: Path) -> bytes:
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")  # our version, not our tables
    conn.close()
    return path.read_bytes()


CORRUPT = pytest.mark.parametrize(
    "make", [_random_file, _truncated_file, _damaged_file, _foreign_file],
    ids=["random", "truncated", "damaged", "foreign"],
)  # fmt: skip


@CORRUPT
def test_corrupt_file_is_refused_untouched(tmp_path: Path, make: Callable[[Path], bytes]) -> None:
    path = tmp_path / "mam_guard.db"
    original = make(path)
    store = RulesStore(str(path))
    with pytest.raises(RulesDatabaseError) as err:
        store.open()
    assert err.value.problem == "corrupt"
    assert str(err.value).startswith("it is damaged or not a mam_guard database")
    assert path.read_bytes() == original
    with pytest.raises(RulesDatabaseError):
        acquire_store(str(path), recover=False)
    assert path.read_bytes() == original


@CORRUPT
def test_corrupt_file_is_moved_aside_and_replaced(
    tmp_path: Path, make: Callable[[Path], bytes]
) -> None:
    path = tmp_path / "mam_guard.db"
    original = make(path)

    store, recovered = acquire_store(str(path))
    try:
        assert recovered is not None
        assert recovered.problem == "corrupt"
        assert recovered.moved_to is not None
        moved = Path(recovered.moved_to)
        assert moved.parent == tmp_path
        assert re.fullmatch(r"mam_guard\.db\.corrupt-\d{14}", moved.name)
        assert moved.read_bytes() == original
        assert store.schema_version() == SCHEMA_VERSION
        assert store.record_refresh("e1", _pages(), [], T0).rule_version == 1
    finally:
        release_store(store)

    # Again corrupt in the same second: a second name, the first file kept.
    path.write_bytes(b"garbage" * 100)
    store, again = acquire_store(str(path))
    release_store(store)
    assert again is not None
    assert again.moved_to is not None
    assert again.moved_to != recovered.moved_to
    assert Path(recovered.moved_to).read_bytes() == original
    assert Path(again.moved_to).read_bytes() == b"garbage" * 100


def test_move_aside_takes_the_journal_files_along(tmp_path: Path) -> None:
    """A journal left next to a fresh database would be rolled back into it: it moves too."""
    tmp_path = tmp_path / "config"
    tmp_path.mkdir()
    path = tmp_path / "mam_guard.db"
    path.write_bytes(b"old")
    (tmp_path / "mam_guard.db-journal").write_bytes(b"journal")
    (tmp_path / "mam_guard.db-wal").write_bytes(b"wal")
    moved = _move_aside(str(path), RulesDatabaseError("corrupt", str(path), "test"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        Path(moved + suffix).name for suffix in ("", "-journal", "-wal")
    )
    assert Path(moved + "-journal").read_bytes() == b"journal"


def test_directory_cannot_be_opened_and_is_not_moved(tmp_path: Path) -> None:
    tmp_path = tmp_path / "config"
    tmp_path.mkdir()
    path = tmp_path / "mam_guard.db"
    path.mkdir()
    with pytest.raises(RulesDatabaseError, match="cannot be opened") as err:
        acquire_store(str(path))
    assert err.value.problem == "cannot_open"
    assert path.is_dir()
    assert [p.name for p in tmp_path.iterdir()] == ["mam_guard.db"]


def test_shared_store_is_reference_counted(tmp_path: Path) -> None:
    path = str(tmp_path / "mam_guard.db")
    first, recovered = acquire_store(path)
    second, _ = acquire_store(str(tmp_path / "." / "mam_guard.db"))
    assert recovered is None
    assert second is first
    release_store(first)
    assert first.latest_version("e1") is None  # still open for the other user
    release_store(second)
    with pytest.raises(RuntimeError, match="not open"):
        first.latest_version("e1")
    release_store(first)  # a late extra release does nothing
    third, _ = acquire_store(path)  # the next user opens it again
    try:
        assert third is not first
        assert third.schema_version() == SCHEMA_VERSION
    finally:
        release_store(third)


def test_shared_store_opened_from_threads_at_once(tmp_path: Path) -> None:
    """Two entries setting up at the same time get the one store, opened once."""
    for attempt in range(20):
        path = str(tmp_path / f"shared-{attempt}.db")
        start = threading.Barrier(2)

        def acquire(_: int, path: str = path, start: threading.Barrier = start) -> RulesStore:
            start.wait(timeout=10)
            return acquire_store(path)[0]

        with ThreadPoolExecutor(max_workers=2) as pool:
            first, second = pool.map(acquire, range(2))
        assert first is second
        release_store(first)
        release_store(second)


def test_entries_are_independent_and_deletable(store: RulesStore) -> None:
    store.record_refresh("e1", _pages(), [BONUS], T0)
    store.record_refresh("e1", _pages(rules_php="v2"), [BONUS], T0 + DAY)
    result = store.record_refresh("e2", _pages(), [FL], T0 + DAY)
    assert result.rule_version == 1
    assert [r.event_type for r in store.active_events("e2", T0 + DAY)] == ["freeleech"]
    assert [r.event_type for r in store.active_events("e1", T0 + DAY)] == ["bonus"]

    store.delete_entry("e1")
    assert store.latest_version("e1") is None
    assert store.active_events("e1", T0 + DAY) == []
    version = store.latest_version("e2")
    assert version is not None
    assert version.rule_version == 1
    assert store.record_refresh("e1", _pages(), [], T0 + 2 * DAY).rule_version == 1


def test_calls_from_executor_threads(store: RulesStore) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(
                lambda day: store.record_refresh("e1", _pages(), [BONUS], T0 + day * DAY), range(8)
            )
        )
    assert {result.rule_version for result in results} == {1}
    assert sum(len(result.started) for result in results) == 1


# --- concurrency: one file, several connections (two entries, or two processes) ---------------


def test_two_fresh_opens_race(tmp_path: Path) -> None:
    """Two connections opening one new file at the same instant both migrate it (40 rounds)."""
    for attempt in range(40):
        path = str(tmp_path / f"race-{attempt}.db")
        stores = [RulesStore(path), RulesStore(path)]
        start = threading.Barrier(len(stores))

        def open_store(store: RulesStore, start: threading.Barrier = start) -> int:
            start.wait(timeout=10)
            store.open()
            return store.schema_version()

        try:
            with ThreadPoolExecutor(max_workers=len(stores)) as pool:
                versions = list(pool.map(open_store, stores))
        finally:
            for store in stores:
                store.close()
        assert versions == [SCHEMA_VERSION, SCHEMA_VERSION], f"attempt {attempt}"


def test_two_connections_write_at_once(tmp_path: Path) -> None:
    """Two connections recording refreshes at the same time: none fails with "locked"."""
    path = str(tmp_path / "mam_guard.db")
    stores = {"e1": RulesStore(path), "e2": RulesStore(path)}
    for store in stores.values():
        store.open()
    start = threading.Barrier(len(stores))

    def refreshes(entry_id: str) -> int:
        store = stores[entry_id]
        start.wait(timeout=10)
        for day in range(30):
            # A new event every day: each refresh writes early, then reads, then writes again.
            event = SiteEvent("bonus", f"bonus day {day}", None, None)
            store.record_refresh(entry_id, _pages(rules_php=f"v{day}"), [event], T0 + day * DAY)
        version = store.latest_version(entry_id)
        assert version is not None
        return version.rule_version

    try:
        with ThreadPoolExecutor(max_workers=len(stores)) as pool:
            assert list(pool.map(refreshes, stores)) == [30, 30]
    finally:
        for store in stores.values():
            store.close()


# -- the purchase ledger (SPEC §10) ------------------------------------------------------------

LEDGER_COLUMNS = [
    "id",
    "entry_id",
    "created_at",
    "kind",
    "amount",
    "cost",
    "reason",
    "success",
    "dry_run",
    "error",
    "points_before",
    "points_after",
    "intent_id",
]


def _row(**overrides: object) -> PurchaseRow:
    values: dict[str, object] = {
        "entry_id": "e1",
        "created_at": T0,
        "kind": "upload",
        "amount": 50.0,
        "cost": 25000.0,
        "reason": "emergency",
        "success": True,
        "dry_run": False,
        "error": None,
        "points_before": 60000.0,
        "points_after": 35000.0,
        "intent_id": "intent-1",
    }
    values.update(overrides)
    return PurchaseRow(**values)  # type: ignore[arg-type]


def test_ledger_table_has_the_spec_columns(store: RulesStore) -> None:
    with sqlite3.connect(store.path) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(purchases)")]
    conn.close()
    # SPEC §10's columns, in its order, plus intent_id (idempotent writes after a crash).
    assert columns == LEDGER_COLUMNS


def test_ledger_round_trip_newest_first(store: RulesStore) -> None:
    assert store.purchases("e1") == []
    assert store.last_purchase("e1") is None
    first = store.add_purchase(_row())
    second = store.add_purchase(
        _row(
            created_at=T0 + DAY,
            kind="vip",
            amount=76.5,
            cost=13750.0,
            reason="vip_renewal",
            success=False,
            dry_run=True,
            error="MyAnonamouse refused the purchase: Not enough bonus, s1",
            points_after=60000.0,
            intent_id=None,
        )
    )
    store.add_purchase(_row(entry_id="e2", intent_id="other"))
    assert second > first
    rows = store.purchases("e1")
    assert [row.id for row in rows] == [second, first]
    newest = store.last_purchase("e1")
    assert newest == rows[0]
    assert newest is not None
    assert (newest.kind, newest.reason, newest.success, newest.dry_run) == (
        "vip",
        "vip_renewal",
        False,
        True,
    )
    assert newest.error == "MyAnonamouse refused the purchase: Not enough bonus, s1"
    assert newest.created_at == T0 + DAY
    assert rows[1] == _row(id=first)
    assert store.purchases("e1", limit=1) == [newest]


def test_ledger_row_of_an_intent_is_written_once(store: RulesStore) -> None:
    first = store.add_purchase(_row())
    assert store.add_purchase(_row(points_after=1.0)) == first  # a re-write after a crash
    assert store.purchases("e1") == [_row(id=first)]
    store.add_purchase(_row(intent_id=None))
    store.add_purchase(_row(intent_id=None))  # rows without an intent are all kept
    assert len(store.purchases("e1")) == 3


def test_ledger_refuses_unknown_kinds_and_reasons(store: RulesStore) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        store.add_purchase(_row(kind="gift"))
    with pytest.raises(sqlite3.IntegrityError):
        store.add_purchase(_row(reason="whim", intent_id="x"))
    assert store.purchases("e1") == []


def test_delete_purchases_forgets_one_entry(store: RulesStore) -> None:
    store.add_purchase(_row())
    store.add_purchase(_row(entry_id="e2", intent_id="other"))
    store.delete_purchases("e1")
    assert store.purchases("e1") == []
    assert len(store.purchases("e2")) == 1


def test_deleting_an_entry_forgets_its_ledger_too(store: RulesStore) -> None:
    """Removing a config entry removes every row it owns, purchases included."""
    store.add_purchase(_row())
    store.add_purchase(_row(entry_id="e2", intent_id="other"))
    store.delete_entry("e1")
    assert store.purchases("e1") == []
    assert len(store.purchases("e2")) == 1


def test_schema_one_database_gains_the_ledger_and_keeps_its_rules(tmp_path: Path) -> None:
    """A file written before the ledger existed (user_version 1) is migrated in place."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO event_status (entry_id, event_type, start_date, description)"
            " VALUES ('e1', 'bonus', '2025-11-21T12:00:00Z', 'kept')"
        )
    conn.close()
    store = RulesStore(str(path))
    store.open()
    try:
        assert store.schema_version() == SCHEMA_VERSION == 2
        assert [row.description for row in store.active_events("e1", T0)] == ["kept"]
        store.add_purchase(_row())
        assert len(store.purchases("e1")) == 1
    finally:
        store.close()


def test_database_without_the_ledger_at_version_two_is_not_ours(tmp_path: Path) -> None:
    path = tmp_path / "odd.db"
    with sqlite3.connect(path) as conn:
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 2")
    conn.close()
    with pytest.raises(RulesDatabaseError, match="purchases is missing") as err:
        RulesStore(str(path)).open()
    assert err.value.problem == "corrupt"
