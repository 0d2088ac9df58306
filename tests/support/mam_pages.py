"""Realistic MyAnonamouse HTML pages for the rules/events tests and the MAM simulator.

The site chrome follows the saved logged-in pages in the public repository
AlmightyTopher/MAMcrawler (Nov-Dec 2025) and the selectors of erickochen/colophon
(``src/lib/extract/shell.ts``) and gardenshade/mam-plus: ``<body id="siteMain">``, a banner
``header``, ``#preNav`` with the clock ``.tP`` and the vault ``#millionInfo``, the user stats
``div.topArea#userStat`` (``#tmBP``, ``#tmR``, ``#tmFW``, ...), the ``#mainmenu`` (its "Freeleech"
entry is the staff picks page), personal notices (``div.topArea`` without an id, ``a.tmn``), the
news ticker ``div.topArea#hrnews`` with its "hide news" control, then
``main > table#mainTable ... div#mainBody`` and the footer row ``div.footRow``.

The ticker comes in three forms (``ticker=``): ``"list"``, the server-rendered list a client
without JavaScript receives (``ul#js-news li.news-item a``: colophon reads ``#hrnews #js-news a``;
the markup is the jQuery News Ticker's); ``"rendered"``, the ticker as a browser shows it (ids
with a timestamp, ``p.ticker-content a``, one item at a time); ``"simple"``, the same without
ids (both rendered forms are in the saved pages). Items link to forum topics (``/f/t/...``).

The structure of ``updateNotes.php`` is not public: :func:`update_notes_body` renders dated
entries in the site's block layout, in several plausible shapes (``layout=``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Literal

NewsItem = tuple[str, str]  # (text, href)
Note = tuple[str, str]  # (YYYY-MM-DD, body HTML)
TickerForm = Literal["list", "rendered", "simple"]
NotesLayout = Literal["headings", "table", "inline", "dl", "classes"]

DEFAULT_NEWS: tuple[NewsItem, ...] = (
    ("Site maintenance on Saturday, expect short outages", "/f/t/86001/p/1"),
    ("New audiobook category rules posted", "/f/t/86030/p/1"),
)
DEFAULT_NOTES: tuple[Note, ...] = (
    ("2025-11-18", "<p>Search now supports filtering by narrator.</p>"),
    ("2025-10-02", "<p>The bonus store shows your <b>hourly earning</b> rate.</p>"),
    ("2024-12-20", "<p>Freeleech weekend! All torrents are freeleech until Dec 22.</p>"),
)
# A personal notice as the real site shows it above the ticker (never a site event).
TRACKER_ERRORS_NOTICE = (
    '<a href="/userClientDetails.php#errors" class="tmn" id="iteNotif">You have some recent'
    " tracker errors logged.  Please review them, especially if you are experiencing any issues"
    " downloading or seeding.</a>"
)
_FIXED_NOW = datetime(2025, 11, 21, 12, 30, tzinfo=UTC)

_TITLES = {
    "rules.php": "Site Rules",
    "faq.php": "FAQ",
    "f/b/18": "Forum: Feature Requests",
    "f/b/78": "Forum: Bug Reports",
    "guides/": "Guides",
    "updateNotes.php": "Site Update Notes",
    "api/list.php": "API List",
}


def _ticker(news: Sequence[NewsItem], form: TickerForm, now: datetime) -> str:
    hide = (
        '<a href="#" data-hidenews="" style="display:inline-block;position:relative;top:-10px;">'
        '<img src="https://sas.myanonamouse.net/pic/minus.gif" alt="hide news"></a>'
    )
    links = [f'<a href="{escape(href)}">{escape(text)}</a>' for text, href in news]
    if form == "list":
        items = "".join(f'<li class="news-item">{link}</li>' for link in links)
        return f'{hide}<ul id="js-news" class="js-hidden">{items}</ul>'
    current = links[0] if links else ""  # the widget shows one item at a time
    if form == "simple":
        return (
            f'{hide}<div class="ticker-wrapper has-js left"><div class="ticker">'
            f'<p class="ticker-content">{current}</p></div></div>'
        )
    stamp = int(now.timestamp() * 1000)
    return (
        f'{hide}            <div id="ticker-wrapper-{stamp}" class="ticker-wrapper has-js left">'
        f'<div id="ticker-{stamp}" class="ticker"><div id="ticker-title-{stamp}"'
        f' class="ticker-title" style=""><span></span></div><p id="ticker-content-{stamp}"'
        f' class="ticker-content" style="opacity: 1; left: 20px;">{current}</p>'
        f'<div id="ticker-swipe-{stamp}" class="ticker-swipe" style="left: 20px; display: none;">'
        "<span><!-- --></span></div></div></div>\n            "
    )


def render_page(
    path: str,
    body_html: str,
    *,
    news: Iterable[NewsItem] = (),
    vault_points: int = 8_145_500,
    bonus: int = 99_999,
    now: datetime | None = None,
    ticker: TickerForm = "list",
    notices: Iterable[str] = (),
) -> str:
    """A full MAM page for ``path`` with ``body_html`` as its main content.

    The header counters, clock, ticker, notices and the page timing change with the arguments;
    the main content does not, so its hash must not either. ``notices`` are the inner HTML of
    personal notices (``TRACKER_ERRORS_NOTICE``).
    """
    now = now or datetime.now(UTC)
    title = _TITLES.get(path, path)
    strips = "".join(f'<div class="topArea">{notice}</div>' for notice in notices)
    generated = 0.01 + (now.microsecond % 90) / 1000
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{escape(title)} | My Anonamouse</title>
<link rel="stylesheet" href="/css/main.css?v={int(now.timestamp())}">
<style>#hrnews li {{ display: inline; }}</style>
<script>var serverTime = {int(now.timestamp())}; var csrf = "{now.microsecond:06x}";</script>
</head>
<body id="siteMain">
<div id="dialog-message" title=""></div><header role="banner"><a id="msb" href="/" tabindex="0">\
<img src="https://cdn.myanonamouse.net/banner/display.php/m/{now:%Y%m}/0" alt="mainBanner"></a>\
</header><div id="preNav" class="flexbox fbCen"><div class="tP" \
data-basedate="{now:%Y-%m-%dT%H:%M:%S}+00:00" data-dtype="0">{now:%Y-%m-%d %H:%M:%S} UTC</div>\
<form action="/tor/browse.php" method="get" id="mainSearch"><input type="text" id="ts" \
name="tor[text]" placeholder="Search Torrents"></form><a id="millionInfo" class="green" \
title="You have not donated today" href="/millionaires/pot.php">Millionaire's vault: \
{vault_points:,} points</a></div><div class="topArea" id="userStat"><a id="tmUS" \
href="/u/229756">quiet_mouse</a> <span id="tmC">(VIP)</span> <a id="tmCo" \
href="/userClientDetails.php">Client Status: <img src="/pic/no.gif" alt="Online!"></a> \
<span id="tmR" class="RatioTD">1.85 <img src="/pic/updownBig.png" alt="ratio"></span> \
<span id="tmUP" class="uploadedTD">1.2 TiB</span> <span id="tmDL" class="downloadedTD">650.3 GiB\
</span> <a id="tmBP" href="/store.php">Bonus: {bonus}</a> <a id="tmIN" \
href="/invite/unconfirmed.php">Invites: 0</a><span id="tmFW">FL Wedges: 120</span> <a id="tmCh" \
href="/store.php">Cheese: 0</a> <a id="tmUN" href="/snatch_summary.php#unsat">22 Unsat(s)</a>\
</div><div id="mainmenu" role="navigation">
<ul id="menu" role="menubar"><li class="homeLink"><a href="/index.php">Home</a></li>
<li class="mmUserStats"><a id="userMenu">quiet_mouse</a><ul class="hidden">
<li><a href="/store.php" id="bonusLink">Bonus: {bonus}</a></li><li><a href="/store.php">B/hr: \
1403.134</a></li><li><a>FL Wedges: 120</a></li></ul></li>
<li class="mmHelpSup"><a>Help &amp; Support</a><ul class="hidden"><li><a href="/rules.php">Rules\
</a></li><li><a href="/faq.php">FAQ</a></li><li><a href="/f/b/18">Feature Requests</a></li><li>\
<a href="/f/b/78">Bug Reports</a></li><li><a href="/guides/">Guides</a></li><li>\
<a href="/updateNotes.php">Site Update Notes</a></li><li><a href="/api/list.php">API (limited)\
</a></li></ul></li>
<li class="mmTorrents"><a>Torrents</a><ul class="hidden"><li><a href="/tor/browse.php">\
Search/Browse</a></li><li><a href="/freeleech.php">Freeleech <img src="/pic/freedownload.gif" \
alt=""></a></li><li><a href="/store.php">Bonus Store</a></li></ul></li></ul></div>{strips}\
<div class="topArea" id="hrnews">{_ticker(tuple(news), ticker, now)}</div>\
<main role="main"><table id="mainTable">
<tbody><tr><td id="mainLeft"> </td><td id="mainRight"><div class="blockCon"><div class="blockHead">\
<div class="blockHeadCon"><h4>{escape(title)}</h4></div><div class="bHi"></div></div>\
<div class="blockBody"><div class="blockBodyCon cen" id="mainBody">
{body_html}
</div></div><div class="blockFoot"></div></div>
</td></tr></tbody></table></main><div class="footRow cen">&copy; {now:%Y} Myanonamouse \
<span id="clock">{now:%H:%M:%S} UTC</span> Page generated in {generated:.3f} s.</div>
<noscript>Please enable JavaScript for the full site.</noscript>
<script>startClock(serverTime);</script>
</body>
</html>
"""


