"""Cost of rules-page parsing (``lib/pages.py``) as pages grow: it must be linear.

For 1,000 / 10,000 / 20,000 paragraphs in a full MAM page (site chrome, ticker, scripts, footer
from ``tests/support/mam_pages.py``) and for a realistic ~1 MB ``updateNotes.php`` (dated notes with
paragraphs, lists and links, a five-item ticker), it times ``extract_page`` and
``extract_announcements`` (best of ``--repeat`` runs, parsing included, as the refresh calls
them) and prints the time per element (every HTML element counts) and its ratio to the first
row: a ratio that stays near 1 means linear. ``--before`` also times the original implementation
(the oracle kept in ``tests/lib/test_pages.py``), which was quadratic.

Usage: ``.venv/bin/python benchmarks/bench_pages.py [--sizes 1000,10000,20000] [--before]``
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
import gc
from pathlib import Path
import sys
import time

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bs4 import BeautifulSoup

from custom_components.mam_guard.lib.pages import extract_announcements, extract_page
from tests.support.mam_pages import render_page, update_notes_body

BASE_URL = "https://www.myanonamouse.net/"
NOW = datetime(2025, 11, 21, 12, 30, tzinfo=UTC)
NEWS = [
    ("3x all donation credits (4x Crypto) extended till the end of January!!", "/f/t/86152/x"),
    ("Site maintenance on Saturday, expect short outages", "/f/t/86001/maintenance"),
    ("New audiobook category rules posted", "/f/t/86030/rules"),
    ("Site-wide freeleech this weekend!", "/f/t/86200/fl"),
    ("Forum upgrade finished", "/f/t/86201/forum"),
]


@dataclass
class Row:
    label: str
    elements: int
    size: int
    page_s: float
    announcements_s: float
    before_s: float | None = None

    @property
    def total_s(self) -> float:
        return self.page_s + self.announcements_s

    @property
    def per_element_us(self) -> float:
        return self.total_s / self.elements * 1e6


def paragraphs_page(count: int) -> str:
    body = "".join(
        f"<p>{i}. Seed every torrent you download for at least 72 hours within 30 days, "
        f"or it becomes a <b>Hit &amp; Run</b>.</p>\n"
        for i in range(count)
    )
    return render_page("rules.php", "<h1>Site Rules</h1>\n" + body, news=NEWS, now=NOW)


def realistic_page(target_bytes: int = 1_000_000) -> str:
    """An updateNotes.php of ~``target_bytes``: what MAM's biggest page type looks like."""
    note = (
        "<p>The search page now remembers your last <b>category</b> filter, and the "
        '<a href="/tor/browse.php">browse</a> view shows narrators.</p>'
        "<ul><li>Fixed: the bonus store rounding</li><li>Changed: faster torrent pages</li>"
        "<li>New: per-series RSS feeds</li></ul>"
        "<p>Thanks to everyone who reported bugs in the forum thread.</p>"
    )
    notes: list[tuple[str, str]] = []
    html = ""
    while len(html.encode()) < target_bytes:
        notes.extend(
            (f"20{10 + (len(notes) + i) % 15}-{(i % 12) + 1:02d}-{(i % 28) + 1:02d}", note)
            for i in range(200)
        )
        html = render_page("updateNotes.php", update_notes_body(notes), news=NEWS, now=NOW)
    return html


def count_elements(html: str) -> int:
    return len(BeautifulSoup(html, "html.parser").find_all(True))


def best_of(repeat: int, func: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def measure(label: str, path: str, html: str, *, repeat: int, before: bool) -> Row:
    row = Row(
        label,
        count_elements(html),
        len(html.encode()),
        best_of(repeat, lambda: extract_page(path, html)),
        best_of(repeat, lambda: extract_announcements(html, BASE_URL, path)),
    )
    if before:
        from tests.lib.test_pages import _reference_announcements, _reference_extract_text

        row.before_s = best_of(
            1, lambda: (_reference_extract_text(html), _reference_announcements(html, path))
        )
    return row


def print_table(rows: list[Row]) -> None:
    base = rows[0].per_element_us
    before = any(row.before_s is not None for row in rows)
    head = "| page | elements | HTML | extract_page s | extract_announcements s | total s |"
    head += " µs/element | µs/element vs first row |"
    if before:
        head += " before (original) s |"
    print(head)
    print("|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if before else ""))
    for row in rows:
        line = (
            f"| {row.label} | {row.elements:,} | {row.size / 1e6:.2f} MB | {row.page_s:.3f} |"
            f" {row.announcements_s:.3f} | {row.total_s:.3f} | {row.per_element_us:.1f} |"
            f" {row.per_element_us / base:.2f}x |"
        )
        if before:
            line += f" {row.before_s:.2f} |" if row.before_s is not None else " |"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="1000,10000,20000", help="paragraph counts")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best kept)")
    parser.add_argument(
        "--before", action="store_true", help="also time the original (quadratic) code"
    )
    args = parser.parse_args()
    rows: list[Row] = []
    for count in (int(size) for size in args.sizes.split(",")):
        html = paragraphs_page(count)
        rows.append(
            measure(
                f"{count:,} paragraphs", "rules.php", html, repeat=args.repeat, before=args.before
            )
        )
    html = realistic_page()
    rows.append(
        measure(
            "realistic updateNotes.php",
            "updateNotes.php",
            html,
            repeat=args.repeat,
            before=args.before,
        )
    )
    print_table(rows)
    print("\nelements: every HTML element of the page; total: both calls, parsing included")


if __name__ == "__main__":
    main()
