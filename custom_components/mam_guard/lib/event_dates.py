"""When an announced site event starts and ends: date and time expressions in plain English.

Pure functions, no Home Assistant import; nothing here raises, whatever the text, the reference
time and the zone. Every moment returned is aware and safely inside datetime's range once in UTC
(two days from its edges), so converting it to UTC or any zone, or adding a day, cannot overflow.

What is read (case-insensitive, on a clause or a few clauses of one announcement):

* an **end** after "until", "till", "'til", "through"/"thru", "ends"/"ending", "expires", "closes",
  "runs/lasts until", "extended to/until", or "on <date>" in a clause that ends the event ("will
  be removed on Saturday");
* a **start** after "starts"/"starting", "begins"/"beginning", "from", "as of", "effective",
  "commencing", "kicks off", "opens";
* a **range**: "from X to Y", "between X and Y", "X - Y";
* a **duration**: "for 24 hours", "for the next 3 days", "a 48-hour freeleech" (from the start, or
  from the reference time);
* a **period** when nothing above is said: "today", "tonight", "tomorrow", "this weekend" /
  "weekend" (Saturday 00:00 to Sunday 23:59:59), "this week" (to Sunday), "next week(end)",
  "this month", a weekday ("Freeleech Sunday").

Dates: ``YYYY-MM-DD`` (optionally ``HH:MM[:SS]``), "Dec 1", "December 1st, 2026", "1st of
December", "Saturday the 14th of January", "12/23/2017" (month first), "01.12.2021" (day first),
"the end of January/the month/the week", a weekday (the next one, today included), "tomorrow",
"tonight", "midnight". A time may follow or precede the date ("at 8PM GMT", "00:00h UTC",
"approximately 21:00"), with a zone (UTC, GMT, Z, EST, EDT, CST, CDT, MST, MDT, PST, PDT, CET,
CEST, BST, AEST or an offset); otherwise ``tz``. A date without a time starts at 00:00:00 and
ends at 23:59:59 (inclusive, as "until Dec 1" is meant); "midnight" (or "24:00") as an end is
00:00 of the next day. A time alone is today, or the start's day when a start was read ("starts
Friday 20:00, ends at 23:00"). Dates without a year resolve to the occurrence nearest the
reference time. An end before its start moves on: a year for a date without a year ("from Dec 24
to Jan 1"), a week for a weekday ("from Friday to Monday" read on a Saturday), a day for a time
alone ("from 10 PM to 2 AM").
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
import re

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MONTH = (
    r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b\.?"
)
_WEEKDAY = (
    r"(?P<wd>mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:r(?:s(?:day)?)?)?|fri(?:day)?"
    r"|sat(?:urday)?|sun(?:day)?)\b\.?"
)
_YEAR = r"(?:,?\s+(?P<y>\d{4})\b)?"
_DAY = r"(?P<d>\d{1,2})(?:st|nd|rd|th)?\b"
_LEAD = r"(?:(?:next|this|coming)\s+)?"
_DATE_FORMS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        (
            "iso",
            r"(?P<y>\d{4})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})(?!\d)"
            r"(?:(?:t|\s+)(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?)?",
        ),
        ("us", r"(?P<mo>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})(?!\d)"),
        ("eu", r"(?P<d>\d{1,2})\.(?P<mo>\d{1,2})\.(?P<y>\d{4})(?!\d)"),
        (
            "end_of",
            r"(?:the\s+)?end\s+of\s+(?:the\s+|this\s+)?(?:(?P<unit>month|week(?:end)?|year)\b|"
            rf"{_MONTH}(?:\s+(?P<y>\d{{4}})\b)?)",
        ),
        ("month_day", rf"(?:{_WEEKDAY},?\s+)?(?:the\s+)?{_MONTH}\s+(?:the\s+)?{_DAY}{_YEAR}"),
        ("day_month", rf"(?:{_WEEKDAY},?\s+)?(?:the\s+)?{_DAY}\s+(?:of\s+)?{_MONTH}{_YEAR}"),
        ("weekend", rf"(?:the\s+|this\s+|{_LEAD})?weekend\b"),
        ("weekday", rf"{_LEAD}{_WEEKDAY}(?:\s+(?:night|evening))?"),
        ("tomorrow", r"tomorrow\b(?:\s+(?:night|evening))?"),
        ("today", r"(?:today|tonight)\b"),
        ("midnight", r"midnight\b"),
    )
)
_FILLER = re.compile(
    r"(?:\s|,|:|\(|\)|-(?!\d)|\b(?:on|at|the|approximately|approx\.?|around|about|roughly|circa"
    r"|until|till|by|of)\b)*",
    re.IGNORECASE,
)
# Between a time and the date it belongs to ("at 8PM GMT, on Saturday"): no "until" or "by",
# which start the next expression ("from 8 PM till Sunday" starts today at 8 PM).
_TIME_TO_DATE = re.compile(r"(?:\s|,|\(|\)|\b(?:on|the)\b)*", re.IGNORECASE)
_TIME = re.compile(
    r"(?:\s|,|@|\b(?:at|from|approximately|approx\.?|around|about|roughly|circa)\b)*"
    r"(?:(?P<noon>noon|midday)|(?P<mid>midnight)|(?P<h>\d{1,2})(?:[:.](?P<m>\d{2}))?(?::(?P<s>\d{2}))?"
    r"\s*(?:(?P<hsuffix>h\b|hrs\b)|(?P<ap>[ap])\.?\s?m\b\.?)?)",
    re.IGNORECASE,
)
_ZONE = re.compile(
    r"\s*\(?\s*(?P<zone>utc|gmt|z|est|edt|cst|cdt|mst|mdt|pst|pdt|cet|cest|bst|aest)\b"
    r"(?:\s*(?P<sign>[+-])\s*(?P<oh>\d{1,2})(?::?(?P<om>\d{2}))?)?\s*\)?",
    re.IGNORECASE,
)
_ZONES = {
    "utc": 0, "gmt": 0, "z": 0, "est": -5, "edt": -4, "cst": -6, "cdt": -5, "mst": -7,
    "mdt": -6, "pst": -8, "pdt": -7, "cet": 1, "cest": 2, "bst": 1, "aest": 10,
}  # fmt: skip
_END_TRIGGER = re.compile(
    r"\b(?:until|till|til|through|thru|ends?|ending|expires?|expiring|closes?|closing"
    r"|(?:runs?|running|lasts?|lasting|continues?|goes|going|stays?\s+on)\s+(?:until|till|til|through|thru|to)"
    r"|extended\s+(?:to|until|till|through|thru))\b\s*:?",
    re.IGNORECASE,
)
_START_TRIGGER = re.compile(
    r"\b(?:starts?|starting|begins?|beginning|commences?|commencing|kicks?\s+off|opens?|from"
    r"|as\s+of|effective(?:\s+from)?)\b\s*:?",
    re.IGNORECASE,
)
_RANGE = re.compile(r"\s*(?:to|until|till|til|through|thru|and|-)\s*", re.IGNORECASE)
_RANGE_LEAD = re.compile(r"\b(?:from|between)\s+", re.IGNORECASE)
_BARE_RANGE_LEAD = re.compile(
    r"(?<![\w-])(?=\d{4}-\d{1,2}-\d{1,2}|\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?[a-z]{3}"
    r"|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d)",
    re.IGNORECASE,
)
_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "twelve": 12, "fourteen": 14, "twenty-four": 24,
    "forty-eight": 48, "seventy-two": 72,
}  # fmt: skip
_COUNT = rf"(?P<n>\d{{1,3}}|{'|'.join(_NUMBER_WORDS)})"
_UNIT = r"(?P<unit>hours?|hrs?|h|days?|weeks?)"
_DURATION = re.compile(
    rf"\bfor\s+(?:the\s+next\s+|another\s+|a\s+further\s+|an\s+extra\s+|the\s+)?{_COUNT}\s*{_UNIT}\b"
    rf"|(?<![\w.])(?P<n2>\d{{1,3}})\s*-?\s*(?P<unit2>hour|hr|h|day|week)(?:\s*-?\s*long)?\b(?!s)",
    re.IGNORECASE,
)
_ON_DATE = re.compile(r"\bon\s+", re.IGNORECASE)
_PERIOD = re.compile(
    r"\b(?:(?:the\s+)?rest\s+of\s+the\s+(?P<rest>week(?:end)?|month|day|year)\b"
    r"|all\s+(?P<long>week|month)(?:\s+long)?\b"
    rf"|(?P<wk>(?:this|next|coming|the|all)\s+)?(?P<weekend>weekend)\b"
    r"|(?P<wq>this|next|coming)\s+week\b|(?P<month>this\s+month)\b"
    r"|(?P<tomorrow>tomorrow)\b|(?P<today>today|tonight)\b"
    rf"|(?P<weekday>{_WEEKDAY.replace('?P<wd>', '?P<pwd>')}))",
    re.IGNORECASE,
)
_END_OF_DAY = time(23, 59, 59)
# Moments within two days of datetime's range edges (in UTC) are ignored like impossible dates.
_MARGIN = timedelta(days=2)
_EARLIEST = datetime.min.replace(tzinfo=UTC) + _MARGIN
_LATEST = datetime.max.replace(tzinfo=UTC) - _MARGIN


@dataclass(frozen=True)
class Period:
    """An announced start and end (aware, or None when not said).

    ``guessed_start`` and ``guessed_end`` say they come from a period word ("this weekend"
    runs from Saturday to Sunday) rather than from a stated date: a text saying the event is
    on now overrides such a start, and a stated end elsewhere in the text is preferred.
    """

    start: datetime | None = None
    end: datetime | None = None
    guessed_start: bool = field(default=False, compare=False)
    guessed_end: bool = field(default=False, compare=False)

    def __bool__(self) -> bool:
        """Whether anything was said."""
        return self.start is not None or self.end is not None


@dataclass(frozen=True)
class _When:
    """A date read from the text, with its time and zone when the text gives them."""

    day: date
    at: time | None
    zone: tzinfo | None
    next_day: bool = False  # "midnight": the start of the next day
    stop: int = 0  # where the expression ends in the text
    # What the text left open: "time" (a time alone), "weekday" (a day of the week or the
    # weekend: it comes back every week), "yearless" (a month and day without a year), or "".
    kind: str = ""

    def moment(self, tz: tzinfo, *, end: bool) -> datetime:
        zone = self.zone or tz
        if self.at is not None:
            moment = datetime.combine(self.day, self.at, tzinfo=zone)
            return moment + timedelta(days=1) if self.next_day and end else moment
        return datetime.combine(self.day, _END_OF_DAY if end else time(), tzinfo=zone)


def usable(moment: datetime | None) -> bool:
    """Whether ``moment`` is aware and safely inside datetime's range in UTC."""
    if moment is None or moment.tzinfo is None:
        return False
    try:
        utc = moment.astimezone(UTC)
    except ValueError, OverflowError:  # no UTC equivalent at the edges of the range
        return False
    return _EARLIEST <= utc <= _LATEST


