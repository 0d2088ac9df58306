"""Rules-page extraction, announcements, event classification and end-date parsing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, tzinfo
import re
from zoneinfo import ZoneInfo

from bs4 import BeautifulSoup, Tag
from hypothesis import given, settings, strategies as st
import pytest

from custom_components.mam_guard.lib.pages import (
    RULES_PAGES,
    Announcement,
    _href,
    classify,
    diff_summary,
    extract_announcements,
    extract_page,
    normalise_text,
    parse_end_date,
    read_page,
)
from tests.support.mam_pages import (
    DEFAULT_NOTES,
    FAQ_BODY,
    RULES_BODY,
    TRACKER_ERRORS_NOTICE,
    NotesLayout,
    TickerForm,
    default_pages,
    forum_board_body,
    render_page,
    update_notes_body,
)

BASE = "https://www.myanonamouse.net/"
NY = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
KIRITIMATI = ZoneInfo("Pacific/Kiritimati")  # UTC+14
NIUE = ZoneInfo("Pacific/Niue")  # UTC-11
NOW = datetime(2025, 11, 21, 12, 30, tzinfo=UTC)  # a Friday; 07:30 in New York
DONATION = "3x all donation credits (4x Crypto) extended till the end of January!!"


def _ticker(text: str, url: str | None = None) -> Announcement:
    return Announcement(text, url, "news_ticker")


# --- extract_page ---------------------------------------------------------------------------


def test_default_pages_cover_all_rules_pages() -> None:
    pages = default_pages()
    assert tuple(pages) == RULES_PAGES
    assert all(extract_page(path, html).text for path, html in pages.items())


def test_header_counters_ticker_and_timestamps_do_not_change_the_hash() -> None:
    first = render_page("rules.php", RULES_BODY, news=[("Site maintenance", "/f/t/1")], now=NOW)
    second = render_page(
        "rules.php",
        RULES_BODY,
        news=[(DONATION, "/f/t/86152/x"), ("Another item", "/f/t/2")],
        vault_points=9_999_000,
        bonus=123,
        now=datetime(2026, 3, 2, 8, 1, 7, 654_321, tzinfo=UTC),
    )
    assert first != second
    assert extract_page("rules.php", first) == extract_page("rules.php", second)


def test_changed_rule_text_changes_the_hash() -> None:
    old = extract_page("rules.php", render_page("rules.php", RULES_BODY, now=NOW))
    body = RULES_BODY.replace("at or above 1.0", "at or above 1.2")
    new = extract_page("rules.php", render_page("rules.php", body, now=NOW))
    assert old.content_hash != new.content_hash
    assert "at or above 1.2" in new.text
    assert len(new.content_hash) == 64


def test_scripts_menus_header_and_footer_are_stripped() -> None:
    html = render_page("faq.php", FAQ_BODY, news=[(DONATION, "/f/t/86152/x")], now=NOW)
    text = extract_page("faq.php", html).text
    for noise in (
        "serverTime",
        "startClock",
        "main.css",
        "Millionaire",
        "8,145,500",
        "Bonus: 99999",
        "Ratio",
        "Last access",
        "Browse",
        "Bonus Store",
        "donation credits",
        "Page generated",
        "JavaScript",
        "12:30:00",
    ):
        assert noise not in text, noise
    assert text.splitlines()[:2] == ["Frequently Asked Questions", "What is freeleech?"]


def test_one_line_per_block_and_source_line_breaks_are_spaces() -> None:
    text = extract_page("rules.php", render_page("rules.php", RULES_BODY, now=NOW)).text
    assert (
        "2.6 Freeleech torrents do not count against your download, and during a 2x upload event"
        " your upload counts double. Neither removes the seeding requirement."
    ) in text.splitlines()


def test_relative_times_and_timestamps_are_volatile() -> None:
    def board(last_one: str, last_two: str) -> str:
        body = forum_board_body(
            "Announcements", [(1, "Rules update", last_one), (2, "Hi", last_two)]
        )
        return extract_page("f/b/18", render_page("f/b/18", body, now=NOW)).content_hash

    assert board("2025-11-20 14:02:11", "5 minutes ago") == board(
        "2025-11-21 09:00:00", "an hour ago"
    )
    assert board("2025-11-20 14:02:11", "5 minutes ago") != board("2025-11-20 14:02:11", "x")


def test_page_without_main_container_falls_back_to_body_without_chrome() -> None:
    html = """<html><head><title>t</title><script>var x = 1;</script></head><body>
    <header><a href="/">Logo</a> Bonus: 12345</header>
    <nav><a href="/freeleech.php">Freeleech</a></nav>
    <div class="rules"><p>Keep your ratio at 1.0.</p><p>Seed for 72 hours.</p></div>
    <footer>Served in 0.034 s at 12:00:01</footer></body></html>"""
    page = extract_page("rules.php", html)
    assert page.text == "Keep your ratio at 1.0.\nSeed for 72 hours."


# --- announcements: the ticker ---------------------------------------------------------------

NEWS = [(DONATION, "/f/t/86152/p/p1034348#1034348"), ("Site maintenance", "/f/t/86001/p/1")]
ABSOLUTE = [
    _ticker(DONATION, "https://www.myanonamouse.net/f/t/86152/p/p1034348#1034348"),
    _ticker("Site maintenance", "https://www.myanonamouse.net/f/t/86001/p/1"),
]


def test_ticker_items_have_absolute_urls_on_any_page() -> None:
    """The server-rendered list (what a client without JavaScript receives) on every page."""
    for path, html in default_pages(news=NEWS).items():
        assert extract_announcements(html, BASE, path)[:2] == ABSOLUTE, path
        assert '<ul id="js-news"' in html


@pytest.mark.parametrize("form", ["rendered", "simple"])
def test_rendered_ticker_shows_its_current_item(form: TickerForm) -> None:
    """Both rendered forms of the saved pages: one item, the "hide news" control ignored."""
    html = render_page("rules.php", RULES_BODY, news=NEWS, now=NOW, ticker=form)
    assert 'class="ticker-content"' in html
    assert "data-hidenews" in html
    assert extract_announcements(html, BASE, "rules.php") == ABSOLUTE[:1]


def test_ticker_exactly_as_in_a_saved_page() -> None:
    """Markup copied from AlmightyTopher/MAMcrawler mam_login_response.html (2025-11)."""
    html = (
        '<div class="topArea"><a href="/userClientDetails.php#errors" class="tmn" id="iteNotif">'
        "You have some recent tracker errors logged.  Please review them.</a></div>"
        '<div class="topArea" id="hrnews"><a href="#" data-hidenews="" style="display:inline-'
        'block;position:relative;top:-10px;"><img src="https://sas.myanonamouse.net/pic/minus.gif"'
        ' alt="hide news"></a>            <div id="ticker-wrapper-1764384373739" class="ticker-'
        'wrapper has-js left"><div id="ticker-1764384373739" class="ticker"><div id="ticker-title-'
        '1764384373739" class="ticker-title" style=""><span></span></div><p id="ticker-content-'
        '1764384373739" class="ticker-content" style="opacity: 1; left: 20px;"><a href="/f/t/87342'
        '/p/1">Upload Process update! (learn more)</a></p><div id="ticker-swipe-1764384373739" '
        'class="ticker-swipe" style="left: 20px; display: none;"><span><!-- --></span></div></div>'
        '</div>\n            </div><main role="main"><div id="mainBody">x</div></main>'
    )
    assert extract_announcements(html, BASE, "rules.php") == [
        _ticker("Upload Process update! (learn more)", f"{BASE}f/t/87342/p/1")
    ]


def test_ticker_without_list_items_uses_its_news_links() -> None:
    html = (
        '<div id="hrnews"><a href="#" data-hidenews=""><img alt="hide news"></a>'
        '<a href="/f/t/5">Site FL now</a> | <a href="/lotto/index.php">Lotto</a>'
        ' | <a href="/u/1">someone</a></div>'
    )
    assert extract_announcements(html, BASE) == [
        _ticker("Site FL now", f"{BASE}f/t/5"),
        _ticker("Lotto", f"{BASE}lotto/index.php"),
    ]


def test_ticker_of_plain_text_and_links_elsewhere() -> None:
    text_only = '<div id="hrnews"><a href="#" data-hidenews="">x</a> Freeleech until Sunday </div>'
    assert extract_announcements(text_only, BASE) == [_ticker("Freeleech until Sunday")]
    other = '<div id="hrnews"><a href="/news.php?id=3">Double upload today</a></div>'
    assert extract_announcements(other, BASE) == [
        _ticker("Double upload today", f"{BASE}news.php?id=3")
    ]


def test_items_repeated_in_the_ticker_are_read_once() -> None:
    html = render_page("rules.php", RULES_BODY, news=[NEWS[0], NEWS[0], NEWS[1]], now=NOW)
    assert extract_announcements(html, BASE, "rules.php") == ABSOLUTE


def test_notices_menus_counters_and_vault_are_never_announcements() -> None:
    """A page full of "freeleech", "bonus" and "2x" outside the ticker: nothing is read."""
    notices = [
        TRACKER_ERRORS_NOTICE,
        '<a href="/snatch_summary.php" class="tmn">2 torrents are about to become H&amp;R:'
        " seed them 2x longer for bonus points</a>",
        '<a href="/messages.php" class="tmnb" id="pmMess">You have 1 new message: site-wide'
        " freeleech this weekend?</a>",
    ]
    pages = default_pages(news=[], notes=[], notices=notices, bonus=12_345, vault_points=2 * 10**7)
    for path, html in pages.items():
        assert "Freeleech" in html
        assert "FL Wedges: 120" in html
        assert "Millionaire's vault" in html
        assert extract_announcements(html, BASE, path) == [], path


# --- announcements: update notes --------------------------------------------------------------

UPDATE_NOTES = [
    ("2025-11-18", '<p>2x bonus <b>points</b> weekend! <a href="/f/t/86300/p/1">details</a></p>'),
    ("2025-11-02", "<p>Search remembers your filters.</p><ul><li>Fixed: sort order</li></ul>"),
]
EXPECTED_NOTES = [
    Announcement(
        "2x bonus points weekend! details",
        f"{BASE}f/t/86300/p/1",
        "update_notes",
        date(2025, 11, 18),
    ),
    Announcement(
        "Search remembers your filters.\nFixed: sort order",
        f"{BASE}updateNotes.php",
        "update_notes",
        date(2025, 11, 2),
    ),
]


@pytest.mark.parametrize("layout", ["headings", "table", "inline", "dl", "classes"])
def test_update_notes_are_read_from_their_dated_entries(layout: NotesLayout) -> None:
    """Whatever the markup of an entry, a line starting with a date starts it."""
    html = render_page("updateNotes.php", update_notes_body(UPDATE_NOTES, layout=layout), now=NOW)
    assert extract_announcements(html, BASE, "updateNotes.php") == EXPECTED_NOTES
    assert extract_announcements(html, BASE, "/updateNotes.php?page=1") == EXPECTED_NOTES
    assert extract_announcements(html, BASE, "rules.php") == []  # only on their page


@pytest.mark.parametrize(
    ("line", "published", "text"),
    [
        ("2025-11-18 2x upload today", date(2025, 11, 18), "2x upload today"),
        ("[2025-11-18 14:02:11] 2x upload today", date(2025, 11, 18), "2x upload today"),
        ("Posted: 2025/11/18 - 2x upload today", date(2025, 11, 18), "2x upload today"),
        ("Nov 18, 2025: 2x upload today", date(2025, 11, 18), "2x upload today"),
        ("Tuesday, November 18th, 2025 2x upload today", date(2025, 11, 18), "2x upload today"),
        ("18 November 2025 - 2x upload today", date(2025, 11, 18), "2x upload today"),
        ("Updated on 18th of Nov 2025: 2x upload today", date(2025, 11, 18), "2x upload today"),
    ],
)
def test_update_note_date_forms(line: str, published: date, text: str) -> None:
    html = f"<main><h1>Site Update Notes</h1><p>{line}</p><p>more</p></main>"
    assert extract_announcements(html, BASE, "updateNotes.php") == [
        Announcement(f"{text}\nmore", f"{BASE}updateNotes.php", "update_notes", published)
    ]


@pytest.mark.parametrize(
    "line",
    [
        "2025-13-45 not a date",
        "Released in 2025",
        "Nov 18 without a year",
        "The 2025-11-18 release fixed search",  # a date inside a line starts nothing
        "10 files changed",
    ],
)
def test_lines_that_start_no_entry(line: str) -> None:
    html = f"<main><p>{line}</p><p>2x upload today</p></main>"
    assert extract_announcements(html, BASE, "updateNotes.php") == []


def test_update_notes_page_shaped_like_the_real_site_gives_its_event() -> None:
    """The site's chrome (notices, stats, menu, rendered ticker) around dated notes."""
    notes = [
        ("2025-11-20", "<p>Site-wide freeleech until <b>Nov 23</b>!</p><p>Happy seeding.</p>"),
        *DEFAULT_NOTES,
    ]
    html = default_pages(notes=notes, ticker="rendered")["updateNotes.php"]
    announcements = extract_announcements(html, BASE, "updateNotes.php")
    assert [a.source for a in announcements] == ["news_ticker"] + ["update_notes"] * 4
    events = [e for a in announcements for e in classify(a, now=NOW, tz=UTC)]
    assert [(e.event_type, e.end) for e in events] == [
        ("freeleech", datetime(2025, 11, 23, 23, 59, 59, tzinfo=UTC))
    ]
    assert events[0].source_url == f"{BASE}updateNotes.php"


