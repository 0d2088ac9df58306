"""A fake MyAnonamouse for tests and the local demo (aiohttp.web).

It reproduces what the client has to cope with (research/mam.md): the late-2026 jsonLoad shape
(or the older top-level one), ``mam_id`` rotation that invalidates the presented cookie, the
plain-text 403, redirects to ``login.php`` and forced 429/5xx answers. ``/_sim/*`` is a JSON
control API so tests and a person running the demo can change the account and inject failures.

``malformed_set_cookie`` makes the rotated cookie arrive in a ``Set-Cookie`` field that aiohttp's
client cannot parse (it ends in a NUL byte): the client fails with an error quoting the raw field,
new ``mam_id`` included, while the simulator has still rotated the session, as a real server
would. aiohttp.web refuses to send control characters, so that one response is written to the
socket directly.

``json/bonusBuy.php`` sells VIP and upload credit as MAM does (research/mam.md §1.3,
mam-economy.md §2): VIP with ``duration=max`` fills VIP to :attr:`SimState.vip_cap_days` for 1,250
points a week (``amount=`` on VIP answers 404, as on MAM), upload credit costs 500 points per GB
(GiB), at least 50 GB. Answers are HTTP 200 with MAM's captured bodies: the success body of an
upload byte-for-byte in shape; ``{"success": false, "error": ...}`` with MAM's captured texts
for too few points, < 50 GB and < 7 days of VIP addable. Two texts were never captured and are
invented: the class refusal (:data:`VIP_CLASS_ERROR`) and a bad ``duration``.
Every applied purchase is appended to :attr:`MamSimulator.purchases` (``GET /_sim/state`` shows
them). :attr:`SimState.purchase_fault` makes purchases misbehave *after* (or before) applying:

* ``timeout_after_apply``: apply, then hold the answer for ``purchase_fault_delay`` seconds;
* ``drop_after_apply``: apply, then close the connection without answering;
* ``drop_before_apply``: close the connection without applying anything.

As on MAM, the session rotates when the purchase is processed: with ``rotate`` on, a lost
answer loses the new cookie with it.

``tor/js/loadSearchJSONbasic.php`` is MAM's documented search (research/mam.md §1.4), for the
torrents the simulator knows (:meth:`MamSimulator.add_torrent`, ``POST /_sim/torrents``). It takes
a JSON POST ``{"tor": {"hash": ...}, "perpage": n}`` (or ``tor[hash]`` as a form field or query
parameter, as MAM does): a known hash answers one row shaped like packrat's capture, with the
flags ``free``, ``personal_freeleech``, ``vip`` and ``fl_vip`` as numbers, ``"0"``/``"1"``
strings or booleans (:attr:`SimState.search_flag_style`); an unknown hash answers HTTP 200
``{"error": "Nothing returned, out of 0"}``. A search without a hash is a plain browse: the
newest known torrents, up to ``perpage``. Every search is counted in :attr:`MamSimulator.requests`
like any site path, per hash in :attr:`MamSimulator.searches` and timed (by
:attr:`MamSimulator.clock`, which a test may replace with a fake clock) in
:attr:`MamSimulator.search_log`, refused ones (403, forced 429) included. The session rotates on
every answered search, as on every MAM request.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
import math
import secrets
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from collections.abc import Mapping

NOT_SIGNED_IN = "Error, you are not signed in <br />Invalid/missing cookie"
COOKIE_NAME = "mam_id"
ACCOUNT_PATH = "jsonLoad.php"
PURCHASE_PATHS = frozenset({"json/bonusBuy.php", "json/bonusBuy.php/"})
SEARCH_PATH = "tor/js/loadSearchJSONbasic.php"
NOTHING_RETURNED = "Nothing returned, out of 0"
SEARCH_FLAGS = ("free", "personal_freeleech", "vip", "fl_vip")
DEFAULT_PER_PAGE = 25  # MAM's default page size is not documented; 5-1000 are accepted

GIB = 1024**3
UPLOAD_POINTS_PER_GB = 500
MIN_UPLOAD_GB = 50
VIP_POINTS_PER_WEEK = 1250
VIP_MIN_ADD = timedelta(days=7)
VIP_CLASSES = frozenset({"power user", "vip"})
VIP_FORMAT = "%Y-%m-%d %H:%M:%S"
# MAM's rejection texts (captured), and two that were never captured (invented).
NOT_ENOUGH_BONUS = "Not enough bonus, s1"
UPLOAD_MINIMUM_ERROR = (
    "Automated spenders are limited to buying at least 50 GB of upload at a time, due to log spam"
)
VIP_MINIMUM_ERROR = "Min VIP is 1 week purchased for Automated methods"
VIP_CLASS_ERROR = "You must be a Power User or VIP to purchase VIP"  # invented
VIP_DURATION_ERROR = "Invalid duration"  # invented
PURCHASE_FAULTS = frozenset({"timeout_after_apply", "drop_after_apply", "drop_before_apply"})

_BLOCK_NAMES = {
    "leeching": "Leeching",
    "sSat": "Seeding - Satisfied",
    "seedHnr": "Seeding - H&R",
    "seedUnsat": "Seeding - Not Yet Satisfied",
    "upAct": "Uploaded - Seeding",
    "upInact": "Uploaded - Not Seeding",
    "inactHnr": "Not Seeding - H&R",
    "inactSat": "Not Seeding - Satisfied",
    "inactUnsat": "Not Seeding - Not Yet Satisfied",
}


def _default_counts() -> dict[str, int]:
    return {"leeching": 2, "sSat": 331, "seedHnr": 0, "seedUnsat": 40} | dict.fromkeys(
        ("upAct", "upInact", "inactHnr", "inactSat", "inactUnsat"), 0
    )


@dataclass
class SimState:
    """Everything ``POST /_sim/state`` may change: the account and the shape/behaviour knobs.

    Values are sent as set, without validation, so tests can also feed the client garbage.
    """

    uid: int | str = 100001
    username: str | None = "FixtureUser"  # None: key omitted, which is how MAM says "signed out"
    classname: str = "VIP"
    ratio: float | str = 1.5  # a number or the string "∞"
    uploaded_bytes: int = 10 * 1024**3
    downloaded_bytes: int = 1024**3
    seedbonus: int | float | str = 1000
    wedges: int | str = 10
    vip_until: str | None = "2027-01-01 00:00:00"
    vip_until_null: bool = False  # when vip_until is None: send null (True) or omit the key
    unsat_count: int = 42
    unsat_limit: int = 50
    snatch_counts: dict[str, int] = field(default_factory=_default_counts)
    connectable: str = "yes"
    nested: bool = True  # snatch blocks under "snatch_summary" (late 2026) or at top level
    rotate: bool = True  # issue a new mam_id on every authenticated response
    redirect_to_login: bool = False  # answer every authenticated path with 302 -> login.php
    delay: float = 0.0  # seconds to wait before answering (to observe concurrency)
    # Send the rotated cookie in a Set-Cookie field aiohttp cannot parse (see the module docstring).
    malformed_set_cookie: bool = False
    vip_cap_days: float = 90.0  # VIP with duration=max fills up to this many days from now
    # None, or one of PURCHASE_FAULTS: how bonusBuy misbehaves (see the module docstring).
    purchase_fault: str | None = None
    purchase_fault_delay: float = 5.0  # seconds "timeout_after_apply" holds the answer
    # How search rows carry their flags: "int" (0/1, packrat's capture), "str" ("0"/"1",
    # Seshat's fixture and MAM's doc example) or "bool" (MAM's field table).
    search_flag_style: str = "int"


@dataclass
class SimTorrent:
    """A torrent the search knows, by info hash (lower case)."""

    hash: str
    id: int
    title: str
    free: bool = False
    personal_freeleech: bool = False
    vip: bool = False
    fl_vip: bool = False
    seeders: int = 5


@dataclass(frozen=True, slots=True)
class ForcedResponse:
    """One queued failure from :meth:`MamSimulator.fail_next`."""

    status: int
    body: str | None = None


def human_size(size: int) -> str:
    """MAM's display format: "10.00 GiB", "0.00 KiB" (never plain bytes)."""
    value = size / 1024
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class MamSimulator:
    """In-process fake MAM: mutate ``state``, ``pages`` and the cookies directly or over HTTP."""

    def __init__(self, state: SimState | None = None, *, cookies: set[str] | None = None) -> None:
        """Create a stopped simulator; ``cookies`` are the initially valid ``mam_id`` values."""
        self.state = state or SimState()
        self.valid_cookies: set[str] = set(cookies or ())
        self.pages: dict[str, str] = {}  # path without leading "/" -> HTML, e.g. "rules.php"
        self.requests: Counter[str] = Counter()  # site path -> requests received (incl. failures)
        self.last_headers: dict[str, str] = {}  # headers of the last site request
        self.in_flight = 0
        self.max_in_flight = 0
        # Every purchase applied: {"kind", "amount", "cost", "at"} (amount: GB, or VIP weeks).
        self.purchases: list[dict[str, Any]] = []
        self.torrents: dict[str, SimTorrent] = {}  # info hash (lower case) -> torrent
        self.searches: Counter[str] = Counter()  # info hash searched ("" = none) -> requests
        self.search_log: list[tuple[datetime, str]] = []  # (clock(), info hash) per search
        self.last_search: dict[str, Any] | None = None  # the last search request, decoded
        self.clock: Callable[[], datetime] = _utcnow
        self._forced: deque[ForcedResponse] = deque()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # -- test helpers -------------------------------------------------------------------------

    def add_cookie(self, value: str | None = None) -> str:
        """Make ``value`` (or a fresh random value) a valid session cookie and return it."""
        cookie = value or _new_cookie()
        self.valid_cookies.add(cookie)
        return cookie

    def invalidate_all_cookies(self) -> None:
        """Every session ends, as when the user deletes it in MAM's preferences."""
        self.valid_cookies.clear()

    def fail_next(self, status: int, count: int = 1, body: str | None = None) -> None:
        """Answer the next ``count`` site requests with ``status`` (3xx redirects to login.php)."""
        self._forced.extend([ForcedResponse(status, body)] * count)

    def add_torrent(
        self,
        info_hash: str,
        *,
        free: bool = False,
        personal_freeleech: bool = False,
        vip: bool = False,
        fl_vip: bool = False,
        torrent_id: int | None = None,
        title: str | None = None,
        seeders: int = 5,
    ) -> SimTorrent:
        """Make the search know ``info_hash`` (any case) with these flags; returns the torrent."""
        key = info_hash.lower()
        number = torrent_id if torrent_id is not None else 1_000_000 + len(self.torrents)
        torrent = SimTorrent(
            hash=key,
            id=number,
            title=title or f"Simulated torrent {number}",
            free=free,
            personal_freeleech=personal_freeleech,
            vip=vip,
            fl_vip=fl_vip,
            seeders=seeders,
        )
        self.torrents[key] = torrent
        return torrent

    def search_json(self, info_hash: str | None, perpage: int = DEFAULT_PER_PAGE) -> dict[str, Any]:
        """The search answer for ``info_hash`` (None: browse the newest torrents)."""
        if info_hash is None:
            found = sorted(self.torrents.values(), key=lambda t: t.id, reverse=True)
        else:
            torrent = self.torrents.get(info_hash.lower())
            found = [torrent] if torrent is not None else []
        if not found:
            return {"error": NOTHING_RETURNED}
        rows = [self._search_row(t) for t in found[:perpage]]
        return {
            "perpage": perpage,
            "start": 0,
            "data": rows,
            "total": len(found),
            "found": len(found),
        }

    def _search_row(self, torrent: SimTorrent) -> dict[str, Any]:
        """One row as in packrat's capture of a real answer (ids and counters as MAM sends)."""
        style = self.state.search_flag_style
        flags = {name: _flag(getattr(torrent, name), style) for name in SEARCH_FLAGS}
        return {
            "id": torrent.id,
            "language": 1,
            "lang_code": "ENG",
            "main_cat": 13,
            "category": 39,
            "mediatype": 1,
            "maincat": 1,
            "categories": "[]",
            "catname": "Audiobooks - Fantasy",
            "size": "620.2 MiB",
            "numfiles": 12,
            "vip_expire": 0,
            "title": torrent.title,
            "w": 0,
            "tags": "unabridged",
            "author_info": '{"1": "Simulated Author"}',
            "narrator_info": '{"2": "Simulated Narrator"}',
            "series_info": "{}",
            "filetype": "m4b",
            "seeders": torrent.seeders,
            "leechers": 1,
            "added": "2026-11-01 12:00:00",
            "browseflags": 0,
            "times_completed": 40,
            "comments": 0,
            "bookmarked": None,
            "my_snatched": _flag(True, style),
            "poster_type": "",
            "mediainfo": "",
            "ownership": '[1, "uploader"]',
            "cat": "",
            **flags,
        }

    def account_json(self) -> dict[str, Any]:
        """The jsonLoad.php?snatch_summary payload for the current state."""
        s = self.state
        blocks: dict[str, Any] = {
            key: {"name": name, "count": s.snatch_counts.get(key, 0), "size": None}
            for key, name in _BLOCK_NAMES.items()
        }
        blocks["unsat"] = {
            "name": "Unsatisfied",
            "count": s.unsat_count,
            "limit": s.unsat_limit,
            "size": None,
        }
        blocks["duplicates"] = {"count": 0}
        blocks["reseed"] = {"count": 0, "inactive": 0}
        now = int(time.time())
        summary: dict[str, Any] = {"connectable": s.connectable, "created": now, **blocks}
        payload: dict[str, Any] = {
            "classname": s.classname,
            "downloaded": human_size(s.downloaded_bytes),
            "downloaded_bytes": s.downloaded_bytes,
            "ratio": s.ratio,
            "seedbonus": s.seedbonus,
            "uid": s.uid,
            "uploaded": human_size(s.uploaded_bytes),
            "uploaded_bytes": s.uploaded_bytes,
            "wedges": s.wedges,
        }
        if s.username is not None:
            payload["username"] = s.username
        if s.vip_until is not None or s.vip_until_null:
            payload["vip_until"] = s.vip_until
        if s.nested:
            summary |= {
                "created_at": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)),
                "v6_connectable": None,
            }
            payload["snatch_summary"] = summary
        else:  # the older shape: blocks at top level, each with "red"
            for block in blocks.values():
                block["red"] = False
            payload |= summary | {"update": now}
        return payload

    # -- server ---------------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        """The aiohttp application (control API first, then the catch-all site paths)."""
        app = web.Application()
        app.router.add_get("/_sim/state", self._get_state)
        app.router.add_post("/_sim/state", self._post_state)
        app.router.add_post("/_sim/fail", self._post_fail)
        app.router.add_post("/_sim/cookie", self._post_cookie)
        app.router.add_delete("/_sim/cookie", self._delete_cookie)
        app.router.add_get("/_sim/requests", self._get_requests)
        app.router.add_get("/_sim/torrents", self._get_torrents)
        app.router.add_post("/_sim/torrents", self._post_torrents)
        app.router.add_delete("/_sim/torrents", self._delete_torrents)
        app.router.add_post(f"/{SEARCH_PATH}", self._site, name="search")
        app.router.add_get("/{path:.*}", self._site)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 = any free port); returns the base URL."""
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_port = self._runner.addresses[0][1]
        self.base_url = f"http://{host}:{bound_port}"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving and close every connection."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _site(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info.get("path", SEARCH_PATH)
        if path not in self.pages and path not in PURCHASE_PATHS | {ACCOUNT_PATH, SEARCH_PATH}:
            raise web.HTTPNotFound
        self.requests[path] += 1
        self.last_headers = dict(request.headers)
        # A search is counted (and its body read) on arrival, before any delay.
        search = await self._search_received(request) if path == SEARCH_PATH else None
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.state.delay:
                await asyncio.sleep(self.state.delay)
            if path in PURCHASE_PATHS:
                return await self._purchase(request)
            if search is not None:
                return self._search(request, search)
            response = self._answer(request, path)
            if (
                self.state.malformed_set_cookie
                and isinstance(response, web.Response)
                and COOKIE_NAME in response.cookies
            ):
                _write_with_malformed_cookie(request, response)
            return response
        finally:
            self.in_flight -= 1

    def _refusal(self, request: web.Request) -> web.Response | None:
        """A queued failure, the login redirect or the 403 of a bad cookie; None when signed in."""
        if self._forced:
            return _forced_response(self._forced.popleft())
        if self.state.redirect_to_login:
            return _forced_response(ForcedResponse(302))
        cookie = request.cookies.get(COOKIE_NAME)
        if cookie is None or cookie not in self.valid_cookies:
            return web.Response(status=403, text=NOT_SIGNED_IN, content_type="text/html")
        return None

    def _rotate(self, request: web.Request, response: web.Response) -> None:
        if self.state.rotate:  # the presented value dies, a new one is handed out
            self.valid_cookies.discard(request.cookies[COOKIE_NAME])
            response.set_cookie(COOKIE_NAME, self.add_cookie(), path="/", httponly=True)

    def _answer(self, request: web.Request, path: str) -> web.StreamResponse:
        if (refusal := self._refusal(request)) is not None:
            return refusal
        if path == ACCOUNT_PATH:
            response: web.Response = web.json_response(self.account_json())
        else:
            response = web.Response(text=self.pages[path], content_type="text/html")
        self._rotate(request, response)
        return response

    # -- loadSearchJSONbasic.php ----------------------------------------------------------------

    async def _search_received(self, request: web.Request) -> dict[str, Any]:
        query = await _search_query(request)
        self.last_search = query
        self.searches[query["hash"] or ""] += 1
        self.search_log.append((self.clock(), query["hash"] or ""))
        return query

    def _search(self, request: web.Request, query: dict[str, Any]) -> web.Response:
        if (refusal := self._refusal(request)) is not None:
            return refusal
        response = web.json_response(self.search_json(query["hash"], query["perpage"]))
        self._rotate(request, response)
        return response

    # -- bonusBuy.php ---------------------------------------------------------------------------

    async def _purchase(self, request: web.Request) -> web.StreamResponse:
        if (refusal := self._refusal(request)) is not None:
            return refusal
        fault = self.state.purchase_fault
        if fault == "drop_before_apply":
            return _drop(request)
        response = self.buy(request.query)
        self._rotate(request, response)
        if fault == "drop_after_apply":
            return _drop(request)
        if fault == "timeout_after_apply":
            await asyncio.sleep(self.state.purchase_fault_delay)
        return response

    def buy(self, query: Mapping[str, str]) -> web.Response:
        """Apply one purchase request (its query parameters) and return MAM's answer."""
        spendtype = query.get("spendtype")
        try:
            points = float(self.state.seedbonus)
        except TypeError, ValueError:
            return web.Response(status=500, text="HTTP 500")
        if spendtype == "VIP":
            return self._buy_vip(query, points)
        if spendtype == "upload":
            return self._buy_upload(query.get("amount", ""), points)
        return _rejection("Invalid spendtype")

    def _buy_vip(self, query: Mapping[str, str], points: float) -> web.Response:
        if "amount" in query:  # Seshat: amount= on VIP "silently returns HTTP 404"
            return web.Response(status=404, text="404 Not Found", content_type="text/html")
        if query.get("duration") != "max":
            return _rejection(VIP_DURATION_ERROR)
        s = self.state
        if s.classname.casefold() not in VIP_CLASSES:
            return _rejection(VIP_CLASS_ERROR)
        now = datetime.now(UTC).replace(microsecond=0)
        until = _vip_until(s.vip_until)
        remaining = max(timedelta(0), until - now) if until is not None else timedelta(0)
        addable = timedelta(days=s.vip_cap_days) - remaining
        if addable < VIP_MIN_ADD:
            return _rejection(VIP_MINIMUM_ERROR)
        weeks = round(addable / timedelta(weeks=1), 3)
        cost = round(weeks * VIP_POINTS_PER_WEEK, 3)
        if points < cost:
            return _rejection(NOT_ENOUGH_BONUS)
        s.seedbonus = round(points - cost, 3)
        s.vip_until = (now + timedelta(days=s.vip_cap_days)).strftime(VIP_FORMAT)
        self._applied("vip", weeks, cost)
        return web.json_response(
            {"success": True, "type": "VIP", "amount": weeks, "seedbonus": s.seedbonus}
        )

    def _buy_upload(self, amount_text: str, points: float) -> web.Response:
        amount = int(amount_text) if amount_text.isascii() and amount_text.isdigit() else 0
        if amount < MIN_UPLOAD_GB:
            return _rejection(UPLOAD_MINIMUM_ERROR)
        cost = amount * UPLOAD_POINTS_PER_GB
        if points < cost:
            return _rejection(NOT_ENOUGH_BONUS)
        s = self.state
        s.seedbonus = round(points - cost, 3)
        s.uploaded_bytes += amount * GIB
        ratio: float | str = s.ratio
        if s.downloaded_bytes > 0:
            s.ratio = ratio = round(s.uploaded_bytes / s.downloaded_bytes, 2)
        self._applied("upload", amount, cost)
        return web.json_response(
            {
                "success": True,
                "type": "upload",
                "amount": amount,
                "seedbonus": s.seedbonus,
                "uploaded": s.uploaded_bytes,
                "downloaded": s.downloaded_bytes,
                "uploadFancy": _fancy(s.uploaded_bytes),
                "downloadFancy": _fancy(s.downloaded_bytes),
                "ratio": ratio,
            }
        )

    def _applied(self, kind: str, amount: float, cost: float) -> None:
        self.purchases.append(
            {"kind": kind, "amount": amount, "cost": cost, "at": datetime.now(UTC).isoformat()}
        )

    async def _get_state(self, _request: web.Request) -> web.Response:
        return web.json_response(
            asdict(self.state)
            | {
                "valid_cookies": sorted(self.valid_cookies),
                "pages": sorted(self.pages),
                "purchases": self.purchases,
                "purchases_applied": len(self.purchases),
            }
        )

    async def _post_state(self, request: web.Request) -> web.Response:
        update = await _json_object(request)
        known = {f.name for f in fields(SimState)}
        if unknown := sorted(set(update) - known):
            raise web.HTTPBadRequest(text=f"unknown state keys: {unknown}")
        for key, value in update.items():
            setattr(self.state, key, value)
        return await self._get_state(request)

    async def _post_fail(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        status, count, text = body.get("status"), body.get("count", 1), body.get("body")
        if (
            not isinstance(status, int)
            or not isinstance(count, int)
            or not isinstance(text, str | None)
        ):
            raise web.HTTPBadRequest(text="expected {status: int, count?: int, body?: str}")
        self.fail_next(status, count, text)
        return web.json_response({"queued": len(self._forced)})

    async def _post_cookie(self, request: web.Request) -> web.Response:
        value = (await _json_object(request)).get("mam_id")
        if not isinstance(value, str | None):
            raise web.HTTPBadRequest(text="mam_id must be a string")
        return web.json_response({"mam_id": self.add_cookie(value)})

    async def _delete_cookie(self, _request: web.Request) -> web.Response:
        self.invalidate_all_cookies()
        return web.json_response({"valid_cookies": 0})

    async def _get_requests(self, _request: web.Request) -> web.Response:
        return web.json_response(dict(self.requests))

    async def _get_torrents(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "torrents": {
                    key: {name: getattr(t, name) for name in SEARCH_FLAGS} | {"id": t.id}
                    for key, t in sorted(self.torrents.items())
                },
                "searches": dict(self.searches),
            }
        )

    async def _post_torrents(self, request: web.Request) -> web.Response:
        """Register torrents: ``{hash: {free, personal_freeleech, vip, fl_vip, id?, title?}}``."""
        body = await _json_object(request)
        checked: list[tuple[str, dict[str, Any]]] = []
        for key, spec in body.items():
            if not isinstance(spec, dict) or set(spec) - {*SEARCH_FLAGS, "id", "title"}:
                raise web.HTTPBadRequest(
                    text=f"expected {{hash: {{{', '.join(SEARCH_FLAGS)}, id?, title?}}}}"
                )
            if any(spec.get(name, False) not in (True, False) for name in SEARCH_FLAGS):
                raise web.HTTPBadRequest(text="flags are true/false (or 1/0)")
            if not isinstance(spec.get("id", 0), int) or not isinstance(spec.get("title", ""), str):
                raise web.HTTPBadRequest(text="id is an integer, title a string")
            checked.append((key, spec))
        for key, spec in checked:
            self.add_torrent(
                key,
                **{name: bool(spec.get(name, False)) for name in SEARCH_FLAGS},
                torrent_id=spec.get("id"),
                title=spec.get("title"),
            )
        return await self._get_torrents(request)

    async def _delete_torrents(self, request: web.Request) -> web.Response:
        self.torrents.clear()
        return await self._get_torrents(request)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _flag(value: bool, style: str) -> int | str | bool:
    """A search flag as MAM may send it: 0/1, "0"/"1" or a boolean."""
    if style == "bool":
        return value
    if style == "str":
        return "1" if value else "0"
    return int(value)