def _month(name: str) -> int:
    return _MONTHS.index(name[:3].lower()) + 1


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


def _sunday(ref: date) -> date:
    return ref + timedelta(days=6 - ref.weekday())


def _weekday(ref: date, name: str, *, following: bool = False) -> date:
    wanted = _WEEKDAYS.index(name[:3].lower())
    ahead = (wanted - ref.weekday()) % 7
    return ref + timedelta(days=ahead + (7 if following and ahead == 0 else 0))


def _resolve(form: str, match: re.Match[str], ref: date) -> date | None:
    groups = match.groupdict()
    year = int(groups["y"]) if groups.get("y") else None
    if form == "iso" or form in {"us", "eu"}:
        return date(int(groups["y"]), int(groups["mo"]), int(groups["d"]))
    if form in {"month_day", "day_month"}:
        month, day = _month(groups["mon"]), int(groups["d"])
        return _fixed(year, month, day) if year else _nearest(ref, month, day)
    if form == "end_of":
        unit = (groups.get("unit") or "").lower()
        if unit == "month":
            return _fixed(ref.year, ref.month, None)
        if unit == "year":
            return date(ref.year, 12, 31)
        if unit:  # week, weekend: the coming Sunday
            return _sunday(ref)
        month = _month(groups["mon"])
        return _fixed(year, month, None) if year else _nearest(ref, month, None)
    if form == "weekend":
        following = match.group(0).lower().startswith("next")
        return _sunday(ref) + timedelta(days=7 if following else 0)
    if form == "weekday":
        following = match.group(0).lower().startswith("next")
        return _weekday(ref, groups["wd"], following=following)
    if form == "tomorrow":
        return ref + timedelta(days=1)
    return ref  # today, tonight, midnight