def test_faq_and_rules_prose_create_no_events() -> None:
    pages = default_pages(news=[("Site maintenance on Saturday", "/f/t/1")])
    faq = extract_page("faq.php", pages["faq.php"]).text
    assert "site-wide freeleech" in faq
    assert "2x upload event" in faq
    events = [
        event
        for path, html in pages.items()
        for announcement in extract_announcements(html, BASE, path)
        for event in classify(announcement, now=NOW, tz=UTC)
    ]
    assert events == []
    # Even read as announcements, every line of the rules and the FAQ is no event.
    for text in (faq, extract_page("rules.php", pages["rules.php"]).text):
        for line in text.splitlines():
            assert classify(_ticker(line), now=NOW, tz=UTC) == [], line


# --- classification -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Site-wide freeleech this weekend!", ["freeleech"]),
        ("Sitewide FL starts now", ["freeleech"]),
        ("Freeleech weekend: grab your books", ["freeleech"]),
        ("FL for everyone until Sunday", ["freeleech"]),
        ("Everything is freeleech for the anniversary", ["freeleech"]),
        ("Christmas freeleech until Jan 2!", ["freeleech"]),  # no site-wide word needed
        ("All ebooks are freeleech until Monday", ["freeleech"]),  # a whole category
        ("Downloads won't count against your ratio until Sunday", ["freeleech"]),
        ("2x bonus points until Dec 1", ["bonus"]),
        ("Double bonus point event", ["bonus"]),
        ("Bonus points are doubled for the holidays", ["bonus"]),
        ("Seeding earns twice the points this week", ["bonus"]),
        ("BP x3 until Sunday", ["bonus"]),
        ("2x upload this weekend", ["multiplier"]),
        ("Upload multiplier active: all uploads count double", ["multiplier"]),
        ("+50% upload on every torrent until Friday", ["multiplier"]),
        ("Site-wide freeleech and 2x upload until Sunday", ["freeleech", "multiplier"]),
        # typos and variants
        ("Site-wide freelaech this weekend", ["freeleech"]),
        ("free-leach on all torrents until Sunday", ["freeleech"]),
        ("Free leech weekend!", ["freeleech"]),
        ("Dobule upload until Sunday", ["multiplier"]),
        ("2x bonus pionts until Sunday", ["bonus"]),
        # clause by clause
        ("The freeleech period is over; the upload bonus runs until Friday", ["multiplier"]),
        ("Double upload is over, but bonus points are still doubled", ["bonus"]),
        ("No double upload this time, but freeleech runs until Sunday", ["freeleech"]),
        # negatives
        (DONATION, []),  # an offer to donate, not a change to what seeding earns
        ("Discussion: freeleech picks for November", []),
        ("Freeleech picks for November", []),
        ("Site FL picks for November", []),
        ("Personal freeleech for all: wedges half price", []),
        ("Bookclub freeleech: this month's books", []),
        ("New freeleech wedges in the bonus store", []),
        ("VIP torrents are freeleech for VIPs", []),
        ("VIP-only freeleech until Sunday", []),
        ("Double upload for donors this weekend", []),
        ("Should we have a freeleech weekend?", []),
        ("The freeleech weekend has ended, thanks all", []),
        ("2x bonus points event cancelled", []),
        ("Double upload weekend. It has been cancelled.", []),
        ("bonus points will NOT be doubled this weekend", []),
        ("No freeleech this weekend, sorry", []),
        ("Freeleech is not active right now", []),
        ("Top 2x uploaders thanked", []),
        ("Top uploaders of November get 2x bonus points", []),
        ("Site maintenance on Saturday", []),
        ("Poll: bring back double upload?", []),
        ("Freeleech", []),  # the menu entry
        ("FL Wedges: 120", []),
        ("Bonus: 99999", []),
        ("Millionaire's vault: 8,145,500 points", []),
        ("This torrent is freeleech!", []),
        ("Freeleech torrents do not count against your download", []),
        ("During a 2x upload event your upload counts double", []),
        ("All new uploads are freeleech for 24 hours", []),
        ("From now on, all packs are freeleech", []),
        ("We fixed the freeleech search filter today", []),
        ("Double-check your client before seeding", []),
        ("Retail torrents will be subject to a x1.5 multiplier", []),
    ],
)
def test_classify(text: str, expected: list[str]) -> None:
    events = classify(_ticker(text, "https://x/f/t/1"), now=NOW, tz=UTC)
    assert [event.event_type for event in events] == expected
    assert all(e.description == text and e.source_url == "https://x/f/t/1" for e in events)