async def _search_query(request: web.Request) -> dict[str, Any]:
    """``{"hash": str | None, "perpage": int, "tor": {...}}`` from a JSON POST, a form or a query.

    MAM takes the search as JSON, form fields or query parameters (``tor[hash]=...``).
    """
    tor: dict[str, Any] = {}
    perpage: object = None
    if request.method == "POST" and request.content_type == "application/json":
        try:
            data = await request.json()
        except ValueError:
            data = None
        if isinstance(data, dict):
            tor = data["tor"] if isinstance(data.get("tor"), dict) else {}
            perpage = data.get("perpage")
    else:
        fields_ = await request.post() if request.method == "POST" else request.query
        tor = {
            key[4:-1]: value
            for key, value in fields_.items()
            if key.startswith("tor[") and key.endswith("]")
        }
        perpage = fields_.get("perpage")
    info_hash = tor.get("hash")
    try:
        size = int(perpage) if isinstance(perpage, int | str) else DEFAULT_PER_PAGE
    except ValueError:
        size = DEFAULT_PER_PAGE
    return {
        "hash": info_hash.lower() if isinstance(info_hash, str) and info_hash else None,
        "perpage": min(1000, max(5, size)),
        "tor": tor,
    }


def _rejection(error: str) -> web.Response:
    """MAM refuses a purchase with HTTP 200 and ``success: false``."""
    return web.json_response({"success": False, "error": error})


