"""QbtAdapter against real qBittorrent 4.5.2 and 5.x daemons (no mocks)."""

from __future__ import annotations

import ssl

import aiohttp
from aioqbt.client import APIClient
import pytest

from custom_components.mam_guard.lib.engine import STALLED_STATES, plannable
from custom_components.mam_guard.lib.qbt import (
    QbtAdapter,
    QbtAuthError,
    QbtConnectionError,
    QbtError,
    QbtSnapshot,
    _tags,
    is_mam_url,
    redact_url,
)
from tests.support.qbt_daemon import QbtDaemon, free_port
from tests.support.qbt_helpers import add_torrents, data_dir, eventually, wait_states
from tests.support.torrents import MAM_ANNOUNCE, OTHER_ANNOUNCE, make_torrent

LOOKALIKE = "https://myanonamouse.net.evil.example/announce"
SUBSTRING = "https://notmyanonamouse.net/announce"
BARE_MAM = "http://myanonamouse.net:8080/announce?passkey=x"


@pytest.fixture
async def adapter(qbittorrent_any: QbtDaemon, http: aiohttp.ClientSession) -> QbtAdapter:
    d = qbittorrent_any
    qbt = QbtAdapter(http, d.url, d.username, d.password)
    await qbt.connect()
    return qbt


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (MAM_ANNOUNCE, True),
        (BARE_MAM, True),
        ("https://T.MyAnonamouse.NET./x", True),
        (LOOKALIKE, False),
        (SUBSTRING, False),
        (OTHER_ANNOUNCE, False),
        ("", False),
        ("not a url", False),
        ("http://[::1/x", False),
    ],
)
def test_is_mam_url_matches_hostname(url: str, expected: bool) -> None:
    assert is_mam_url(url) is expected


async def test_connect_returns_version(
    qbittorrent_any: QbtDaemon, http: aiohttp.ClientSession
) -> None:
    d = qbittorrent_any
    qbt = QbtAdapter(http, d.url + "/", d.username, d.password)
    version = await qbt.connect()
    assert version.startswith(f"{d.flavour}.")
    assert qbt.api_version is not None
    assert qbt.api_version >= (2, 8, 0)
    assert qbt.request_count == 3
    await qbt.close()
    assert not http.closed  # the injected session belongs to the caller


async def test_bad_password_is_auth_error(
    qbittorrent_any: QbtDaemon, http: aiohttp.ClientSession
) -> None:
    qbt = QbtAdapter(http, qbittorrent_any.url, qbittorrent_any.username, "wrong")
    with pytest.raises(QbtAuthError):
        await qbt.connect()


async def test_missing_credentials_is_auth_error(
    qbittorrent_any: QbtDaemon, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(QbtAuthError):
        await QbtAdapter(http, qbittorrent_any.url, None, None).connect()


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}", "not a url", "http://"])
async def test_unreachable_is_connection_error(http: aiohttp.ClientSession, url: str) -> None:
    qbt = QbtAdapter(http, url.format(port=free_port()), "u", "p", timeout=5)
    with pytest.raises(QbtConnectionError):
        await qbt.connect()
    with pytest.raises(QbtConnectionError):  # calls connect lazily, same error
        await qbt.sync()


async def test_sync_detects_mam_by_tracker_host_and_strips_tags(
    qbittorrent_any: QbtDaemon, adapter: QbtAdapter, api: APIClient
) -> None:
    data = data_dir(qbittorrent_any)
    mam = make_torrent(data, "mam.m4b")
    bare = make_torrent(data, "bare.m4b", tracker=BARE_MAM)
    others = [
        make_torrent(data, "other.m4b", tracker=OTHER_ANNOUNCE),
        make_torrent(data, "lookalike.m4b", tracker=LOOKALIKE),
        make_torrent(data, "substring.m4b", tracker=SUBSTRING),
    ]
    await add_torrents(api, qbittorrent_any, [mam, bare, *others], tags=["Alpha", "beta two"])

    async def all_listed() -> QbtSnapshot | None:
        snap = await adapter.sync()
        return snap if len(snap.torrents) == 5 else None

    snap = await eventually(all_listed)
    assert {h for h, t in snap.torrents.items() if t.is_mam} == {mam.info_hash, bare.info_hash}
    for t in snap.torrents.values():
        assert t.tags == frozenset({"Alpha", "beta two"})
        assert t.progress == 1.0
        assert t.added_on > 0
    assert snap.torrents[mam.info_hash].name == "mam.m4b"
    assert [t.hash for t in snap.mam()] != []