def test_classify_carries_the_end() -> None:
    (event,) = classify(_ticker("Site-wide FL until the end of January!!"), now=NOW, tz=NY)
    assert event.end == datetime(2026, 1, 31, 23, 59, 59, tzinfo=NY)
    assert event.start is None


def test_classify_drops_events_whose_end_passed() -> None:
    assert classify(_ticker("2x bonus points until Nov 20"), now=NOW, tz=UTC) == []


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        (
            "Site-wide freeleech starts December 20 and ends January 2",
            datetime(2025, 12, 20, tzinfo=UTC),
            datetime(2026, 1, 2, 23, 59, 59, tzinfo=UTC),
        ),
        (
            "Freeleech from Dec 24 to Jan 1!",
            datetime(2025, 12, 24, tzinfo=UTC),
            datetime(2026, 1, 1, 23, 59, 59, tzinfo=UTC),
        ),
        (
            "2X BP weekend starts Saturday 00:00 UTC",  # NOW is a Friday
            datetime(2025, 11, 22, tzinfo=UTC),
            datetime(2025, 11, 23, 23, 59, 59, tzinfo=UTC),
        ),
        (
            "Double upload tomorrow!",
            datetime(2025, 11, 22, tzinfo=UTC),
            datetime(2025, 11, 22, 23, 59, 59, tzinfo=UTC),
        ),
        (
            "FL weekend Nov 28-30!",
            datetime(2025, 11, 28, tzinfo=UTC),
            datetime(2025, 11, 30, 23, 59, 59, tzinfo=UTC),
        ),
        (
            "Freeleech starts now, until Sunday",
            None,
            datetime(2025, 11, 23, 23, 59, 59, tzinfo=UTC),
        ),
    ],
)
def test_upcoming_events_carry_their_start(
    text: str, start: datetime | None, end: datetime
) -> None:
    (event,) = classify(_ticker(text), now=NOW, tz=UTC)
    assert (event.start, event.end) == (start, end)


