"""SQLite history of MAM rule versions and site events (SPEC §5), one database for all entries.

The API is synchronous on purpose: sqlite3 blocks, so the Home Assistant layer must call every
method (``open`` and ``close`` included) through the executor. The executor may run successive
calls on different threads, hence ``check_same_thread=False`` with a lock serialising them; each
method is one transaction.

Several config entries share the file. Within a process they share one store too
(:func:`acquire_store` / :func:`release_store`: one connection and one lock per path, opened by
the first user and closed by the last), so their refreshes never compete for SQLite's locks.
Across connections (another process, a tool) writes take the write lock up front
(``BEGIN IMMEDIATE``) and wait up to :data:`BUSY_TIMEOUT_SECONDS` for it, and the migration is
decided under that lock, so two fresh opens of one file never race.

A file that cannot be used raises :class:`RulesDatabaseError` from ``open``: ``corrupt`` (not a
database, damaged, or not ours), ``newer_schema`` (written by a later version: left untouched) or
``cannot_open`` (a directory, no permission, locked). :func:`acquire_store` moves a corrupt file
aside (renamed, never deleted) and starts a fresh one.

Schema (``PRAGMA user_version`` = number of applied :data:`MIGRATIONS`):

* ``rule_versions``: the SPEC's columns exactly. ``rule_version`` counts per entry from 1 and
  ``(entry_id, rule_version)`` is the primary key, so entries never share a numbering.
  ``rules_json`` is ``{"pages": {path: {"hash", "text"}}, "diffs": {path: unified diff}}``:
  every page known at that version (a page missing from a refresh keeps its last text), and
  the capped diffs of the pages that changed in it. ``changed_pages`` is a JSON list of paths.
  The content columns never change once written; the event columns (``*_active``,
  ``event_details`` = ``{"refreshed_at", "events": [...]}``) of the newest version are
  rewritten by every refresh, so the newest row always answers ``get_status``'s rules shape.
* ``event_status``: one row per announced event occurrence, ``active`` 1 while announced.
* ``purchases`` (migration 2, SPEC §10): the purchase ledger, one row per purchase attempt or
  dry run, the SPEC's columns plus ``intent_id``. ``amount`` is GB for upload credit and days
  added for VIP; ``cost`` is bonus points; ``success``/``dry_run`` are 0/1. ``intent_id`` is
  unique: the executor writes a settled intent's row again after a crash, and the second write
  is ignored (:meth:`RulesStore.add_purchase`).

Timestamps are ISO-8601 UTC strings with a ``Z`` suffix, to the second (they compare as text).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
import hashlib
import json
import os
import sqlite3
import threading
from typing import Any, Literal, cast

from .pages import EventType, PageContent, SiteEvent, diff_summary

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE rule_versions (
            rule_version INTEGER NOT NULL,
            entry_id TEXT NOT NULL,
            effective_date TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            rules_json TEXT NOT NULL,
            changed_pages TEXT NOT NULL,
            freeleech_active INTEGER NOT NULL DEFAULT 0,
            bonus_event_active INTEGER NOT NULL DEFAULT 0,
            multiplier_active INTEGER NOT NULL DEFAULT 0,
            event_details TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            PRIMARY KEY (entry_id, rule_version)
        )""",
        """CREATE TABLE event_status (
            id INTEGER PRIMARY KEY,
            entry_id TEXT NOT NULL,
            event_type TEXT NOT NULL CHECK (event_type IN ('freeleech', 'bonus', 'multiplier')),
            start_date TEXT NOT NULL,
            end_date TEXT,
            active INTEGER NOT NULL DEFAULT 1,
            description TEXT NOT NULL,
            source_url TEXT
        )""",
        "CREATE INDEX event_status_entry_active ON event_status (entry_id, active)",
    ),
    (
        """CREATE TABLE purchases (
            id INTEGER PRIMARY KEY,
            entry_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('vip', 'upload')),
            amount REAL,
            cost REAL,
            reason TEXT NOT NULL
                CHECK (reason IN ('manual', 'vip_renewal', 'emergency', 'surplus')),
            success INTEGER NOT NULL,
            dry_run INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            points_before REAL,
            points_after REAL,
            intent_id TEXT UNIQUE
        )""",
        "CREATE INDEX purchases_entry ON purchases (entry_id, id)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
DIFF_MAX_CHARS = 2000
# How long a connection waits for another one's write lock before "database is locked".
BUSY_TIMEOUT_SECONDS = 30.0
# Columns every table must have at SCHEMA_VERSION (a file at our version without them is not ours).
SCHEMA_COLUMNS: dict[str, frozenset[str]] = {
    "rule_versions": frozenset(
        {
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
        }
    ),
    "event_status": frozenset(
        {
            "id",
            "entry_id",
            "event_type",
            "start_date",
            "end_date",
            "active",
            "description",
            "source_url",
        }
    ),
    "purchases": frozenset(
        {
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
        }
    ),
}
# SQLite primary result codes meaning the file's content is damaged or not a database at all.
_CORRUPT_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
# Files that belong to the database and move with it (a hot journal must never meet a new file).
_COMPANION_SUFFIXES = ("-journal", "-wal", "-shm")

Problem = Literal["corrupt", "newer_schema", "cannot_open"]


class RulesDatabaseError(Exception):
    """The database file cannot be used; ``problem`` says why, ``str()`` says it in plain words.

    ``moved_to`` is set when :func:`acquire_store` moved the (corrupt) file aside and recovered.
    ``version`` is the file's schema version for ``newer_schema``.
    """

    def __init__(
        self, problem: Problem, path: str, detail: str, *, version: int | None = None
    ) -> None:
        """Describe what is wrong with ``path``."""
        self.problem: Problem = problem
        self.path = path
        self.detail = detail
        self.version = version
        self.moved_to: str | None = None
        super().__init__(self._plain())

    def _plain(self) -> str:
        if self.problem == "newer_schema":
            return (
                f"it was written by a newer version of mam_guard (database schema {self.version},"
                f" this version reads up to {SCHEMA_VERSION})"
            )
        if self.problem == "corrupt":
            return f"it is damaged or not a mam_guard database ({self.detail})"
        return f"it cannot be opened ({self.detail})"


def _classify(path: str, err: sqlite3.Error) -> RulesDatabaseError:
    code = getattr(err, "sqlite_errorcode", None)
    problem: Problem = (
        "corrupt" if code is not None and (code & 0xFF) in _CORRUPT_CODES else "cannot_open"
    )
    return RulesDatabaseError(problem, path, str(err) or type(err).__name__)


@dataclass(frozen=True)
class RuleVersion:
    """One row of ``rule_versions``, decoded."""

    rule_version: int
    entry_id: str
    effective_date: datetime
    content_hash: str
    pages: dict[str, PageContent]
    diffs: dict[str, str]
    changed_pages: tuple[str, ...]
    freeleech_active: bool
    bonus_event_active: bool
    multiplier_active: bool
    event_details: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class EventRow:
    """One row of ``event_status``, decoded."""

    id: int
    entry_id: str
    event_type: EventType
    start_date: datetime
    end_date: datetime | None
    active: bool
    description: str
    source_url: str | None


@dataclass(frozen=True)
class PurchaseRow:
    """One row of ``purchases`` (SPEC §10): a purchase attempt or dry run and how it ended.

    ``id`` is None until stored. ``intent_id`` identifies the executor's intent the row settles
    (unique: writing it twice stores it once); None for attempts that never became an intent
    (refused before anything was sent).
    """

    entry_id: str
    created_at: datetime
    kind: str  # "vip" / "upload"
    amount: float | None  # GB of upload credit; days of VIP added
    cost: float | None  # bonus points
    reason: str  # "manual" / "vip_renewal" / "emergency" / "surplus"
    success: bool
    dry_run: bool
    error: str | None
    points_before: float | None
    points_after: float | None
    intent_id: str | None = None
    id: int | None = None


@dataclass(frozen=True)
class RefreshResult:
    """What a refresh changed: the HA layer fires its bus events from this."""

    rule_version: int
    new_version: bool
    changed_pages: tuple[str, ...]
    started: tuple[EventRow, ...]
    ended: tuple[EventRow, ...]
    active: tuple[EventRow, ...]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _event_row(row: sqlite3.Row) -> EventRow:
    return EventRow(
        id=row["id"],
        entry_id=row["entry_id"],
        event_type=row["event_type"],
        start_date=_time(row["start_date"]),
        end_date=_time(row["end_date"]) if row["end_date"] else None,
        active=bool(row["active"]),
        description=row["description"],
        source_url=row["source_url"],
    )


def _purchase_row(row: sqlite3.Row) -> PurchaseRow:
    return PurchaseRow(
        entry_id=row["entry_id"],
        created_at=_time(row["created_at"]),
        kind=row["kind"],
        amount=row["amount"],
        cost=row["cost"],
        reason=row["reason"],
        success=bool(row["success"]),
        dry_run=bool(row["dry_run"]),
        error=row["error"],
        points_before=row["points_before"],
        points_after=row["points_after"],
        intent_id=row["intent_id"],
        id=row["id"],
    )


def _rule_version(row: sqlite3.Row) -> RuleVersion:
    rules = json.loads(row["rules_json"])
    return RuleVersion(
        rule_version=row["rule_version"],
        entry_id=row["entry_id"],
        effective_date=_time(row["effective_date"]),
        content_hash=row["content_hash"],
        pages={
            path: PageContent(path, page["text"], page["hash"])
            for path, page in rules["pages"].items()
        },
        diffs=rules["diffs"],
        changed_pages=tuple(json.loads(row["changed_pages"])),
        freeleech_active=bool(row["freeleech_active"]),
        bonus_event_active=bool(row["bonus_event_active"]),
        multiplier_active=bool(row["multiplier_active"]),
        event_details=json.loads(row["event_details"]),
        created_at=_time(row["created_at"]),
    )


@contextmanager
def _transaction(conn: sqlite3.Connection, *, immediate: bool) -> Iterator[sqlite3.Connection]:
    """BEGIN (IMMEDIATE: with the write lock) ... COMMIT, or ROLLBACK on any error."""
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


class RulesStore:
    """Rule versions and site events of every config entry, in one SQLite file."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("RulesStore is not open")
        return self._db

    def open(self) -> None:
        """Connect, check the file and apply pending migrations.

        Raises :class:`RulesDatabaseError` when the file cannot be used; a file of a newer
        schema is only read, never written.
        """
        with self._lock:
            if self._db is not None:
                return
            try:
                conn = sqlite3.connect(
                    self._path,
                    timeout=BUSY_TIMEOUT_SECONDS,
                    check_same_thread=False,
                    autocommit=True,  # transactions are explicit: see _transaction
                )
            except sqlite3.Error as err:
                raise _classify(self._path, err) from err
            conn.row_factory = sqlite3.Row
            try:
                with _transaction(conn, immediate=True):
                    self._migrate(conn)
            except sqlite3.Error as err:
                conn.close()
                raise _classify(self._path, err) from err
            except BaseException:
                conn.close()
                raise
            self._db = conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Under the write lock, so that two connections opening a new file never both migrate."""
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise RulesDatabaseError(
                "newer_schema", self._path, f"schema {version}", version=version
            )
        problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise RulesDatabaseError("corrupt", self._path, "; ".join(problems[:3]))
        for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number:d}")
        for table, columns in SCHEMA_COLUMNS.items():
            found = {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")}
            if not columns <= found:
                raise RulesDatabaseError(
                    "corrupt", self._path, f"table {table} is missing or incomplete"
                )

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One consistent read (the lock, then a deferred transaction)."""
        with self._lock, _transaction(self._conn, immediate=False) as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding SQLite's write lock from its start.

        A deferred transaction that reads, then writes, fails at once with "database is locked"
        when another connection wrote in between (SQLite cannot wait there without deadlocking);
        taking the write lock first makes it wait (busy timeout) instead.
        """
        with self._lock, _transaction(self._conn, immediate=True) as conn:
            yield conn

    def schema_version(self) -> int:
        """The applied schema version (``PRAGMA user_version``)."""
        with self._read() as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def latest_version(self, entry_id: str) -> RuleVersion | None:
        """The newest rule version of ``entry_id``, or None before its first refresh."""
        with self._read():
            return self._latest(entry_id)

    def _latest(self, entry_id: str) -> RuleVersion | None:
        row = self._conn.execute(
            "SELECT * FROM rule_versions WHERE entry_id = ? ORDER BY rule_version DESC LIMIT 1",
            (entry_id,),
        ).fetchone()
        return _rule_version(row) if row is not None else None

    def active_events(self, entry_id: str, now: datetime) -> list[EventRow]:
        """Events still announced at the last refresh whose end (if any) is after ``now``."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT * FROM event_status WHERE entry_id = ? AND active = 1"
                " AND (end_date IS NULL OR end_date > ?) ORDER BY id",
                (entry_id, _iso(now)),
            ).fetchall()
        return [_event_row(row) for row in rows]

    def expire_events(self, entry_id: str, now: datetime) -> list[EventRow]:
        """Mark active events whose end passed as ended; return them (each exactly once).

        Called when an event's end date arrives between refreshes, so its end is reported then
        rather than at the next refresh; that refresh then no longer sees it as active.
        """
        with self._write() as conn:
            rows = conn.execute(
                "SELECT * FROM event_status WHERE entry_id = ? AND active = 1"
                " AND end_date IS NOT NULL AND end_date <= ? ORDER BY id",
                (entry_id, _iso(now)),
            ).fetchall()
            conn.executemany(
                "UPDATE event_status SET active = 0 WHERE id = ?", [(row["id"],) for row in rows]
            )
        return [replace(_event_row(row), active=False) for row in rows]

    def delete_entry(self, entry_id: str) -> None:
        """Forget everything about ``entry_id`` (its config entry was removed)."""
        with self._write() as conn:
            conn.execute("DELETE FROM rule_versions WHERE entry_id = ?", (entry_id,))
            conn.execute("DELETE FROM event_status WHERE entry_id = ?", (entry_id,))
            conn.execute("DELETE FROM purchases WHERE entry_id = ?", (entry_id,))

    # -- the purchase ledger (SPEC §10) --------------------------------------------------------

    def add_purchase(self, row: PurchaseRow) -> int:
        """Store one ledger row; return its id.

        A row whose ``intent_id`` is already stored is not written again: the id of the stored
        row is returned (the executor re-writes a settled intent's row after a crash).
        """
        with self._write() as conn:
            if row.intent_id is not None:
                found = conn.execute(
                    "SELECT id FROM purchases WHERE intent_id = ?", (row.intent_id,)
                ).fetchone()
                if found is not None:
                    return int(found["id"])
            cursor = conn.execute(
                "INSERT INTO purchases (entry_id, created_at, kind, amount, cost, reason, success,"
                " dry_run, error, points_before, points_after, intent_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.entry_id,
                    _iso(row.created_at),
                    row.kind,
                    row.amount,
                    row.cost,
                    row.reason,
                    int(row.success),
                    int(row.dry_run),
                    row.error,
                    row.points_before,
                    row.points_after,
                    row.intent_id,
                ),
            )
            return cast("int", cursor.lastrowid)

    def purchases(self, entry_id: str, limit: int = 20) -> list[PurchaseRow]:
        """The newest ``limit`` ledger rows of ``entry_id``, newest first."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT * FROM purchases WHERE entry_id = ? ORDER BY id DESC LIMIT ?",
                (entry_id, limit),
            ).fetchall()
        return [_purchase_row(row) for row in rows]

    def last_purchase(self, entry_id: str) -> PurchaseRow | None:
        """The newest ledger row of ``entry_id`` (the ``last_purchase`` sensor), or None."""
        rows = self.purchases(entry_id, limit=1)
        return rows[0] if rows else None

    def delete_purchases(self, entry_id: str) -> None:
        """Forget the ledger of ``entry_id`` (its config entry was removed)."""
        with self._write() as conn:
            conn.execute("DELETE FROM purchases WHERE entry_id = ?", (entry_id,))

    def record_refresh(
        self,
        entry_id: str,
        pages: Mapping[str, PageContent],
        events: Iterable[SiteEvent],
        now: datetime,
    ) -> RefreshResult:
        """Store one successful refresh: maybe a new rule version, and the events' new state.

        A new version is written when a fetched page's hash differs from the newest version's,
        or the page is new to it (the first refresh gives version 1 with every page changed and
        no diffs). Pages not fetched this time (not selected, or failed) keep their last text
        and are never "changed". ``pages`` must not be empty: a refresh that fetched nothing
        failed, and a failed refresh keeps the last rules and events (SPEC §5).

        ``events`` are this refresh's classified announcements (duplicates welcome: every
        page repeats the ticker). An event is identified by (type, description): a new one is
        inserted active with ``start_date = now``; one still announced stays (its end updated
        if the text now gives another); an active one no longer announced, or whose end
        passed, becomes inactive with ``end_date`` = its end if already passed, else ``now``.
        """
        if not pages:
            raise ValueError("a refresh without pages is a failed refresh; do not record it")
        with self._write():
            started, ended, active = self._update_events(entry_id, events, now)
            latest = self._latest(entry_id)
            old = latest.pages if latest is not None else {}
            changed = tuple(
                sorted(
                    path
                    for path, page in pages.items()
                    if path not in old or old[path].content_hash != page.content_hash
                )
            )
            details = self._event_columns(active, now)
            if latest is None or changed:
                version = latest.rule_version + 1 if latest is not None else 1
                self._insert_version(
                    entry_id,
                    version,
                    {**old, **pages},
                    changed=changed,
                    previous=latest,
                    details=details,
                )
            else:
                version = latest.rule_version
                self._conn.execute(
                    "UPDATE rule_versions SET freeleech_active = ?, bonus_event_active = ?,"
                    " multiplier_active = ?, event_details = ?"
                    " WHERE entry_id = ? AND rule_version = ?",
                    (*details[1:], entry_id, version),
                )
        return RefreshResult(
            version,
            latest is None or bool(changed),
            changed,
            tuple(started),
            tuple(ended),
            tuple(active),
        )

    def _insert_version(
        self,
        entry_id: str,
        version: int,
        pages: Mapping[str, PageContent],
        *,
        changed: tuple[str, ...],
        previous: RuleVersion | None,
        details: tuple[str, int, int, int, str],
    ) -> None:
        diffs = (
            {
                path: diff_summary(
                    previous.pages[path].text if path in previous.pages else "",
                    pages[path].text,
                    DIFF_MAX_CHARS,
                )
                for path in changed
            }
            if previous is not None
            else {}
        )
        rules = {
            "pages": {
                path: {"hash": page.content_hash, "text": page.text}
                for path, page in sorted(pages.items())
            },
            "diffs": diffs,
        }
        combined = "\n".join(f"{path} {page.content_hash}" for path, page in sorted(pages.items()))
        now_iso = details[0]
        self._conn.execute(
            "INSERT INTO rule_versions (rule_version, entry_id, effective_date, content_hash,"
            " rules_json, changed_pages, freeleech_active, bonus_event_active, multiplier_active,"
            " event_details, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                version,
                entry_id,
                now_iso,
                hashlib.sha256(combined.encode()).hexdigest(),
                json.dumps(rules, ensure_ascii=False),
                json.dumps(list(changed)),
                *details[1:],
                now_iso,
            ),
        )

    @staticmethod
    def _event_columns(active: list[EventRow], now: datetime) -> tuple[str, int, int, int, str]:
        """(now, freeleech_active, bonus_event_active, multiplier_active, event_details)."""
        types = {row.event_type for row in active}
        details = {
            "refreshed_at": _iso(now),
            "events": [
                {
                    "type": row.event_type,
                    "description": row.description,
                    "start_date": _iso(row.start_date),
                    "end_date": _iso(row.end_date) if row.end_date else None,
                    "source_url": row.source_url,
                }
                for row in active
            ],
        }
        return (
            _iso(now),
            int("freeleech" in types),
            int("bonus" in types),
            int("multiplier" in types),
            json.dumps(details, ensure_ascii=False),
        )

    def _update_events(
        self, entry_id: str, events: Iterable[SiteEvent], now: datetime
    ) -> tuple[list[EventRow], list[EventRow], list[EventRow]]:
        """Apply the announced events; return (started, ended, active now) rows."""
        conn, now_iso = self._conn, _iso(now)
        current = {
            (row.event_type, row.description): row
            for row in map(
                _event_row,
                conn.execute(
                    "SELECT * FROM event_status WHERE entry_id = ? AND active = 1 ORDER BY id",
                    (entry_id,),
                ),
            )
        }
        announced: dict[tuple[EventType, str], SiteEvent] = {}
        for event in events:
            if event.end is None or event.end > now:
                announced.setdefault((event.event_type, event.description), event)
        started: list[EventRow] = []
        active: list[EventRow] = []
        for key, event in announced.items():
            end_iso = _iso(event.end) if event.end is not None else None
            row = current.get(key)
            if row is None:
                cursor = conn.execute(
                    "INSERT INTO event_status (entry_id, event_type, start_date, end_date, active,"
                    " description, source_url) VALUES (?, ?, ?, ?, 1, ?, ?)",
                    (entry_id, event.event_type, now_iso, end_iso, event.description,
                     event.source_url),
                )  # fmt: skip
                row = EventRow(
                    cast("int", cursor.lastrowid),
                    entry_id,
                    event.event_type,
                    _time(now_iso),
                    _time(end_iso) if end_iso else None,
                    True,
                    event.description,
                    event.source_url,
                )
                started.append(row)
            elif (_iso(row.end_date) if row.end_date else None) != end_iso:
                conn.execute("UPDATE event_status SET end_date = ? WHERE id = ?", (end_iso, row.id))
                row = replace(row, end_date=_time(end_iso) if end_iso else None)
            active.append(row)
        ended: list[EventRow] = []
        for key, row in current.items():
            if key in announced:
                continue
            end = row.end_date if row.end_date is not None and row.end_date <= now else now
            conn.execute(
                "UPDATE event_status SET active = 0, end_date = ? WHERE id = ?",
                (_iso(end), row.id),
            )
            ended.append(replace(row, active=False, end_date=_time(_iso(end))))
        return started, ended, active


