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
