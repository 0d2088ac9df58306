"""MamClient: unit tests with aioresponses, then end-to-end against the simulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
import json
import logging
from pathlib import Path
import re
from typing import Any
from unittest.mock import Mock

import aiohttp
from aioresponses import aioresponses
import pytest

from custom_components.mam_guard.lib import bonus_buy, mam
from custom_components.mam_guard.lib.errors import (
    MamAuthError,
    MamConnectionError,
    MamError,
    MamPayloadError,
    MamRateLimitedError,
)
from custom_components.mam_guard.lib.mam import MamClient, normalize_mam_id
from mam_simulator import NOT_SIGNED_IN, MamSimulator
from tests.lib.test_mam_models import NESTED
from tests.support.mam_sim import TEST_COOKIE, USER_AGENT, mam_http_session, running_simulator

BASE = "http://mam.test"
ACCOUNT_URL = f"{BASE}/jsonLoad.php?snatch_summary"
COOKIE = "s3cr3t-Cookie%2Bvalue"
NEW_COOKIE = "r0tated-Cookie%3D"
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class Clock:
    """A settable clock for the rate-limit back-off."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Rotations:
    """Records every value handed to on_cookie_rotated."""

    def __init__(self) -> None:
        self.values: list[str] = []

    async def __call__(self, value: str) -> None:
        self.values.append(value)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with mam_http_session() as http:
        yield http


class _CompatResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.9 predates aiohttp 3.14's required ``stream_writer`` (aioresponses#289)."""

    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", Mock(output_size=0))
        super().__init__(method, url, **kwargs)


