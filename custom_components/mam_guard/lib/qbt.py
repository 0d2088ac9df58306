"""qBittorrent Web UI adapter on aioqbt (no Home Assistant imports).

Verified against qBittorrent 4.5.2 (WebAPI 2.8.19) and 5.x (research/qbt.md):
- aioqbt picks ``torrents/pause|resume`` (< 2.11) or ``stop|start`` from ``client.api_version``,
  so a login whose version probe failed (``api_version`` None) is treated as an auth failure;
- ``torrents/info`` on 4.5.2 has no reliable ``tracker`` (empty while no tracker works), so MAM
  torrents are identified from ``sync/maindata``'s ``trackers`` map ``{url: [hashes]}``;
- tags are a raw ``"a, b"`` string: items are stripped.
Every batched action is one Web UI request whatever the number of hashes, and none for no hashes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
import re
import ssl
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
from aioqbt import exc as qexc
from aioqbt.client import APIClient, create_client

from .engine import TorrentState

__all__ = [
    "DEFAULT_MAM_HOSTS",
    "QbtAdapter",
    "QbtAuthError",
    "QbtConnectionError",
    "QbtError",
    "QbtNotReadyError",
    "QbtSnapshot",
    "TorrentState",
    "is_mam_url",
    "redact_url",
    "url_has_credentials",
]

DEFAULT_MAM_HOSTS: Final = ("myanonamouse.net",)
DEFAULT_TIMEOUT: Final = 30.0  # seconds per request; 4.5.2 serialises every torrent on each sync


class QbtError(Exception):
    """Any qBittorrent failure (base class)."""


class QbtAuthError(QbtError):
    """qBittorrent refused the credentials (or the session could not be established)."""


class QbtConnectionError(QbtError):
    """qBittorrent could not be reached (refused, timeout, bad URL, not a qBittorrent Web UI)."""


class QbtNotReadyError(QbtConnectionError):
    """qBittorrent answers but is still loading its torrents (just started): retry later."""


def is_mam_url(url: str, hosts: Iterable[str] = DEFAULT_MAM_HOSTS) -> bool:
    """True when the URL's host is one of ``hosts`` or its subdomain (not a substring match)."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return False
    return any(host == h or host.endswith("." + h) for h in hosts)


# What precedes the authority ("scheme://", "//" or nothing for a scheme-less "host:port"), the
# authority (userinfo@host:port) and the rest. Always matches, so nothing here can raise.
_AUTHORITY: Final = re.compile(
    r"^(?P<before>\s*(?:[A-Za-z][A-Za-z0-9+.\-]*:)?//|\s*)(?P<auth>[^/?#\\]*)(?P<after>.*)$",
    re.DOTALL,
)


def _split_authority(url: str) -> tuple[str, str, str]:
    match = _AUTHORITY.match(str(url))
    assert match is not None  # the pattern matches every string
    return match["before"], match["auth"], match["after"]


def url_has_credentials(url: str) -> bool:
    """True when the URL carries userinfo (``user:pass@`` or just ``user@``) before its host."""
    return "@" in _split_authority(url)[1]


def redact_url(url: str) -> str:
    """The URL with its userinfo replaced by ``***``; scheme, host, port, path kept. Never raises.

    Anything that is not a string comes back as ``***``: it cannot be shown safely.
    """
    value: object = url  # callers are not type-checked
    if not isinstance(value, str):
        return "***"
    try:
        before, authority, after = _split_authority(value)
        if "@" not in authority:
            return value
        return f"{before}***@{authority.rpartition('@')[2]}{after}"
    except Exception:  # a log helper must never fail: hide everything instead
        return "***"


@dataclass(frozen=True, slots=True)
class QbtSnapshot:
    """An immutable view of qBittorrent after one ``sync/maindata`` round."""

    torrents: Mapping[str, TorrentState]
    server_state: Mapping[str, Any]

    def mam(self) -> list[TorrentState]:
        """The MAM torrents only."""
        return [t for t in self.torrents.values() if t.is_mam]


def _tags(raw: Any) -> frozenset[str]:
    if isinstance(raw, str):
        return frozenset(tag.strip() for tag in raw.split(",") if tag.strip())
    if isinstance(raw, list):
        return frozenset(str(tag).strip() for tag in raw if str(tag).strip())
    return frozenset()