def _zone(text: str, pos: int) -> tuple[tzinfo | None, int]:
    match = _ZONE.match(text, pos)
    if match is None:
        return None, pos
    hours = _ZONES[match["zone"].lower()]
    minutes = 0
    if match["sign"]:
        sign = -1 if match["sign"] == "-" else 1
        hours += sign * int(match["oh"])
        minutes = sign * int(match["om"] or 0)
    if not -23 <= hours <= 23 or abs(minutes) > 59:
        return None, pos
    return timezone(timedelta(hours=hours, minutes=minutes)), match.end()


def _time(text: str, pos: int) -> tuple[time | None, bool, tzinfo | None, int]:
    """A time of day at ``pos`` (with its zone): (time, is midnight, zone, end position)."""
    match = _TIME.match(text, pos)
    if match is None:
        return None, False, None, pos
    if match["noon"]:
        moment, midnight = time(12), False
    elif match["mid"]:
        moment, midnight = time(0), True
    elif match["m"] or match["ap"] or match["hsuffix"]:
        hour, minute, second = int(match["h"]), int(match["m"] or 0), int(match["s"] or 0)
        if match["ap"]:
            if not 1 <= hour <= 12:
                return None, False, None, pos
            hour = hour % 12 + (12 if match["ap"].lower() == "p" else 0)
        if hour == 24 and minute == 0 and second == 0:
            hour, midnight = 0, True
        else:
            midnight = False
        if hour > 23 or minute > 59 or second > 59:
            return None, False, None, pos
        moment = time(hour, minute, second)
    else:
        return None, False, None, pos
    zone, end = _zone(text, match.end())
    return moment, midnight, zone, end