def test_relative_dates_count_from_when_the_item_was_first_seen() -> None:
    text = _ticker("Freeleech for the next 48 hours!")
    first = NOW - timedelta(hours=30)
    (event,) = classify(text, now=NOW, tz=UTC, seen=first)
    assert event.end == first + timedelta(hours=48)
    assert classify(text, now=NOW + timedelta(hours=19), tz=UTC, seen=first) == []
    (fresh,) = classify(text, now=NOW, tz=UTC)  # never seen before: from now
    assert fresh.end == NOW + timedelta(hours=48)


@pytest.mark.parametrize(
    ("published", "text", "expected"),
    [
        (date(2025, 11, 18), "2x bonus points today!", []),  # that day is over
        (date(2025, 11, 18), "2x bonus points all week!", ["bonus"]),
        (date(2025, 10, 1), "2x bonus points for everyone!", []),  # stale note without an end
        (date(2025, 11, 10), "2x bonus points until Sunday", []),  # ended Sunday the 16th
        (date(2025, 11, 1), "Freeleech weekend until Dec 1", ["freeleech"]),
        (date(2024, 12, 20), "Freeleech weekend! until Dec 22", []),
        (date(2023, 1, 1), "Freeleech until 2030-01-01", []),  # notes older than a year
    ],
)
def test_update_notes_are_dated(published: date, text: str, expected: list[str]) -> None:
    note = Announcement(text, None, "update_notes", published)
    assert [event.event_type for event in classify(note, now=NOW, tz=UTC)] == expected


