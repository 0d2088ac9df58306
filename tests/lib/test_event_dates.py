"""When an announced event starts and ends (lib/event_dates.py), form by form.

Each case is a date expression as trackers write them in announcements, read on a known day
(Wednesday 2025-11-19 12:00 UTC unless said), with the moment it must give. Texts go through
``normalise`` first, as ``lib/announcements.py`` does before it asks for a period.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from custom_components.mam_guard.lib.announcements import normalise
from custom_components.mam_guard.lib.event_dates import (
    Period,
    find_period,
    parse_end_date,
    usable,
)

NOW = datetime(2025, 11, 19, 12, 0, tzinfo=UTC)  # a Wednesday
SATURDAY = datetime(2025, 11, 22, 12, 0, tzinfo=UTC)
MID_YEAR = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
EOD = (23, 59, 59)


def utc(month: int, day: int, *clock: int, year: int = 2025) -> datetime:
    """A moment of 2025 (by default) in UTC: ``utc(11, 21, 18)`` is Friday 18:00."""
    return datetime(year, month, day, *clock, tzinfo=UTC)


def offset(hours: float) -> timezone:
    """A fixed UTC offset."""
    return timezone(timedelta(hours=hours))


def period(text: str, *, ref: datetime = NOW, ending: bool = False) -> Period:
    """The period ``text`` announces, read at ``ref`` with UTC as Home Assistant's zone."""
    return find_period(normalise(text), ref=ref, tz=UTC, ending=ending)


# --- ends: the forms after "until", "ends", ... ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "end"),
    [
        # a date word
        ("Freeleech until tomorrow", utc(11, 20, *EOD)),
        ("Double upload until next weekend", utc(11, 30, *EOD)),
        ("Freeleech until 5 December", utc(12, 5, *EOD)),  # "5" is the day, not 5 o'clock
        # "the end of ..." with each unit
        ("Freeleech until the end of the month", utc(11, 30, *EOD)),
        ("Freeleech until the end of the year!", utc(12, 31, *EOD)),
        ("Double upload until the end of the week", utc(11, 23, *EOD)),
        ("Bonus points doubled till the end of January", utc(1, 31, *EOD, year=2026)),
        # a time of day with a zone and an offset from it
        ("Freeleech until Sunday 20:00 UTC+2", datetime(2025, 11, 23, 20, tzinfo=offset(2))),
        ("Freeleech ends Friday 8 PM GMT-5", datetime(2025, 11, 21, 20, tzinfo=offset(-5))),
        ("Freeleech until Friday 18:00 UTC+05:30", datetime(2025, 11, 21, 18, tzinfo=offset(5.5))),
        ("Freeleech until Friday at noon", utc(11, 21, 12)),
        # a time alone is today
        ("Freeleech ends at 18:00 UTC", utc(11, 19, 18)),
        # "12:00 midnight" is the midnight that ends today, not noon
        ("Freeleech ends at 12:00 midnight", utc(11, 20)),
        # "24:00" after an ISO date is the end of that day, as after any other date
        ("Freeleech until 2025-11-30 24:00 UTC", utc(12, 1)),
        ("Freeleech until Dec 31 at 24:00", utc(1, 1, year=2026)),
    ],
)
def test_announced_end(text: str, end: datetime) -> None:
    assert parse_end_date(normalise(text), now=NOW, tz=UTC) == end
    assert period(text) == Period(None, end)


@pytest.mark.parametrize(
    ("text", "end"),
    [
        # an offset beyond a day is no offset: the time is read in Home Assistant's zone
        ("Freeleech until Friday 18:00 GMT+25", datetime(2025, 11, 21, 18, tzinfo=offset(-8))),
        # an ISO moment in Zulu time is UTC whatever the local zone
        ("Freeleech until 2025-11-30T18:00Z", utc(11, 30, 18)),
        # an offset with 99 minutes too, and the rest of the text is still read
        ("Freeleech until Friday 18:00 AEST+13:99", datetime(2025, 11, 21, 18, tzinfo=offset(-8))),
        # "13 pm" and "25:00" are no times: the day ends at 23:59:59
        ("Freeleech until Dec 5 at 13 pm", datetime(2025, 12, 5, *EOD, tzinfo=offset(-8))),
        ("Freeleech until Dec 5 at 25:00", datetime(2025, 12, 5, *EOD, tzinfo=offset(-8))),
    ],
)
def test_impossible_zone_or_time_falls_back_to_the_local_day(text: str, end: datetime) -> None:
    tz = offset(-8)
    assert parse_end_date(normalise(text), now=NOW, tz=tz) == end


