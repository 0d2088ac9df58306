"""MyAnonamouse HTTP client: one cookie, one request at a time, typed failures (SPEC §7).

MAM authenticates with the ``mam_id`` cookie alone and rotates it: a response may carry
``Set-Cookie: mam_id=<new>`` and the old value may stop working (research/mam.md §1.1). The client
therefore sends the cookie itself on every request (the session it is given has no cookie jar),
adopts every rotated value and hands it to ``on_cookie_rotated`` for persisting before any further
request can start. The cookie value is a password: it never appears in logs or error messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
import json
import logging
import re

import aiohttp
from multidict import CIMultiDictProxy

from .errors import (
    MamAuthError,
    MamConnectionError,
    MamError,
    MamPayloadError,
    MamRateLimitedError,
)
from .models import MamAccount

_LOGGER = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://www.myanonamouse.net"
COOKIE_NAME = "mam_id"
ACCOUNT_PATH = "jsonLoad.php?snatch_summary"
# MAM documents no Retry-After; other tools wait 30 minutes after a 429 (research/mam.md §4).
MIN_RATE_LIMIT_BACKOFF = timedelta(minutes=30)

# Characters that cannot be part of a cookie value (and would let a value inject headers).
_BAD_COOKIE_CHARS = re.compile(r'[\s;,"\\\x00-\x1f\x7f]')
_PREFIX_RE = re.compile(r"mam_id\s*=\s*", re.IGNORECASE)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def normalize_mam_id(value: str) -> str:
    """The raw cookie value from what a user pastes: ``abc``, ``mam_id=abc;``, ``"abc"`` ...

    Raises ValueError (without echoing the value) when nothing usable is left.
    """
    text = value.strip().rstrip(";").strip().strip("\"'")
    if match := _PREFIX_RE.match(text):
        text = text[match.end() :].strip().rstrip(";").strip().strip("\"'")
    if not text:
        raise ValueError("The mam_id cookie value is empty")
    if _BAD_COOKIE_CHARS.search(text):
        raise ValueError("The mam_id cookie value contains characters a cookie cannot have")
    return text


def parse_account_body(body: str) -> MamAccount:
    """Decode a 200 jsonLoad body. Raises only :class:`MamError` subclasses, whatever the text."""
    try:
        data = json.loads(body)
    except ValueError, RecursionError:  # JSONDecodeError is a ValueError
        if body.lstrip().startswith("Error"):  # "Error, you are not signed in <br />..."
            raise MamAuthError(f"MyAnonamouse refused the session: {_snippet(body)}") from None
        raise MamPayloadError("MyAnonamouse did not answer with JSON") from None
    return MamAccount.from_json(data)


def _snippet(text: str) -> str:
    """A short single-line excerpt of a plain-text error body for messages."""
    return " ".join(text.replace("<br />", " ").split())[:120]


class MamClient:
    """Talks to one MAM account through an injected aiohttp session (without cookie jar)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        mam_id: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        user_agent: str,
        request_timeout: float = 30.0,
        on_cookie_rotated: Callable[[str], Awaitable[None]] | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        """Create the client; ``mam_id`` may be raw or ``mam_id=<value>`` (ValueError if empty)."""
        self._session = session
        self._mam_id = normalize_mam_id(mam_id)
        self._base_url = base_url.rstrip("/")
        self._user_agent = user_agent
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._on_cookie_rotated = on_cookie_rotated
        self._clock = clock
        self._rate_limited_until: datetime | None = None
        # MAM invalidates a cookie when it rotates it: two requests in flight with the same value
        # would race, so everything from "send" to "rotated value persisted" is serialised.
        self._lock = asyncio.Lock()

    @property
    def mam_id(self) -> str:
        """The current cookie value (the newest one MAM handed out)."""
        return self._mam_id

    @property
    def rate_limited_until(self) -> datetime | None:
        """When the 429 back-off ends, or None when requests are allowed."""
        until = self._rate_limited_until
        return until if until is not None and self._clock() < until else None

    async def async_get_account(self) -> MamAccount:
        """Poll ``jsonLoad.php?snatch_summary`` and parse it."""
        body = await self._request(ACCOUNT_PATH, accept="application/json")
        return parse_account_body(body)

    async def async_get_page(self, path: str) -> str:
        """Fetch a site page (e.g. ``rules.php``) as text, with the same session handling."""
        return await self._request(path.lstrip("/"), accept="text/html,application/xhtml+xml")

    async def _request(self, path: str, *, accept: str) -> str:
        async with self._lock:
            if (until := self.rate_limited_until) is not None:
                raise MamRateLimitedError(until)
            rotated = False
            try:
                try:
                    async with self._session.get(
                        f"{self._base_url}/{path}",
                        headers={
                            "Cookie": f"{COOKIE_NAME}={self._mam_id}",
                            "User-Agent": self._user_agent,
                            "Accept": accept,
                        },
                        allow_redirects=False,
                        timeout=self._timeout,
                    ) as resp:
                        rotated = self._adopt_rotated_cookie(resp)
                        status, headers = resp.status, resp.headers
                        body = await resp.text(errors="replace")
                except (aiohttp.ClientError, TimeoutError, RuntimeError) as err:
                    # RuntimeError: the session was closed under us (entry unloading).
                    _LOGGER.debug("GET %s failed: %s", path, type(err).__name__)
                    raise MamConnectionError(
                        f"Cannot reach MyAnonamouse: {self._scrub(str(err)) or type(err).__name__}"
                    ) from err
            finally:  # persist a rotated cookie even when the request then failed or was cancelled
                if rotated and self._on_cookie_rotated is not None:
                    await self._on_cookie_rotated(self._mam_id)
            _LOGGER.debug("GET %s -> HTTP %s", path, status)
            return self._check_response(status, headers, body)

    def _adopt_rotated_cookie(self, resp: aiohttp.ClientResponse) -> bool:
        """Adopt a new ``mam_id`` from Set-Cookie; ``deleted`` or empty values are not sessions."""
        morsel = resp.cookies.get(COOKIE_NAME)
        if morsel is None:
            return False
        value = morsel.value.strip()
        if value in ("", "deleted", self._mam_id):
            return False
        try:
            self._mam_id = normalize_mam_id(value)
        except ValueError:
            _LOGGER.debug("Ignoring a malformed rotated mam_id")
            return False
        _LOGGER.debug("MyAnonamouse rotated the session cookie")
        return True

    def _check_response(self, status: int, headers: CIMultiDictProxy[str], body: str) -> str:
        """Map MAM's ways of failing to typed errors; return the body of a 200."""
        if status == 200:
            return body
        if 300 <= status < 400:
            if "login.php" in headers.get("Location", ""):
                raise MamAuthError("MyAnonamouse redirected to its login page: the session expired")
            raise MamConnectionError(
                f"MyAnonamouse answered with an unexpected redirect ({status})"
            )
        if status in (401, 403):
            raise MamAuthError(
                f"MyAnonamouse refused the session ({status}): {self._scrub(_snippet(body))}"
            )
        if status == 429:
            retry_at = self._clock() + max(MIN_RATE_LIMIT_BACKOFF, self._retry_after(headers))
            self._rate_limited_until = retry_at
            _LOGGER.debug("Rate limited until %s", retry_at.isoformat())
            raise MamRateLimitedError(retry_at)
        raise MamConnectionError(f"MyAnonamouse answered HTTP {status}")

    def _retry_after(self, headers: CIMultiDictProxy[str]) -> timedelta:
        """Retry-After as seconds or an HTTP date; zero when absent or unreadable."""
        value = headers.get("Retry-After", "").strip()
        if value.isascii() and value.isdigit():  # capped: a huge value would overflow datetime
            return timedelta(seconds=min(int(value), 7 * 86400))
        try:
            when = parsedate_to_datetime(value)
        except TypeError, ValueError, IndexError:
            return timedelta(0)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(timedelta(0), when - self._clock())

    def _scrub(self, text: str) -> str:
        """Belt and braces: cut the cookie value out of any text that came from outside."""
        return text.replace(self._mam_id, "***")


__all__ = [
    "DEFAULT_BASE_URL",
    "MamAuthError",
    "MamClient",
    "MamConnectionError",
    "MamError",
    "MamPayloadError",
    "MamRateLimitedError",
    "normalize_mam_id",
    "parse_account_body",
]