def test_an_update_note_about_next_weekend_is_upcoming() -> None:
    note = Announcement("2x bonus points weekend!", None, "update_notes", date(2025, 11, 18))
    (event,) = classify(note, now=datetime(2025, 11, 20, tzinfo=UTC), tz=UTC)
    assert event.start == datetime(2025, 11, 22, tzinfo=UTC)
    assert event.end == datetime(2025, 11, 23, 23, 59, 59, tzinfo=UTC)


# --- end dates ------------------------------------------------------------------------------


def _eod(y: int, mo: int, d: int) -> datetime:
    """End of that day in New York."""
    return datetime(y, mo, d, 23, 59, 59, tzinfo=NY)


@pytest.mark.parametrize(
    ("text", "now", "expected"),
    [
        ("2x bonus points until Dec 1", NOW, _eod(2025, 12, 1)),
        ("until December 1st", NOW, _eod(2025, 12, 1)),
        ("ends 2026-12-01 23:59", NOW, datetime(2026, 12, 1, 23, 59, tzinfo=NY)),
        ("until 2026-12-01", NOW, _eod(2026, 12, 1)),
        ("ends 2025-11-30T18:00Z", NOW, datetime(2025, 11, 30, 18, 0, tzinfo=UTC)),
        ("ends Dec 1 at 12:00 UTC", NOW, datetime(2025, 12, 1, 12, 0, tzinfo=UTC)),
        (DONATION, NOW, _eod(2026, 1, 31)),
        (DONATION, datetime(2026, 1, 10, tzinfo=UTC), _eod(2026, 1, 31)),
        ("until Jan 3", datetime(2025, 12, 20, tzinfo=UTC), _eod(2026, 1, 3)),  # year rollover
        ("until Dec 1", datetime(2025, 12, 2, 12, tzinfo=UTC), _eod(2025, 12, 1)),  # just ended
        ("through Sunday", NOW, _eod(2025, 11, 23)),
        ("through Friday", NOW, _eod(2025, 11, 21)),  # today is Friday
        ("ends Sunday at 8pm", NOW, datetime(2025, 11, 23, 20, 0, tzinfo=NY)),
        ("until the end of the month", NOW, _eod(2025, 11, 30)),
        ("FL through the weekend", NOW, _eod(2025, 11, 23)),
        ("until 5 December 2025", NOW, _eod(2025, 12, 5)),
        ("until Monday, December 1, 2027", NOW, _eod(2027, 12, 1)),
        ("'til tomorrow", NOW, _eod(2025, 11, 22)),
        ("2x bonus points all weekend", NOW, None),
        ("Freeleech until further notice", NOW, None),
        ("until Feb 30", NOW, None),
        ("until Dec 1 20 people", NOW, _eod(2025, 12, 1)),  # "20" is no time of day
    ],
)
def test_parse_end_date(text: str, now: datetime, expected: datetime | None) -> None:
    end = parse_end_date(text, now=now, tz=NY)
    assert end == expected
    if end is not None and expected is not None:
        assert end.tzinfo is not None
        assert end.utcoffset() == expected.utcoffset()


