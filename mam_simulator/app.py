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
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from dataclasses import asdict, dataclass, field, fields
import secrets
import time
from typing import Any

from aiohttp import web

NOT_SIGNED_IN = "Error, you are not signed in <br />Invalid/missing cookie"
COOKIE_NAME = "mam_id"
ACCOUNT_PATH = "jsonLoad.php"

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
        path = request.match_info["path"]
        if path != ACCOUNT_PATH and path not in self.pages:
            raise web.HTTPNotFound
        self.requests[path] += 1
        self.last_headers = dict(request.headers)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.state.delay:
                await asyncio.sleep(self.state.delay)
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

    def _answer(self, request: web.Request, path: str) -> web.StreamResponse:
        if self._forced:
            return _forced_response(self._forced.popleft())
        if self.state.redirect_to_login:
            return _forced_response(ForcedResponse(302))
        cookie = request.cookies.get(COOKIE_NAME)
        if cookie is None or cookie not in self.valid_cookies:
            return web.Response(status=403, text=NOT_SIGNED_IN, content_type="text/html")
        if path == ACCOUNT_PATH:
            response: web.Response = web.json_response(self.account_json())
        else:
            response = web.Response(text=self.pages[path], content_type="text/html")
        if self.state.rotate:  # the presented value dies, a new one is handed out
            self.valid_cookies.discard(cookie)
            response.set_cookie(COOKIE_NAME, self.add_cookie(), path="/", httponly=True)
        return response

    async def _get_state(self, _request: web.Request) -> web.Response:
        return web.json_response(
            asdict(self.state)
            | {"valid_cookies": sorted(self.valid_cookies), "pages": sorted(self.pages)}
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