def _date_at(text: str, pos: int, ref: date) -> _When | None:
    """A date expression at ``pos`` (after filler), with an optional time and zone.

    A time may also come first ("at 8PM GMT, on Saturday the 14th of January"); a time alone
    is today ("ends at 18:00 UTC"). ``_When.stop`` is where the expression ends.
    """
    filler = _FILLER.match(text, pos)
    pos = filler.end() if filler else pos
    lead_time, lead_mid, lead_zone, after_time = _time(text, pos)
    date_pos = pos
    if lead_time is not None:
        between = _TIME_TO_DATE.match(text, after_time)
        date_pos = between.end() if between else after_time
    for form, pattern in _DATE_FORMS:
        match = pattern.match(text, date_pos)
        if match is None:
            continue
        try:
            day = _resolve(form, match, ref)
        except ValueError, OverflowError:  # "Feb 30", "tomorrow" on 9999-12-31
            return None
        if day is None:
            return None
        at, midnight, zone, stop = lead_time, lead_mid, lead_zone, match.end()
        if form == "iso" and match["h"]:
            hour, minute, second = int(match["h"]), int(match["mi"]), int(match["s"] or 0)
            midnight = (hour, minute, second) == (24, 0, 0)  # the end of the day, as in _time
            if midnight:
                hour = 0
            if hour > 23 or minute > 59 or second > 59:
                return None
            at = time(hour, minute, second)
            if text[stop : stop + 1].lower() == "z":
                zone, stop = UTC, stop + 1
        elif form == "midnight":
            at, midnight = time(0), True
        if at is None:
            at, midnight, zone, stop = _time(text, stop)
        if zone is None:
            zone, stop = _zone(text, stop)
        return _When(day, at, zone, next_day=midnight, stop=stop, kind=_kind(form, match))
    if lead_time is not None:
        return _When(ref, lead_time, lead_zone, next_day=lead_mid, stop=after_time, kind="time")
    return None