RULES_BODY = """<h1>Site Rules</h1>
<h2>1. General</h2>
<ol>
<li>1.1 One account per person, for life. Do not share your account.</li>
<li>1.2 Declare any VPN or seedbox IP addresses to staff.</li>
<li>1.4 Your global ratio must stay at or above 1.0. Members below 1.0 are demoted to Mouse.</li>
<li>1.6 Log in regularly or park your account.</li>
<li>1.7 Do not automate the site or scrape it beyond the API.</li>
</ol>
<h2>2. Torrents</h2>
<ol>
<li>2.3 Only whitelisted clients are allowed.</li>
<li>2.5 Seed every torrent for 72 hours within 30 days or it becomes a Hit &amp; Run.</li>
<li>2.6 Freeleech torrents do not count against your download, and during a
2x upload event your upload counts double. Neither removes the seeding requirement.</li>
</ol>
"""

FAQ_BODY = """<h1>Frequently Asked Questions</h1>
<h3>What is freeleech?</h3>
<p>A freeleech (FL) torrent does not count towards your downloaded amount. Staff pick
freeleech torrents every week, VIP torrents are freeleech for VIPs, and sometimes there is a
site-wide freeleech, which is announced in the news ticker.</p>
<h3>What is 2x upload?</h3>
<p>During a 2x upload event everything you upload counts double, and during a bonus point
event you earn 2x bonus points per hour.</p>
<h3>How is my ratio calculated?</h3>
<p>Uploaded divided by downloaded. Keep it at 1.0 or above.</p>
"""