async def test_incremental_sync_tag_change_and_removal(
    qbittorrent_any: QbtDaemon, adapter: QbtAdapter, api: APIClient
) -> None:
    data = data_dir(qbittorrent_any)
    keep, gone = (
        make_torrent(data, "keep.m4b"),
        make_torrent(data, "gone.m4b", tracker=OTHER_ANNOUNCE),
    )
    await add_torrents(api, qbittorrent_any, [keep, gone])

    async def both() -> QbtSnapshot | None:
        snap = await adapter.sync()
        return snap if len(snap.torrents) == 2 and snap.torrents[keep.info_hash].is_mam else None

    first = await eventually(both)
    kept_before = first.torrents[keep.info_hash]
    await api.torrents.add_tags([keep.info_hash], ["late"])
    await api.torrents.delete([gone.info_hash], delete_files=False)

    async def changed() -> QbtSnapshot | None:
        snap = await adapter.sync()
        return (
            snap
            if gone.info_hash not in snap.torrents and snap.torrents[keep.info_hash].tags
            else None
        )

    snap = await eventually(changed)
    assert snap.torrents[keep.info_hash].tags == frozenset({"late"})
    assert snap.torrents[keep.info_hash].is_mam  # tracker map survives incremental rounds
    assert kept_before.tags == frozenset()  # a TorrentState never changes: a new one replaces it
    assert first.torrents is not snap.torrents
    assert list(first.torrents) == [keep.info_hash]  # views follow the mirror (no 20,000 copies)
    assert list(snap.torrents) == [keep.info_hash]


async def test_idle_sync_rederives_nothing_and_diffs_only_what_changed(
    qbittorrent_any: QbtDaemon, adapter: QbtAdapter, api: APIClient
) -> None:
    """Incremental mirror: an empty diff, or one touching only fields we do not read, keeps every
    TorrentState object; a tag change re-derives that torrent alone (the old mirror rebuilt
    every torrent and re-parsed every tag string on each sync)."""
    data = data_dir(qbittorrent_any)
    seeds = [make_torrent(data, f"s{i}.m4b", 1000 + i) for i in range(3)]
    download = make_torrent(data, "dl.m4b", 50_000, with_data=False)
    other = make_torrent(data, "o.iso", 2000, tracker=OTHER_ANNOUNCE)
    await add_torrents(api, qbittorrent_any, [*seeds, other])
    await add_torrents(api, qbittorrent_any, [download])
    await wait_states(
        api,
        {t.info_hash: {"stalledUP", "queuedUP"} for t in [*seeds, other]}
        | {download.info_hash: {"stalledDL", "queuedDL", "metaDL", "downloading"}},
    )

    async def settled() -> QbtSnapshot | None:
        snap = await adapter.sync()
        ok = len(snap.torrents) == 5 and all(t.is_mam for t in snap.mam())
        return snap if ok and snap.mam_count == 4 and snap.stalled_mam >= 1 else None

    snap = await eventually(settled)
    before = dict(snap.torrents)
    again = await adapter.sync()
    assert all(again.torrents[h] is state for h, state in before.items())
    expected = {download.info_hash, *(t.info_hash for t in seeds)}  # not the non-MAM seed
    assert set(again.plannable) == {h for h, t in again.torrents.items() if plannable(t)}
    assert set(again.plannable) == expected
    assert again.mam_count == 4
    assert again.stalled_mam == sum(t.state in STALLED_STATES and t.is_mam for t in before.values())
    assert again.loading_mam == 0
    # What freeleech lookups follow: incomplete MAM torrents; the same object while unchanged.
    assert again.incomplete_mam == {download.info_hash}
    assert again.incomplete_mam is snap.incomplete_mam

    a, b = seeds[0].info_hash, seeds[1].info_hash
    await api.torrents.set_upload_limit([a], 4096)  # a field we do not mirror
    await api.torrents.add_tags([b], ["x", "y"])  # listed as "x, y"

    async def tagged() -> QbtSnapshot | None:
        snap = await adapter.sync()
        return snap if snap.torrents[b].tags else None

    after = await eventually(tagged)
    assert after.torrents[a] is before[a]
    assert after.torrents[b] is not before[b]
    assert after.torrents[b].tags == {"x", "y"}
    assert after.torrents[b].name == before[b].name  # the rest comes from the old state
    assert after.torrents[download.info_hash] is before[download.info_hash]
    assert after.incomplete_mam is again.incomplete_mam  # a tag change elsewhere: same set
    await api.torrents.delete([download.info_hash], delete_files=False)

    async def removed() -> QbtSnapshot | None:
        snap = await adapter.sync()
        return snap if download.info_hash not in snap.torrents else None

    assert (await eventually(removed)).incomplete_mam == frozenset()