def _kind(form: str, match: re.Match[str]) -> str:
    """What a date form leaves open (see ``_When.kind``)."""
    if form in {"weekday", "weekend"}:
        return "weekday"
    if form in {"month_day", "day_month"} or (form == "end_of" and match["mon"]):
        return "" if match["y"] else "yearless"
    return ""


def _following(when: _When, start: datetime, tz: tzinfo, *, end: bool) -> datetime:
    """The moment ``when`` names as the end of an event that begins at ``start``.

    A time alone is on the start's day; what the text left open moves on past the start: a day
    for a time alone, a week for a weekday, a year for a date without a year. May raise
    ValueError or OverflowError at the edges of datetime's range (or on Feb 29).
    """
    if when.kind == "time":
        when = replace(when, day=start.astimezone(when.zone or tz).date())
    moment = when.moment(tz, end=end)
    if moment <= start:
        if when.kind == "time":
            moment += timedelta(days=1)
        elif when.kind == "weekday":
            moment += timedelta(weeks=1)
        elif when.kind == "yearless":
            moment = moment.replace(year=moment.year + 1)
    return moment


def _safe(moment: datetime | None) -> datetime | None:
    return moment if usable(moment) else None


def _duration(match: re.Match[str]) -> timedelta | None:
    count = match["n"] or match["n2"]
    unit = (match["unit"] or match["unit2"] or "").lower()
    number = int(count) if count.isdigit() else _NUMBER_WORDS.get(count.lower())
    if not number:
        return None
    if unit.startswith("h"):
        return timedelta(hours=number)
    if unit.startswith("d"):
        return timedelta(days=number)
    return timedelta(weeks=number)


_COMPACT_RANGE = re.compile(
    rf"\b(?:{_MONTH}\s+(?P<a>\d{{1,2}})(?:st|nd|rd|th)?\s*(?:-|to|through|thru|until|till)\s*"
    rf"(?P<b>\d{{1,2}})(?:st|nd|rd|th)?\b(?![:.]?\d|\s+{_MONTH.replace('?P<mon>', '?:')})"
    rf"|(?P<a2>\d{{1,2}})(?:st|nd|rd|th)?\s*(?:-|to|through|thru|until|till)\s*"
    rf"(?P<b2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH.replace('?P<mon>', '?P<mon2>')})"
    r"(?:,?\s+(?P<y>\d{4})\b)?",
    re.IGNORECASE,
)


def _compact_range(text: str, ref: datetime, tz: tzinfo) -> Period:
    """ "Nov 28-30", "24-26 December": one month, two days."""
    for match in _COMPACT_RANGE.finditer(text):
        name = match["mon"] or match["mon2"]
        first, last = int(match["a"] or match["a2"]), int(match["b"] or match["b2"])
        if last <= first:
            continue
        try:
            month = _month(name)
            if match["y"]:
                start_day: date | None = date(int(match["y"]), month, first)
            else:
                start_day = _nearest(ref.date(), month, first)
            if start_day is None:
                continue
            start = datetime.combine(start_day, time(), tzinfo=tz)
            end = datetime.combine(start_day.replace(day=last), _END_OF_DAY, tzinfo=tz)
        except ValueError, OverflowError:
            continue
        if usable(start) and usable(end):
            return Period(start, end)
    return Period()