GUIDES_BODY = """<h1>Guides</h1>
<ul>
<li><a href="/guides/?gid=1">Getting started: seeding and ratio</a> by staff, 3 days ago</li>
<li><a href="/guides/?gid=7">Using the bonus point store</a></li>
<li><a href="/guides/?gid=12">Setting up a seedbox</a></li>
</ul>
"""

API_BODY = """<h1>API endpoints</h1>
<table class="apiList">
<tr><th>Endpoint</th><th>Purpose</th><th>Limit</th></tr>
<tr><td>/jsonLoad.php</td><td>Your user data</td><td>none documented</td></tr>
<tr><td>/json/dynamicSeedbox.php</td><td>Register the seedbox IP</td><td>1 per hour</td></tr>
<tr><td>/json/jsonIp.php</td><td>Your current IP</td><td>1 per minute</td></tr>
<tr><td>/json/bonusBuy.php</td><td>Spend bonus points</td><td>none documented</td></tr>
<tr><td>/tor/js/loadSearchJSONbasic.php</td><td>Torrent search</td><td>none documented</td></tr>
</table>
"""


def forum_board_body(name: str, topics: Sequence[tuple[int, str, str]]) -> str:
    """A forum board listing: (topic id, title, last-post timestamp) rows."""
    rows = "".join(
        f'<tr><td><a href="/f/t/{tid}">{escape(title)}</a></td>'
        f'<td class="lastPost">{escape(last)} by staff</td></tr>'
        for tid, title, last in topics
    )
    return f'<h1>{escape(name)}</h1>\n<table class="forumBoard">{rows}</table>\n'


