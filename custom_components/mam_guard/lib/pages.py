"""MyAnonamouse rules pages and site announcements: pure functions on HTML text.

Why this module exists (SPEC §5): the daily refresh must notice when the *content* of the rules
pages changes, and must detect site events (freeleech, bonus points, upload multiplier). Two
traps shape the design:

* Every MAM page carries a header with live counters (vault points, bonus points, ratio), a news
  ticker, personal notices, menus and a footer. Hashing the whole page would create a new "rule
  version" on every fetch, so :func:`extract_page` keeps only the main content, one line per
  block element, with relative times and clock timestamps removed.
* The rules and the FAQ explain "freeleech" and "2x upload" every day, so keyword matching over
  pages gives permanent false positives. Events therefore come only from announcements
  (:func:`extract_announcements`): the items of the header news ticker ``#hrnews`` and the dated
  entries of ``updateNotes.php``. Personal notices (``div.topArea`` without an id: tracker
  errors, H&R warnings, messages), menus, counters and the vault are never read as announcements.
  :func:`classify` reads the events in an announcement (:mod:`.announcements`).

The ticker, in the forms seen on the real site (public sources: saved logged-in pages in
AlmightyTopher/MAMcrawler, the reskin erickochen/colophon ``src/lib/extract/shell.ts``):

* the server-rendered list, as fetched without JavaScript: ``#hrnews #js-news li`` (one item
  each; colophon reads ``#hrnews #js-news a``);
* the rendered jQuery ticker: ``#hrnews .ticker-wrapper .ticker p.ticker-content a`` (with or
  without generated ids), which shows one item at a time;
* anything else under ``#hrnews``: its list items, else its links to forum topics or the lotto,
  else its text. The "hide news" control (``a[data-hidenews]``) is never an item.

Update notes are read from their visible structure, not from class names (none is public): in
the page's main content, a line that starts with a full date ("2025-11-18", "Nov 18, 2025",
"18 November 2025", optionally after "Posted"/"Updated") starts an entry, which runs to the next
such line. That covers a date heading over paragraphs or lists, a table with a date column, a
definition list, or "<b>date</b> - text" lines.

Nothing here imports Home Assistant, and no public function raises on arbitrary input: a broken
page must never break the refresh.

Cost: linear in the size of the page. The tree is walked once without being modified (an
earlier version inserted line-break markers into it, and each bs4 insertion scans the parent's
children, which made a page of 20,000 paragraphs take ~30 s); :func:`read_page` parses a page
once for both its content and its announcements. ``benchmarks/bench_pages.py`` and
``benchmarks/bench_events.py`` measure it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
import difflib
import hashlib
import re
from typing import TYPE_CHECKING, Literal
from urllib.parse import urljoin

from bs4 import BeautifulSoup, Tag
from bs4.element import NavigableString

from .announcements import EventType, read_events
from .event_dates import parse_end_date

if TYPE_CHECKING:
    from collections.abc import Iterator

    from bs4.element import PageElement

RULES_PAGES: tuple[str, ...] = (
    "rules.php",
    "faq.php",
    "f/b/18",
    "f/b/78",
    "guides/",
    "updateNotes.php",
    "api/list.php",
)
UPDATE_NOTES_PATH = "updateNotes.php"

__all__ = [
    "RULES_PAGES",
    "UPDATE_NOTES_PATH",
    "Announcement",
    "EventType",
    "PageContent",
    "SiteEvent",
    "classify",
    "diff_summary",
    "extract_announcements",
    "extract_page",
    "normalise_text",
    "parse_end_date",
    "read_page",
]

# Main-content containers, most specific first; MAM (and tests/support/mam_pages.py) use #mainBody:
# (element id, tag name, role attribute) as for the CSS "#mainBody, #mainContent, main,
# [role=main], #content".
_MAIN: tuple[tuple[str, str], ...] = (
    ("id", "mainBody"),
    ("id", "mainContent"),
    ("name", "main"),
    ("role", "main"),
    ("id", "content"),
)
# Left out wherever they appear: code, site chrome and MAM's header widgets (#tmBP, #tmR, ... are
# the user-stat counters, hence the "tm" id prefix). As CSS: "script, style, noscript, template,
# nav, #header, #hrnews, #millionInfo, #mainmenu, #menu, #userBar, #footer, #clock, [id^=tm]".
# Matched while walking (CSS selection of the whole tree cost more than parsing it).
_NOISE_NAMES = frozenset({"script", "style", "noscript", "template", "nav"})
_NOISE_IDS = frozenset(
    {"header", "hrnews", "millionInfo", "mainmenu", "menu", "userBar", "footer", "clock"}
)
# Also left out when no main container exists and the whole body is used: the page header, the
# strips above the content (user stats, personal notices, ticker) and MAM's footer row.
_FALLBACK_NAMES = frozenset({"header", "footer"})
_FALLBACK_IDS = frozenset({"preNav"})
_FALLBACK_CLASSES = frozenset({"topArea", "footRow"})
_BLOCK_TAGS = (
    "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset", "figure",
    "form", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li", "ol", "p", "pre", "section", "table",
    "tr", "ul",
)  # fmt: skip
_CELL_TAGS = ("td", "th")
_BLOCK_NAMES = frozenset(_BLOCK_TAGS)
_CELL_NAMES = frozenset(_CELL_TAGS)

_VOLATILE = re.compile(
    r"\b(?:\d+|an?|one)\s+(?:sec(?:ond)?s?|min(?:ute)?s?|hours?|hrs?|days?|weeks?|months?|years?)"
    r"\s+ago\b"
    r"|\bjust\s+now\b"
    r"|\b\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?"
    r"(?:\s*(?:UTC|GMT|Z\b|[+-]\d{2}:?\d{2}))?"
    r"|\b\d{1,2}:\d{2}:\d{2}\b(?:\s*(?:UTC|GMT)\b)?"
    r"|\b(?:page\s+)?(?:generated|served|rendered)\s+in\s+\d+(?:\.\d+)?\s*(?:ms|s|sec(?:ond)?s?)\b\.?",
    re.IGNORECASE,
)
_SPACES = re.compile(r"\s+")
_BREAK = "\ue000"  # private-use marker for a block boundary while flattening


@dataclass(frozen=True)
class PageContent:
    """A page's normalised main content (one line per block) and the sha256 hex of that text."""

    path: str
    text: str
    content_hash: str


