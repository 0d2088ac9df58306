"""The qBittorrent password never leaves for another host and never shows up in a log.

- a URL with ``user:pass@`` is refused before any request (nothing logs it: aioqbt logs the full
  request URL at WARNING on every non-2xx answer);
- the login never follows a redirect: a 307/308 would re-send the form (and the password) to
  wherever the ``Location`` points. Checked with two tiny servers on two loopback addresses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
import logging
import socket

import aiohttp
from aiohttp import web
import pytest
import pytest_socket

from custom_components.mam_guard.lib.qbt import (
    QbtAdapter,
    QbtAuthError,
    QbtConnectionError,
    QbtError,
    redact_url,
    url_has_credentials,
)
from tests.support.qbt_daemon import QbtDaemon

SECRET = "s3cret-Pa55"
USER = "alice"
OTHER_HOST = "127.0.0.2"  # another loopback address: another host as far as HTTP goes

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
def other_host(socket_enabled: None) -> Iterator[str]:
    """Let this test reach a second loopback address (the HA harness allows 127.0.0.1 only)."""
    guarded = socket.socket.connect
    pytest_socket.socket_allow_hosts(["127.0.0.1", OTHER_HOST], allow_unix_socket=True)
    try:
        yield OTHER_HOST
    finally:
        socket.socket.connect = guarded  # type: ignore[method-assign]


@dataclass
class Seen:
    """What a fake server received: method, path and query, headers and body of each request."""

    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    def leaked(self, secret: str) -> bool:
        return any(
            secret in path or secret in str(headers) or secret.encode() in body
            for _, path, headers, body in self.requests
        )


@asynccontextmanager
async def serve(host: str, handler: Handler) -> AsyncIterator[tuple[str, Seen]]:
    """Run ``handler`` for every request on ``http://host:<free port>``; record the requests."""
    seen = Seen()

    async def record(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        seen.requests.append((request.method, request.path_qs, dict(request.headers), body))
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield f"http://{host}:{port}", seen
    finally:
        await runner.cleanup()


async def fake_qbt_ok(request: web.Request) -> web.StreamResponse:
    """A minimal qBittorrent 4.5: form login, SID cookie, version probes, sync."""
    if request.path == "/api/v2/auth/login":
        form = await request.post()
        if (form.get("username"), form.get("password")) != (USER, SECRET):
            return web.Response(text="Fails.")
        response = web.Response(text="Ok.")
        response.set_cookie("SID", "sid-1", httponly=True)
        return response
    if request.cookies.get("SID") != "sid-1":
        return web.Response(status=403, text="Forbidden")
    if request.path == "/api/v2/app/version":
        return web.Response(text="v4.5.2")
    if request.path == "/api/v2/app/webapiVersion":
        return web.Response(text="2.8.19")
    if request.path == "/api/v2/sync/maindata":
        return web.json_response({"rid": 1, "full_update": True, "torrents": {}})
    return web.Response(status=404)


def _redirect(status: int, location: str) -> web.StreamResponse:
    return web.Response(status=status, headers={"Location": location})


async def evil_ok(request: web.Request) -> web.StreamResponse:
    response = web.Response(text="Ok.")
    response.set_cookie("SID", "sid-1", httponly=True)
    return response


# -- URLs with credentials ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "has", "redacted"),
    [
        ("http://u:p@host:8080/x?y=1#z", True, "http://***@host:8080/x?y=1#z"),
        ("https://user@[::1]:8080/api", True, "https://***@[::1]:8080/api"),
        ("http://:p@host", True, "http://***@host"),
        ("http://a@b@host/", True, "http://***@host/"),
        ("HTTP://u:p@host", True, "HTTP://***@host"),
        ("u:p@host:8080", True, "***@host:8080"),  # no scheme: still an authority
        ("http://u:p@h\\x@y/", True, "http://***@h\\x@y/"),
        ("http://host:8080", False, "http://host:8080"),
        ("http://host/path@x", False, "http://host/path@x"),
        ("http://host/?next=a@b", False, "http://host/?next=a@b"),
        ("http://host/x//u:p@y", False, "http://host/x//u:p@y"),
        ("host:8080", False, "host:8080"),
        ("", False, ""),
        ("http://[::1", False, "http://[::1"),
    ],
)
def test_url_has_credentials_and_redact_url(url: str, has: bool, redacted: str) -> None:
    assert url_has_credentials(url) is has
    assert redact_url(url) == redacted
    assert "p@" not in redact_url(url).split("?")[0] or not has