class QbtAdapter:
    """One Web UI login on an injected :class:`aiohttp.ClientSession` (which it never closes)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        username: str | None,
        password: str | None,
        *,
        verify_ssl: bool = True,
        mam_hosts: tuple[str, ...] = DEFAULT_MAM_HOSTS,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Store settings; nothing is sent before :meth:`connect` (or the first call)."""
        base = url.strip().rstrip("/")
        self._url = base if base.endswith("/api/v2") else base + "/api/v2"
        self._session = session
        self._username = username or None
        self._password = (password or "") if username else None
        self._ssl: ssl.SSLContext | None = None
        if not verify_ssl:  # no CA bundle is loaded: this does no blocking I/O
            self._ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self._ssl.check_hostname = False
            self._ssl.verify_mode = ssl.CERT_NONE
        self._mam_hosts = tuple(h.lower() for h in mam_hosts)
        self._timeout = timeout
        self._client: APIClient | None = None
        self.version: str | None = None
        self.request_count = 0  # Web UI HTTP requests sent (benchmarks, tests)
        self._rid = 0
        self._torrents: dict[str, dict[str, Any]] = {}
        self._trackers: dict[str, frozenset[str]] = {}
        self._server_state: dict[str, Any] = {}

    def __repr__(self) -> str:
        """Never shows credentials, even of a (refused) URL that carries some."""
        return f"<{type(self).__name__} {redact_url(self._url)}>"

    # -- session -----------------------------------------------------------------------------
    async def connect(self) -> str:
        """Log in and return qBittorrent's version without the "v" (e.g. ``4.5.2``).

        The login is our own form POST that never follows a redirect (see :meth:`_login`); the
        aioqbt client is then built *without* credentials and only probes the version over the
        logged-in session (``app/version`` + ``app/webapiVersion``).
        """
        await self.close()
        if url_has_credentials(self._url):
            # Refused before any request: aiohttp would send them as Basic auth, and aioqbt logs
            # the full request URL (userinfo included) at WARNING on every non-2xx answer.
            raise QbtAuthError(
                "the qBittorrent URL contains a user name or password: remove it from the URL "
                "and enter the credentials in their own fields"
            )
        if self._username is not None:
            await self._login()
        self.request_count += 2  # version + webapiVersion
        try:
            async with asyncio.timeout(self._timeout):
                client = await create_client(
                    self._url + "/",
                    http=self._session,
                    ssl=self._ssl,
                    logout_when_close=False,  # a logout on HA shutdown buys nothing, may hang
                )
        except qexc.APIError as err:
            raise QbtConnectionError(f"qBittorrent answered HTTP {err.status}") from None
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as err:
            raise QbtConnectionError(f"cannot reach qBittorrent: {type(err).__name__}") from None
        if client.api_version is None or client.client_version is None:
            await client.close()
            raise QbtAuthError("qBittorrent did not accept the session (credentials or cookie)")
        self._client = client
        self._rid = 0  # a new session starts with a full sync
        self.version = str(client.client_version)
        return self.version

    async def close(self) -> None:
        """Forget the client; the injected HTTP session stays open (it belongs to the caller)."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    @property
    def api_version(self) -> tuple[int, int, int] | None:
        """WebAPI version of the connected server."""
        if self._client is None or self._client.api_version is None:
            return None
        return tuple(self._client.api_version)  # type: ignore[return-value]

    async def _call[T](self, action: Callable[[APIClient], Awaitable[T]]) -> T:
        """Run one Web UI request; re-login once on 403 (expired or restarted session)."""
        if self._client is None:
            await self.connect()
        assert self._client is not None
        for attempt in range(2):
            self.request_count += 1
            try:
                async with asyncio.timeout(self._timeout):
                    return await action(self._client)
            except qexc.ForbiddenError:
                if attempt or self._username is None:
                    raise QbtAuthError("qBittorrent answered 403 Forbidden") from None
                await self._login()
            except qexc.APIError as err:
                raise QbtError(
                    f"qBittorrent answered HTTP {err.status}: {err.message[:200]}"
                ) from None
            except (aiohttp.ClientError, OSError, TimeoutError) as err:
                raise QbtConnectionError(
                    f"cannot reach qBittorrent: {type(err).__name__}"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _login(self) -> None:
        """``auth/login`` as a form POST that never follows a redirect.

        aioqbt's login lets aiohttp follow redirects, and a 307/308 re-sends the form, password
        included, to whatever host the ``Location`` names. Answers (research/qbt.md): 200 "Ok."
        (< 5.2) or 204 (5.2+) with a SID cookie; 200 "Fails." (< 5.2) or 401 (5.2+) for bad
        credentials; 403 while the IP is banned after failed logins. Any other 2xx counts as
        success, as in aioqbt: the version probe after it tells whether the session works.
        """
        assert self._username is not None
        self.request_count += 1
        try:
            async with (
                asyncio.timeout(self._timeout),
                self._session.post(
                    self._url + "/auth/login",
                    data={"username": self._username, "password": self._password or ""},
                    allow_redirects=False,
                    ssl=self._ssl if self._ssl is not None else True,
                ) as resp,
            ):
                status = resp.status
                body = (await resp.read()).strip()
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as err:
            raise QbtConnectionError(f"cannot reach qBittorrent: {type(err).__name__}") from None
        if 300 <= status < 400:
            raise QbtConnectionError(
                f"qBittorrent's login answered with a redirect (HTTP {status}); it was not "
                "followed: enter the Web UI's final address"
            )
        if status == 403:
            raise QbtAuthError("qBittorrent refused the login (HTTP 403: IP banned?)")
        if status == 401 or (status == 200 and body == b"Fails."):
            raise QbtAuthError(f"qBittorrent rejected the login (HTTP {status})")
        if not 200 <= status < 300:
            raise QbtConnectionError(f"not a qBittorrent Web UI (HTTP {status})")

    # -- state -------------------------------------------------------------------------------
    async def sync(self) -> QbtSnapshot:
        """One incremental ``sync/maindata`` round merged into the local mirror."""
        rid = self._rid
        data: dict[str, Any] = await self._call(
            lambda c: c.request_json("GET", "sync/maindata", params={"rid": rid})
        )
        if data.get("full_update"):
            self._torrents, self._trackers, self._server_state = {}, {}, {}
        for thash, partial in (data.get("torrents") or {}).items():
            self._torrents.setdefault(thash, {}).update(partial)
        for thash in data.get("torrents_removed") or ():
            self._torrents.pop(thash, None)
        for url, hashes in (data.get("trackers") or {}).items():
            self._trackers[url] = frozenset(hashes)
        for url in data.get("trackers_removed") or ():
            self._trackers.pop(url, None)
        self._server_state.update(data.get("server_state") or {})
        self._rid = int(data.get("rid", 0))
        mam: set[str] = set()
        for url, hashes in self._trackers.items():
            if is_mam_url(url, self._mam_hosts):
                mam |= hashes
        torrents = {
            thash: self._state(thash, t, thash in mam) for thash, t in self._torrents.items()
        }
        return QbtSnapshot(MappingProxyType(torrents), MappingProxyType(dict(self._server_state)))

    def _state(self, thash: str, t: Mapping[str, Any], mam: bool) -> TorrentState:
        return TorrentState(
            hash=thash,
            name=str(t.get("name", "")),
            state=str(t.get("state", "")),
            progress=float(t.get("progress", 0.0)),
            tags=_tags(t.get("tags")),
            force_start=bool(t.get("force_start", False)),
            is_mam=mam or is_mam_url(str(t.get("tracker") or ""), self._mam_hosts),
            category=str(t.get("category") or ""),
            added_on=int(t.get("added_on") or 0),
        )

    def torrent_names(self, hashes: Iterable[str]) -> list[str]:
        """Names of these torrents from the last sync (no request); unknown ones by their hash."""
        return [str(self._torrents.get(h, {}).get("name") or h) for h in hashes]

    async def get_preferences(self) -> dict[str, Any]:
        """``app/preferences`` (not part of sync/maindata)."""
        return dict(await self._call(lambda c: c.app.preferences()))

    async def set_preferences(self, changes: Mapping[str, Any]) -> None:
        """``app/setPreferences`` with only the given keys (no request when empty)."""
        if changes:
            await self._call(lambda c: c.app.set_preferences(dict(changes)))

    async def alt_speed_enabled(self) -> bool:
        """Whether the alternative speed limits are in force (``transfer/speedLimitsMode`` == 1)."""
        return await self._call(lambda c: c.transfer.speed_limits_mode()) == 1

    async def toggle_alt_speed(self) -> None:
        """Flip the alternative speed limits (not idempotent: check :meth:`alt_speed_enabled`)."""
        await self._call(lambda c: c.transfer.toggle_speed_limits_mode())

    async def tagged_torrents(self, tag: str) -> list[TorrentState]:
        """The torrents carrying ``tag``, filtered by the server (``info?tag=``), sorted by hash.

        Cheaper than a full sync on 4.x, where the server serialises every torrent it lists; raw
        JSON because building aioqbt objects costs ~30 ms per 500. ``is_mam`` comes from the
        ``tracker`` field only, which 4.5.2 leaves empty while no tracker works: do not rely on it.
        """
        infos: list[dict[str, Any]] = await self._call(
            lambda c: c.request_json("GET", "torrents/info", params={"tag": tag})
        )
        return sorted((self._state(str(t["hash"]), t, False) for t in infos), key=lambda t: t.hash)

    # -- batched actions: one request each, none for an empty list ------------------------------
    async def stop(self, hashes: Iterable[str]) -> None:
        """Stop (``pause`` on 4.x, ``stop`` on 5.x)."""
        if items := list(hashes):
            await self._call(lambda c: c.torrents.stop(items))

    async def start(self, hashes: Iterable[str]) -> None:
        """Start (``resume`` on 4.x, ``start`` on 5.x)."""
        if items := list(hashes):
            await self._call(lambda c: c.torrents.start(items))

    async def add_tag(self, hashes: Iterable[str], tag: str) -> None:
        """Add one tag (created on the fly)."""
        if items := list(hashes):
            await self._call(lambda c: c.torrents.add_tags(items, [tag]))

    async def remove_tag(self, hashes: Iterable[str], tag: str) -> None:
        """Remove one tag from these torrents (the tag itself stays defined)."""
        if items := list(hashes):
            await self._call(lambda c: c.torrents.remove_tags(items, [tag]))

    async def set_force_start(self, hashes: Iterable[str], value: bool) -> None:
        """Set or clear force start."""
        if items := list(hashes):
            await self._call(lambda c: c.torrents.set_force_start(items, value))

    async def reannounce(self, hashes: Iterable[str]) -> None:
        """Re-announce to all trackers."""
        if items := list(hashes):
            await self._call(lambda c: c.torrents.reannounce(items))