@dataclass(frozen=True)
class Announcement:
    """A site-wide announcement: a header ticker item or an update-notes entry.

    ``published`` is the entry's date when the source gives one (update notes); ticker items have
    none because the ticker only ever shows current news.
    """

    text: str
    url: str | None
    source: Literal["news_ticker", "update_notes"]
    published: date | None = None


@dataclass(frozen=True)
class SiteEvent:
    """A site event read from one announcement.

    ``end`` and ``start`` are aware, or None when not announced. ``start`` is the announced
    start: in the future for an upcoming event, in the past or None for a running one.
    """

    event_type: EventType
    description: str
    end: datetime | None
    source_url: str | None
    start: datetime | None = None


def _parse(html: str) -> BeautifulSoup | None:
    """Parse with the stdlib parser; None when the parser rejects the markup."""
    try:
        return BeautifulSoup(html, "html.parser")
    except Exception:  # bs4/html.parser may raise on pathological markup; never propagate
        return None


def _collapse(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _noise(tag: Tag, *, fallback: bool) -> bool:
    """Whether ``tag`` is site chrome or code to leave out of a page's text."""
    if tag.name in _NOISE_NAMES:
        return True
    ident = tag.get("id")
    if isinstance(ident, str) and (ident in _NOISE_IDS or ident.startswith("tm")):
        return True
    if not fallback:
        return False
    if tag.name in _FALLBACK_NAMES or ident in _FALLBACK_IDS:
        return True
    classes = tag.get("class")
    return isinstance(classes, list) and not _FALLBACK_CLASSES.isdisjoint(classes)


def _block_lines(
    root: Tag,
    skip: frozenset[int] = frozenset(),
    *,
    links: bool = False,
    noise: bool | None = None,
) -> tuple[list[str], dict[int, str]]:
    """Lines of ``root``, one per block element, and (with ``links``) each line's first href.

    One walk over the tree, which is not modified: a ``<br>`` is a line break, a block element
    starts and ends a line, a table cell is followed by a space; source line breaks are just
    whitespace. Elements whose ``id()`` is in ``skip`` are left out with everything inside them,
    and so is site chrome (:func:`_noise`, with the fallback list when ``noise`` is True) unless
    ``noise`` is None.
    The strings kept are the ones ``root.get_text()`` keeps (no comments, no script or style
    text). Lines are whitespace-collapsed and may be empty.
    """
    types = root.interesting_string_types
    if types is None:
        types = Tag.MAIN_CONTENT_STRING_TYPES
    parts: list[str] = []
    hrefs: dict[int, str] = {}
    line = 0  # block boundaries emitted so far: the index of the line being written
    # Iterators over children still to visit, and text to emit once an element is finished.
    stack: list[Iterator[PageElement] | str] = [iter(root.contents)]
    while stack:
        top = stack[-1]
        if isinstance(top, str):
            parts.append(top)
            line += top == _BREAK
            stack.pop()
            continue
        child = next(top, None)
        if child is None:
            stack.pop()
        elif isinstance(child, Tag):
            if id(child) in skip or (noise is not None and _noise(child, fallback=noise)):
                continue
            if child.name == "br":
                parts.append(_BREAK)
                line += 1
                continue
            if child.name in _BLOCK_NAMES:
                parts.append(_BREAK)
                line += 1
                stack.append(_BREAK)
            elif child.name in _CELL_NAMES:
                stack.append(" ")
            elif links and child.name == "a" and line not in hrefs:
                href = child.get("href")
                if isinstance(href, str) and _real_link(href):
                    hrefs[line] = href.strip()
            stack.append(iter(child.contents))
        elif isinstance(child, NavigableString) and type(child) in types:
            parts.append(child)
            line += child.count(_BREAK)
    return [_collapse(text) for text in "".join(parts).split(_BREAK)], hrefs


def _block_text(root: Tag, *, fallback: bool = False) -> str:
    """Text of ``root`` without site chrome, one line per block element (:func:`_block_lines`)."""
    return "\n".join(_block_lines(root, noise=fallback)[0])


def normalise_text(text: str) -> str:
    """Drop volatile fragments (relative times, clock timestamps, page timings) and blank lines."""
    lines = (_collapse(_VOLATILE.sub(" ", line)) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _unparsed(path: str, html: str) -> PageContent:
    text = normalise_text(re.sub(r"<[^>]*>", "\n", html))
    return PageContent(path, text, _sha256(text))


def _main(soup: BeautifulSoup) -> tuple[Tag, bool]:
    """The main content container, else the body (or the document) and True: the fallback."""
    for kind, value in _MAIN:
        if kind == "id":
            found = soup.find(id=value)
        elif kind == "name":
            found = soup.find(value)
        else:
            found = soup.find(role=value)
        if isinstance(found, Tag):
            return found, False
    return soup.body or soup, True


def extract_page(path: str, html: str) -> PageContent:
    """Return the main content of ``html`` as normalised text and its hash.

    The first main container found (``#mainBody``, ``#mainContent``, ``main``, ``[role=main]``,
    ``#content``) is used; without one, the body (or the whole document) minus ``header``,
    ``footer``, the strips above the content and the noise selectors. Unparseable markup falls
    back to crude tag stripping.
    """
    soup = _parse(html)
    if soup is None:
        return _unparsed(path, html)
    root, fallback = _main(soup)
    text = normalise_text(_block_text(root, fallback=fallback))
    return PageContent(path, text, _sha256(text))


def read_page(path: str, html: str, base_url: str) -> tuple[PageContent, list[Announcement]]:
    """:func:`extract_page` and :func:`extract_announcements` with one parse of the page."""
    soup = _parse(html)
    if soup is None:
        return _unparsed(path, html), []
    notes = _is_update_notes(path)
    root, fallback = _main(soup)
    lines, hrefs = _block_lines(root, links=notes, noise=fallback)
    text = normalise_text("\n".join(lines))
    found = _ticker(soup, base_url)
    if notes:
        found.extend(_update_notes(lines, hrefs, base_url))
    return PageContent(path, text, _sha256(text)), found


def _real_link(href: str) -> bool:
    """A link somewhere ("#" and "javascript:" links are page controls, like "hide news")."""
    href = href.strip()
    return bool(href) and not href.startswith("#") and not href.lower().startswith("javascript:")


def _absolute(href: str, base_url: str) -> str | None:
    try:
        return urljoin(base_url, href.strip())
    except ValueError:  # e.g. a malformed IPv6 host in href
        return None


def _href(tag: Tag, base_url: str) -> str | None:
    """The first real link of ``tag`` (itself or inside it), made absolute."""
    links = [tag] if tag.name == "a" else []
    links.extend(tag.find_all("a", href=True))
    for link in links:
        href = link.get("href")
        if isinstance(href, str) and _real_link(href):
            return _absolute(href, base_url)
    return None


def _is_update_notes(path: str | None) -> bool:
    return path is not None and path.strip("/").split("?")[0].lower() == UPDATE_NOTES_PATH.lower()


# The controls of the ticker widget: never an item, never part of an item's text.
_TICKER_CONTROLS = "[data-hidenews], .ticker-title, .ticker-swipe, .ticker-controls, script, style"
# News items link to forum topics (/f/t/...) or the lotto (/lotto/...) (colophon shell.ts).
_NEWS_LINK = re.compile(r"^(?:https?://[^/]+)?/(?:f/t/|lotto/)", re.IGNORECASE)


def _ticker(soup: BeautifulSoup, base_url: str) -> list[Announcement]:
    """The header ticker's items, in the form the page has (see the module docstring)."""
    ticker = soup.find(id="hrnews")  # in the header: found early, no walk of the whole page
    if ticker is None:
        return []
    skip = frozenset(map(id, ticker.select(_TICKER_CONTROLS)))
    links = [a for a in ticker.select("a[href]") if id(a) not in skip]
    items: list[Tag] = (
        ticker.select("#js-news li, .js-news li")
        or ticker.select(".ticker-content")
        or ticker.select("li")
        or [a for a in links if _NEWS_LINK.match(str(a.get("href", "")).strip())]
        or [a for a in links if _href(a, "")]
        or [ticker]
    )
    found: list[Announcement] = []
    seen: set[str] = set()
    for item in items:
        if item is ticker:
            text = _collapse(" ".join(_block_lines(ticker, skip)[0]))
        else:
            text = _collapse(item.get_text(" "))
        if text and text not in seen:
            seen.add(text)
            found.append(Announcement(text, _href(item, base_url), "news_ticker"))
    return found


_NOTE_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
# A line that starts with a full date starts an update-notes entry.
_NOTE_DATE = re.compile(
    r"^[\W_]{0,3}(?:(?:posted|updated|update|added|released|date|changes?)\b[\W_]{0,3}"
    r"(?:on\s+)?)?(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+)?"
    r"(?:(?P<y>\d{4})[-/.](?P<mo>\d{1,2})[-/.](?P<d>\d{1,2})(?:[ t]\d{1,2}:\d{2}(?::\d{2})?)?"
    rf"|(?P<mon>{_NOTE_MONTH})\s+(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y2>\d{{4}})"
    rf"|(?P<d3>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<mon3>{_NOTE_MONTH}),?\s+(?P<y3>\d{{4}}))"
    r"(?!\d)(?!:\d)(?:\s*(?:utc|gmt)\b)?[\s\W_]*",
    re.IGNORECASE,
)
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def _note_date(match: re.Match[str]) -> date | None:
    try:
        if match["y"]:
            return date(int(match["y"]), int(match["mo"]), int(match["d"]))
        name, day, year = (
            (match["mon"], match["d2"], match["y2"])
            if match["mon"]
            else (match["mon3"], match["d3"], match["y3"])
        )
        return date(int(year), _MONTH_NAMES.index(name[:3].lower()) + 1, int(day))
    except ValueError:
        return None


def _update_notes(lines: list[str], hrefs: dict[int, str], base_url: str) -> list[Announcement]:
    """Dated entries of the update notes: a line starting with a date starts one.

    An entry's text is the rest of its date line and the lines up to the next date line; its
    URL the first forum-topic link in it, else the update notes page. Lines before the first
    date (the title, an introduction) belong to no entry.
    """
    page_url = _absolute(UPDATE_NOTES_PATH, base_url)
    found: list[Announcement] = []
    published: date | None = None
    texts: list[str] = []
    url: str | None = None

    def flush() -> None:
        if published is not None and (text := "\n".join(texts)):
            found.append(Announcement(text, url or page_url, "update_notes", published))

    for index, line in enumerate(lines):
        if not line:
            continue
        match = _NOTE_DATE.match(line)
        day = _note_date(match) if match else None
        rest = line
        if match is not None and day is not None:
            flush()
            published, texts, url = day, [], None
            rest = line[match.end() :]
        elif published is None:
            continue
        if rest:
            texts.append(rest)
        href = hrefs.get(index)
        if url is None and href is not None and _NEWS_LINK.match(href):
            url = _absolute(href, base_url)
    flush()
    return found


def extract_announcements(html: str, base_url: str, path: str | None = None) -> list[Announcement]:
    """Announcements on a page: the ticker's items, plus the entries when ``path`` is the notes.

    Ticker items (see the module docstring) are deduplicated by text; their URL is their first
    real link made absolute against ``base_url``. Update-notes entries are read from the main
    content (see :func:`_update_notes`). Every page repeats the ticker, so callers dedupe.
    """
    return read_page(path or "", html, base_url)[1]


# --- classification ---------------------------------------------------------------------------

STALE_AFTER = timedelta(days=7)
# Update notes older than this are not read at all (they stay on the page for years).
NOTES_MAX_AGE = timedelta(days=366)
_MAX_DESCRIPTION = 300


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def classify(
    announcement: Announcement, *, now: datetime, tz: tzinfo, seen: datetime | None = None
) -> list[SiteEvent]:
    """Site events announced by ``announcement`` (at most one per type).

    What counts as a site event, and how the text is read, is documented in
    :mod:`.announcements`. Relative dates ("tomorrow", "for 48 hours") count from the note's
    publication date when it has one, else from ``seen`` (when the item was first seen), else
    ``now``. An event whose end has passed is not returned; nor is an update note without an
    end older than :data:`STALE_AFTER` (counted from its publication or announced start), nor
    any note older than :data:`NOTES_MAX_AGE`. An event whose announced start is after ``now``
    is returned with that ``start``: an upcoming event. Every date returned is convertible to
    UTC and to any zone; nothing here raises.
    """
    text = _collapse(announcement.text)
    if not text:
        return []
    try:
        now = _aware(now)
        if announcement.published is not None:
            if now.date() - announcement.published > NOTES_MAX_AGE:
                return []
            ref = datetime.combine(announcement.published, time(), tzinfo=tz)
        else:
            ref = _aware(seen) if seen is not None else now
        findings = read_events(announcement.text, ref=ref, tz=tz)
        events: list[SiteEvent] = []
        for finding in findings:
            if finding.end is not None and finding.end <= now:
                continue
            if announcement.published is not None and finding.end is None:
                anchor = max(ref, finding.start) if finding.start is not None else ref
                if now - anchor > STALE_AFTER:
                    continue
            events.append(
                SiteEvent(
                    finding.event_type,
                    text[:_MAX_DESCRIPTION],
                    finding.end,
                    announcement.url,
                    finding.start,
                )
            )
    except ValueError, OverflowError:  # arithmetic at the edges of datetime's range
        return []
    return events


def diff_summary(old_text: str, new_text: str, max_chars: int = 2000) -> str:
    """A unified diff (one line of context) of two normalised texts, cut to ``max_chars``."""
    lines = difflib.unified_diff(
        old_text.splitlines(), new_text.splitlines(), "before", "after", n=1, lineterm=""
    )
    diff = "\n".join(lines)
    if len(diff) <= max_chars:
        return diff
    marker = "\n... (truncated)"
    return diff[: max(max_chars - len(marker), 0)] + marker
