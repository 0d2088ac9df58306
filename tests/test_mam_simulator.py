"""The MAM simulator itself: payload shape, cookie rotation, forced failures, control API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
import json
from typing import Any

import aiohttp
import pytest

from mam_simulator import NOT_SIGNED_IN, MamSimulator, app, human_size
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


# -- bonusBuy.php ------------------------------------------------------------------------------

BUY = "json/bonusBuy.php/"
GIB = 1024**3
CAPTURED_UPLOAD_KEYS = {
    "success",
    "type",
    "amount",
    "seedbonus",
    "uploaded",
    "downloaded",
    "uploadFancy",
    "downloadFancy",
    "ratio",
}


async def buy(
    sim: MamSimulator, http: aiohttp.ClientSession, query: str, cookie: str | None = TEST_COOKIE
) -> tuple[int, Any]:
    """(status, decoded JSON or text) of one raw purchase request."""
    headers = {"Cookie": f"mam_id={cookie}"} if cookie else {}
    async with http.get(f"{sim.base_url}/{BUY}?{query}", headers=headers) as resp:
        text = await resp.text()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text


def vip_until(sim: MamSimulator) -> datetime:
    assert sim.state.vip_until is not None
    return datetime.strptime(sim.state.vip_until, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


async def test_upload_purchase_has_the_captured_shape_and_moves_the_account(
    sim: MamSimulator, http: aiohttp.ClientSession
) -> None:
    sim.state.rotate = False
    sim.state.seedbonus = 26512.091 + 25_000
    status, body = await buy(sim, http, "spendtype=upload&amount=50&_=1")
    assert status == 200
    assert set(body) == CAPTURED_UPLOAD_KEYS
    assert body["success"] is True
    assert (body["type"], body["amount"], body["seedbonus"]) == ("upload", 50, 26512.091)
    assert isinstance(body["seedbonus"], float)
    assert body["uploaded"] == 60 * GIB  # bytes
    assert body["downloaded"] == GIB
    assert (body["uploadFancy"], body["downloadFancy"], body["ratio"]) == (
        "60.00 GiB",
        "1.000 GiB",
        60.0,
    )
    account = sim.account_json()
    assert (account["seedbonus"], account["uploaded_bytes"], account["ratio"]) == (
        26512.091,
        60 * GIB,
        60.0,
    )
    # Any whole amount of at least 50 GB (automouse: amount=51 passed).
    status, body = await buy(sim, http, "spendtype=upload&amount=51&_=2")
    assert body["seedbonus"] == pytest.approx(26512.091 - 25_500)
    assert [(p["kind"], p["amount"], p["cost"]) for p in sim.purchases] == [
        ("upload", 50, 25_000),
        ("upload", 51, 25_500),
    ]


async def test_vip_purchase_fills_to_the_cap(
    sim: MamSimulator, http: aiohttp.ClientSession
) -> None:
    sim.state.rotate = False
    sim.state.seedbonus = 20_000
    now = datetime.now(UTC)
    sim.state.vip_until = (now + timedelta(days=20)).strftime("%Y-%m-%d %H:%M:%S")
    status, body = await buy(sim, http, "spendtype=VIP&duration=max&_=1")
    assert status == 200
    assert (body["success"], body["type"]) == (True, "VIP")
    assert body["amount"] == pytest.approx(10.0, abs=0.01)  # 70 days in weeks
    assert body["seedbonus"] == pytest.approx(20_000 - 12_500, abs=15)
    assert sim.state.seedbonus == body["seedbonus"]
    assert abs(vip_until(sim) - (now + timedelta(days=90))) < timedelta(seconds=5)
    assert sim.purchases[0]["kind"] == "vip"


async def test_vip_for_an_account_without_vip(
    sim: MamSimulator, http: aiohttp.ClientSession
) -> None:
    sim.state.rotate = False
    sim.state.seedbonus = 99_999
    sim.state.classname = "Power User"
    sim.state.vip_until = None
    _status, body = await buy(sim, http, "spendtype=VIP&duration=max")
    assert body["amount"] == pytest.approx(90 / 7, abs=0.001)
    assert body["seedbonus"] == pytest.approx(99_999 - 90 / 7 * 1250, abs=1)


@pytest.mark.parametrize(
    ("state", "query", "error"),
    [
        ({"seedbonus": 24_999}, "spendtype=upload&amount=50", "Not enough bonus, s1"),
        ({}, "spendtype=upload&amount=49", app.UPLOAD_MINIMUM_ERROR),
        ({}, "spendtype=upload&amount=50.5", app.UPLOAD_MINIMUM_ERROR),
        ({}, "spendtype=upload&amount=Max%20Affordable%20", app.UPLOAD_MINIMUM_ERROR),
        ({}, "spendtype=upload", app.UPLOAD_MINIMUM_ERROR),
        ({"classname": "User"}, "spendtype=VIP&duration=max", app.VIP_CLASS_ERROR),
        ({"classname": "Elite VIP"}, "spendtype=VIP&duration=max", app.VIP_CLASS_ERROR),
        (
            {"vip_until": "2099-01-01 00:00:00"},
            "spendtype=VIP&duration=max",
            "Min VIP is 1 week purchased for Automated methods",
        ),
        ({"seedbonus": 100}, "spendtype=VIP&duration=max", "Not enough bonus, s1"),
        ({}, "spendtype=VIP&duration=4", app.VIP_DURATION_ERROR),
        ({}, "spendtype=wedges&source=points", "Invalid spendtype"),
        ({}, "spendtype=gift&amount=100&giftTo=x", "Invalid spendtype"),
    ],
)
async def test_rejections_are_200_with_success_false(
    sim: MamSimulator,
    http: aiohttp.ClientSession,
    state: dict[str, Any],
    query: str,
    error: str,
) -> None:
    sim.state.seedbonus = 99_999
    for key, value in state.items():
        setattr(sim.state, key, value)
    before = sim.account_json()
    status, body = await buy(sim, http, query)
    assert (status, body) == (200, {"success": False, "error": error})
    assert sim.purchases == []
    after = sim.account_json()
    assert (after["seedbonus"], after["uploaded_bytes"]) == (
        before["seedbonus"],
        before["uploaded_bytes"],
    )
    assert after.get("vip_until") == before.get("vip_until")


async def test_vip_with_amount_answers_404(sim: MamSimulator, http: aiohttp.ClientSession) -> None:
    status, _body = await buy(sim, http, "spendtype=VIP&amount=max")
    assert status == 404
    assert sim.purchases == []


async def test_vip_minimum_is_seven_days_addable(
    sim: MamSimulator, http: aiohttp.ClientSession
) -> None:
    sim.state.rotate = False
    sim.state.seedbonus = 99_999
    now = datetime.now(UTC)
    sim.state.vip_until = (now + timedelta(days=83, hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    _status, body = await buy(sim, http, "spendtype=VIP&duration=max")
    assert body["error"] == app.VIP_MINIMUM_ERROR
    sim.state.vip_until = (now + timedelta(days=82, hours=23)).strftime("%Y-%m-%d %H:%M:%S")
    _status, body = await buy(sim, http, "spendtype=VIP&duration=max")
    assert body["success"] is True


async def test_purchases_need_the_session_and_rotate_it(
    sim: MamSimulator, http: aiohttp.ClientSession
) -> None:
    sim.state.seedbonus = 99_999
    assert await buy(sim, http, "spendtype=upload&amount=50", cookie=None) == (403, NOT_SIGNED_IN)
    async with http.get(
        f"{sim.base_url}/{BUY}?spendtype=upload&amount=50",
        headers={"Cookie": f"mam_id={TEST_COOKIE}"},
    ) as resp:
        assert resp.status == 200
        new = resp.cookies["mam_id"].value
    assert sim.valid_cookies == {new}
    assert (await buy(sim, http, "spendtype=upload&amount=50"))[0] == 403  # the old one died
    assert len(sim.purchases) == 1
    sim.state.seedbonus = "garbage"
    assert (await buy(sim, http, "spendtype=upload&amount=50", cookie=new))[0] == 500
    sim.fail_next(429)
    assert (await buy(sim, http, "spendtype=upload&amount=50"))[0] == 429
    assert sim.requests[BUY] == 5


async def raw_purchase(sim: MamSimulator, query: str) -> bytes:
    """One request on a plain socket (no client library that could re-send it)."""
    host, port = sim.base_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"GET /{BUY}?{query} HTTP/1.1\r\nHost: x\r\nCookie: mam_id={TEST_COOKIE}\r\n\r\n".encode()
    )
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    return raw


async def test_fault_drop_after_apply(sim: MamSimulator, http: aiohttp.ClientSession) -> None:
    state = await control(
        http,
        "POST",
        f"{sim.base_url}/_sim/state",
        {"purchase_fault": "drop_after_apply", "seedbonus": 99_999, "rotate": False},
    )
    assert state["purchase_fault"] == "drop_after_apply"
    assert await raw_purchase(sim, "spendtype=upload&amount=50") == b""  # no answer at all
    state = await control(http, "GET", f"{sim.base_url}/_sim/state")
    assert state["purchases_applied"] == 1
    assert state["purchases"][0] | {"at": None} == {
        "kind": "upload",
        "amount": 50,
        "cost": 25_000,
        "at": None,
    }
    assert state["seedbonus"] == 74_999


async def test_fault_drop_before_apply(sim: MamSimulator) -> None:
    sim.state.purchase_fault = "drop_before_apply"
    sim.state.seedbonus = 99_999
    assert await raw_purchase(sim, "spendtype=upload&amount=50") == b""
    assert sim.purchases == []
    assert sim.state.seedbonus == 99_999


async def test_fault_timeout_after_apply(sim: MamSimulator, http: aiohttp.ClientSession) -> None:
    sim.state.purchase_fault = "timeout_after_apply"
    sim.state.purchase_fault_delay = 0.5
    sim.state.seedbonus = 99_999
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(buy(sim, http, "spendtype=upload&amount=50"), 0.1)
    assert len(sim.purchases) == 1  # applied before the answer was due
    sim.state.rotate = False
    started = asyncio.get_running_loop().time()
    status, body = await buy(sim, http, "spendtype=upload&amount=50", cookie=None)
    assert status == 403  # the rotation of the lost answer killed the cookie
    sim.add_cookie(TEST_COOKIE)
    status, body = await buy(sim, http, "spendtype=upload&amount=50")
    assert (status, body["seedbonus"]) == (200, 49_999)  # answered, late
    assert asyncio.get_running_loop().time() - started >= 0.5


async def test_standalone_server_prints_how_to_use_it(
    socket_enabled: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from mam_simulator import __main__ as standalone

    task = asyncio.create_task(standalone._serve("127.0.0.1", 0, "demo-cookie", False))
    for _ in range(200):
        if "control API" in capsys.readouterr().out or task.done():
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_standalone_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from mam_simulator import __main__ as standalone

    seen: list[Any] = []

    def fake_run(coro: Any) -> None:
        seen.append(coro.cr_frame.f_locals)
        coro.close()

    monkeypatch.setattr(asyncio, "run", fake_run)
    monkeypatch.setattr("sys.argv", ["mam_simulator", "--port", "9999", "--no-rotate"])
    standalone.main()
    assert seen == [{"host": "127.0.0.1", "port": 9999, "mam_id": "demo-cookie", "rotate": False}]


# -- tor/js/loadSearchJSONbasic.php ------------------------------------------------------------

SEARCH = "tor/js/loadSearchJSONbasic.php"
HASH = "0123456789abcdef0123456789abcdef01234567"
OTHER = "f" * 40
# Row fields of a real answer, per packrat's capture (research/mam.md §1.4).
CAPTURED_ROW_KEYS = {
    "id",
    "language",
    "lang_code",
    "main_cat",
    "category",
    "mediatype",
    "maincat",
    "categories",
    "catname",
    "size",
    "numfiles",
    "vip",
    "vip_expire",
    "free",
    "personal_freeleech",
    "fl_vip",
    "title",
    "w",
    "tags",
    "author_info",
    "narrator_info",
    "series_info",
    "filetype",
    "seeders",
    "leechers",
    "added",
    "browseflags",
    "times_completed",
    "comments",
    "bookmarked",
    "my_snatched",
    "poster_type",
    "mediainfo",
    "ownership",
    "cat",
}


async def search(
    sim: MamSimulator,
    http: aiohttp.ClientSession,
    body: Any = None,
    *,
    cookie: str | None = TEST_COOKIE,
    **kwargs: Any,
) -> tuple[int, Any]:
    """(status, decoded JSON or text) of one raw search POST (JSON ``body``)."""
    headers = {"Cookie": f"mam_id={cookie}"} if cookie else {}
    method = kwargs.pop("method", "POST")
    async with http.request(
        method, f"{sim.base_url}/{SEARCH}", headers=headers, json=body, **kwargs
    ) as resp:
        text = await resp.text()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text


@pytest.mark.parametrize(
    ("style", "one", "zero"), [("int", 1, 0), ("str", "1", "0"), ("bool", True, False)]
)
async def test_search_by_hash_answers_a_captured_row(
    sim: MamSimulator, http: aiohttp.ClientSession, style: str, one: object, zero: object
) -> None:
    sim.state.search_flag_style = style
    sim.add_torrent(HASH.upper(), vip=True, fl_vip=True, torrent_id=273200, title="Book")
    status, body = await search(sim, http, {"tor": {"hash": HASH}})
    assert status == 200
    assert {key: body[key] for key in ("perpage", "start", "total", "found")} == {
        "perpage": 25,
        "start": 0,
        "total": 1,
        "found": 1,
    }
    [row] = body["data"]
    assert set(row) == CAPTURED_ROW_KEYS
    assert (row["id"], row["title"]) == (273200, "Book")
    assert (row["free"], row["personal_freeleech"], row["vip"], row["fl_vip"]) == (
        zero,
        zero,
        one,
        one,
    )
    assert type(row["free"]) is type(zero)


async def test_search_unknown_hash_answers_nothing_returned(
    sim: MamSimulator, http: aiohttp.ClientSession
) -> None:
    sim.add_torrent(HASH, free=True)
    assert await search(sim, http, {"tor": {"hash": OTHER}, "perpage": 5}) == (
        200,
        {"error": "Nothing returned, out of 0"},
    )


async def test_search_rotates_the_session_and_counts_per_hash(
    sim: MamSimulator, http: aiohttp.ClientSession
) -> None:
    ticks = iter(datetime(2026, 11, 24, 12, n, tzinfo=UTC) for n in range(10))
    sim.clock = lambda: next(ticks)
    sim.add_torrent(HASH, free=True)
    async with http.post(
        f"{sim.base_url}/{SEARCH}",
        json={"tor": {"hash": HASH}},
        headers={"Cookie": f"mam_id={TEST_COOKIE}"},
    ) as resp:
        assert resp.status == 200
        new = resp.cookies["mam_id"].value
    assert sim.valid_cookies == {new}
    assert (await search(sim, http, {"tor": {"hash": HASH}}))[0] == 403  # the old one died
    assert (await search(sim, http, {"tor": {"hash": OTHER}}, cookie=None))[0] == 403
    sim.fail_next(429)
    assert (await search(sim, http, {"tor": {"hash": OTHER}}, cookie=new))[0] == 429
    assert (await search(sim, http, {"tor": {"hash": OTHER}}, cookie=new))[0] == 200
    assert sim.searches == {HASH: 2, OTHER: 3}  # refused requests reached MAM too
    assert sim.requests[SEARCH] == 5
    assert [(at.minute, info_hash) for at, info_hash in sim.search_log] == [
        (0, HASH),
        (1, HASH),
        (2, OTHER),
        (3, OTHER),
        (4, OTHER),
    ]


async def test_search_as_form_or_query_and_without_a_hash(
    sim: MamSimulator, http: aiohttp.ClientSession
) -> None:
    sim.state.rotate = False
    for n in range(8):
        sim.add_torrent(f"{n:040x}", torrent_id=100 + n, free=n % 2 == 0)
    status, body = await search(sim, http, None, data={"tor[hash]": f"{3:040x}", "perpage": "5"})
    assert (status, [row["id"] for row in body["data"]]) == (200, [103])
    status, body = await search(sim, http, None, method="GET", params={"tor[hash]": f"{6:040x}"})
    assert [row["id"] for row in body["data"]] == [106]
    # No hash: a plain browse, newest first, one page (perpage clamped to MAM's 5..1000).
    _status, body = await search(sim, http, {"tor": {"text": ""}, "perpage": 1})
    assert [row["id"] for row in body["data"]] == [107, 106, 105, 104, 103]
    assert (body["total"], body["found"], body["perpage"]) == (8, 8, 5)
    _status, body = await search(sim, http, {"tor": "all", "perpage": "many"})
    assert len(body["data"]) == 8
    async with http.post(
        f"{sim.base_url}/{SEARCH}",
        data="{not json",
        headers={"Cookie": f"mam_id={TEST_COOKIE}", "Content-Type": "application/json"},
    ) as resp:
        assert len((await resp.json())["data"]) == 8
    assert sim.searches[""] == 3
    sim.torrents.clear()
    assert (await search(sim, http, {}))[1] == {"error": "Nothing returned, out of 0"}


async def test_search_shares_delay_and_in_flight_accounting(
    sim: MamSimulator, http: aiohttp.ClientSession
) -> None:
    sim.state.rotate = False
    sim.state.delay = 0.05
    await asyncio.gather(*(search(sim, http, {"tor": {"hash": HASH}}) for _ in range(3)))
    assert sim.max_in_flight == 3  # the simulator serves concurrently; the client must not ask so
    assert sim.searches == {HASH: 3}


async def test_torrents_control_api(sim: MamSimulator, http: aiohttp.ClientSession) -> None:
    base = sim.base_url
    listing = await control(
        http,
        "POST",
        f"{base}/_sim/torrents",
        {
            HASH.upper(): {"free": True, "id": 7, "title": "Free book"},
            OTHER: {"vip": 1, "fl_vip": True, "personal_freeleech": False},
        },
    )
    assert listing["torrents"][HASH] == {
        "free": True,
        "personal_freeleech": False,
        "vip": False,
        "fl_vip": False,
        "id": 7,
    }
    assert listing["torrents"][OTHER]["vip"] is True
    assert sim.torrents[HASH].title == "Free book"
    sim.state.rotate = False
    await search(sim, http, {"tor": {"hash": OTHER}})
    assert (await control(http, "GET", f"{base}/_sim/torrents"))["searches"] == {OTHER: 1}
    for bad in (
        {HASH: {"free": "yes"}},
        {HASH: {"gratis": True}},
        {HASH: True},
        {HASH: {"id": "seven"}},
        {HASH: {"title": 7}},
        ["not", "an", "object"],
    ):
        async with http.post(f"{base}/_sim/torrents", json=bad) as resp:
            assert resp.status == 400
    assert set(sim.torrents) == {HASH, OTHER}  # a refused body changes nothing
    cleared = await control(http, "DELETE", f"{base}/_sim/torrents")
    assert cleared == {"torrents": {}, "searches": {OTHER: 1}}