def _utc(moment: datetime) -> datetime:
    """Raises OverflowError when ``moment`` has no UTC equivalent (as the rules store needs)."""
    return moment.astimezone(UTC)


@pytest.mark.parametrize(
    ("text", "tz"),
    [
        ("Site-wide freeleech until 9999-12-31", NY),
        ("Site-wide freeleech ends 9999-12-31 23:59", NIUE),
        ("Site-wide freeleech until December 31, 9999", NY),
        ("Site-wide freeleech until the end of December 9999", NY),
        ("Site-wide freeleech ends 0001-01-01 00:00", TOKYO),
        ("Site-wide freeleech ends 0001-01-01 05:00", KIRITIMATI),
    ],
)
def test_end_dates_beyond_datetime_range_are_ignored(text: str, tz: tzinfo) -> None:
    """Such an end is no end: it must never make classify or the store overflow."""
    assert parse_end_date(text, now=NOW, tz=tz) is None
    events = classify(_ticker(text), now=NOW, tz=tz)
    assert [event.event_type for event in events] == ["freeleech"]
    assert all(event.end is None for event in events)


@pytest.mark.parametrize(
    ("text", "published", "tz"),
    [
        ("Freeleech weekend until tomorrow", date(9999, 12, 31), NY),
        ("Freeleech weekend through the weekend", date(9999, 12, 30), KIRITIMATI),
        ("Freeleech weekend until Sunday", date(9999, 12, 31), NIUE),
        ("Freeleech weekend until Jan 2", date(9999, 12, 31), NY),
        ("Freeleech weekend until the end of the month", date(9999, 12, 31), NIUE),
        ("Freeleech weekend until tonight", date(1, 1, 1), KIRITIMATI),
        ("Freeleech weekend until Dec 31", date(1, 1, 1), TOKYO),
    ],
)
@pytest.mark.parametrize(
    "now", [NOW, datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC)]
)
def test_relative_ends_at_the_edges_never_overflow(
    text: str, published: date, tz: tzinfo, now: datetime
) -> None:
    note = Announcement(text, None, "update_notes", published)
    for event in classify(note, now=now, tz=tz):
        assert event.end is None or _utc(event.end) > now


def test_latest_representable_end_is_kept() -> None:
    end = parse_end_date("until 9999-12-20", now=NOW, tz=NY)
    assert end == _eod(9999, 12, 20)
    assert _utc(end).year == 9999


# --- diff -----------------------------------------------------------------------------------


def test_diff_summary_shows_changed_lines_and_is_capped() -> None:
    old = "Rules\n1.4 ratio 1.0\n1.5 be nice"
    new = "Rules\n1.4 ratio 1.2\n1.5 be nice"
    diff = diff_summary(old, new)
    assert "-1.4 ratio 1.0" in diff
    assert "+1.4 ratio 1.2" in diff
    long = diff_summary("", "x" * 5000, max_chars=300)
    assert len(long) == 300
    assert long.endswith("(truncated)")
    assert diff_summary(old, old) == ""


# --- robustness -----------------------------------------------------------------------------

_FRAGMENTS = st.sampled_from(
    [
        "<div id='mainBody'>",
        "<div id='hrnews'><ul><li><a href='",
        "'>",
        "</a></li>",
        "<main>",
        "</div>",
        "<div class='updateNote' id='n'>",
        "<h3 class='noteDate'>2025-13-45</h3>",
        "<div class='noteBody'>",
        "<script>",
        "<![CDATA[",
        "<!--",
        "<br>",
        "<td>",
        "<a href='http://[::1'>",
        "until Dec 31 at 25:99",
        "2x bonus points until Feb 29",
        "site-wide freeleech ends 9999-12-31 23:59",
        "through Sunday",
        "&#x110000;",
        "\ue000",
    ]
)
_HTML = st.lists(st.one_of(_FRAGMENTS, st.text(max_size=20)), max_size=30).map("".join)
_ZONES = st.sampled_from([UTC, NY, TOKYO, KIRITIMATI, NIUE])
_NOWS = st.datetimes(timezones=_ZONES)