def _drop(request: web.Request) -> web.Response:
    """Close the connection without an answer (aiohttp ignores the response it cannot send)."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=204)


def _vip_until(value: str | None) -> datetime | None:
    try:
        return datetime.strptime(value or "", VIP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def _fancy(size: int) -> str:
    """bonusBuy's ``uploadFancy``: "8.271 TiB", "92.08 MiB" (about four significant digits)."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    value, index = float(size), 0
    while value >= 1024 and index < len(units) - 1:
        value, index = value / 1024, index + 1
    digits = max(0, 3 - int(math.log10(value))) if value >= 1 else 3
    return f"{value:.{digits}f} {units[index]}"


def _new_cookie() -> str:
    # Real values are long and URL-encoded base64; the "%3D" checks they survive untouched.
    return secrets.token_urlsafe(32) + "%3D"


def _write_with_malformed_cookie(request: web.Request, response: web.Response) -> None:
    """Send ``response`` raw, its ``mam_id`` in a Set-Cookie field that ends in a NUL byte.

    The connection is closed afterwards; aiohttp then fails to send ``response`` itself with a
    ConnectionError, which it ignores silently.
    """
    transport = request.transport
    if transport is None or transport.is_closing():
        return
    body = response.body if isinstance(response.body, bytes) else b""
    head = (
        f"HTTP/1.1 {response.status} {response.reason}\r\n"
        f"Content-Type: {response.content_type}; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n"
        f"Set-Cookie: {COOKIE_NAME}={response.cookies[COOKIE_NAME].value}; path=/; HttpOnly\x00\r\n"
        "\r\n"
    )
    transport.write(head.encode("latin-1") + body)
    transport.close()


def _forced_response(forced: ForcedResponse) -> web.Response:
    if 300 <= forced.status < 400:
        return web.Response(
            status=forced.status,
            headers={"Location": "/login.php?returnto=%2FjsonLoad.php"},
            text=forced.body,
        )
    default = NOT_SIGNED_IN if forced.status in (401, 403) else f"HTTP {forced.status}"
    body = default if forced.body is None else forced.body
    return web.Response(status=forced.status, text=body, content_type="text/html")


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json() if request.can_read_body else {}
    except ValueError as err:
        raise web.HTTPBadRequest(text="body is not JSON") from err
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return data