@pytest.fixture
def mocked(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr("aioresponses.core.ClientResponse", _CompatResponse)
    with aioresponses() as mock:
        yield mock


def make_client(
    session: aiohttp.ClientSession, *, cookie: str = COOKIE, base_url: str = BASE, **kwargs: Any
) -> MamClient:
    return MamClient(session, cookie, base_url=base_url, user_agent=USER_AGENT, **kwargs)


def sent(mock: Any) -> list[dict[str, Any]]:
    """The keyword arguments of every request aioresponses saw, in order."""
    return [call.kwargs for calls in mock.requests.values() for call in calls]


# -- unit: aioresponses ------------------------------------------------------------------------


async def test_success_sends_cookie_user_agent_and_no_redirects(
    session: aiohttp.ClientSession, mocked: Any
) -> None:
    mocked.get(ACCOUNT_URL, payload=NESTED)
    account = await make_client(session, base_url=BASE + "/").async_get_account()
    assert account.username == "FixtureUser"
    assert account.ratio == 1.5
    [kwargs] = sent(mocked)
    assert kwargs["headers"]["Cookie"] == f"mam_id={COOKIE}"
    assert kwargs["headers"]["User-Agent"] == USER_AGENT
    assert kwargs["headers"]["Accept"] == "application/json"
    assert kwargs["allow_redirects"] is False
    assert kwargs["timeout"].total == 30.0


async def test_rotated_cookie_is_persisted_and_used_next(
    session: aiohttp.ClientSession, mocked: Any
) -> None:
    mocked.get(
        ACCOUNT_URL,
        payload=NESTED,
        headers={"Set-Cookie": f"mam_id={NEW_COOKIE}; path=/; HttpOnly"},
    )
    mocked.get(ACCOUNT_URL, payload=NESTED)
    rotations = Rotations()
    client = make_client(session, on_cookie_rotated=rotations)
    await client.async_get_account()
    assert rotations.values == [NEW_COOKIE]
    assert client.mam_id == NEW_COOKIE
    await client.async_get_account()
    assert [kw["headers"]["Cookie"] for kw in sent(mocked)] == [
        f"mam_id={COOKIE}",
        f"mam_id={NEW_COOKIE}",
    ]
    assert rotations.values == [NEW_COOKIE]  # same value again is no rotation


async def test_cookie_rotated_on_error_response_is_still_persisted(
    session: aiohttp.ClientSession, mocked: Any
) -> None:
    mocked.get(ACCOUNT_URL, status=500, body="oops", headers={"Set-Cookie": f"mam_id={NEW_COOKIE}"})
    rotations = Rotations()
    client = make_client(session, on_cookie_rotated=rotations)
    with pytest.raises(MamConnectionError):
        await client.async_get_account()
    assert rotations.values == [NEW_COOKIE]


@pytest.mark.parametrize("value", ["deleted", '""', " "])
async def test_deleted_or_empty_cookie_is_ignored(
    session: aiohttp.ClientSession, mocked: Any, value: str
) -> None:
    mocked.get(ACCOUNT_URL, payload=NESTED, headers={"Set-Cookie": f"mam_id={value}; path=/"})
    rotations = Rotations()
    client = make_client(session, on_cookie_rotated=rotations)
    await client.async_get_account()
    assert client.mam_id == COOKIE
    assert rotations.values == []


@pytest.mark.parametrize(
    ("mock_kwargs", "error", "match"),
    [
        (
            {"status": 403, "body": NOT_SIGNED_IN},
            MamAuthError,
            "not signed in Invalid/missing cookie",
        ),
        ({"status": 401, "body": "ip does not match"}, MamAuthError, "401"),
        (
            {"status": 302, "headers": {"Location": "https://mam.test/login.php?returnto=x"}},
            MamAuthError,
            "login",
        ),
        (
            {"status": 301, "headers": {"Location": "https://elsewhere.test/"}},
            MamConnectionError,
            "redirect",
        ),
        ({"status": 200, "payload": {"error": "no"}}, MamAuthError, "username"),
        (
            {"status": 200, "body": "Error, you are not signed in <br />Other error"},
            MamAuthError,
            "Other error",
        ),
        ({"status": 200, "body": "<html>Down for maintenance</html>"}, MamPayloadError, "JSON"),
        ({"status": 200, "payload": [1, 2]}, MamPayloadError, "list"),
        ({"status": 500, "body": "boom"}, MamConnectionError, "500"),
        ({"status": 503}, MamConnectionError, "503"),
        ({"status": 404}, MamConnectionError, "404"),
        ({"exception": aiohttp.ClientConnectionError("refused")}, MamConnectionError, "refused"),
        ({"exception": TimeoutError()}, MamConnectionError, "TimeoutError"),
    ],
)
async def test_failures_map_to_typed_errors_without_leaking_the_cookie(
    session: aiohttp.ClientSession,
    mocked: Any,
    caplog: pytest.LogCaptureFixture,
    *,
    mock_kwargs: dict[str, Any],
    error: type[MamError],
    match: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    mocked.get(ACCOUNT_URL, **mock_kwargs)
    with pytest.raises(error, match=match) as info:
        await make_client(session).async_get_account()
    assert COOKIE not in str(info.value)
    assert COOKIE not in repr(info.value)
    assert COOKIE not in caplog.text


async def test_error_echoing_the_cookie_is_scrubbed(
    session: aiohttp.ClientSession, mocked: Any
) -> None:
    mocked.get(ACCOUNT_URL, status=403, body=f"Error: cookie {COOKIE} is invalid")
    with pytest.raises(MamAuthError) as info:
        await make_client(session).async_get_account()
    assert COOKIE not in str(info.value)
    assert "***" in str(info.value)


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [
        (None, timedelta(minutes=30)),
        ("60", timedelta(minutes=30)),
        ("7200", timedelta(hours=2)),
        ("Tue, 24 Nov 2026 15:00:00 GMT", timedelta(hours=3)),
        ("soon", timedelta(minutes=30)),
        ("9" * 30, timedelta(days=7)),
        ("Fri, 31 Dec 9999 23:59:59 GMT", timedelta(days=7)),  # capped, no datetime overflow
    ],
)
async def test_rate_limit_backs_off_without_requests(
    session: aiohttp.ClientSession, mocked: Any, retry_after: str | None, wait: timedelta
) -> None:
    headers = {"Retry-After": retry_after} if retry_after else {}
    mocked.get(ACCOUNT_URL, status=429, body="Too many", headers=headers)
    mocked.get(ACCOUNT_URL, payload=NESTED)
    clock = Clock()
    client = make_client(session, clock=clock)
    with pytest.raises(MamRateLimitedError) as info:
        await client.async_get_account()
    until = client.rate_limited_until  # (a local: mypy would keep the narrowed property type)
    assert info.value.retry_at == until == T0 + wait

    clock.now = T0 + wait - timedelta(seconds=1)
    with pytest.raises(MamRateLimitedError):
        await client.async_get_page("rules.php")
    assert len(sent(mocked)) == 1  # refused locally, nothing sent

    clock.now = T0 + wait
    assert client.rate_limited_until is None
    assert (await client.async_get_account()).uid == 100001
    assert len(sent(mocked)) == 2


async def test_get_page_returns_text(session: aiohttp.ClientSession, mocked: Any) -> None:
    mocked.get(f"{BASE}/f/b/18", body="<html>forum</html>", content_type="text/html")
    assert await make_client(session).async_get_page("/f/b/18") == "<html>forum</html>"
    [kwargs] = sent(mocked)
    assert kwargs["headers"]["Accept"].startswith("text/html")


@pytest.mark.parametrize(
    ("pasted", "value"),
    [
        ("abc123", "abc123"),
        ("  abc123  ", "abc123"),
        ("mam_id=abc123", "abc123"),
        ("mam_id=abc123;", "abc123"),
        ("MAM_ID = abc123 ; ", "abc123"),
        ('"mam_id=abc%2B123="', "abc%2B123="),
        ('mam_id="abc123"', "abc123"),
        ("'abc123'", "abc123"),
    ],
)
def test_normalize_mam_id(pasted: str, value: str) -> None:
    assert normalize_mam_id(pasted) == value


@pytest.mark.parametrize(
    "pasted", ["", "   ", "mam_id=", "mam_id=;", '""', "abc def", "abc\r\nX-Evil: 1"]
)
def test_normalize_mam_id_rejects_unusable_values(pasted: str) -> None:
    with pytest.raises(ValueError, match="mam_id") as info:
        normalize_mam_id(pasted)
    assert "Evil" not in str(info.value)


# -- end to end: the simulator over real HTTP --------------------------------------------------


@pytest.fixture
async def sim(socket_enabled: None) -> AsyncIterator[MamSimulator]:
    async with running_simulator() as simulator:
        yield simulator


def sim_client(sim: MamSimulator, session: aiohttp.ClientSession, **kwargs: Any) -> MamClient:
    return make_client(session, cookie=TEST_COOKIE, base_url=sim.base_url, **kwargs)


async def test_sim_success_and_rotation_chain(
    sim: MamSimulator, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rotations = Rotations()
    client = sim_client(sim, session, on_cookie_rotated=rotations)
    account = await client.async_get_account()
    assert account.uid == 100001
    assert account.unsatisfied == 42
    assert account.vip_until == datetime(2027, 1, 1, tzinfo=UTC)
    assert sim.last_headers["User-Agent"] == USER_AGENT

    [first] = rotations.values
    assert first != TEST_COOKIE
    assert client.mam_id == first
    assert sim.valid_cookies == {first}
    # The presented cookie is dead now: MAM (the simulator) refuses it.
    async with session.get(
        f"{sim.base_url}/jsonLoad.php", headers={"Cookie": f"mam_id={TEST_COOKIE}"}
    ) as resp:
        assert resp.status == 403
    # The client goes on with the rotated value.
    await client.async_get_account()
    assert rotations.values[0] == first
    assert len(rotations.values) == 2
    assert sim.valid_cookies == {client.mam_id}
    for secret in [TEST_COOKIE, *rotations.values]:
        assert secret not in caplog.text


async def test_sim_shapes_parse_identically(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    client = sim_client(sim, session)
    nested = await client.async_get_account()
    sim.state.nested = False
    top_level = await client.async_get_account()
    assert top_level == nested
    sim.state.ratio = "∞"
    sim.state.vip_until = None
    account = await client.async_get_account()
    assert account.ratio is None
    assert account.ratio_infinite is True
    assert account.vip_until is None


async def test_sim_auth_failures(sim: MamSimulator, session: aiohttp.ClientSession) -> None:
    client = sim_client(sim, session)
    sim.state.username = None
    with pytest.raises(MamAuthError, match="username"):
        await client.async_get_account()
    sim.state.username = "FixtureUser"
    sim.state.redirect_to_login = True
    with pytest.raises(MamAuthError, match="login"):
        await client.async_get_account()
    sim.state.redirect_to_login = False
    sim.invalidate_all_cookies()
    with pytest.raises(MamAuthError, match="not signed in"):
        await client.async_get_account()


async def test_sim_rate_limit_sends_nothing_during_back_off(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    client = sim_client(sim, session)
    sim.fail_next(429)
    before = datetime.now(UTC)
    with pytest.raises(MamRateLimitedError) as info:
        await client.async_get_account()
    assert info.value.retry_at >= before + timedelta(minutes=30)
    assert sim.requests["jsonLoad.php"] == 1
    with pytest.raises(MamRateLimitedError):
        await client.async_get_account()
    assert sim.requests["jsonLoad.php"] == 1


async def test_sim_server_errors_and_garbage(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    client = sim_client(sim, session)
    sim.fail_next(500)
    with pytest.raises(MamConnectionError, match="500"):
        await client.async_get_account()
    sim.fail_next(200, body="<html>maintenance</html>")
    with pytest.raises(MamPayloadError):
        await client.async_get_account()
    sim.state.ratio = "lots"
    with pytest.raises(MamPayloadError, match="ratio"):
        await client.async_get_account()
    assert client.mam_id in sim.valid_cookies  # the rotation of that last (bad) answer was kept


async def test_sim_timeout(sim: MamSimulator, session: aiohttp.ClientSession) -> None:
    sim.state.delay = 1.0
    client = sim_client(sim, session, request_timeout=0.1)
    with pytest.raises(MamConnectionError):
        await client.async_get_account()


async def test_sim_unreachable(socket_enabled: None, session: aiohttp.ClientSession) -> None:
    async with running_simulator() as sim:
        base_url = sim.base_url
    client = make_client(session, cookie=TEST_COOKIE, base_url=base_url)
    with pytest.raises(MamConnectionError):
        await client.async_get_account()


async def test_sim_one_request_in_flight_and_rotation_persisted_first(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    sim.state.delay = 0.05
    seen_during_callback: list[tuple[int, int]] = []

    async def persist(value: str) -> None:
        before = sim.requests.total()
        await asyncio.sleep(0.05)  # a slow storage write: no request may start meanwhile
        seen_during_callback.append((before, sim.requests.total()))

    client = sim_client(sim, session, on_cookie_rotated=persist)
    accounts = await asyncio.gather(*(client.async_get_account() for _ in range(4)))
    assert all(account.uid == 100001 for account in accounts)  # each used the previous rotation
    assert sim.max_in_flight == 1
    assert sim.requests["jsonLoad.php"] == 4
    assert seen_during_callback == [(n, n) for n in range(1, 5)]


async def test_sim_pages(sim: MamSimulator, session: aiohttp.ClientSession) -> None:
    sim.pages["rules.php"] = "<html><body>Rule 1.4</body></html>"
    rotations = Rotations()
    client = sim_client(sim, session, on_cookie_rotated=rotations)
    assert "Rule 1.4" in await client.async_get_page("rules.php")
    assert len(rotations.values) == 1
    assert sim.requests["rules.php"] == 1
    with pytest.raises(MamConnectionError, match="404"):
        await client.async_get_page("faq.php")


# -- response size caps ------------------------------------------------------------------------


async def test_oversized_body_is_refused_while_streaming(
    session: aiohttp.ClientSession, mocked: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without Content-Length the body is read in chunks and refused once over the cap."""
    monkeypatch.setattr(mam, "MAX_ACCOUNT_BYTES", 1024)  # aioresponses cannot feed megabytes
    mocked.get(
        ACCOUNT_URL,
        payload=NESTED | {"padding": "x" * (100 * 1024)},
        headers={"Set-Cookie": f"mam_id={NEW_COOKIE}; path=/"},
    )
    rotations = Rotations()
    client = make_client(session, on_cookie_rotated=rotations)
    with pytest.raises(MamPayloadError, match="account data larger than 1 KiB"):
        await client.async_get_account()
    assert rotations.values == [NEW_COOKIE]  # the rotation of the refused answer was kept
    assert client.mam_id == NEW_COOKIE


async def test_sim_oversized_account_body_is_payload_error(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    sim.state.classname = "x" * (300 * 1024)  # jsonLoad answers are ~2 KiB
    rotations = Rotations()
    client = sim_client(sim, session, on_cookie_rotated=rotations)
    with pytest.raises(MamPayloadError, match="larger than 256 KiB"):
        await client.async_get_account()
    assert sim.valid_cookies == set(rotations.values) == {client.mam_id}


async def test_sim_oversized_page_keeps_the_rotated_cookie(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    sim.pages["rules.php"] = "<p>" + "x" * (5 * 1024 * 1024) + "</p>"
    sim.pages["faq.php"] = "<p>" + "y" * (4 * 1024 * 1024 - 100) + "</p>"  # just under the cap
    rotations = Rotations()
    client = sim_client(sim, session, on_cookie_rotated=rotations)
    with pytest.raises(MamPayloadError, match="larger than 4 MiB"):
        await client.async_get_page("rules.php")
    [new] = rotations.values
    assert client.mam_id == new
    assert sim.valid_cookies == {new}  # MAM's new cookie, adopted although the body was refused
    assert len(await client.async_get_page("faq.php")) > 4 * 1024 * 1024 - 100
    assert len(rotations.values) == 2


# -- no cookie value in any message or log record ---------------------------------------------


def _exception_chain(err: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    todo: list[BaseException | None] = [err]
    while todo:
        current = todo.pop()
        if current is None or current in chain:
            continue
        chain.append(current)
        todo += [current.__cause__, current.__context__]
    return chain


def _assert_no_secret(
    secrets: list[str], err: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    """No secret in the exception (or anything chained to it), its traceback or any log record."""
    logging.getLogger("homeassistant.test").debug("Update failed", exc_info=err)  # like HA
    formatter = logging.Formatter()
    texts = [str(e) for e in _exception_chain(err)] + [repr(e) for e in _exception_chain(err)]
    texts += [formatter.format(record) for record in caplog.records]
    for secret in secrets:
        for text in texts:
            assert secret not in text


async def test_cookie_in_transport_error_text_is_scrubbed_and_not_chained(
    session: aiohttp.ClientSession, mocked: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mocked.get(
        ACCOUNT_URL,
        exception=aiohttp.ClientConnectionError(
            f"Invalid HTTP header: b'Set-Cookie: mam_id={NEW_COOKIE}; path=/\\x00'"
        ),
    )
    with pytest.raises(MamConnectionError, match="ClientConnectionError") as info:
        await make_client(session).async_get_account()
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    assert "mam_id=***" in str(info.value)
    _assert_no_secret([COOKIE, NEW_COOKIE], info.value, caplog)


@pytest.mark.parametrize(
    "text",
    [
        f"mam_id={NEW_COOKIE}",
        f"MAM_ID = {NEW_COOKIE}; path=/",
        f"'mam_id': '{NEW_COOKIE}'",
        f'{{"mam_id":"{NEW_COOKIE}"}}',
        f"mam_id={NEW_COOKIE[:5]}\\x00{NEW_COOKIE[5:]}",
    ],
)
async def test_any_mam_id_in_a_body_echo_is_scrubbed(
    session: aiohttp.ClientSession, mocked: Any, text: str
) -> None:
    mocked.get(ACCOUNT_URL, status=403, body=f"Error, bad cookie: {text} <br />")
    mocked.get(ACCOUNT_URL, status=200, body=f"Error, you are not signed in: {text}")
    client = make_client(session)
    for _ in range(2):
        with pytest.raises(MamAuthError) as info:
            await client.async_get_account()
        assert NEW_COOKIE[5:] not in str(info.value)
        assert NEW_COOKIE[:5] not in str(info.value)


async def test_sim_malformed_set_cookie_leaks_neither_cookie(
    sim: MamSimulator, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """MAM rotates the cookie in a Set-Cookie field aiohttp cannot parse (SimState knob)."""
    caplog.set_level(logging.DEBUG)
    sim.state.malformed_set_cookie = True
    client = sim_client(sim, session)
    with pytest.raises(MamConnectionError) as info:
        await client.async_get_account()
    [new] = sim.valid_cookies
    assert new != TEST_COOKIE
    assert "ClientResponseError" in str(info.value)
    _assert_no_secret([TEST_COOKIE, new], info.value, caplog)
    # The session is lost (MAM killed the old value, the new one was unreadable): reauth.
    sim.state.malformed_set_cookie = False
    with pytest.raises(MamAuthError) as auth:
        await client.async_get_account()
    _assert_no_secret([TEST_COOKIE, new], auth.value, caplog)


# -- the 429 back-off survives restarts --------------------------------------------------------


async def test_restored_rate_limit_is_honoured_without_requests(
    session: aiohttp.ClientSession, mocked: Any
) -> None:
    mocked.get(ACCOUNT_URL, payload=NESTED)
    clock = Clock()
    until = T0 + timedelta(hours=1)
    client = make_client(session, clock=clock, rate_limited_until=until)
    assert client.rate_limited_until == until
    with pytest.raises(MamRateLimitedError) as info:
        await client.async_get_account()
    assert info.value.retry_at == until
    assert sent(mocked) == []
    clock.now = until
    assert (await client.async_get_account()).uid == 100001
    assert len(sent(mocked)) == 1


async def test_restored_rate_limit_in_the_past_or_absurd(
    session: aiohttp.ClientSession, mocked: Any
) -> None:
    mocked.get(ACCOUNT_URL, payload=NESTED)
    clock = Clock()
    past = make_client(session, clock=clock, rate_limited_until=T0 - timedelta(seconds=1))
    assert past.rate_limited_until is None
    assert (await past.async_get_account()).uid == 100001
    # A stored value far beyond anything MAM could ask for (clock trouble) is cut to 7 days.
    far = make_client(session, clock=clock, rate_limited_until=T0 + timedelta(days=400))
    assert far.rate_limited_until == T0 + timedelta(days=7)


async def test_on_rate_limited_is_awaited_before_the_error(
    session: aiohttp.ClientSession, mocked: Any
) -> None:
    mocked.get(ACCOUNT_URL, status=429, body="Too many", headers={"Retry-After": "7200"})
    clock = Clock()
    persisted: list[datetime] = []
    called, release = asyncio.Event(), asyncio.Event()

    async def on_rate_limited(retry_at: datetime) -> None:
        persisted.append(retry_at)
        called.set()
        await release.wait()  # a slow storage write

    client = make_client(session, clock=clock, on_rate_limited=on_rate_limited)
    task = asyncio.create_task(client.async_get_account())
    await asyncio.wait_for(called.wait(), 5)
    assert persisted == [T0 + timedelta(hours=2)]
    await asyncio.sleep(0.05)
    assert not task.done()  # the error waits for the back-off to be stored
    release.set()
    with pytest.raises(MamRateLimitedError) as info:
        await task
    assert info.value.retry_at == persisted[0] == client.rate_limited_until


async def test_sim_rate_limit_survives_a_restart(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    stored: list[datetime] = []

    async def on_rate_limited(retry_at: datetime) -> None:
        stored.append(retry_at)

    sim.fail_next(429)
    with pytest.raises(MamRateLimitedError):
        await sim_client(sim, session, on_rate_limited=on_rate_limited).async_get_account()
    [retry_at] = stored
    restarted = sim_client(sim, session, rate_limited_until=retry_at)
    with pytest.raises(MamRateLimitedError):
        await restarted.async_get_account()
    assert sim.requests["jsonLoad.php"] == 1


# -- cancellation and async_close --------------------------------------------------------------


async def _cancel_mid_flight(sim: MamSimulator, client: MamClient) -> None:
    """Start a poll, cancel its caller once MAM has received the request."""
    sim.state.delay = 0.5
    task = asyncio.create_task(client.async_get_account())
    for _ in range(1000):
        if sim.in_flight:
            break
        await asyncio.sleep(0.005)
    assert sim.in_flight == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_sim_cancelled_caller_still_adopts_the_rotated_cookie(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    """Reload/stop while a request is in flight: MAM rotates anyway, the new value is kept."""
    rotations = Rotations()
    client = sim_client(sim, session, on_cookie_rotated=rotations)
    await _cancel_mid_flight(sim, client)
    for _ in range(200):  # the server answers after 0.5 s
        if rotations.values:
            break
        await asyncio.sleep(0.01)
    [new] = rotations.values
    assert sim.valid_cookies == {new}
    assert client.mam_id == new
    sim.state.delay = 0
    assert (await client.async_get_account()).uid == 100001


async def test_sim_async_close_waits_for_the_in_flight_exchange(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    rotations = Rotations()
    client = sim_client(sim, session, on_cookie_rotated=rotations)
    await _cancel_mid_flight(sim, client)
    assert rotations.values == []  # the answer has not arrived yet
    await client.async_close()
    [new] = rotations.values
    assert sim.valid_cookies == {new}
    async with session.get(
        f"{sim.base_url}/jsonLoad.php", headers={"Cookie": f"mam_id={new}"}
    ) as resp:
        assert resp.status == 200  # valid at MAM
    sent_before = sim.requests.total()
    with pytest.raises(MamConnectionError, match="client closed"):
        await client.async_get_account()
    with pytest.raises(MamConnectionError, match="client closed"):
        await client.async_get_page("rules.php")
    assert sim.requests.total() == sent_before
    await client.async_close()  # idempotent


async def test_close_refuses_requests_queued_behind_the_lock(
    session: aiohttp.ClientSession, mocked: Any
) -> None:
    release = asyncio.Event()

    async def slow_persist(_value: str) -> None:
        await release.wait()

    mocked.get(ACCOUNT_URL, payload=NESTED, headers={"Set-Cookie": f"mam_id={NEW_COOKIE}; path=/"})
    client = make_client(session, on_cookie_rotated=slow_persist)
    first = asyncio.create_task(client.async_get_account())
    await asyncio.sleep(0.05)
    queued = asyncio.create_task(client.async_get_account())
    await asyncio.sleep(0.05)
    closing = asyncio.create_task(client.async_close())
    await asyncio.sleep(0.05)
    assert not closing.done()  # the first exchange is still persisting its cookie
    release.set()
    await closing
    assert (await first).uid == 100001
    with pytest.raises(MamConnectionError, match="client closed"):
        await queued
    assert len(sent(mocked)) == 1


# -- purchases: json/bonusBuy.php (SPEC §10) ---------------------------------------------------

WWW = "https://www.myanonamouse.net"
STAMP = int(T0.timestamp() * 1000)
VIP_URL = f"{WWW}/json/bonusBuy.php/?spendtype=VIP&duration=max&_={STAMP}"
UPLOAD_URL = f"{WWW}/json/bonusBuy.php/?spendtype=upload&amount=50&_={STAMP}"
# Captured against live MAM (Seshat tests/fake_mam.py, research/mam-economy.md §2).
UPLOAD_SUCCESS = (
    '{"success":true,"type":"upload","amount":50,"seedbonus":26512.091,'
    '"uploaded":9094496082151,"downloaded":96557899,"uploadFancy":"8.271 TiB",'
    '"downloadFancy":"92.08 MiB","ratio":94186.97}'
)


def www_client(session: aiohttp.ClientSession, **kwargs: Any) -> MamClient:
    return make_client(session, base_url=WWW, clock=Clock(), **kwargs)


async def test_buy_upload_sends_the_documented_request(
    session: aiohttp.ClientSession, mocked: Any
) -> None:
    mocked.get(UPLOAD_URL, body=UPLOAD_SUCCESS, content_type="application/json")
    receipt = await www_client(session).async_buy_upload(50)
    assert receipt == mam.PurchaseReceipt(
        kind="upload",
        amount=50.0,
        seedbonus=26512.091,
        uploaded_bytes=9094496082151,
        downloaded_bytes=96557899,
        ratio=94186.97,
    )
    assert isinstance(receipt.seedbonus, float)
    [(method, url)] = list(mocked.requests)
    assert (method, url.host, url.path) == ("GET", "www.myanonamouse.net", "/json/bonusBuy.php/")
    assert url.query == {"spendtype": "upload", "amount": "50", "_": str(STAMP)}
    [kwargs] = sent(mocked)
    assert kwargs["headers"]["Cookie"] == f"mam_id={COOKIE}"
    assert kwargs["allow_redirects"] is False
    assert kwargs["middlewares"] == (bonus_buy.no_resend,)  # never re-sent by aiohttp


async def test_buy_vip_sends_duration_max_never_amount(
    session: aiohttp.ClientSession, mocked: Any
) -> None:
    mocked.get(
        VIP_URL, payload={"success": True, "type": "VIP", "amount": 11.5, "seedbonus": "14,000.5"}
    )
    receipt = await www_client(session).async_buy_vip()
    assert (receipt.kind, receipt.amount, receipt.seedbonus) == ("vip", 11.5, 14000.5)
    assert receipt.uploaded_bytes is None  # the VIP body was never captured: all optional
    [(_method, url)] = list(mocked.requests)
    assert url.query == {"spendtype": "VIP", "duration": "max", "_": str(STAMP)}
    assert "amount" not in url.query


async def test_account_requests_are_sent_as_before(
    session: aiohttp.ClientSession, mocked: Any
) -> None:
    mocked.get(ACCOUNT_URL, payload=NESTED)
    await make_client(session).async_get_account()
    [kwargs] = sent(mocked)
    assert kwargs["middlewares"] is None  # the guard is for purchases only


@pytest.mark.parametrize(
    "error",
    [
        "Not enough bonus, s1",
        "Automated spenders are limited to buying at least 50 GB of upload at a time, due to "
        "log spam",
        "Min VIP is 1 week purchased for Automated methods",
    ],
)
async def test_rejections_carry_mam_text(
    session: aiohttp.ClientSession, mocked: Any, error: str
) -> None:
    mocked.get(UPLOAD_URL, payload={"success": False, "error": error})
    with pytest.raises(mam.MamPurchaseRejectedError) as info:
        await www_client(session).async_buy_upload(50)
    assert info.value.error == error
    assert str(info.value) == f"MyAnonamouse refused the purchase: {error}"


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        ({"success": False}, "no reason given"),
        ({"success": "false", "error": "  two\n lines "}, "two lines"),
        ({"success": 0, "error": "x" * 1000}, "x" * 300),
        ({"success": False, "error": f"bad cookie mam_id={COOKIE}"}, "bad cookie mam_id=***"),
    ],
)
async def test_rejection_shapes(
    session: aiohttp.ClientSession, mocked: Any, payload: dict[str, Any], text: str
) -> None:
    mocked.get(UPLOAD_URL, payload=payload)
    with pytest.raises(mam.MamPurchaseRejectedError) as info:
        await www_client(session).async_buy_upload(50)
    assert info.value.error == text
    assert COOKIE not in str(info.value)


@pytest.mark.parametrize(
    "mock_kwargs",
    [
        {"status": 500, "body": "boom"},
        {"status": 502},
        {"exception": TimeoutError()},
        {"exception": aiohttp.ServerDisconnectedError()},
        {"exception": aiohttp.ClientPayloadError("truncated")},
        {"status": 200, "body": "<html>maintenance</html>"},
        {"status": 200, "payload": [1]},
        {"status": 200, "payload": {"type": "upload"}},  # no success flag
    ],
)
async def test_lost_or_unreadable_answers_are_unknown_outcomes(
    session: aiohttp.ClientSession, mocked: Any, mock_kwargs: dict[str, Any]
) -> None:
    """MAM may have applied these: the caller must settle from the account, not retry."""
    mocked.get(UPLOAD_URL, **mock_kwargs)
    with pytest.raises(mam.MamPurchaseUnknownError):
        await www_client(session).async_buy_upload(50)


async def test_oversized_purchase_answer_is_an_unknown_outcome(
    session: aiohttp.ClientSession, mocked: Any
) -> None:
    mocked.get(UPLOAD_URL, payload={"success": True, "pad": "x" * (70 * 1024)})
    with pytest.raises(mam.MamPurchaseUnknownError, match="larger than 64 KiB"):
        await www_client(session).async_buy_upload(50)


@pytest.mark.parametrize(
    ("mock_kwargs", "error"),
    [
        ({"status": 429, "body": "Too many"}, MamRateLimitedError),
        ({"status": 403, "body": NOT_SIGNED_IN}, MamAuthError),
        ({"status": 200, "body": "Error, you are not signed in <br />x"}, MamAuthError),
        ({"status": 404}, MamConnectionError),  # what amount= on VIP or the t. host answer
        (
            {"exception": aiohttp.ClientConnectorError(Mock(), OSError(111, "refused"))},
            MamConnectionError,
        ),
        ({"exception": aiohttp.ConnectionTimeoutError("connect")}, MamConnectionError),
    ],
)
async def test_failures_that_bought_nothing_keep_their_types(
    session: aiohttp.ClientSession, mocked: Any, mock_kwargs: dict[str, Any], error: type
) -> None:
    mocked.get(UPLOAD_URL, **mock_kwargs)
    with pytest.raises(error) as info:
        await www_client(session).async_buy_upload(50)
    assert not isinstance(info.value, mam.MamPurchaseUnknownError)


@pytest.mark.parametrize(
    "base_url",
    [
        "https://t.myanonamouse.net",
        "https://myanonamouse.net",
        "http://www.myanonamouse.net",
        "https://www.myanonamouse.net.evil.test",
        "http://mam.test",
    ],
)
async def test_purchases_go_to_www_only(
    session: aiohttp.ClientSession, mocked: Any, base_url: str
) -> None:
    client = make_client(session, base_url=base_url)
    with pytest.raises(mam.MamPurchaseNotAllowedError, match=r"www\.myanonamouse\.net only"):
        await client.async_buy_vip()
    with pytest.raises(mam.MamPurchaseNotAllowedError):
        await client.async_buy_upload(50)
    assert sent(mocked) == []


@pytest.mark.parametrize(
    "base_url",
    ["https://WWW.MyAnonamouse.net.", "http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9"],
)
async def test_www_and_loopback_hosts_may_buy(
    session: aiohttp.ClientSession, mocked: Any, base_url: str
) -> None:
    mocked.get(re.compile(r".*/json/bonusBuy\.php/\?.*spendtype=VIP.*"), payload={"success": True})
    await make_client(session, base_url=base_url).async_buy_vip()
    assert len(sent(mocked)) == 1


@pytest.mark.parametrize("amount", [49, 0, 50.0, True, "50"])
async def test_upload_amount_is_a_whole_number_of_at_least_50(
    session: aiohttp.ClientSession, mocked: Any, amount: Any
) -> None:
    with pytest.raises(mam.MamPurchaseNotAllowedError):
        await www_client(session).async_buy_upload(amount)
    assert sent(mocked) == []


def test_gift_and_send_wedge_are_never_implemented() -> None:
    """MAM rule 1.7: gifts may never be automated; the client has no way to send one."""
    source = Path(mam.__file__).read_text() + Path(bonus_buy.__file__).read_text()
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("#"))
    assert "spendtype=gift" not in code
    assert "sendWedge&" not in code
    assert "giftTo" not in code
    assert not [name for name in dir(MamClient) if "gift" in name.lower() or "wedge" in name]


# -- purchases end to end: the simulator over real HTTP ----------------------------------------


async def test_sim_upload_purchase_debits_and_raises_upload(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    sim.state.seedbonus = 60_000
    rotations = Rotations()
    client = sim_client(sim, session, on_cookie_rotated=rotations)
    receipt = await client.async_buy_upload(50)
    assert receipt.seedbonus == 35_000.0
    assert receipt.uploaded_bytes == 60 * 1024**3
    assert sim.purchases == [
        {"kind": "upload", "amount": 50, "cost": 25_000, "at": sim.purchases[0]["at"]}
    ]
    assert [client.mam_id] == rotations.values  # the purchase rotated the session too
    account = await client.async_get_account()
    assert (account.seedbonus, account.uploaded_bytes, account.ratio) == (
        35_000.0,
        60 * 1024**3,
        60.0,
    )


async def test_sim_rejection_is_typed(sim: MamSimulator, session: aiohttp.ClientSession) -> None:
    sim.state.seedbonus = 24_999
    with pytest.raises(mam.MamPurchaseRejectedError) as info:
        await sim_client(sim, session).async_buy_upload(50)
    assert info.value.error == "Not enough bonus, s1"
    assert sim.purchases == []


async def _count_applied(sim: MamSimulator, send: Callable[[], Awaitable[object]]) -> int:
    before = len(sim.purchases)
    with pytest.raises((MamError, aiohttp.ClientError)):
        await send()
    return len(sim.purchases) - before


async def test_sim_dropped_connection_after_apply_is_never_resent(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    """The hazard is real: plain aiohttp buys twice; the client buys once."""
    sim.state.rotate = False  # else the re-sent request would fail on the dead cookie
    sim.state.seedbonus = 99_999
    sim.state.purchase_fault = "drop_after_apply"
    url = f"{sim.base_url}/json/bonusBuy.php/?spendtype=upload&amount=50"

    async def plain_get() -> None:
        async with session.get(url, headers={"Cookie": f"mam_id={TEST_COOKIE}"}):
            pass  # pragma: no cover - the server never answers

    assert await _count_applied(sim, plain_get) == 2  # aiohttp re-sent it: a second buy
    client = sim_client(sim, session)
    assert await _count_applied(sim, lambda: client.async_buy_upload(50)) == 1
    assert sim.requests["json/bonusBuy.php/"] == 3
    sim.state.seedbonus = 99_999
    with pytest.raises(mam.MamPurchaseUnknownError, match="ServerDisconnectedError"):
        await client.async_buy_upload(50)


async def test_sim_without_the_guard_the_client_would_buy_twice(
    sim: MamSimulator, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test above can fail: with a pass-through middleware the second buy happens."""

    async def passthrough(req: Any, handler: Any) -> Any:
        return await handler(req)

    monkeypatch.setattr(mam, "no_resend", passthrough)
    sim.state.rotate = False
    sim.state.seedbonus = 99_999
    sim.state.purchase_fault = "drop_after_apply"
    client = sim_client(sim, session)
    assert await _count_applied(sim, lambda: client.async_buy_upload(50)) == 2


async def test_sim_timeout_after_apply_is_an_unknown_outcome(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    sim.state.seedbonus = 99_999
    sim.state.purchase_fault = "timeout_after_apply"
    sim.state.purchase_fault_delay = 1.0
    client = sim_client(sim, session, request_timeout=0.2)
    with pytest.raises(mam.MamPurchaseUnknownError, match="TimeoutError"):
        await client.async_buy_vip()
    assert [p["kind"] for p in sim.purchases] == ["vip"]
    assert sim.requests["json/bonusBuy.php/"] == 1


async def test_sim_drop_before_apply_is_unknown_too(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    """The client cannot tell a drop before from a drop after: both are settled from the account."""
    sim.state.seedbonus = 99_999
    sim.state.purchase_fault = "drop_before_apply"
    with pytest.raises(mam.MamPurchaseUnknownError):
        await sim_client(sim, session).async_buy_upload(50)
    assert sim.purchases == []
    assert sim.requests["json/bonusBuy.php/"] == 1


def test_purchase_building_blocks() -> None:
    with pytest.raises(mam.MamPurchaseNotAllowedError, match="needs an amount"):
        bonus_buy.purchase_path("upload", None, 1)
    receipt = bonus_buy.parse_purchase_body(
        '{"success": "1", "amount": true, "seedbonus": "lots", "uploaded": -5, "ratio": "1e999"}',
        "upload",
    )
    assert receipt == mam.PurchaseReceipt("upload", None, None, None, None, None)


async def test_sim_unreachable_purchase_was_never_sent(
    socket_enabled: None, session: aiohttp.ClientSession
) -> None:
    """Connection refused: nothing reached MAM, so this is not an unknown outcome."""
    async with running_simulator() as sim:
        base_url = sim.base_url
    client = make_client(session, cookie=TEST_COOKIE, base_url=base_url)
    with pytest.raises(MamConnectionError) as info:
        await client.async_buy_upload(50)
    assert not isinstance(info.value, mam.MamPurchaseUnknownError)


# -- freeleech lookups: the search by info hash (SPEC §11) -------------------------------------

SEARCH_URL = f"{BASE}/tor/js/loadSearchJSONbasic.php"
HASH = "0123456789abcdef0123456789abcdef01234567"
OTHER_HASH = "f" * 40
PACKRAT_ROW: dict[str, Any] = {  # the flags as numbers, as in packrat's capture
    "id": 273200,
    "title": "Love at Stake series",
    "size": "620.2 MiB",
    "vip": 1,
    "vip_expire": 0,
    "free": 0,
    "personal_freeleech": 0,
    "fl_vip": 1,
    "my_snatched": 1,
}


def found(*rows: dict[str, Any]) -> dict[str, Any]:
    return {"perpage": 5, "start": 0, "data": list(rows), "total": len(rows), "found": len(rows)}


async def test_lookup_sends_the_documented_search(
    session: aiohttp.ClientSession, mocked: Any
) -> None:
    mocked.post(SEARCH_URL, payload=found(PACKRAT_ROW))
    flags = await make_client(session).async_lookup_hash(HASH.upper())
    assert flags == mam.TorrentFlags(
        free=False, personal_freeleech=False, vip=True, fl_vip=True, id=273200
    )
    [(method, url)] = list(mocked.requests)
    assert (method, url.path, url.query) == ("POST", "/tor/js/loadSearchJSONbasic.php", {})
    [kwargs] = sent(mocked)
    assert json.loads(kwargs["data"]) == {
        "tor": {"hash": HASH, "searchType": "all", "searchIn": "torrents"},
        "perpage": 5,
    }
    assert kwargs["headers"]["Content-Type"] == "application/json"
    assert kwargs["headers"]["Accept"] == "application/json"
    assert kwargs["headers"]["Cookie"] == f"mam_id={COOKIE}"
    assert kwargs["headers"]["User-Agent"] == USER_AGENT
    assert kwargs["allow_redirects"] is False
    assert kwargs["middlewares"] is None
    assert kwargs["timeout"].total == mam.LOOKUP_TIMEOUT == 10.0  # holds the lock briefly


async def test_lookup_timeout_never_exceeds_the_clients(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    sim.state.delay = 0.5
    sim.add_torrent(HASH, free=True)
    client = sim_client(sim, session, request_timeout=0.1)
    with pytest.raises(MamConnectionError, match="Timeout"):
        await client.async_lookup_hash(HASH)
    assert sim.searches == {HASH: 1}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((0, 0, 0, 0), (False, False, False, False)),
        ((1, 0, 0, 0), (True, False, False, False)),
        ((0, 1, 0, 0), (False, True, False, False)),
        ((0, 0, 1, 1), (False, False, True, True)),
        (("0", "0", "0", "0"), (False, False, False, False)),  # Seshat's fixture, MAM's doc
        (("1", "0", "1", "1"), (True, False, True, True)),
        ((" 1 ", "0", "0", "1"), (True, False, False, True)),
        ((True, False, True, False), (True, False, True, False)),  # MAM's field table
        ((False, True, False, True), (False, True, False, True)),
        (("true", "false", "TRUE", "False"), (True, False, True, False)),
        ((1.0, 0.0, 0, 0), (True, False, False, False)),
        ((0, None, None, None), (False, False, False, False)),  # null: not granted
    ],
)
async def test_lookup_accepts_every_flag_shape(
    session: aiohttp.ClientSession,
    mocked: Any,
    values: tuple[object, ...],
    expected: tuple[bool, ...],
) -> None:
    row = dict(zip(("free", "personal_freeleech", "vip", "fl_vip"), values, strict=True))
    mocked.post(SEARCH_URL, payload=found(row | {"id": "42"}))
    flags = await make_client(session).async_lookup_hash(HASH)
    assert flags is not None
    assert (flags.free, flags.personal_freeleech, flags.vip, flags.fl_vip) == expected
    assert flags.id == 42


async def test_lookup_missing_optional_flags_are_false(
    session: aiohttp.ClientSession, mocked: Any
) -> None:
    """MAM's own doc example has no personal_freeleech: absent means not granted (paid side)."""
    mocked.post(SEARCH_URL, payload=found({"id": 1, "free": "0", "vip": "0"}))
    assert await make_client(session).async_lookup_hash(HASH) == mam.TorrentFlags(
        False, False, False, False, 1
    )


@pytest.mark.parametrize("torrent_id", [None, "abc", True, -5, 0, "0", 1.5, "12a"])
async def test_lookup_odd_torrent_id_is_none(
    session: aiohttp.ClientSession, mocked: Any, torrent_id: object
) -> None:
    mocked.post(SEARCH_URL, payload=found({"free": 1, "id": torrent_id}))
    flags = await make_client(session).async_lookup_hash(HASH)
    assert flags is not None
    assert flags.free is True
    assert flags.id is None


@pytest.mark.parametrize(
    "payload",
    [
        {"error": "Nothing returned, out of 0"},
        {"error": "Nothing returned, out of 1"},  # Prowlarr matches this one too
        found(),  # an empty page
    ],
)
async def test_lookup_nothing_returned_is_none(
    session: aiohttp.ClientSession, mocked: Any, payload: dict[str, Any]
) -> None:
    mocked.post(SEARCH_URL, payload=payload)
    assert await make_client(session).async_lookup_hash(HASH) is None


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("<html>maintenance</html>", "not answer the search with JSON"),
        ("[1, 2]", "is a list"),
        ('{"data": "none"}', "no 'data' list"),
        ('{"data": [1]}', "row is a int"),
        ('{"data": [{"id": 1, "vip": 1}]}', "no 'free' flag"),
        ('{"data": [{"free": 2}]}', "'free' is not 0 or 1"),
        ('{"data": [{"free": "yes"}]}', "'free' is not 0 or 1"),
        ('{"data": [{"free": 0, "vip": [1]}]}', "'vip' is not 0 or 1"),
        ('{"data": [{"free": 0}, {"free": 1}]}', "matched 2 torrents"),
        ('{"error": "Search is disabled"}', "refused the search: Search is disabled"),
        ('{"error": 42}', "refused the search: 42"),
        ("[" * 100_000, "not answer the search with JSON"),
    ],
)
async def test_lookup_malformed_answers_are_payload_errors(
    session: aiohttp.ClientSession, mocked: Any, body: str, match: str
) -> None:
    mocked.post(SEARCH_URL, body=body, content_type="application/json")
    with pytest.raises(MamPayloadError, match=match):
        await make_client(session).async_lookup_hash(HASH)


async def test_lookup_error_text_is_scrubbed(session: aiohttp.ClientSession, mocked: Any) -> None:
    mocked.post(
        SEARCH_URL,
        payload={"error": f"Bad session {COOKIE} (mam_id={COOKIE})"},
        headers={"Set-Cookie": f"mam_id={NEW_COOKIE}; path=/"},
    )
    with pytest.raises(MamPayloadError) as info:
        await make_client(session).async_lookup_hash(HASH)
    assert COOKIE not in str(info.value)
    assert str(info.value).count("***") == 2


async def test_lookup_plain_text_error_is_an_auth_error(
    session: aiohttp.ClientSession, mocked: Any
) -> None:
    mocked.post(SEARCH_URL, body=f"Error, you are not signed in {COOKIE}", content_type="text/html")
    with pytest.raises(MamAuthError) as info:
        await make_client(session).async_lookup_hash(HASH)
    assert COOKIE not in str(info.value)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        HASH[:-1],
        HASH + "0",
        "g" * 40,
        "0" * 64,  # a BitTorrent v2 hash: MAM's are v1
        f" {HASH[1:]}",
        f"{HASH[:-1]}\n",
        "\uff10" * 40,  # fullwidth digits are not hex digits (re.ASCII)
        None,
        int(HASH, 16),
    ],
)
async def test_lookup_validates_the_hash_before_sending(
    session: aiohttp.ClientSession, mocked: Any, bad: Any
) -> None:
    with pytest.raises(mam.InvalidInfoHashError, match="40 hexadecimal") as info:
        await make_client(session).async_lookup_hash(bad)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, MamError)
    assert sent(mocked) == []


async def test_lookup_oversized_answer_is_refused(
    session: aiohttp.ClientSession, mocked: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mam, "MAX_SEARCH_BYTES", 1024)
    mocked.post(
        SEARCH_URL,
        payload=found(PACKRAT_ROW | {"description": "x" * 100_000}),
        headers={"Set-Cookie": f"mam_id={NEW_COOKIE}; path=/"},
    )
    rotations = Rotations()
    client = make_client(session, on_cookie_rotated=rotations)
    with pytest.raises(MamPayloadError, match="search answer larger than 1 KiB"):
        await client.async_lookup_hash(HASH)
    assert rotations.values == [NEW_COOKIE]


async def test_lookup_429_backs_off_every_request(
    session: aiohttp.ClientSession, mocked: Any
) -> None:
    mocked.post(SEARCH_URL, status=429, body="Too many")
    clock = Clock()
    stored: list[datetime] = []

    async def on_rate_limited(until: datetime) -> None:
        stored.append(until)

    client = make_client(session, clock=clock, on_rate_limited=on_rate_limited)
    with pytest.raises(MamRateLimitedError) as info:
        await client.async_lookup_hash(HASH)
    assert info.value.retry_at == T0 + timedelta(minutes=30)
    assert stored == [T0 + timedelta(minutes=30)]
    for request in (client.async_lookup_hash(OTHER_HASH), client.async_get_account()):
        with pytest.raises(MamRateLimitedError):
            await request
    assert len(sent(mocked)) == 1  # the back-off stops lookups and polls alike


# -- freeleech lookups end to end: the simulator over real HTTP --------------------------------


@pytest.mark.parametrize("style", ["int", "str", "bool"])
async def test_sim_lookup_every_flag_shape(
    sim: MamSimulator, session: aiohttp.ClientSession, style: str
) -> None:
    sim.state.search_flag_style = style
    sim.add_torrent(HASH, vip=True, fl_vip=True, torrent_id=273200)
    sim.add_torrent(OTHER_HASH, free=True, personal_freeleech=True)
    rotations = Rotations()
    client = sim_client(sim, session, on_cookie_rotated=rotations)
    assert await client.async_lookup_hash(HASH) == mam.TorrentFlags(
        False, False, True, True, 273200
    )
    other = await client.async_lookup_hash(OTHER_HASH.upper())
    assert other is not None
    assert (other.free, other.personal_freeleech, other.vip, other.fl_vip) == (
        True,
        True,
        False,
        False,
    )
    assert sim.last_search is not None
    assert sim.last_search["tor"] == {
        "hash": OTHER_HASH,
        "searchType": "all",
        "searchIn": "torrents",
    }
    assert sim.last_search["perpage"] == 5
    assert sim.searches == {HASH: 1, OTHER_HASH: 1}
    assert sim.requests["tor/js/loadSearchJSONbasic.php"] == 2
    assert len(rotations.values) == 2  # each answer rotated the session, each was persisted
    assert sim.valid_cookies == {client.mam_id}


async def test_sim_lookup_unknown_hash_is_none(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    sim.add_torrent(HASH, free=True)
    client = sim_client(sim, session)
    assert await client.async_lookup_hash(OTHER_HASH) is None
    assert sim.searches == {OTHER_HASH: 1}
    assert client.mam_id in sim.valid_cookies  # "Nothing returned" rotates the cookie too


async def test_sim_lookup_auth_failure(sim: MamSimulator, session: aiohttp.ClientSession) -> None:
    client = sim_client(sim, session)
    sim.invalidate_all_cookies()
    with pytest.raises(MamAuthError, match="not signed in"):
        await client.async_lookup_hash(HASH)


async def test_sim_lookup_429_stops_lookups_and_polls(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    sim.add_torrent(HASH, free=True)
    clock = Clock()
    client = sim_client(sim, session, clock=clock)
    sim.fail_next(429)
    with pytest.raises(MamRateLimitedError):
        await client.async_lookup_hash(HASH)
    for request in (client.async_lookup_hash(HASH), client.async_get_account()):
        with pytest.raises(MamRateLimitedError):
            await request
    assert sim.requests.total() == 1
    assert sim.searches == {HASH: 1}
    clock.now += timedelta(minutes=30)
    flags = await client.async_lookup_hash(HASH)
    assert flags is not None
    assert flags.free
    assert sim.searches == {HASH: 2}


async def test_sim_lookups_and_polls_share_one_request_in_flight(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    """Rotation: each request must carry the cookie the previous one was handed."""
    sim.state.delay = 0.02
    sim.add_torrent(HASH, free=True)
    client = sim_client(sim, session)
    results = await asyncio.gather(
        *(client.async_lookup_hash(HASH) if n % 2 else client.async_get_account() for n in range(6))
    )
    assert len(results) == 6
    assert sim.max_in_flight == 1
    assert sim.searches == {HASH: 3}
    assert sim.requests["jsonLoad.php"] == 3


async def test_sim_oversized_search_answer_keeps_the_rotated_cookie(
    sim: MamSimulator, session: aiohttp.ClientSession
) -> None:
    sim.add_torrent(HASH, title="x" * (300 * 1024))
    rotations = Rotations()
    client = sim_client(sim, session, on_cookie_rotated=rotations)
    with pytest.raises(MamPayloadError, match="larger than 256 KiB"):
        await client.async_lookup_hash(HASH)
    assert sim.valid_cookies == set(rotations.values) == {client.mam_id}