async def test_tracker_map_changes_reclassify_only_those_torrents(
    qbittorrent_any: QbtDaemon, adapter: QbtAdapter, api: APIClient
) -> None:
    data = data_dir(qbittorrent_any)
    mam, plain = make_torrent(data, "m.m4b"), make_torrent(data, "p.m4b", tracker=OTHER_ANNOUNCE)
    await add_torrents(api, qbittorrent_any, [mam, plain])

    async def classified(want: dict[str, bool]) -> QbtSnapshot | None:
        snap = await adapter.sync()
        got = {h: t.is_mam for h, t in snap.torrents.items()}
        return snap if got == want else None

    await eventually(lambda: classified({mam.info_hash: True, plain.info_hash: False}))
    # The MAM URL disappears from the tracker map, the other one becomes MAM.
    await api.torrents.edit_tracker(mam.info_hash, MAM_ANNOUNCE, OTHER_ANNOUNCE + "?2")
    await api.torrents.edit_tracker(plain.info_hash, OTHER_ANNOUNCE, BARE_MAM)
    snap = await eventually(lambda: classified({mam.info_hash: False, plain.info_hash: True}))
    assert snap.mam_count == 1
    assert snap.incomplete_mam == frozenset()  # both complete: nothing to look up
    assert set(snap.plannable) <= {plain.info_hash}


async def test_a_view_is_current_until_the_next_sync_or_write(
    qbittorrent_any: QbtDaemon, http: aiohttp.ClientSession
) -> None:
    """The heartbeat's snapshot may be reused by the executor only while nothing was sent since."""
    d = qbittorrent_any
    qbt = QbtAdapter(http, d.url, d.username, d.password)
    assert not qbt.is_current(qbt.view())  # never synced
    first = await qbt.sync()
    assert qbt.is_current(first)
    assert qbt.view() is first  # no request, same object
    assert not qbt.is_current(first, max_age=-1.0)  # too old
    await qbt.get_preferences()  # a read keeps it current
    assert qbt.is_current(first)
    await qbt.set_preferences({"max_active_uploads": 9})  # any write makes it stale
    assert not qbt.is_current(first)
    second = await qbt.sync()
    assert qbt.is_current(second)
    assert not qbt.is_current(first)
    await qbt.connect()  # a new session starts over with a full sync
    assert not qbt.is_current(second)
    third = await qbt.sync()
    assert third.torrents == second.torrents
    assert qbt.torrent_names(["f" * 40]) == ["f" * 40]  # unknown: by its hash