@pytest.mark.parametrize(
    "text",
    [
        "Freeleech until 2025-11-30 25:00",  # no such hour: the date is not trusted either
        "Freeleech until 2025-11-31",  # no such day
        "Freeleech ends 0001-01-01 00:00 CET",  # before datetime's first moment in UTC
        "Freeleech until 9999-12-31 at midnight",  # midnight ends past datetime's last day
    ],
)
def test_impossible_end_is_none(text: str) -> None:
    assert parse_end_date(normalise(text), now=NOW, tz=UTC) is None


def test_reference_time_at_the_edge_of_the_range_gives_nothing() -> None:
    """The last moment datetime can hold has no local time 14 h east of UTC: no date, no raise."""
    edge = datetime.max.replace(tzinfo=UTC)
    assert parse_end_date("until friday", now=edge, tz=offset(14)) is None
    assert find_period("until friday", ref=edge, tz=offset(14)) == Period()


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        # 999 weeks after 9990 is past year 9999
        ("Freeleech for 999 weeks", datetime(9990, 1, 1, tzinfo=UTC)),
        # the day after datetime's last day
        ("Freeleech tomorrow", datetime(9999, 12, 31, tzinfo=UTC)),
    ],
)
def test_dates_past_the_range_give_nothing(text: str, ref: datetime) -> None:
    assert find_period(normalise(text), ref=ref, tz=UTC) == Period()


@pytest.mark.parametrize(
    ("text", "ref", "start"),
    [
        # Jan 1 before Dec 24 moves on a year, and there is no year after 9999
        ("Freeleech starts Dec 24, ends Jan 1", datetime(9999, 7, 1, tzinfo=UTC), (9999, 12, 24)),
        # Feb 29 before Mar 1 moves on a year, to a year without Feb 29
        ("Freeleech starts Mar 1, ends Feb 29", datetime(2024, 2, 10, tzinfo=UTC), (2024, 3, 1)),
    ],
)
def test_end_moved_to_no_such_day_keeps_the_start(
    text: str, ref: datetime, start: tuple[int, int, int]
) -> None:
    assert find_period(normalise(text), ref=ref, tz=UTC) == Period(datetime(*start, tzinfo=UTC))


def test_usable_rejects_naive_and_unconvertible_moments() -> None:
    assert usable(NOW)
    assert not usable(None)
    assert not usable(NOW.replace(tzinfo=None))  # naive
    assert not usable(datetime.min.replace(tzinfo=offset(1)))  # no UTC equivalent
    assert not usable(datetime.max.replace(tzinfo=UTC))  # within two days of the edge


# --- ranges and durations ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ref", "start", "end"),
    [
        # an end before its start moves on: a year for a date without a year ...
        ("Freeleech from Dec 24 to Jan 1", MID_YEAR, utc(12, 24), utc(1, 1, *EOD, year=2026)),
        # ... a week for a weekday (Friday is the 28th read on Saturday 22nd, Monday the 24th)
        ("Double upload from Friday to Monday", SATURDAY, utc(11, 28), utc(12, 1, *EOD)),
        # ... and a day for a time alone
        ("Freeleech from 10 PM to 2 AM UTC", NOW, utc(11, 19, 22), utc(11, 20, 2)),
        ("Freeleech from 22:00 until midnight", NOW, utc(11, 19, 22), utc(11, 20)),
        # a time alone as the end of a range is on the start's day
        ("Freeleech from Friday 18:00 to 22:00 UTC", NOW, utc(11, 21, 18), utc(11, 21, 22)),
        # a time before "until" starts today, it is not the time of the end's date
        ("Freeleech from 8 PM till Sunday", NOW, utc(11, 19, 20), utc(11, 23, *EOD)),
        ("Freeleech starts at 20:00 until Sunday 18:00", NOW, utc(11, 19, 20), utc(11, 23, 18)),
        # a compact range with its year
        ("Christmas freeleech Dec 24-26, 2025", NOW, utc(12, 24), utc(12, 26, *EOD)),
        # reversed or impossible days are no range
        ("Freeleech Nov 26-24", NOW, None, None),
        ("Freeleech Nov 30-31", NOW, None, None),
        ("Freeleech Feb 30-31", NOW, None, None),
        # an end before a start with its year is a mistake, not next year: the start only
        ("Freeleech from 2025-12-05 to 2025-12-01", NOW, utc(12, 5), None),
        # so close to datetime's last day that UTC cannot hold a day more: ignored
        ("Freeleech Dec 30-31, 9999", NOW, None, None),
        ("Freeleech from 9999-12-30 to 9999-12-31 at midnight", NOW, None, None),
    ],
)
def test_range(text: str, ref: datetime, start: datetime | None, end: datetime | None) -> None:
    got = period(text, ref=ref)
    assert (got.start, got.end) == (start, end)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        # a time alone after a stated start is on the start's day, or the day after it
        ("Freeleech starts Friday 20:00 UTC, ends at 23:00 UTC", utc(11, 21, 20), utc(11, 21, 23)),
        (
            "Freeleech starts Friday 22:00 UTC and ends at 02:00 UTC",
            utc(11, 21, 22),
            utc(11, 22, 2),
        ),
        # a weekday end before the start is the next such day
        ("Double upload starts Saturday, ends Friday", utc(11, 22), utc(11, 28, *EOD)),
        # contradictory stated dates: the end is dropped, the start kept
        ("Freeleech starts 2025-12-05, ends 2025-12-01", utc(12, 5), None),
    ],
)
def test_start_and_end_triggers(text: str, start: datetime, end: datetime | None) -> None:
    assert period(text) == Period(start, end)


