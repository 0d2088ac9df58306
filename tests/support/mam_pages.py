"""Realistic MyAnonamouse HTML pages for the rules/events tests and the MAM simulator.

Every page carries the live site chrome the extractor must ignore: a header with the news ticker
``#hrnews`` (items link to forum topics), the vault counter ``#millionInfo``, the user stats
(``#tmBP``, ``#tmR``, ...) and a last-access timestamp, the ``#mainmenu`` with its "Freeleech"
link to /freeleech.php, scripts, and a footer with the page timing and a clock. The page's own
content sits in ``#mainBody``. Update notes are ``.updateNote`` entries with a ``.noteDate``
(``YYYY-MM-DD``) and a ``.noteBody``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape

NewsItem = tuple[str, str]  # (text, href)
Note = tuple[str, str]  # (YYYY-MM-DD, body HTML)

DEFAULT_NEWS: tuple[NewsItem, ...] = (
    ("Site maintenance on Saturday, expect short outages", "/f/t/86001/site-maintenance"),
    ("New audiobook category rules posted", "/f/t/86030/new-category-rules"),
)
DEFAULT_NOTES: tuple[Note, ...] = (
    ("2025-11-18", "<p>Search now supports filtering by narrator.</p>"),
    ("2025-10-02", "<p>The bonus store shows your <b>hourly earning</b> rate.</p>"),
    ("2024-12-20", "<p>Freeleech weekend! All torrents are freeleech until Dec 22.</p>"),
)
_FIXED_NOW = datetime(2025, 11, 21, 12, 30, tzinfo=UTC)

_TITLES = {
    "rules.php": "Site Rules",
    "faq.php": "FAQ",
    "f/b/18": "Forum: Site Announcements",
    "f/b/78": "Forum: Staff Freeleech Picks",
    "guides/": "Guides",
    "updateNotes.php": "Update Notes",
    "api/list.php": "API List",
}


def render_page(
    path: str,
    body_html: str,
    *,
    news: Iterable[NewsItem] = (),
    vault_points: int = 8_145_500,
    bonus: int = 99_999,
    now: datetime | None = None,
) -> str:
    """A full MAM page for ``path`` with ``body_html`` as its main content.

    The header counters, ticker, timestamps and footer timing change with the arguments; the
    main content does not, so its hash must not either.
    """
    now = now or datetime.now(UTC)
    title = _TITLES.get(path, path)
    ticker = "".join(f'<li><a href="{escape(href)}">{escape(text)}</a></li>' for text, href in news)
    generated = 0.01 + (now.microsecond % 90) / 1000
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{escape(title)} | My Anonamouse</title>
<link rel="stylesheet" href="/css/main.css?v={int(now.timestamp())}">
<style>#hrnews li {{ display: inline; }} .updateNote {{ margin: 1em 0; }}</style>
<script>var serverTime = {int(now.timestamp())}; var csrf = "{now.microsecond:06x}";</script>
</head>
<body>
<div id="header">
  <a id="siteLogo" href="/"><img src="/pic/logo.png" alt="My Anonamouse"></a>
  <div id="hrnews"><ul>{ticker}</ul></div>
  <a id="millionInfo" href="/millionaires/" title="You have not donated today">
    Millionaire's vault: {vault_points:,} points</a>
  <div id="userBar">
    <a id="userName" href="/u/123456">quiet_mouse</a>
    <a id="tmBP" href="/store.php">Bonus: {bonus}</a>
    <span id="tmR">Ratio: 1.85 <img src="/pic/updownBig.png" alt="ratio"></span>
    <span id="tmUp">Up: 1.2 TiB</span> <span id="tmDown">Down: 650.3 GiB</span>
    <span id="tmLA">Last access: {now:%Y-%m-%d %H:%M:%S}</span>
  </div>
  <ul id="mainmenu">
    <li><a href="/">Home</a></li><li><a href="/tor/browse.php">Browse</a></li>
    <li><a href="/freeleech.php">Freeleech</a></li><li><a href="/f/">Forums</a></li>
    <li><a href="/rules.php">Rules</a></li><li><a href="/faq.php">FAQ</a></li>
    <li><a href="/guides/">Guides</a></li><li><a href="/store.php">Bonus Store</a></li>
  </ul>
</div>
<div id="mainBody">
{body_html}
</div>
<div id="footer">
  <noscript>Please enable JavaScript for the full site.</noscript>
  <p>Page generated in {generated:.3f} s. <span id="clock">{now:%H:%M:%S} UTC</span></p>
  <p>&copy; My Anonamouse</p>
</div>
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


def update_notes_body(notes: Iterable[Note]) -> str:
    """The updateNotes.php content: one ``.updateNote`` per (date, body HTML), newest first."""
    entries = "".join(
        f'<div class="updateNote" id="note-{day.replace("-", "")}">'
        f'<h3 class="noteDate">{escape(day)}</h3><div class="noteBody">{body}</div></div>\n'
        for day, body in notes
    )
    return f"<h1>Update Notes</h1>\n{entries}"


def default_pages(
    *,
    news: Iterable[NewsItem] = DEFAULT_NEWS,
    notes: Iterable[Note] = DEFAULT_NOTES,
    now: datetime | None = None,
    vault_points: int = 8_145_500,
    bonus: int = 99_999,
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
            "Site Announcements",
            [
                (86030, "New audiobook category rules", "2025-11-20 14:02:11"),
                (86001, "Site maintenance on Saturday", "2 hours ago"),
            ],
        ),
        "f/b/78": forum_board_body(
            "Staff Freeleech Picks",
            [
                (85990, "Freeleech picks for November", "2025-11-01 09:00:00"),
                (85800, "Discussion: freeleech picks", "5 minutes ago"),
            ],
        ),
        "guides/": GUIDES_BODY,
        "updateNotes.php": update_notes_body(notes),
        "api/list.php": API_BODY,
    }
    return {
        path: render_page(path, body, news=news, vault_points=vault_points, bonus=bonus, now=now)
        for path, body in bodies.items()
    }