async def test_batched_actions_are_one_request_each(
    qbittorrent_any: QbtDaemon, adapter: QbtAdapter, api: APIClient
) -> None:
    data = data_dir(qbittorrent_any)
    seeds = [make_torrent(data, f"seed{i}.m4b") for i in range(4)]
    hashes = [t.info_hash for t in seeds]
    await add_torrents(api, qbittorrent_any, seeds)
    await wait_states(api, {h: {"stalledUP", "queuedUP"} for h in hashes})
    stopped = {"pausedUP", "stoppedUP"}

    async def one_request(action: str, *args: object) -> None:
        before = adapter.request_count
        await getattr(adapter, action)(hashes, *args)
        assert adapter.request_count - before == 1, action
        before = adapter.request_count
        await getattr(adapter, action)([], *args)
        assert adapter.request_count == before, f"{action}([]) must not send a request"

    await one_request("stop")
    await wait_states(api, dict.fromkeys(hashes, frozenset(stopped)))
    await one_request("start")
    await wait_states(api, {h: {"stalledUP", "queuedUP"} for h in hashes})
    await one_request("add_tag", "mam_guard_frozen")
    await one_request("set_force_start", True)
    await wait_states(api, {h: {"forcedUP"} for h in hashes})
    await one_request("reannounce")
    infos = await api.torrents.info(hashes=hashes)
    assert all(t.force_start for t in infos)
    assert all([tag.strip() for tag in t.tags] == ["mam_guard_frozen"] for t in infos)
    await one_request("remove_tag", "mam_guard_frozen")
    await one_request("set_force_start", False)
    infos = await api.torrents.info(hashes=hashes)
    assert not any(t.force_start for t in infos)
    assert all(not [tag for tag in t.tags if tag.strip()] for t in infos)


async def test_preferences_and_alt_speed(adapter: QbtAdapter) -> None:
    before = await adapter.get_preferences()
    assert "max_active_uploads" in before
    count = adapter.request_count
    await adapter.set_preferences({})
    assert adapter.request_count == count
    await adapter.set_preferences({"max_active_uploads": before["max_active_uploads"] + 4})
    assert (await adapter.get_preferences())["max_active_uploads"] == before[
        "max_active_uploads"
    ] + 4
    assert await adapter.alt_speed_enabled() is False
    await adapter.toggle_alt_speed()
    assert await adapter.alt_speed_enabled() is True


async def test_relogin_once_after_session_loss(
    qbittorrent_any: QbtDaemon, adapter: QbtAdapter, http: aiohttp.ClientSession
) -> None:
    await adapter.sync()
    async with http.post(qbittorrent_any.url + "/api/v2/auth/logout") as resp:  # kills our SID
        assert resp.status == 200
    before = adapter.request_count
    await adapter.sync()  # 403, login, retry
    assert adapter.request_count - before == 3


async def test_api_errors_and_odd_values_map_to_typed_results(
    qbittorrent: QbtDaemon, http: aiohttp.ClientSession
) -> None:
    """Corners of the adapter: no version before a login, an HTTP error, a TLS opt-out."""
    d = qbittorrent
    qbt = QbtAdapter(http, d.url, d.username, d.password)
    assert qbt.api_version is None  # nothing sent yet
    with pytest.raises(QbtError, match="HTTP 404") as caught:
        await qbt._call(lambda c: c.request_json("GET", "torrents/no-such-endpoint"))
    assert not isinstance(caught.value, QbtAuthError | QbtConnectionError)
    await qbt.close()
    insecure = QbtAdapter(http, "https://127.0.0.1:1", None, None, verify_ssl=False)
    assert insecure._ssl is not None
    assert insecure._ssl.verify_mode is ssl.CERT_NONE


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("a, b ,", {"a", "b"}), (["x ", " ", "y"], {"x", "y"}), (None, set()), (3, set())],
)
def test_tags_from_every_shape(raw: object, expected: set[str]) -> None:
    assert _tags(raw) == expected


@pytest.mark.parametrize("value", [None, 12, b"http://u:p@h"])
def test_redact_url_never_raises_and_hides_what_it_cannot_read(value: object) -> None:
    assert redact_url(value) == "***"  # type: ignore[arg-type]