def update_notes_body(notes: Iterable[Note], *, layout: NotesLayout = "headings") -> str:
    """The updateNotes.php content: one dated entry per (date, body HTML), newest first.

    Layouts: ``"headings"`` (a date heading over the entry's paragraphs and lists, in the site's
    ``blockCon`` boxes), ``"table"`` (a date column), ``"inline"`` (``<b>date</b> - text<br>``
    lines), ``"dl"`` (a definition list), ``"classes"`` (the guessed ``.updateNote`` markup of an
    earlier version of these tests).
    """
    notes = list(notes)
    if layout == "table":
        rows = "".join(
            f'<tr><td class="rowhead">{escape(day)}</td><td class="row1">{body}</td></tr>'
            for day, body in notes
        )
        return f'<h1>Site Update Notes</h1>\n<table class="coltable"><tbody>{rows}</tbody></table>'
    if layout == "inline":
        lines = "".join(f"<b>{escape(day)}</b> - {body}<br>\n" for day, body in notes)
        return f"<h1>Site Update Notes</h1>\n<div>{lines}</div>"
    if layout == "dl":
        items = "".join(f"<dt>{escape(day)}</dt><dd>{body}</dd>" for day, body in notes)
        return f"<h1>Site Update Notes</h1>\n<dl>{items}</dl>"
    if layout == "classes":
        entries = "".join(
            f'<div class="updateNote" id="note-{day.replace("-", "")}">'
            f'<h3 class="noteDate">{escape(day)}</h3><div class="noteBody">{body}</div></div>\n'
            for day, body in notes
        )
        return f"<h1>Update Notes</h1>\n{entries}"
    entries = "".join(
        '<div class="blockCon"><div class="blockHead"><div class="blockHeadCon">'
        f'<h4>{escape(day)}</h4></div></div><div class="blockBody"><div class="blockBodyCon left">'
        f"{body}</div></div></div>\n"
        for day, body in notes
    )
    return f"<h1>Site Update Notes</h1>\n<p>What changed on the site, newest first.</p>\n{entries}"


def default_pages(
    *,
    news: Iterable[NewsItem] = DEFAULT_NEWS,
    notes: Iterable[Note] = DEFAULT_NOTES,
    now: datetime | None = None,
    vault_points: int = 8_145_500,
    bonus: int = 99_999,
    ticker: TickerForm = "list",
    notices: Iterable[str] = (TRACKER_ERRORS_NOTICE,),
) -> dict[str, str]:
    """The seven rules pages (keys as in ``pages.RULES_PAGES``) with plausible content.

    ``now``, ``vault_points`` and ``bonus`` only change the site chrome (header counters, clock,
    timings), never the main content.
    """
    now = now or _FIXED_NOW
    news = tuple(news)
    bodies = {
        "rules.php": RULES_BODY,
        "faq.php": FAQ_BODY,
        "f/b/18": forum_board_body(
            "Feature Requests",
            [
                (86030, "New audiobook category rules", "2025-11-20 14:02:11"),
                (86001, "Site maintenance on Saturday", "2 hours ago"),
            ],
        ),
        "f/b/78": forum_board_body(
            "Bug Reports",
            [
                (85990, "Freeleech search filter shows VIP torrents", "2025-11-01 09:00:00"),
                (85800, "Double upload not shown on the torrent page", "5 minutes ago"),
            ],
        ),
        "guides/": GUIDES_BODY,
        "updateNotes.php": update_notes_body(notes),
        "api/list.php": API_BODY,
    }
    notices = tuple(notices)
    return {
        path: render_page(
            path,
            body,
            news=news,
            vault_points=vault_points,
            bonus=bonus,
            now=now,
            ticker=ticker,
            notices=notices,
        )
        for path, body in bodies.items()
    }