@pytest.mark.parametrize("value", [None, 12, b"http://u:p@h"])
def test_redact_url_never_raises(value: object) -> None:
    assert isinstance(redact_url(value), str)  # type: ignore[arg-type]


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.parametrize("username", [None, USER])
async def test_url_with_credentials_is_refused_before_any_request(
    http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture, username: str | None
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serve("127.0.0.1", fake_qbt_ok) as (base, seen):
        url = base.replace("http://", f"http://{USER}:{SECRET}@")
        qbt = QbtAdapter(http, url, username, SECRET if username else None)
        with pytest.raises(QbtAuthError) as err:
            await qbt.connect()
        with pytest.raises(QbtAuthError):
            await qbt.sync()  # lazy connect: refused the same way
    assert seen.requests == []
    for text in (str(err.value), repr(err.value), repr(qbt), caplog.text):
        assert SECRET not in text
        assert url not in text
    assert USER not in str(err.value)
    assert "***" in repr(qbt)


async def test_url_with_credentials_of_a_real_daemon_is_refused(
    qbittorrent_any: QbtDaemon, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    d = qbittorrent_any
    url = d.url.replace("http://", f"http://{d.username}:{SECRET}@")
    with pytest.raises(QbtAuthError) as err:
        await QbtAdapter(http, url, d.username, d.password).connect()
    assert SECRET not in str(err.value)
    assert SECRET not in caplog.text


# -- the login never follows a redirect ---------------------------------------------------------
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_login_redirect_to_another_host_never_sends_the_password(
    other_host: str, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serve(other_host, evil_ok) as (evil, stolen):

        async def redirecting(request: web.Request) -> web.StreamResponse:
            if request.path == "/api/v2/auth/login":
                return _redirect(status, f"{evil}/api/v2/auth/login")
            return await fake_qbt_ok(request)

        async with serve("127.0.0.1", redirecting) as (base, seen):
            qbt = QbtAdapter(http, base, USER, SECRET)
            with pytest.raises(QbtError) as err:
                await qbt.connect()
    assert stolen.requests == []  # the other host never heard from us
    assert [(m, p) for m, p, _, _ in seen.requests] == [("POST", "/api/v2/auth/login")]
    assert isinstance(err.value, QbtConnectionError)
    assert SECRET not in str(err.value)
    assert SECRET not in caplog.text


async def test_relogin_after_403_never_follows_a_redirect(
    other_host: str, http: aiohttp.ClientSession
) -> None:
    """The session expires; the new login is redirected to another host: nothing goes there."""
    async with serve(other_host, evil_ok) as (evil, stolen):
        expired = False

        async def expiring(request: web.Request) -> web.StreamResponse:
            if expired and request.path == "/api/v2/auth/login":
                return _redirect(307, f"{evil}/api/v2/auth/login")
            if expired:
                return web.Response(status=403, text="Forbidden")
            return await fake_qbt_ok(request)

        async with serve("127.0.0.1", expiring) as (base, seen):
            qbt = QbtAdapter(http, base, USER, SECRET)
            assert await qbt.connect() == "4.5.2"
            assert qbt.request_count == 3
            await qbt.sync()
            expired = True
            with pytest.raises(QbtError):
                await qbt.sync()
    assert stolen.requests == []
    logins = [body for m, p, _, body in seen.requests if p == "/api/v2/auth/login"]
    assert len(logins) == 2
    assert all(SECRET.encode() in body for body in logins)  # only ever to the configured host


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.parametrize(
    ("status", "body", "cookie", "expected"),
    [
        (200, "Ok.", True, None),  # qBittorrent < 5.2
        (204, "", True, None),  # 5.2+
        (200, "Fails.", False, QbtAuthError),  # < 5.2: bad credentials
        (401, "", False, QbtAuthError),  # 5.2+: bad credentials
        (403, "Your IP address has been banned.", False, QbtAuthError),
        (404, "Not Found", False, QbtConnectionError),  # not a qBittorrent Web UI
        (500, "oops", False, QbtConnectionError),
    ],
)
async def test_login_answers(
    http: aiohttp.ClientSession,
    status: int,
    body: str,
    cookie: bool,
    expected: type[QbtError] | None,
) -> None:
    async def answering(request: web.Request) -> web.StreamResponse:
        if request.path == "/api/v2/auth/login":
            response = web.Response(status=status, text=body or None)
            if cookie:
                response.set_cookie("SID", "sid-1", httponly=True)
            return response
        return await fake_qbt_ok(request)

    async with serve("127.0.0.1", answering) as (base, seen):
        qbt = QbtAdapter(http, base, USER, SECRET)
        if expected is None:
            assert await qbt.connect() == "4.5.2"
            assert qbt.api_version == (2, 8, 19)
            assert qbt.request_count == 3
            assert len(seen.requests) == 3
        else:
            with pytest.raises(expected) as err:
                await qbt.connect()
            assert SECRET not in str(err.value)
            assert len(seen.requests) == 1  # no version probe after a refused login
