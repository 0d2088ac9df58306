"""MyAnonamouse HTTP client: one cookie, one request at a time, typed failures (SPEC §7).

MAM authenticates with the ``mam_id`` cookie alone and rotates it: a response may carry
``Set-Cookie: mam_id=<new>`` and the old value may stop working (research/mam.md §1.1). The client
therefore sends the cookie itself on every request (the session it is given has no cookie jar),
adopts every rotated value and hands it to ``on_cookie_rotated`` for persisting before any further
request can start.

Once a request is sent, MAM may already have rotated the cookie, so the exchange (send, read,
adopt the new value, await ``on_cookie_rotated``) runs in its own task and always completes, even
when the caller is cancelled (entry reload, Home Assistant stopping). :meth:`MamClient.async_close`
refuses new requests and waits for such an exchange. The 429 back-off survives restarts:
``on_rate_limited`` receives it for storing, ``rate_limited_until`` restores it.

Bodies are read up to :data:`MAX_ACCOUNT_BYTES` / :data:`MAX_PAGE_BYTES` and refused beyond.

Purchases (:meth:`MamClient.async_buy_vip`, :meth:`MamClient.async_buy_upload`; see
:mod:`.bonus_buy`) go through the same exchange, with three differences: they are sent to
``www.myanonamouse.net`` only; aiohttp may never re-send them (a dropped connection is not
retried); and every failure after the request may have reached MAM (timeout, dropped
connection, 5xx, unreadable answer) is :class:`MamPurchaseUnknownError`, never a plain
connection error, so that the caller settles it from the account instead of buying again.

Freeleech lookups (:meth:`MamClient.async_lookup_hash`; see :mod:`.search`) are a JSON POST to
the documented search ``tor/js/loadSearchJSONbasic.php`` by info hash, through the same exchange:
same lock, rotation, back-off and body cap (:data:`.search.MAX_SEARCH_BYTES`). The hash is
validated before anything is sent. A lookup times out after :data:`LOOKUP_TIMEOUT` (or the
client's timeout when shorter): it holds the one-request-at-a-time lock, so an account poll
queued behind it waits at most that long.

The cookie value is a password: it never appears in logs or error messages. Whatever text came
from outside (a body echo, an aiohttp error) has every ``mam_id=<value>`` and every cookie value
the client knows cut out; errors raised while parsing MAM's answer (which quote raw header lines,
possibly cut mid-value) keep only the parser's reason; aiohttp's exceptions are never chained to
ours, so a traceback cannot carry their text either.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
import json
import logging
import re
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import unquote

import aiohttp

if TYPE_CHECKING:
    from multidict import CIMultiDictProxy

from .bonus_buy import (
    MAX_PURCHASE_BYTES,
    MamPurchaseNotAllowedError,
    MamPurchaseRejectedError,
    MamPurchaseUnknownError,
    PurchaseKind,
    PurchaseReceipt,
    check_purchase_host,
    check_upload_amount,
    no_resend,
    parse_purchase_body,
    purchase_path,
)
from .errors import (
    MamAuthError,
    MamConnectionError,
    MamError,
    MamPayloadError,
    MamRateLimitedError,
)
from .models import MamAccount
from .search import (
    MAX_SEARCH_BYTES,
    SEARCH_PATH,
    InvalidInfoHashError,
    TorrentFlags,
    parse_search_body,
    search_request,
)

_LOGGER = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://www.myanonamouse.net"
COOKIE_NAME = "mam_id"
ACCOUNT_PATH = "jsonLoad.php?snatch_summary"
# MAM documents no Retry-After; other tools wait 30 minutes after a 429 (research/mam.md §4).
MIN_RATE_LIMIT_BACKOFF = timedelta(minutes=30)
# The longest back-off honoured, from Retry-After or restored from storage (a clock gone wrong
# must not silence the integration for years).
MAX_RATE_LIMIT_BACKOFF = timedelta(days=7)
# Response bodies are read up to these sizes, then refused with MamPayloadError. jsonLoad answers
# are ~2 KiB; MAM's largest rules/forum pages are a few hundred KiB.
MAX_ACCOUNT_BYTES = 256 * 1024
MAX_PAGE_BYTES = 4 * 1024 * 1024
_READ_CHUNK = 64 * 1024
# Seconds a freeleech lookup may take (a hash search answers a few KiB).
LOOKUP_TIMEOUT = 10.0
_CLOSED_MESSAGE = "MyAnonamouse client closed"
# Transport failures that happen before a request is sent (nothing can have been applied).
_NOT_SENT_ERRORS = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)

# Characters that cannot be part of a cookie value (and would let a value inject headers).
_BAD_COOKIE_CHARS = re.compile(r'[\s;,"\\\x00-\x1f\x7f]')
_PREFIX_RE = re.compile(r"mam_id\s*=\s*", re.IGNORECASE)
# Any "mam_id=<value>" (or "mam_id": "<value>") in text from outside: the value runs to the next
# separator; a backslash or control character (as in repr(bytes)) does not end it.
_COOKIE_PAIR_RE = re.compile(r"""(mam_id["']?\s*[=:]\s*["']?)[^;,'" \n]+""", re.IGNORECASE)
# How many of the latest cookie values are scrubbed by value (the current one and its elders).
_KNOWN_COOKIES = 4


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
    """A short single-line excerpt of a plain-text error body, ``mam_id=...`` cut out."""
    return scrub_cookies(" ".join(text.replace("<br />", " ").split()))[:120]


def scrub_cookies(text: str) -> str:
    """``text`` with the value of every ``mam_id=<value>`` (any case, ``:`` too) replaced."""
    return _COOKIE_PAIR_RE.sub(r"\1***", text)


def _log_path(path: str) -> str:
    """The path without its query (a purchase's cache-buster would make every line unique)."""
    return path.split("?", 1)[0] if path.startswith("json/") else path


def _size_text(size: int) -> str:
    return f"{size // 1024**2} MiB" if size % 1024**2 == 0 else f"{size // 1024} KiB"


def _decode(raw: bytes, charset: str | None) -> str:
    """The body as text (as aiohttp's ``text()``: declared charset, else UTF-8)."""
    try:
        return raw.decode(charset or "utf-8", errors="replace")
    except LookupError:  # unknown or non-text codec ("rot13")
        return raw.decode("utf-8", errors="replace")


@dataclass(slots=True)
class _Flight:
    """State of one exchange shared with its caller: whether the request went out."""

    sending: bool = False


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
        rate_limited_until: datetime | None = None,
        on_rate_limited: Callable[[datetime], Awaitable[None]] | None = None,
    ) -> None:
        """Create the client; ``mam_id`` may be raw or ``mam_id=<value>`` (ValueError if empty).

        ``rate_limited_until`` is a back-off restored from storage (naive means UTC; honoured
        like a live one, at most :data:`MAX_RATE_LIMIT_BACKOFF` from now). ``on_rate_limited``
        is awaited with the new end of the back-off when a 429 arrives, before the
        :class:`MamRateLimitedError` is raised (a failure of it is logged, not raised).
        """
        self._session = session
        self._mam_id = normalize_mam_id(mam_id)
        self._base_url = base_url.rstrip("/")
        self._user_agent = user_agent
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._on_cookie_rotated = on_cookie_rotated
        self._on_rate_limited = on_rate_limited
        self._clock = clock
        self._rate_limited_until = self._restored_back_off(rate_limited_until)
        self._known_cookies: deque[str] = deque([self._mam_id], maxlen=_KNOWN_COOKIES)
        # MAM invalidates a cookie when it rotates it: two requests in flight with the same value
        # would race, so everything from "send" to "rotated value persisted" is serialised. The
        # lock is held by the exchange task, which outlives a cancelled caller.
        self._lock = asyncio.Lock()
        self._exchanges: set[asyncio.Task[str]] = set()
        self._closed = False

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
        body = await self._request(
            ACCOUNT_PATH, accept="application/json", limit=MAX_ACCOUNT_BYTES, what="account data"
        )
        try:
            return parse_account_body(body)
        except MamAuthError as err:  # its message quotes the body
            message = self._scrub(str(err))
        raise MamAuthError(message)

    async def async_get_page(self, path: str) -> str:
        """Fetch a site page (e.g. ``rules.php``) as text, with the same session handling."""
        path = path.lstrip("/")
        return await self._request(
            path, accept="text/html,application/xhtml+xml", limit=MAX_PAGE_BYTES, what="page"
        )

    async def async_buy_vip(self) -> PurchaseReceipt:
        """Buy VIP up to MAM's ~90-day cap: ``spendtype=VIP&duration=max`` (never ``amount=``).

        Raises :class:`MamPurchaseRejectedError` when MAM refuses (its text in ``error``),
        :class:`MamPurchaseUnknownError` when MAM may have applied it but the answer was lost,
        :class:`MamPurchaseNotAllowedError` (nothing sent) for a host other than www, and the
        usual :class:`MamAuthError` / :class:`MamRateLimitedError` / :class:`MamConnectionError`
        when nothing was bought.
        """
        return await self._buy("vip", None)

    async def async_buy_upload(self, amount_gb: int) -> PurchaseReceipt:
        """Buy ``amount_gb`` GB of upload credit (a whole number, at least 50; 500 points/GB).

        Failures as :meth:`async_buy_vip`; a bad amount is refused before anything is sent.
        """
        check_upload_amount(amount_gb)
        return await self._buy("upload", amount_gb)

    async def _buy(self, kind: PurchaseKind, amount_gb: int | None) -> PurchaseReceipt:
        check_purchase_host(self._base_url)
        stamp_ms = int(self._clock().timestamp() * 1000)  # MAM's tools send a cache-buster
        body = await self._request(
            purchase_path(kind, amount_gb, stamp_ms),
            accept="application/json",
            limit=MAX_PURCHASE_BYTES,
            what="purchase answer",
            purchase=True,
        )
        try:
            return parse_purchase_body(body, kind)
        except MamPurchaseRejectedError as err:
            rejected = self._scrub(err.error)
        except MamAuthError as err:
            raise MamAuthError(self._scrub(str(err))) from None
        except MamPayloadError as err:
            raise MamPurchaseUnknownError(f"Unreadable purchase answer: {err}") from None
        raise MamPurchaseRejectedError(rejected)

    async def async_lookup_hash(self, info_hash: str) -> TorrentFlags | None:
        """Ask MAM's search about one torrent by info hash: its flags, or None if not on MAM.

        ``info_hash`` is 40 hexadecimal characters (BitTorrent v1, as MAM uses; any case):
        anything else raises :class:`~.search.InvalidInfoHashError` (a ``ValueError`` and a
        :class:`MamError`) before anything is sent. A malformed answer is
        :class:`MamPayloadError`; auth, 429 and transport failures are typed as for every request.
        """
        payload = json.dumps(search_request(info_hash), separators=(",", ":"))
        body = await self._request(
            SEARCH_PATH,
            accept="application/json",
            limit=MAX_SEARCH_BYTES,
            what="search answer",
            json_body=payload,
            seconds=min(LOOKUP_TIMEOUT, self._timeout.total or LOOKUP_TIMEOUT),
        )
        try:
            return parse_search_body(body)
        except MamPayloadError as err:  # may quote MAM's error text
            message = self._scrub(str(err))
        raise MamPayloadError(message)

    async def async_close(self) -> None:
        """Refuse new requests; return once an exchange in flight has finished.

        That exchange is bounded by the request timeout; when it returns, a cookie MAM rotated
        in it has been adopted and handed to ``on_cookie_rotated``. Requests waiting for their
        turn fail with :class:`MamConnectionError` without sending anything. Idempotent.
        """
        self._closed = True
        while self._exchanges:
            await asyncio.wait(set(self._exchanges))

    async def _request(
        self,
        path: str,
        *,
        accept: str,
        limit: int,
        what: str,
        purchase: bool = False,
        json_body: str | None = None,
        seconds: float | None = None,
    ) -> str:
        """GET ``path`` (or POST ``json_body`` as JSON to it) in one serialised exchange.

        ``seconds`` replaces the client's request timeout for this request.
        """
        if self._closed:
            raise MamConnectionError(_CLOSED_MESSAGE)
        flight = _Flight()
        task = asyncio.create_task(
            self._exchange(
                path,
                accept,
                limit,
                what,
                flight,
                purchase=purchase,
                json_body=json_body,
                limits=self._timeout if seconds is None else aiohttp.ClientTimeout(total=seconds),
            )
        )
        self._exchanges.add(task)
        task.add_done_callback(self._exchange_done)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not flight.sending:  # still waiting for its turn: nothing to finish
                task.cancel()
            raise

    def _exchange_done(self, task: asyncio.Task[str]) -> None:
        self._exchanges.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a cancelled caller's failure is not "never retrieved"

    async def _exchange(
        self,
        path: str,
        accept: str,
        limit: int,
        what: str,
        flight: _Flight,
        *,
        purchase: bool,
        json_body: str | None,
        limits: aiohttp.ClientTimeout,
    ) -> str:
        """Send, read, adopt and persist a rotated cookie; runs to completion once sent.

        A ``purchase`` is never re-sent by aiohttp (:func:`.bonus_buy.no_resend`), and every
        failure after sending is :class:`MamPurchaseUnknownError`.
        """
        method = "GET" if json_body is None else "POST"
        async with self._lock:
            if self._closed:
                raise MamConnectionError(_CLOSED_MESSAGE)
            if (until := self.rate_limited_until) is not None:
                raise MamRateLimitedError(until)
            flight.sending = True
            rotated = False
            failure: str | None = None
            maybe_applied = False
            answer: tuple[int, CIMultiDictProxy[str], str] | None = None
            sent_headers = {
                "Cookie": f"{COOKIE_NAME}={self._mam_id}",
                "User-Agent": self._user_agent,
                "Accept": accept,
            }
            if json_body is not None:
                sent_headers["Content-Type"] = "application/json"
            try:
                try:
                    async with self._session.request(
                        method,
                        f"{self._base_url}/{path}",
                        headers=sent_headers,
                        data=json_body,
                        allow_redirects=False,
                        timeout=limits,
                        middlewares=(no_resend,) if purchase else None,
                    ) as resp:
                        rotated = self._adopt_rotated_cookie(resp)
                        body = await self._read_body(resp, limit, what)
                        answer = resp.status, resp.headers, body
                except (aiohttp.ClientError, TimeoutError, RuntimeError) as err:
                    # RuntimeError: the session was closed under us (entry unloading).
                    _LOGGER.debug("%s %s failed: %s", method, _log_path(path), type(err).__name__)
                    failure = self._describe(err)
                    maybe_applied = purchase and not isinstance(err, _NOT_SENT_ERRORS)
                except MamPayloadError as err:  # a body over the cap
                    if not purchase:
                        raise
                    failure, maybe_applied = str(err), True
            finally:  # persist a rotated cookie even when the request then failed
                if rotated and self._on_cookie_rotated is not None:
                    await self._on_cookie_rotated(self._mam_id)
            if answer is None:
                # Raised outside the except clause: aiohttp's exception (whose text may quote
                # headers) is neither the cause nor the context of ours.
                if maybe_applied:
                    raise MamPurchaseUnknownError(
                        f"No answer from MyAnonamouse to the purchase: {failure}"
                    )
                raise MamConnectionError(f"Cannot reach MyAnonamouse: {failure}")
            status, headers, body = answer
            _LOGGER.debug("%s %s -> HTTP %s", method, _log_path(path), status)
            if status == 429:
                await self._back_off(headers)
            if purchase and status >= 500:
                raise MamPurchaseUnknownError(
                    f"MyAnonamouse answered the purchase with HTTP {status}"
                )
            return self._check_response(status, headers, body)

    async def _read_body(self, resp: aiohttp.ClientResponse, limit: int, what: str) -> str:
        """The body as text, read in chunks and refused beyond ``limit`` bytes."""
        too_large = f"MyAnonamouse {what} larger than {_size_text(limit)}"
        if resp.content_length is not None and resp.content_length > limit:
            raise MamPayloadError(too_large)
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(_READ_CHUNK):
            size += len(chunk)
            if size > limit:
                raise MamPayloadError(too_large)
            chunks.append(chunk)
        return _decode(b"".join(chunks), resp.charset)

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
        self._known_cookies.append(self._mam_id)
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
        raise MamConnectionError(f"MyAnonamouse answered HTTP {status}")

    async def _back_off(self, headers: CIMultiDictProxy[str]) -> NoReturn:
        """Record a 429, hand it to ``on_rate_limited``, raise."""
        wait = min(MAX_RATE_LIMIT_BACKOFF, max(MIN_RATE_LIMIT_BACKOFF, self._retry_after(headers)))
        retry_at = self._clock() + wait
        self._rate_limited_until = retry_at
        _LOGGER.debug("Rate limited until %s", retry_at.isoformat())
        if self._on_rate_limited is not None:
            try:
                await self._on_rate_limited(retry_at)
            except Exception as err:  # the 429 matters more than a failed write
                _LOGGER.warning("Could not store the MyAnonamouse back-off: %s", type(err).__name__)
        raise MamRateLimitedError(retry_at)

    def _restored_back_off(self, until: datetime | None) -> datetime | None:
        if until is None:
            return None
        if until.tzinfo is None:
            until = until.replace(tzinfo=UTC)
        return min(until, self._clock() + MAX_RATE_LIMIT_BACKOFF)

    def _retry_after(self, headers: CIMultiDictProxy[str]) -> timedelta:
        """Retry-After as seconds or an HTTP date; zero when absent or unreadable."""
        value = headers.get("Retry-After", "").strip()
        if value.isascii() and value.isdigit():  # capped: a huge value would overflow datetime
            return timedelta(
                seconds=min(int(value), MAX_RATE_LIMIT_BACKOFF // timedelta(seconds=1))
            )
        try:
            when = parsedate_to_datetime(value)
        except TypeError, ValueError, IndexError:
            return timedelta(0)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return min(MAX_RATE_LIMIT_BACKOFF, max(timedelta(0), when - self._clock()))

    def _describe(self, err: BaseException) -> str:
        """The type and a scrubbed text of a transport failure, for MamConnectionError."""
        if isinstance(err, aiohttp.ClientResponseError):
            # Raised while parsing MAM's answer: the message quotes the raw status line or header
            # field (a Set-Cookie aiohttp could not parse, say), possibly cut mid-value where a
            # scrubber cannot recognise it. Only the parser's reason is kept.
            text = f"{err.status}, {str(err.message).split(':', 1)[0]}"
        else:
            text = str(err)
        text = self._scrub(" ".join(text.split()))[:200]
        name = type(err).__name__
        return f"{name}: {text}" if text else name

    def _scrub(self, text: str) -> str:
        """Cut every ``mam_id=<value>`` and every recent cookie value out of outside text."""
        text = scrub_cookies(text)
        for value in self._known_cookies:
            text = text.replace(value, "***")
            if (decoded := unquote(value)) != value:
                text = text.replace(decoded, "***")
        return text


__all__ = [
    "DEFAULT_BASE_URL",
    "LOOKUP_TIMEOUT",
    "MAX_ACCOUNT_BYTES",
    "MAX_PAGE_BYTES",
    "MAX_RATE_LIMIT_BACKOFF",
    "MAX_SEARCH_BYTES",
    "InvalidInfoHashError",
    "MamAuthError",
    "MamClient",
    "MamConnectionError",
    "MamError",
    "MamPayloadError",
    "MamPurchaseNotAllowedError",
    "MamPurchaseRejectedError",
    "MamPurchaseUnknownError",
    "MamRateLimitedError",
    "PurchaseReceipt",
    "TorrentFlags",
    "normalize_mam_id",
    "parse_account_body",
    "scrub_cookies",
]