@settings(max_examples=300, deadline=None)
@given(html=st.one_of(st.text(), _HTML), now=_NOWS, tz=_ZONES)
def test_nothing_raises_on_arbitrary_input(html: str, now: datetime, tz: tzinfo) -> None:
    page = extract_page("rules.php", html)
    assert len(page.content_hash) == 64
    for announcement in extract_announcements(html, BASE, "updateNotes.php"):
        for event in classify(announcement, now=now, tz=tz):
            assert event.end is None or _utc(event.end)
    for event in classify(_ticker(html), now=now, tz=tz):
        assert event.end is None or _utc(event.end).tzinfo is UTC
    end = parse_end_date(html, now=now, tz=tz)
    assert end is None or _utc(end)
    diff_summary(html, page.text, max_chars=50)


@settings(max_examples=300, deadline=None)
@given(
    day=st.dates() | st.sampled_from([date.min, date(1, 1, 2), date(9999, 12, 30), date.max]),
    form=st.sampled_from(
        [
            "until {iso}",
            "ends {iso} 00:00",
            "ends {iso} 23:59 UTC",
            "until tomorrow",
            "through the weekend",
            "until Sunday",
            "until the end of the month",
            "until Dec 31",
            "until Jan 1",
            "until tonight",
        ]
    ),
    now=_NOWS,
    tz=_ZONES,
)
def test_end_dates_and_edges_of_the_calendar(
    day: date, form: str, now: datetime, tz: tzinfo
) -> None:
    """Any date, any zone, any note date: an end is always convertible to UTC, nothing raises."""
    text = "Site-wide freeleech " + form.format(iso=day.isoformat())
    end = parse_end_date(text, now=now, tz=tz)
    assert end is None or _utc(end)
    note = Announcement(text, None, "update_notes", day)
    for announcement in (note, _ticker(text)):
        for event in classify(announcement, now=now, tz=tz):
            assert event.end is None or _utc(event.end)


# --- linear time ------------------------------------------------------------------------------

# The old quadratic cost: bs4's Tag.index is a linear scan of a parent's children, and every
# insert_before/insert_after/replace_with/extract runs one. Counting the children it scans is a
# deterministic measure of that work (no wall-clock assertions; benchmarks/bench_pages.py times).


