"""The MAM simulator itself: payload shape, cookie rotation, forced failures, control API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import json
from typing import Any

import aiohttp
import pytest

from mam_simulator import NOT_SIGNED_IN, MamSimulator, human_size
from tests.support.mam_sim import TEST_COOKIE, mam_http_session, running_simulator


@pytest.fixture
async def sim(socket_enabled: None) -> AsyncIterator[MamSimulator]:
    async with running_simulator() as simulator:
        yield simulator


@pytest.fixture
async def http(socket_enabled: None) -> AsyncIterator[aiohttp.ClientSession]:
    async with mam_http_session() as session:
        yield session


async def get_account(
    sim: MamSimulator, http: aiohttp.ClientSession, cookie: str
) -> tuple[int, str | None, str]:
    """(status, rotated cookie or None, body) of one raw jsonLoad request."""
    async with http.get(
        f"{sim.base_url}/jsonLoad.php?snatch_summary",
        headers={"Cookie": f"mam_id={cookie}"},
        allow_redirects=False,
    ) as resp:
        morsel = resp.cookies.get("mam_id")
        return resp.status, morsel.value if morsel else None, await resp.text()


async def control(http: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> Any:
    async with http.request(method, url, json=body) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


def test_human_size() -> None:
    assert human_size(0) == "0.00 KiB"
    assert human_size(10 * 1024**3) == "10.00 GiB"
    assert human_size(int(1.5 * 1024**4)) == "1.50 TiB"


async def test_rotation_invalidates_the_presented_cookie(
    sim: MamSimulator, http: aiohttp.ClientSession
) -> None:
    status, new, body = await get_account(sim, http, TEST_COOKIE)
    assert status == 200
    assert new is not None
    assert new != TEST_COOKIE
    assert '"username": "FixtureUser"' in body
    assert sim.valid_cookies == {new}
    status, again, body = await get_account(sim, http, TEST_COOKIE)
    assert (status, again, body) == (403, None, NOT_SIGNED_IN)
    assert (await get_account(sim, http, new))[0] == 200


async def test_rotation_off_keeps_cookie(sim: MamSimulator, http: aiohttp.ClientSession) -> None:
    sim.state.rotate = False
    for _ in range(2):
        status, new, _body = await get_account(sim, http, TEST_COOKIE)
        assert (status, new) == (200, None)


async def test_payload_shapes(sim: MamSimulator) -> None:
    nested = sim.account_json()
    assert nested["snatch_summary"]["unsat"] == {
        "name": "Unsatisfied",
        "count": 42,
        "limit": 50,
        "size": None,
    }
    assert nested["snatch_summary"]["connectable"] == "yes"
    assert "unsat" not in nested
    assert nested["uploaded"] == "10.00 GiB"
    assert nested["vip_until"] == "2027-01-01 00:00:00"
    sim.state.nested = False
    sim.state.vip_until = None
    top = sim.account_json()
    assert "snatch_summary" not in top
    assert top["unsat"]["red"] is False
    assert top["connectable"] == "yes"
    assert "vip_until" not in top
    sim.state.vip_until_null = True
    assert sim.account_json()["vip_until"] is None


async def test_fail_queue_then_normal(sim: MamSimulator, http: aiohttp.ClientSession) -> None:
    sim.fail_next(429, count=2)
    sim.fail_next(302)
    assert (await get_account(sim, http, TEST_COOKIE))[0] == 429
    assert (await get_account(sim, http, TEST_COOKIE))[0] == 429
    async with http.get(f"{sim.base_url}/jsonLoad.php", allow_redirects=False) as resp:
        assert resp.status == 302
        assert "login.php" in resp.headers["Location"]
    assert (await get_account(sim, http, TEST_COOKIE))[
        0
    ] == 200  # forced answers consumed no cookie
    assert sim.requests["jsonLoad.php"] == 4


async def test_control_api(sim: MamSimulator, http: aiohttp.ClientSession) -> None:
    base = sim.base_url
    state = await control(
        http, "POST", f"{base}/_sim/state", {"ratio": "∞", "seedbonus": 4999, "rotate": False}
    )
    assert state["ratio"] == "∞"
    assert state["valid_cookies"] == [TEST_COOKIE]
    assert (await control(http, "GET", f"{base}/_sim/state"))["seedbonus"] == 4999
    async with http.post(f"{base}/_sim/state", json={"no_such_field": 1}) as resp:
        assert resp.status == 400

    added = await control(http, "POST", f"{base}/_sim/cookie", {"mam_id": "demo"})
    assert added == {"mam_id": "demo"}
    fresh = (await control(http, "POST", f"{base}/_sim/cookie"))["mam_id"]
    assert sim.valid_cookies == {TEST_COOKIE, "demo", fresh}
    status, _new, body = await get_account(sim, http, "demo")
    assert status == 200
    assert '"ratio": "\\u221e"' in body

    assert await control(http, "POST", f"{base}/_sim/fail", {"status": 500, "count": 1}) == {
        "queued": 1
    }
    assert (await get_account(sim, http, "demo"))[0] == 500
    assert await control(http, "GET", f"{base}/_sim/requests") == {"jsonLoad.php": 2}

    await control(http, "DELETE", f"{base}/_sim/cookie")
    assert (await get_account(sim, http, "demo"))[0] == 403


async def test_pages_are_cookie_checked(sim: MamSimulator, http: aiohttp.ClientSession) -> None:
    sim.pages["guides/"] = "<html>guides</html>"
    async with http.get(f"{sim.base_url}/guides/") as resp:
        assert resp.status == 403
    async with http.get(
        f"{sim.base_url}/guides/", headers={"Cookie": f"mam_id={TEST_COOKIE}"}
    ) as resp:
        assert resp.status == 200
        assert await resp.text() == "<html>guides</html>"
        assert resp.cookies["mam_id"].value in sim.valid_cookies
    async with http.get(f"{sim.base_url}/unknown.php") as resp:
        assert resp.status == 404
    assert sim.requests == {"guides/": 2}


async def test_malformed_set_cookie_still_rotates(
    sim: MamSimulator, http: aiohttp.ClientSession
) -> None:
    """The knob's answer is one aiohttp cannot parse, but the session rotated all the same."""
    sim.state.malformed_set_cookie = True
    with pytest.raises(aiohttp.ClientResponseError) as info:
        await get_account(sim, http, TEST_COOKIE)
    [new] = sim.valid_cookies
    assert new != TEST_COOKIE
    assert new in str(info.value)  # aiohttp quotes the raw field: what the client must scrub

    # On the wire: a complete 200 with the account, its Set-Cookie field ending in a NUL byte.
    host, port = sim.base_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET /jsonLoad.php HTTP/1.1\r\nHost: x\r\nCookie: mam_id={new}\r\n\r\n".encode())
    raw = await reader.read()  # the simulator closes the connection after a raw answer
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    [newer] = sim.valid_cookies
    assert newer != new
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"Set-Cookie: mam_id={newer}; path=/; HttpOnly\x00".encode() in head.split(b"\r\n")
    assert json.loads(body)["username"] == "FixtureUser"

    sim.state.malformed_set_cookie = False  # back to normal answers
    status, rotated, _body = await get_account(sim, http, newer)
    assert status == 200
    assert sim.valid_cookies == {rotated}