def _ranges(text: str, ref: datetime, tz: tzinfo) -> Period:
    """ "from X to Y", "between X and Y", "X - Y" (both ends dates)."""
    leads = [m.end() for m in _RANGE_LEAD.finditer(text)]
    leads += [m.start() for m in _BARE_RANGE_LEAD.finditer(text)]
    for pos in sorted(set(leads)):
        first = _date_at(text, pos, ref.date())
        if first is None:
            continue
        joint = _RANGE.match(text, first.stop)
        if joint is None or joint.end() == joint.start():
            continue
        second = _date_at(text, joint.end(), ref.date())
        if second is None:
            continue
        zone = first.zone or second.zone
        try:
            start = replace(first, zone=zone).moment(tz, end=False)
            end = _following(replace(second, zone=second.zone or zone), start, tz, end=True)
        except ValueError, OverflowError:
            continue
        if usable(start) and usable(end) and end > start:
            return Period(start, end)
    return Period()


def _triggered(
    text: str, trigger: re.Pattern[str], ref: datetime, tz: tzinfo, *, end: bool
) -> tuple[datetime | None, tuple[int, int], _When | None]:
    """The first date after ``trigger``, the span of text it was read from and what it said."""
    for match in trigger.finditer(text):
        when = _date_at(text, match.end(), ref.date())
        if when is None:
            continue
        try:
            moment = when.moment(tz, end=end)
        except ValueError, OverflowError:
            continue
        if usable(moment):
            return moment, (match.start(), when.stop), when
    return None, (0, 0), None


def _period_words(
    text: str,
    ref: datetime,
    tz: tzinfo,
    used: tuple[tuple[int, int], ...] = (),
    *,
    spans_only: bool = False,
) -> Period:
    """ "today", "tomorrow", "this weekend", "this week", a weekday: a whole period.

    Words inside the ``used`` spans (already read as a start or an end) do not count. With
    ``spans_only`` only words that name a span of days count (weekend, week, tomorrow): they
    complete an announced end or start, a weekday or "today" there is only a remark.
    """
    match = next(
        (m for m in _PERIOD.finditer(text) if not any(lo <= m.start() < hi for lo, hi in used)),
        None,
    )
    if match is None or (spans_only and not (match["weekend"] or match["wq"] or match["tomorrow"])):
        return Period()
    day = ref.date()
    try:
        if unit := (match["rest"] or match["long"] or "").lower():
            if unit.startswith("week"):
                last = _sunday(day)
            elif unit == "month":
                last = _fixed(day.year, day.month, None)
            elif unit == "year":
                last = date(day.year, 12, 31)
            else:
                last = day
            return Period(None, _safe(datetime.combine(last, _END_OF_DAY, tzinfo=tz)))
        if match["weekend"]:
            sunday = _sunday(day)
            if (match["wk"] or "").lower().startswith("next"):
                sunday += timedelta(days=7)
            saturday = sunday - timedelta(days=1)
            start = datetime.combine(saturday, time(), tzinfo=tz)
            return Period(_safe(start), _safe(datetime.combine(sunday, _END_OF_DAY, tzinfo=tz)))
        if match["wq"]:
            sunday = _sunday(day)
            if match["wq"].lower() != "this":
                start = datetime.combine(sunday + timedelta(days=1), time(), tzinfo=tz)
                end = datetime.combine(sunday + timedelta(days=7), _END_OF_DAY, tzinfo=tz)
                return Period(_safe(start), _safe(end))
            return Period(None, _safe(datetime.combine(sunday, _END_OF_DAY, tzinfo=tz)))
        if match["month"]:
            last = _fixed(day.year, day.month, None)
            return Period(None, _safe(datetime.combine(last, _END_OF_DAY, tzinfo=tz)))
        if match["tomorrow"]:
            target = day + timedelta(days=1)
        elif match["today"]:
            return Period(None, _safe(datetime.combine(day, _END_OF_DAY, tzinfo=tz)))
        else:
            target = _weekday(day, match["pwd"])
    except ValueError, OverflowError:
        return Period()
    start = datetime.combine(target, time(), tzinfo=tz)
    return Period(_safe(start), _safe(datetime.combine(target, _END_OF_DAY, tzinfo=tz)))