# --- one store per file for the whole process --------------------------------------------------

_shared_lock = threading.Lock()
_shared: dict[str, tuple[RulesStore, int]] = {}  # absolute path -> (open store, users)


def acquire_store(
    path: str, *, recover: bool = True
) -> tuple[RulesStore, RulesDatabaseError | None]:
    """The process's open store of the file at ``path``; give it back with :func:`release_store`.

    The first caller opens it, later callers share it (one connection, one lock). With
    ``recover``, a corrupt file is moved aside to ``<path>.corrupt-<local YYYYmmddHHMMSS>``
    (with its journal, if any) and a fresh database is created in its place: the problem is
    then returned, ``moved_to`` set, for the caller to report. Any other problem (and a corrupt
    file without ``recover``) raises :class:`RulesDatabaseError`; such a file is not modified.
    """
    key = os.path.abspath(path)
    with _shared_lock:
        if key in _shared:
            store, users = _shared[key]
            _shared[key] = (store, users + 1)
            return store, None
        store = RulesStore(key)
        recovered: RulesDatabaseError | None = None
        try:
            store.open()
        except RulesDatabaseError as err:
            if err.problem != "corrupt" or not recover:
                raise
            err.moved_to = _move_aside(key, err)
            recovered = err
            store.open()
        _shared[key] = (store, 1)
        return store, recovered


def release_store(store: RulesStore) -> None:
    """One user of an :func:`acquire_store` store is done; the last one closes it."""
    with _shared_lock:
        shared = _shared.get(store.path)
        if shared is None or shared[0] is not store:
            return  # already closed by its last user
        users = shared[1] - 1
        if users:
            _shared[store.path] = (store, users)
            return
        del _shared[store.path]
        store.close()


def _move_aside(path: str, err: RulesDatabaseError) -> str:
    """Rename a corrupt database (and its journal files) out of the way; never delete it."""
    stamp = datetime.now().astimezone().strftime("%Y%m%d%H%M%S")
    target, number = f"{path}.corrupt-{stamp}", 1
    while any(os.path.lexists(target + suffix) for suffix in ("", *_COMPANION_SUFFIXES)):
        number += 1
        target = f"{path}.corrupt-{stamp}-{number}"
    try:
        os.rename(path, target)
        for suffix in _COMPANION_SUFFIXES:
            if os.path.lexists(path + suffix):
                os.rename(path + suffix, target + suffix)
    except OSError as os_err:
        raise RulesDatabaseError(
            "cannot_open",
            path,
            f"{err.detail}, and it could not be renamed: {os_err.strerror or os_err}",
        ) from os_err
    return target
