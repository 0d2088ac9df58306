"""qBittorrent Web UI adapter on aioqbt (no Home Assistant imports).

Verified against qBittorrent 4.5.2 (WebAPI 2.8.19) and 5.x (research/qbt.md):
- aioqbt picks ``torrents/pause|resume`` (< 2.11) or ``stop|start`` from ``client.api_version``,
  so a login whose version probe failed (``api_version`` None) is treated as an auth failure;
- ``torrents/info`` on 4.5.2 has no reliable ``tracker`` (empty while no tracker works), so MAM
  torrents are identified from ``sync/maindata``'s ``trackers`` map ``{url: [hashes]}``;
- tags are a raw ``"a, b"`` string: items are stripped.
Every batched action is one Web UI request whatever the number of hashes, and none for no hashes.

The mirror is incremental: a ``sync/maindata`` diff re-derives only the torrents it names, and
only when it changes a field we read (:data:`MIRRORED_FIELDS`); nothing else of the ~56 fields
per torrent is kept. Indexes (MAM torrents, stalled and loading ones, the torrents a plan could
pick: :func:`.engine.plannable`) follow the same diff, so a heartbeat with nothing changed costs
O(1) in Python whatever the number of torrents. Tag strings are parsed once per distinct string.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
import re
import ssl
import sys
import time
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
from aioqbt import exc as qexc
from aioqbt.client import APIClient, create_client

from .engine import LOADING_STATES, STALLED_STATES, TorrentState, plannable

__all__ = [
    "DEFAULT_MAM_HOSTS",
    "MIRRORED_FIELDS",
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
# The torrent fields of sync/maindata the mirror reads; a diff touching none of them costs nothing.
MIRRORED_FIELDS: Final = frozenset(
    {"name", "state", "progress", "tags", "force_start", "tracker", "category", "added_on"}
)
# A snapshot handed back to the executor is trusted for this long when nothing was sent since.
VIEW_MAX_AGE: Final = 5.0
_TAG_CACHE_MAX: Final = 4096


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
    """qBittorrent as of one ``sync/maindata`` round.

    ``torrents`` and ``plannable`` are read-only *views* of the adapter's mirror: a later sync
    updates them in place (copying 20,000 entries per heartbeat is what the mirror avoids). The
    :class:`TorrentState` objects themselves are immutable and shared across syncs while their
    torrent does not change. The counters are those of this round.
    """

    torrents: Mapping[str, TorrentState]
    server_state: Mapping[str, Any]
    plannable: Mapping[str, TorrentState] = MappingProxyType({})
    mam_count: int = 0
    stalled_mam: int = 0
    loading_mam: int = 0
    serial: int = 0
    taken_at: float = 0.0
    # The incomplete MAM torrents (stopped ones too): what freeleech lookups follow. The same
    # object from view to view while the set is unchanged, so a caller compares by identity.
    incomplete_mam: frozenset[str] = frozenset()

    def mam(self) -> list[TorrentState]:
        """The MAM torrents only."""
        return [t for t in self.torrents.values() if t.is_mam]


def _tags(raw: Any) -> frozenset[str]:
    if isinstance(raw, str):
        return frozenset(tag.strip() for tag in raw.split(",") if tag.strip())
    if isinstance(raw, list):
        return frozenset(str(tag).strip() for tag in raw if str(tag).strip())
    return frozenset()


_ONE: Final = 1.0
_ZERO: Final = 0.0


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
        self._reset_mirror()
        self._tag_cache: dict[Any, frozenset[str]] = {}
        self._serial = 0  # bumped by every sync and every write: a view is current while equal
        self._synced_serial = -1
        self._last_view: QbtSnapshot | None = None
        self._sync_lock = asyncio.Lock()

    def _reset_mirror(self) -> None:
        self._states: dict[str, TorrentState] = {}
        self._mam_field: set[str] = set()  # MAM by the torrent's own ``tracker`` field
        self._mam_urls: dict[str, frozenset[str]] = {}  # MAM tracker URL -> its torrents
        self._mam: set[str] = set()
        self._stalled: set[str] = set()  # MAM torrents in a stalled state
        self._loading: set[str] = set()  # MAM torrents still loading their resume data
        self._plannable: dict[str, TorrentState] = {}
        self._incomplete: set[str] = set()  # incomplete MAM torrents
        self._incomplete_view: frozenset[str] | None = frozenset()  # None: rebuild at next view
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
        self._serial += 1
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

    async def _write(self, action: Callable[[APIClient], Awaitable[None]]) -> None:
        """A request that changes qBittorrent: every view handed out so far is stale from now on
        (also when it fails: it may have been applied)."""
        self._serial += 1
        await self._call(action)

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
        """One incremental ``sync/maindata`` round merged into the local mirror.

        Rounds never overlap (a heartbeat and an account poll's tick may both ask): two diffs
        from the same ``rid`` merged in the wrong order would leave the mirror behind the server,
        which then never sends the change again.
        """
        async with self._sync_lock:
            rid = self._rid
            data: dict[str, Any] = await self._call(
                lambda c: c.request_json("GET", "sync/maindata", params={"rid": rid})
            )
            return self._apply_diff(data)

    def _apply_diff(self, data: Mapping[str, Any]) -> QbtSnapshot:
        if data.get("full_update"):
            self._reset_mirror()
        touched: set[str] = set()
        for url, hashes in (data.get("trackers") or {}).items():
            if is_mam_url(url, self._mam_hosts):
                new = frozenset(hashes)
                touched ^= self._mam_urls.get(url, frozenset()) ^ new
                self._mam_urls[url] = new
        for url in data.get("trackers_removed") or ():
            touched |= self._mam_urls.pop(url, frozenset())
        for thash, partial in (data.get("torrents") or {}).items():
            self._merge(thash, partial)
            touched.discard(thash)
        for thash in data.get("torrents_removed") or ():
            self._drop(thash)
        for thash in touched:  # only the tracker map changed for these
            if (old := self._states.get(thash)) is not None:
                self._merge(thash, {}, old)
        if server_state := data.get("server_state"):
            self._server_state.update(server_state)
        self._rid = int(data.get("rid", 0))
        self._serial += 1
        self._synced_serial = self._serial
        return self.view()

    def view(self) -> QbtSnapshot:
        """The mirror as of the last sync (no request)."""
        view = self._last_view
        if view is None or view.serial != self._serial:
            view = self._last_view = QbtSnapshot(
                MappingProxyType(self._states),
                MappingProxyType(self._server_state),
                MappingProxyType(self._plannable),
                mam_count=len(self._mam),
                stalled_mam=len(self._stalled),
                loading_mam=len(self._loading),
                serial=self._serial,
                taken_at=time.monotonic(),
                incomplete_mam=self._incomplete_mam(),
            )
        return view

    def _incomplete_mam(self) -> frozenset[str]:
        if self._incomplete_view is None:
            self._incomplete_view = frozenset(self._incomplete)
        return self._incomplete_view

    def is_current(self, view: QbtSnapshot, max_age: float = VIEW_MAX_AGE) -> bool:
        """``view`` came from this adapter's last sync, nothing was sent since and it is recent.

        The heartbeat syncs once and hands its snapshot on: the executor plans on it instead of
        asking qBittorrent a second time (on 4.5.2 every ``sync/maindata`` costs O(torrents) in
        the server, even when nothing changed). Any write request since makes it stale.
        """
        return (
            view.serial == self._serial == self._synced_serial
            and time.monotonic() - view.taken_at <= max_age
        )

    def _merge(
        self, thash: str, partial: Mapping[str, Any], old: TorrentState | None = None
    ) -> None:
        """Re-derive one torrent from its diff (a no-op when it touches no field we read)."""
        old = old or self._states.get(thash)
        if old is not None and partial and not any(key in partial for key in MIRRORED_FIELDS):
            return
        if "tracker" in partial:
            if is_mam_url(str(partial["tracker"] or ""), self._mam_hosts):
                self._mam_field.add(thash)
            else:
                self._mam_field.discard(thash)
        mam = thash in self._mam_field or any(thash in s for s in self._mam_urls.values())
        if old is None:
            old = TorrentState(thash, "", "", _ZERO, frozenset(), False, mam)
        get = partial.get
        progress = float(get("progress", old.progress))
        state = TorrentState(
            hash=old.hash,
            name=str(get("name", old.name)),
            state=sys.intern(str(get("state", old.state))),
            progress=_ONE if progress == 1 else _ZERO if progress == 0 else progress,
            tags=self._parse_tags(get("tags")) if "tags" in partial else old.tags,
            force_start=bool(get("force_start", old.force_start)),
            is_mam=mam,
            category=sys.intern(str(get("category", old.category) or "")),
            added_on=int(get("added_on", old.added_on) or 0),
        )
        if state == old and thash in self._states:
            return
        self._states[thash] = state
        self._index(thash, state)

    def _index(self, thash: str, state: TorrentState | None) -> None:
        for index in (self._mam, self._stalled, self._loading):
            index.discard(thash)
        self._plannable.pop(thash, None)
        incomplete = state is not None and state.is_mam and not state.complete
        if incomplete != (thash in self._incomplete):
            (self._incomplete.add if incomplete else self._incomplete.discard)(thash)
            self._incomplete_view = None
        if state is None:
            return
        if state.is_mam:
            self._mam.add(thash)
            if state.state in STALLED_STATES:
                self._stalled.add(thash)
            if state.state in LOADING_STATES:
                self._loading.add(thash)
        if plannable(state):
            self._plannable[thash] = state

    def _drop(self, thash: str) -> None:
        self._states.pop(thash, None)
        self._mam_field.discard(thash)
        self._index(thash, None)

    def _parse_tags(self, raw: Any) -> frozenset[str]:
        """Each distinct tag string is parsed once (20,000 torrents share a few tag strings)."""
        key = raw if isinstance(raw, str) else None
        if key is not None and (cached := self._tag_cache.get(key)) is not None:
            return cached
        tags = _tags(raw)
        if key is not None:
            if len(self._tag_cache) >= _TAG_CACHE_MAX:
                self._tag_cache.clear()
            self._tag_cache[key] = tags
        return tags

    def torrent_names(self, hashes: Iterable[str]) -> list[str]:
        """Names of these torrents from the last sync (no request); unknown ones by their hash."""
        states = self._states
        return [
            state.name if (state := states.get(h)) is not None and state.name else h for h in hashes
        ]

    async def get_preferences(self) -> dict[str, Any]:
        """``app/preferences`` (not part of sync/maindata)."""
        return dict(await self._call(lambda c: c.app.preferences()))

    async def set_preferences(self, changes: Mapping[str, Any]) -> None:
        """``app/setPreferences`` with only the given keys (no request when empty)."""
        if changes:
            await self._write(lambda c: c.app.set_preferences(dict(changes)))

    async def alt_speed_enabled(self) -> bool:
        """Whether the alternative speed limits are in force (``transfer/speedLimitsMode`` == 1)."""
        return await self._call(lambda c: c.transfer.speed_limits_mode()) == 1

    async def toggle_alt_speed(self) -> None:
        """Flip the alternative speed limits (not idempotent: check :meth:`alt_speed_enabled`)."""
        await self._write(lambda c: c.transfer.toggle_speed_limits_mode())

    # -- batched actions: one request each, none for an empty list ------------------------------
    async def stop(self, hashes: Iterable[str]) -> None:
        """Stop (``pause`` on 4.x, ``stop`` on 5.x)."""
        if items := list(hashes):
            await self._write(lambda c: c.torrents.stop(items))

    async def start(self, hashes: Iterable[str]) -> None:
        """Start (``resume`` on 4.x, ``start`` on 5.x)."""
        if items := list(hashes):
            await self._write(lambda c: c.torrents.start(items))

    async def add_tag(self, hashes: Iterable[str], tag: str) -> None:
        """Add one tag (created on the fly)."""
        if items := list(hashes):
            await self._write(lambda c: c.torrents.add_tags(items, [tag]))

    async def remove_tag(self, hashes: Iterable[str], tag: str) -> None:
        """Remove one tag from these torrents (the tag itself stays defined)."""
        if items := list(hashes):
            await self._write(lambda c: c.torrents.remove_tags(items, [tag]))

    async def set_force_start(self, hashes: Iterable[str], value: bool) -> None:
        """Set or clear force start."""
        if items := list(hashes):
            await self._write(lambda c: c.torrents.set_force_start(items, value))

    async def reannounce(self, hashes: Iterable[str]) -> None:
        """Re-announce to all trackers."""
        if items := list(hashes):
            await self._write(lambda c: c.torrents.reannounce(items))