@contextmanager
def _sibling_scans(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    scanned = [0]
    original = Tag.index

    def counting_index(self: Tag, element: object) -> int:
        position = original(self, element)  # type: ignore[arg-type]
        scanned[0] += position + 1
        return position

    with monkeypatch.context() as patch:
        patch.setattr(Tag, "index", counting_index)
        yield scanned


def _big_page(blocks: int) -> str:
    body = "".join(f"<p>Rule {i}: keep seeding.<br>Line two.</p><td>c</td>" for i in range(blocks))
    notes = update_notes_body(
        (f"2025-11-{i % 28 + 1:02d}", f"<p>note {i}</p>") for i in range(blocks)
    )
    news = [(f"news {i}", f"/f/t/{i}") for i in range(blocks)]
    noise = "<script>x</script><div id='tmX'>1</div>" * blocks
    return render_page("updateNotes.php", body + notes + noise, news=news, now=NOW)


@pytest.mark.parametrize("blocks", [2000])
def test_extraction_work_is_linear_in_the_number_of_blocks(
    monkeypatch: pytest.MonkeyPatch, blocks: int
) -> None:
    html = _big_page(blocks)
    with _sibling_scans(monkeypatch) as scanned:
        page = extract_page("updateNotes.php", html)
        announcements = extract_announcements(html, BASE, "updateNotes.php")
    assert page.text.count("\n") > 3 * blocks
    assert len(announcements) == 2 * blocks
    # Linear: a bounded number of children per element, not ~blocks per element (old: ~10^8).
    assert scanned[0] <= 10 * blocks


# --- the rewrite gives the same output as the original implementation --------------------------


def _reference_block_text(root: Tag) -> str:
    """The original (quadratic) flattening, kept as the oracle for the linear one."""
    brk = "\ue000"
    for br in root.find_all("br"):
        br.replace_with(brk)
    for tag in root.find_all(_BLOCK_TAGS):
        tag.insert_before(brk)
        tag.insert_after(brk)
    for tag in root.find_all(("td", "th")):
        tag.insert_after(" ")
    return "\n".join(" ".join(line.split()) for line in root.get_text().split(brk))


_BLOCK_TAGS = (
    "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset", "figure",
    "form", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li", "ol", "p", "pre", "section", "table",
    "tr", "ul",
)  # fmt: skip
_MAIN = ("#mainBody", "#mainContent", "main", "[role=main]", "#content")
_NOISE = (
    "script, style, noscript, template, nav, #header, #hrnews, #millionInfo, #mainmenu, #menu,"
    ' #userBar, #footer, #clock, [id^="tm"]'
)


def _reference_extract_text(html: str) -> str:
    soup = BeautifulSoup(html, "html.parser")
    root: Tag = next((tag for sel in _MAIN if (tag := soup.select_one(sel)) is not None), soup)
    if root is soup:
        root = soup.body or soup
        for tag in root.select("header, footer"):
            tag.decompose()
    for tag in root.select(_NOISE):
        if not tag.decomposed:
            tag.decompose()
    return normalise_text(_reference_block_text(root))


def _old_note_date(text: str) -> date | None:
    match = re.search(r"\b(\d{4})-(\d{2})-(\d{2})\b", text)
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def _reference_announcements(html: str, path: str) -> list[Announcement]:
    """The original reader (guessed ``.updateNote`` classes): ``bench_pages.py --before``."""
    soup = BeautifulSoup(html, "html.parser")
    found: list[Announcement] = []
    for ticker in soup.select("#hrnews"):
        for item in ticker.select("li") or ticker.select("a") or [ticker]:
            if text := " ".join(item.get_text(" ").split()):
                found.append(Announcement(text, _href(item, BASE), "news_ticker"))
    if path == "updateNotes.php":
        for note in soup.select(".updateNote"):
            date_tag, body = note.select_one(".noteDate"), note.select_one(".noteBody")
            published = _old_note_date(date_tag.get_text(" ") if date_tag else note.get_text(" "))
            if body is None and date_tag is not None:
                date_tag.extract()
            note_id = note.get("id")
            url = _href(note, BASE) or (
                f"{BASE}updateNotes.php#{note_id}"
                if isinstance(note_id, str) and note_id
                else f"{BASE}updateNotes.php"
            )
            if text := " ".join((body or note).get_text(" ").split()):
                found.append(Announcement(text, url, "update_notes", published))
    return found


_TREE_FRAGMENTS = st.sampled_from(
    [
        "<p>", "</p>", "<div>", "</div>", "<br>", "<br/>", "</br>", "<td>", "</td>", "<th>x</th>",
        "<tr>", "</tr>", "<table>", "</table>", "<li>", "</li>", "<ul>", "</ul>", "<span>",
        "</span>", "<b>", "</b>", "<h2>", "</h2>", "<hr>", "<pre>  a  b </pre>", "<main>",
        "</main>", "<div id='mainBody'>", "<div id='content'>", "<header>h</header>",
        "<footer>f</footer>", "<script>s()</script>", "<style>p{}</style>", "<nav>n</nav>",
        "<div id='tmBP'>", "<span id='clock'>12:00:00</span>", "<!-- c -->", "<![CDATA[cd]]>",
        "<template>t</template>", "<noscript>ns</noscript>", "<textarea>ta</textarea>",
        "<div class='updateNote'>", "<h3 class='noteDate'>2025-01-02</h3>",
        "<div class='noteBody'>", "<div id='hrnews'>", "<a href='/x'>", "<a href='/n/1'>", "</a>",
        "<div class='updateNote' id='n3'>", "\ue000",
        "5 minutes ago", "2025-11-20 14:02:11", "&nbsp;", "&amp;", " ", "\n", "<body>",
        "</body>", "<html>", "</html>",
    ]
)  # fmt: skip
_TREES = st.lists(st.one_of(_TREE_FRAGMENTS, st.text(max_size=6)), max_size=40).map("".join)


@settings(max_examples=500, deadline=None)
@given(html=_TREES)
def test_same_output_as_the_original_implementation(html: str) -> None:
    """The page text (and so every stored hash) is unchanged; one parse gives the same answers."""
    assert extract_page("rules.php", html).text == _reference_extract_text(html)
    for path in ("rules.php", "updateNotes.php"):
        page, announcements = read_page(path, html, BASE)
        assert page == extract_page(path, html)
        assert announcements == extract_announcements(html, BASE, path)


def test_same_output_as_the_original_on_realistic_pages() -> None:
    pages = default_pages(news=[(DONATION, "/f/t/1"), ("Site FL", "/f/t/2")])
    pages["big"] = _big_page(300)
    for path, html in pages.items():
        assert extract_page(path, html).text == _reference_extract_text(html), path
        assert read_page(path, html, BASE) == (
            extract_page(path, html),
            extract_announcements(html, BASE, path),
        ), path
