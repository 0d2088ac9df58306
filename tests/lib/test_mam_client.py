"""MamClient: unit tests with aioresponses, then end-to-end against the simulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
import logging
from typing import Any
from unittest.mock import Mock

import aiohttp
from aioresponses import aioresponses
import pytest

from custom_components.mam_guard.lib import mam
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