@pytest.mark.parametrize(
    ("text", "end"),
    [
        ("Freeleech for 0 hours", None),  # no length: no end
        ("Freeleech for two days", NOW + timedelta(days=2)),
        ("Double upload for a further 2 weeks", NOW + timedelta(weeks=2)),
    ],
)
def test_duration_from_the_reference_time(text: str, end: datetime | None) -> None:
    assert period(text) == Period(None, end)


def test_duration_counts_from_an_announced_start() -> None:
    assert period("Freeleech starts Friday 18:00 UTC for 48 hours") == Period(
        utc(11, 21, 18), utc(11, 23, 18)
    )


# --- a bare date and the period words ----------------------------------------------------------


def test_on_a_date_is_that_whole_day() -> None:
    assert period("Site-wide freeleech on December 1st") == Period(utc(12, 1), utc(12, 1, *EOD))


def test_ending_text_on_a_date_is_its_end() -> None:
    """ "Will be removed on Saturday at 00:00 UTC": the event runs until then."""
    text = "Freeleech will be removed on Saturday at 00:00 UTC"
    assert period(text, ending=True) == Period(None, utc(11, 22))


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("Freeleech for the rest of the month", None, utc(11, 30, *EOD)),
        ("Bonus points doubled for the rest of the year", None, utc(12, 31, *EOD)),
        ("Freeleech for the rest of the day", None, utc(11, 19, *EOD)),
        ("Double upload all week long", None, utc(11, 23, *EOD)),
        ("Freeleech this week", None, utc(11, 23, *EOD)),
        ("Freeleech today", None, utc(11, 19, *EOD)),
        ("Freeleech next weekend", utc(11, 29), utc(11, 30, *EOD)),
        ("Double upload all month long", None, utc(11, 30, *EOD)),
        ("Freeleech this month", None, utc(11, 30, *EOD)),
        ("Double upload next week", utc(11, 24), utc(11, 30, *EOD)),
        ("Freeleech the coming week", utc(11, 24), utc(11, 30, *EOD)),
        ("Freeleech Sunday", utc(11, 23), utc(11, 23, *EOD)),
    ],
)
def test_period_words(text: str, start: datetime | None, end: datetime | None) -> None:
    got = period(text)
    assert got == Period(start, end)
    assert got.guessed_end  # from a period word: a stated end elsewhere wins
    assert got.guessed_start is (start is not None)


def test_period_word_completes_a_stated_start() -> None:
    """ "Starting Saturday, all weekend": the weekend word gives the end."""
    got = period("Freeleech starting Saturday 08:00 UTC, all weekend")
    assert got == Period(utc(11, 22, 8), utc(11, 23, *EOD))
    assert got.guessed_end
    assert not got.guessed_start


def test_period_word_completes_a_stated_end() -> None:
    """ "Tomorrow, until 18:00": the start is tomorrow's, guessed; the end is stated."""
    got = period("Freeleech tomorrow until Thursday 18:00 UTC")
    assert got == Period(utc(11, 20), utc(11, 20, 18))
    assert got.guessed_start
    assert not got.guessed_end
