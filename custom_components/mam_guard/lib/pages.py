"""MyAnonamouse rules pages and site announcements: pure functions on HTML text.

Why this module exists (SPEC §5): the daily refresh must notice when the *content* of the rules
pages changes, and must detect site events (freeleech, bonus points, upload multiplier). Two
traps shape the design:

* Every MAM page carries a header with live counters (vault points, bonus points, ratio), a news
  ticker, menus and a footer with timings and a clock. Hashing the whole page would create a new
  "rule version" on every fetch, so :func:`extract_page` keeps only the main content, one line per
  block element, with relative times and clock timestamps removed.
* The rules and the FAQ explain "freeleech" and "2x upload" every day, so keyword matching over
  pages gives permanent false positives. Events therefore come only from announcements
  (:func:`extract_announcements`: the header ticker ``#hrnews`` and ``updateNotes.php`` entries),
  classified by :func:`classify` with phrase rules, not single keywords.

Nothing here imports Home Assistant, and no public function raises on arbitrary input: a broken
page must never break the refresh.

Cost: extraction is linear in the size of the page. The tree is walked once without being
modified (an earlier version inserted line-break markers into it, and each bs4 insertion scans
the parent's children, which made a page of 20,000 paragraphs take ~30 s);
``benchmarks/bench_pages.py`` measures it.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
import difflib
import hashlib
import re
from typing import TYPE_CHECKING, Literal
from urllib.parse import urljoin

from bs4 import BeautifulSoup, Tag
from bs4.element import NavigableString

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

EventType = Literal["freeleech", "bonus", "multiplier"]

# Main-content containers, most specific first; MAM (and tests/support/mam_pages.py) use #mainBody.
_MAIN_SELECTORS = ("#mainBody", "#mainContent", "main", "[role=main]", "#content")
# Removed wherever they appear: code, site chrome and MAM's header widgets (#tmBP, #tmR, ... are
# the user-stat counters, hence the "tm" prefix match).
_NOISE_SELECTOR = (
    "script, style, noscript, template, nav, #header, #hrnews, #millionInfo, #mainmenu, #menu,"
    ' #userBar, #footer, #clock, [id^="tm"]'
)
# Also removed when no main container exists and the whole body is used.
_FALLBACK_NOISE_SELECTOR = "header, footer"
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
    """A site event read from one announcement; ``end`` is aware, or None when not announced."""

    event_type: EventType
    description: str
    end: datetime | None
    source_url: str | None


def _parse(html: str) -> BeautifulSoup | None:
    """Parse with the stdlib parser; None when the parser rejects the markup."""
    try:
        return BeautifulSoup(html, "html.parser")
    except Exception:  # bs4/html.parser may raise on pathological markup; never propagate
        return None


def _collapse(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _block_text(root: Tag, skip: frozenset[int] = frozenset()) -> str:
    """Text of ``root``, one line per block element: source line breaks are just whitespace.

    One walk over the tree, which is not modified: a ``<br>`` is a line break, a block element
    starts and ends a line, a table cell is followed by a space. Elements whose ``id()`` is in
    ``skip`` are left out with everything inside them. The strings kept are the ones
    ``root.get_text()`` keeps (no comments, no script or style text).
    """
    types = root.interesting_string_types
    if types is None:
        types = Tag.MAIN_CONTENT_STRING_TYPES
    parts: list[str] = []
    # Iterators over children still to visit, and text to emit once an element is finished.
    stack: list[Iterator[PageElement] | str] = [iter(root.contents)]
    while stack:
        top = stack[-1]
        if isinstance(top, str):
            parts.append(top)
            stack.pop()
            continue
        child = next(top, None)
        if child is None:
            stack.pop()
        elif isinstance(child, Tag):
            if id(child) in skip:
                continue
            if child.name == "br":
                parts.append(_BREAK)
                continue
            if child.name in _BLOCK_NAMES:
                parts.append(_BREAK)
                stack.append(_BREAK)
            elif child.name in _CELL_NAMES:
                stack.append(" ")
            stack.append(iter(child.contents))
        elif isinstance(child, NavigableString) and type(child) in types:
            parts.append(child)
    return "\n".join(_collapse(line) for line in "".join(parts).split(_BREAK))


def normalise_text(text: str) -> str:
    """Drop volatile fragments (relative times, clock timestamps, page timings) and blank lines."""
    lines = (_collapse(_VOLATILE.sub(" ", line)) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def extract_page(path: str, html: str) -> PageContent:
    """Return the main content of ``html`` as normalised text and its hash.

    The first main container found (``#mainBody``, ``#mainContent``, ``main``, ``[role=main]``,
    ``#content``) is used; without one, the body (or the whole document) minus ``header``,
    ``footer`` and the noise selectors. Unparseable markup falls back to crude tag stripping.
    """
    soup = _parse(html)
    if soup is None:
        text = normalise_text(re.sub(r"<[^>]*>", "\n", html))
        return PageContent(path, text, _sha256(text))
    root: Tag = next(
        (tag for sel in _MAIN_SELECTORS if (tag := soup.select_one(sel)) is not None), soup
    )
    selector = _NOISE_SELECTOR
    if root is soup:
        root = soup.body or soup
        selector = f"{_FALLBACK_NOISE_SELECTOR}, {_NOISE_SELECTOR}"
    noise = root.select(selector)  # left out of the text (with their content), not removed
    text = normalise_text(_block_text(root, frozenset(map(id, noise))))
    return PageContent(path, text, _sha256(text))


def _href(tag: Tag, base_url: str) -> str | None:
    link = tag if tag.name == "a" and tag.has_attr("href") else tag.find("a", href=True)
    href = link.get("href") if isinstance(link, Tag) else None
    if not isinstance(href, str) or not href.strip():
        return None
    try:
        return urljoin(base_url, href.strip())
    except ValueError:  # e.g. a malformed IPv6 host in href
        return None


def _is_update_notes(path: str | None) -> bool:
    return path is not None and path.strip("/").split("?")[0].lower() == UPDATE_NOTES_PATH.lower()


_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")


def _note_date(text: str) -> date | None:
    match = _ISO_DATE.search(text)
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def extract_announcements(html: str, base_url: str, path: str | None = None) -> list[Announcement]:
    """Announcements on a page: the header ticker, plus the notes when ``path`` is updateNotes.php.

    Ticker: each ``#hrnews li`` (else each ``#hrnews a``, else the whole ticker) is one item; its
    first link, made absolute against ``base_url``, is the URL. Update notes: each ``.updateNote``
    element is one entry; its date is the first ``YYYY-MM-DD`` in the entry's ``.noteDate`` (or
    text), its text the ``.noteBody`` (or the entry minus the date), its URL the first link in it
    or ``updateNotes.php#<id>``. Every page repeats the ticker, so callers dedupe (the store does).
    """
    soup = _parse(html)
    if soup is None:
        return []
    found: list[Announcement] = []
    for ticker in soup.select("#hrnews"):
        items = ticker.select("li") or ticker.select("a") or [ticker]
        for item in items:
            text = _collapse(item.get_text(" "))
            if text:
                found.append(Announcement(text, _href(item, base_url), "news_ticker"))
    if _is_update_notes(path):
        page_url = urljoin(base_url, UPDATE_NOTES_PATH)
        for note in soup.select(".updateNote"):
            date_tag = note.select_one(".noteDate")
            body = note.select_one(".noteBody")
            published = _note_date(date_tag.get_text(" ") if date_tag else note.get_text(" "))
            if body is None and date_tag is not None:
                date_tag.extract()
            text = _collapse((body or note).get_text(" "))
            note_id = note.get("id")
            url = _href(note, base_url) or (
                f"{page_url}#{note_id}" if isinstance(note_id, str) and note_id else page_url
            )
            if text:
                found.append(Announcement(text, url, "update_notes", published))
    return found


# --- classification ---------------------------------------------------------------------------

_FL = r"(?:free\s*-?\s*leech|fl)"
_MULT = r"(?:\d+(?:\.\d+)?\s*x|x\s*\d+|double[ds]?|triple[ds]?|quadruple[ds]?|twice\s+the)"
_RULES: tuple[tuple[EventType, re.Pattern[str]], ...] = (
    (
        "freeleech",
        re.compile(
            rf"\b(?:site\s*-?\s*wide|global|whole[\s-]+site|site)\s+{_FL}\b"
            rf"|\b{_FL}\s+(?:weekend|week|day|event|party|site\s*-?\s*wide"
            r"|for\s+(?:every(?:one|body)|all)|on\s+(?:all|every(?:thing)?))\b"
            rf"|\b(?:everything|all\s+torrents|the\s+(?:whole\s+)?site)\s+(?:is|are)\s+(?:now\s+)?{_FL}\b",
            re.IGNORECASE,
        ),
    ),
    (
        "bonus",
        re.compile(
            rf"\b{_MULT}\s+(?:(?:all|the|your)\s+)?"
            r"(?:bonus(?:\s+points?)?|bp|seed\s*bonus|(?:donation|vault)\s+credits?)\b"
            r"|\bbonus(?:\s+points?)?\s+(?:event|weekend|multiplier|boost|bonanza)\b"
            rf"|\b(?:bonus(?:\s+points?)?|bp|seed\s*bonus)\s+(?:are|is)\s+(?:doubled|tripled|{_MULT})",
            re.IGNORECASE,
        ),
    ),
    (
        "multiplier",
        re.compile(
            rf"\b{_MULT}\s+(?:(?:all|the|your)\s+)?(?:upload(?:ed|s)?|ul)\b"
            r"|\bupload\s+(?:multiplier|boost|event|bonus)\b"
            rf"|\buploads?\s+(?:counts?|are\s+counted)\s+(?:double|twice|{_MULT})",
            re.IGNORECASE,
        ),
    ),
)
_VETO = re.compile(
    r"\b(?:discussion|discuss|poll|survey|suggestions?|feedback|ended|is\s+over|are\s+over"
    r"|cancell?ed|postponed)\b|\?\s*$",
    re.IGNORECASE,
)
# Freeleech that is not site-wide even next to "site": staff picks, personal FL, wedges.
_FL_VETO = re.compile(r"\b(?:picks?|personal|wedges?)\b", re.IGNORECASE)
STALE_AFTER = timedelta(days=7)
_MAX_DESCRIPTION = 300


def classify(announcement: Announcement, *, now: datetime, tz: tzinfo) -> list[SiteEvent]:
    """Site events announced by ``announcement`` (at most one per type, same end for all).

    Rules, on the whitespace-collapsed text, case-insensitive:

    * freeleech: a site-wide scope next to "freeleech"/"FL" ("site-wide freeleech", "sitewide FL",
      "site FL", "global freeleech", "freeleech weekend/week/day/event", "FL for everyone/all",
      "freeleech on all torrents", "everything is freeleech"). "Freeleech" alone, staff picks,
      personal FL and wedges do not match.
    * bonus: a multiplier before bonus points or donation/vault credits ("2x bonus points",
      "double BP", "3x all donation credits" - donation credits are bought with points, so a
      credit multiplier is a bonus event), or "bonus point event/weekend/multiplier",
      "bonus points are doubled".
    * multiplier: a multiplier before upload ("2x upload", "double upload credit"), or "upload
      multiplier/boost/event", "uploads count double".
    * Nothing at all when the text is a discussion/poll/feedback thread, a question (ends with
      "?"), or says the event ended/is over/was cancelled or postponed.

    The end comes from :func:`parse_end_date` (so it is always convertible to UTC: an end at the
    edge of datetime's range, like "until 9999-12-31", counts as none), resolved relative to the
    note's publication date when it has one, else ``now``. An event whose end has passed is not
    returned, nor is a dated announcement without an end that is older than :data:`STALE_AFTER`
    (update notes stay on the page for years).
    """
    text = _collapse(announcement.text)
    if not text or _VETO.search(text):
        return []
    types = [
        event_type
        for event_type, rule in _RULES
        if rule.search(text) and not (event_type == "freeleech" and _FL_VETO.search(text))
    ]
    if not types:
        return []
    now = _aware(now)
    ref = now
    if announcement.published is not None:
        ref = datetime.combine(announcement.published, time(), tzinfo=tz)
    end = parse_end_date(text, now=ref, tz=tz)
    if end is not None and end <= now:
        return []
    if end is None and now - ref > STALE_AFTER:
        return []
    description = text[:_MAX_DESCRIPTION]
    return [SiteEvent(event_type, description, end, announcement.url) for event_type in types]


# --- end dates --------------------------------------------------------------------------------

_MONTH = (
    r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b\.?"
)
_WEEKDAY = (
    r"(?P<wd>mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:r(?:s(?:day)?)?)?|fri(?:day)?"
    r"|sat(?:urday)?|sun(?:day)?)\b\.?"
)
_YEAR = r"(?:,?\s+(?P<y>\d{4})\b)?"
_DAY = r"(?P<d>\d{1,2})(?:st|nd|rd|th)?\b"
_TRIGGER = re.compile(
    r"\b(?:until|till|til|through|thru|ends?|ending|expires?)\b\s*:?\s*(?:on\s+|at\s+)?",
    re.IGNORECASE,
)
_DATE_FORMS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("iso", r"(?P<y>\d{4})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})(?!\d)"),
        (
            "end_of",
            rf"(?:the\s+)?end\s+of\s+(?:the\s+|this\s+)?(?:(?P<unit>month|week(?:end)?)\b|{_MONTH}"
            r"(?:\s+(?P<y>\d{4})\b)?)",
        ),
        ("weekend", r"(?:(?:the|this)\s+)?weekend\b"),
        ("month_day", rf"(?:{_WEEKDAY},?\s+)?(?:the\s+)?{_MONTH}\s+{_DAY}{_YEAR}"),
        ("day_month", rf"(?:{_WEEKDAY},?\s+)?(?:the\s+)?{_DAY}\s+(?:of\s+)?{_MONTH}{_YEAR}"),
        ("weekday", rf"(?:next\s+|this\s+)?{_WEEKDAY}"),
        ("tomorrow", r"tomorrow\b"),
        ("tonight", r"(?:tonight|midnight)\b"),
    )
)
_TIME = re.compile(
    r"(?:t|\s*,?\s*(?:at\s+|@\s*)?)(?P<h>\d{1,2})(?::(?P<m>\d{2}))?(?::(?P<s>\d{2}))?"
    r"(?:\s*(?P<ap>[ap])\.?m\b\.?)?",
    re.IGNORECASE,
)
_UTC_SUFFIX = re.compile(r"\s*(?:utc|gmt|z)\b", re.IGNORECASE)
_END_OF_DAY = time(23, 59, 59)
# An end must keep this distance from the edges of datetime's range (years 1 and 9999) once in
# UTC, so that converting it to UTC or to any zone (offsets stay within a day) and adding a day
# to it cannot overflow in the store, the entities or a timer.
_END_MARGIN = timedelta(days=2)
_EARLIEST_END = datetime.min.replace(tzinfo=UTC) + _END_MARGIN
_LATEST_END = datetime.max.replace(tzinfo=UTC) - _END_MARGIN


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _usable_end(moment: datetime) -> bool:
    """Whether ``moment`` is safely inside datetime's range in UTC (see ``_END_MARGIN``)."""
    try:
        utc = moment.astimezone(UTC)
    except ValueError, OverflowError:  # 9999-12-31 west of UTC, 0001-01-01 east of UTC
        return False
    return _EARLIEST_END <= utc <= _LATEST_END


def _month(name: str) -> int:
    return (
        "jan",
        "feb",
        "mar",
        "apr",
        "may",
        "jun",
        "jul",
        "aug",
        "sep",
        "oct",
        "nov",
        "dec",
    ).index(name[:3].lower()) + 1


def _nearest(ref: date, month: int, day: int | None) -> date | None:
    """The date nearest to ``ref`` in the previous, current or next year (``day`` None = last).

    Announcements talk about near dates: "until Jan 3" in December is next January, while
    "until Dec 1" read on Dec 2 is yesterday (the event is over), not next December.
    """
    candidates: list[date] = []
    for year in (ref.year - 1, ref.year, ref.year + 1):
        try:
            candidates.append(date(year, month, day or calendar.monthrange(year, month)[1]))
        except ValueError:
            continue
    return min(candidates, key=lambda d: abs((d - ref).days), default=None)


def _fixed(year: int, month: int, day: int | None) -> date:
    return date(year, month, day or calendar.monthrange(year, month)[1])


def _resolve_date(form: str, match: re.Match[str], ref: date) -> date | None:
    groups = match.groupdict()
    year = int(groups["y"]) if groups.get("y") else None
    if form == "iso":
        return date(int(groups["y"]), int(groups["mo"]), int(groups["d"]))
    if form in {"month_day", "day_month"}:
        month, day = _month(groups["mon"]), int(groups["d"])
        return _fixed(year, month, day) if year else _nearest(ref, month, day)
    if form == "end_of":
        unit = (groups.get("unit") or "").lower()
        if unit == "month":
            return _fixed(ref.year, ref.month, None)
        if unit:  # week, weekend: the coming Sunday
            return ref + timedelta(days=6 - ref.weekday())
        month = _month(groups["mon"])
        return _fixed(year, month, None) if year else _nearest(ref, month, None)
    if form == "weekend":
        return ref + timedelta(days=6 - ref.weekday())
    if form == "weekday":
        wanted = ("mon", "tue", "wed", "thu", "fri", "sat", "sun").index(groups["wd"][:3].lower())
        return ref + timedelta(days=(wanted - ref.weekday()) % 7)
    if form == "tomorrow":
        return ref + timedelta(days=1)
    return ref  # tonight / midnight


def _resolve_time(text: str) -> tuple[time, bool]:
    """The time of day at the start of ``text`` (default: end of day) and whether it is UTC."""
    moment, used = _END_OF_DAY, 0
    match = _TIME.match(text)
    if match and (match["m"] or match["ap"]):
        hour, minute = int(match["h"]), int(match["m"] or 0)
        if match["ap"]:
            hour = hour % 12 + (12 if match["ap"].lower() == "p" else 0)
        if hour < 24 and minute < 60 and int(match["s"] or 0) < 60:
            moment, used = time(hour, minute, int(match["s"] or 0)), match.end()
    return moment, bool(_UTC_SUFFIX.match(text, used))


def parse_end_date(text: str, *, now: datetime, tz: tzinfo) -> datetime | None:
    """The end announced in ``text`` as an aware datetime, or None when it names none.

    An end follows "until", "till", "'til", "through"/"thru", "ends"/"ending" or "expires"
    (optionally "on"/"at"), and is one of: ``YYYY-MM-DD`` (optionally with ``HH:MM[:SS]``), "Dec 1"
    / "December 1st[, 2026]", "1st of December", "the end of January/the month/the week", "the
    weekend" (Sunday), a weekday (next occurrence, today included), "tomorrow", "tonight"/
    "midnight". A date without a time ends at 23:59:59; a time may follow ("at 12:00", "5pm").
    The zone is ``tz`` unless the text says UTC/GMT/Z. Dates without a year resolve to the nearest
    occurrence around ``now`` (see :func:`_nearest`).

    An end within two days of the edges of datetime's range (years 1 and 9999: "until
    9999-12-31" means "no end", and in a zone west of UTC it has no UTC equivalent at all) is
    ignored like an impossible date ("until Feb 30"): the result is always convertible to UTC
    and to any zone. Nothing here raises, whatever ``text``, ``now`` and ``tz``.
    """
    try:
        ref = _aware(now).astimezone(tz)
    except ValueError, OverflowError:  # only at the edges of datetime's range
        return None
    for trigger in _TRIGGER.finditer(text):
        tail = text[trigger.end() : trigger.end() + 80]
        for form, pattern in _DATE_FORMS:
            match = pattern.match(tail)
            if match is None:
                continue
            try:
                day = _resolve_date(form, match, ref.date())
                if day is None:
                    continue
                moment, is_utc = _resolve_time(tail[match.end() :])
                end = datetime.combine(day, moment, tzinfo=UTC if is_utc else tz)
            except ValueError, OverflowError:  # "Feb 30", "tomorrow" on 9999-12-31
                continue
            if _usable_end(end):
                return end
    return None


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
