"""Rules-page extraction, announcements, event classification and end-date parsing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.mam_guard.lib.pages import (
    RULES_PAGES,
    Announcement,
    classify,
    diff_summary,
    extract_announcements,
    extract_page,
    parse_end_date,
)
from tests.support.mam_pages import (
    FAQ_BODY,
    RULES_BODY,
    default_pages,
    forum_board_body,
    render_page,
    update_notes_body,
)

BASE = "https://www.myanonamouse.net/"
NY = ZoneInfo("America/New_York")
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


# --- announcements --------------------------------------------------------------------------


def test_ticker_items_have_absolute_urls_on_any_page() -> None:
    news = [(DONATION, "/f/t/86152/3x-donation"), ("Site maintenance", "https://example.org/x")]
    for path, html in default_pages(news=news).items():
        assert extract_announcements(html, BASE, path)[:2] == [
            _ticker(DONATION, "https://www.myanonamouse.net/f/t/86152/3x-donation"),
            _ticker("Site maintenance", "https://example.org/x"),
        ]


def test_update_notes_only_on_their_page() -> None:
    html = render_page(
        "updateNotes.php",
        update_notes_body([("2025-11-18", "<p>2x bonus <b>points</b> weekend!</p>"), ("x", "")]),
        now=NOW,
    )
    assert extract_announcements(html, BASE, "rules.php") == []
    assert extract_announcements(html, BASE, "/updateNotes.php") == [
        Announcement(
            "2x bonus points weekend!",
            "https://www.myanonamouse.net/updateNotes.php#note-20251118",
            "update_notes",
            date(2025, 11, 18),
        )
    ]


def test_ticker_without_list_items_uses_links() -> None:
    html = '<div id="hrnews"><a href="/f/t/5">Site FL now</a> | <a href="/f/t/6">Poll</a></div>'
    assert extract_announcements(html, BASE) == [
        _ticker("Site FL now", f"{BASE}f/t/5"),
        _ticker("Poll", f"{BASE}f/t/6"),
    ]


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


# --- classification -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Site-wide freeleech this weekend!", ["freeleech"]),
        ("Sitewide FL starts now", ["freeleech"]),
        ("Freeleech weekend: grab your books", ["freeleech"]),
        ("FL for everyone until Sunday", ["freeleech"]),
        ("Everything is freeleech for the anniversary", ["freeleech"]),
        ("2x bonus points until Dec 1", ["bonus"]),
        ("Double bonus point event", ["bonus"]),
        (DONATION, ["bonus"]),
        ("Bonus points are doubled for the holidays", ["bonus"]),
        ("2x upload this weekend", ["multiplier"]),
        ("Upload multiplier active: all uploads count double", ["multiplier"]),
        ("Site-wide freeleech and 2x upload until Sunday", ["freeleech", "multiplier"]),
        # negatives
        ("Discussion: freeleech picks for November", []),
        ("Freeleech picks for November", []),
        ("Site FL picks for November", []),
        ("Personal freeleech for all: wedges half price", []),
        ("Bookclub freeleech: this month's books", []),
        ("New freeleech wedges in the bonus store", []),
        ("VIP torrents are freeleech for VIPs", []),
        ("Should we have a freeleech weekend?", []),
        ("The freeleech weekend has ended, thanks all", []),
        ("2x bonus points event cancelled", []),
        ("Top 2x uploaders thanked", []),
        ("Site maintenance on Saturday", []),
        ("Poll: bring back double upload?", []),
    ],
)
def test_classify(text: str, expected: list[str]) -> None:
    events = classify(_ticker(text, "https://x/f/t/1"), now=NOW, tz=UTC)
    assert [event.event_type for event in events] == expected
    assert all(e.description == text and e.source_url == "https://x/f/t/1" for e in events)


def test_classify_carries_the_end() -> None:
    (event,) = classify(_ticker(DONATION), now=NOW, tz=NY)
    assert event.end == datetime(2026, 1, 31, 23, 59, 59, tzinfo=NY)


def test_classify_drops_events_whose_end_passed() -> None:
    assert classify(_ticker("2x bonus points until Nov 20"), now=NOW, tz=UTC) == []


@pytest.mark.parametrize(
    ("published", "text", "expected"),
    [
        (date(2025, 11, 18), "2x bonus points weekend!", ["bonus"]),
        (date(2025, 10, 1), "2x bonus points weekend!", []),  # stale note without an end
        (date(2025, 11, 10), "2x bonus points until Sunday", []),  # ended Sunday the 16th
        (date(2025, 11, 1), "Freeleech weekend until Dec 1", ["freeleech"]),
        (date(2024, 12, 20), "Freeleech weekend! until Dec 22", []),
    ],
)
def test_update_notes_are_dated(published: date, text: str, expected: list[str]) -> None:
    note = Announcement(text, None, "update_notes", published)
    assert [event.event_type for event in classify(note, now=NOW, tz=UTC)] == expected


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
_NOWS = st.datetimes(
    timezones=st.sampled_from([UTC, NY]),
)


@settings(max_examples=300, deadline=None)
@given(html=st.one_of(st.text(), _HTML), now=_NOWS)
def test_nothing_raises_on_arbitrary_input(html: str, now: datetime) -> None:
    page = extract_page("rules.php", html)
    assert len(page.content_hash) == 64
    for announcement in extract_announcements(html, BASE, "updateNotes.php"):
        classify(announcement, now=now, tz=NY)
    for event in classify(_ticker(html), now=now, tz=NY):
        assert event.end is None or event.end.tzinfo is not None
    parse_end_date(html, now=now, tz=UTC)
    diff_summary(html, page.text, max_chars=50)