def find_period(text: str, *, ref: datetime, tz: tzinfo, ending: bool = False) -> Period:
    """The start and end that ``text`` announces, resolved around ``ref`` in zone ``tz``.

    ``ending`` says the text ends or removes the event ("will be set to non-freeleech on
    Saturday"): a bare "on <date>" is then its end. Without a start or end trigger, a range,
    a duration or "on <date>", a period word gives both ("this weekend").
    """
    try:
        local = ref.astimezone(tz)
    except ValueError, OverflowError:  # only at the edges of datetime's range
        return Period()
    try:
        return _find(text, local, tz, ending=ending)
    except ValueError, OverflowError:  # arithmetic at the edges of the range
        return Period()


def _find(text: str, ref: datetime, tz: tzinfo, *, ending: bool) -> Period:
    ranged = _ranges(text, ref, tz) or _compact_range(text, ref, tz)
    if ranged:
        return ranged
    start, start_span, _ = _triggered(text, _START_TRIGGER, ref, tz, end=False)
    end, end_span, said = _triggered(text, _END_TRIGGER, ref, tz, end=True)
    on_end = end is None and ending  # "will be removed on Saturday": at the start of that day
    if on_end:
        end, end_span, said = _triggered(text, _ON_DATE, ref, tz, end=False)
    if start is not None and said is not None:  # "ends at 23:00" after "starts Friday 20:00"
        try:
            end = _safe(_following(said, start, tz, end=not on_end))
        except ValueError, OverflowError:  # moved past datetime's range, or to a Feb 29
            end = None
    if start is not None and end is not None and end <= start:
        end = None
    if end is None and (duration := _DURATION.search(text)) is not None:
        length = _duration(duration)
        if length is not None:
            end = _safe((start or ref) + length)
    used = (start_span, end_span)
    if start is None and end is None:
        on_day, _, _ = _triggered(text, _ON_DATE, ref, tz, end=False)
        if on_day is not None:
            return Period(on_day, _safe(on_day.replace(hour=23, minute=59, second=59)))
        words = _period_words(text, ref, tz)
        return Period(
            words.start,
            words.end,
            guessed_start=words.start is not None,
            guessed_end=words.end is not None,
        )
    words = _period_words(text, ref, tz, used, spans_only=True)
    if end is None and words.end is not None and (start is None or words.end > start):
        return Period(start, words.end, guessed_end=True)
    if start is None and end is not None and words.start is not None and words.start < end:
        return Period(words.start, end, guessed_start=True)
    return Period(start, end)


def parse_end_date(text: str, *, now: datetime, tz: tzinfo) -> datetime | None:
    """The end announced in ``text`` after an end trigger ("until", "ends", ...), or None.

    See the module docstring for the forms. Nothing here raises, whatever ``text``, ``now``
    and ``tz``; the result is always convertible to UTC and to any zone.
    """
    try:
        ref = (now if now.tzinfo is not None else now.replace(tzinfo=UTC)).astimezone(tz)
    except ValueError, OverflowError:
        return None
    try:
        return _triggered(text, _END_TRIGGER, ref, tz, end=True)[0]
    except ValueError, OverflowError:
        return None
