"""The real qBittorrent fixture works and aioqbt can drive it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aioqbt.api import AddFormBuilder, InfoFilter
from aioqbt.client import APIClient

from tests.support.qbt_daemon import QbtDaemon
from tests.support.torrents import MAM_ANNOUNCE, bencode, make_torrent


def test_bencode_known_values() -> None:
    assert bencode({"b": 1, "a": [b"x", "yz"]}) == b"d1:al1:x2:yze1:bi1ee"


async def test_daemon_login_version_add_and_read_back(
    qbittorrent: QbtDaemon, qbt_api: APIClient, tmp_path: Path
) -> None:
    assert qbittorrent.startup_s < 30
    version = await qbt_api.app.version()
    assert version.startswith("v4.")
    torrent = make_torrent(tmp_path / "data", "book.m4b", 5000, torrent_id=42)
    form = (
        AddFormBuilder.with_client(qbt_api)
        .include_file(torrent.blob, "book.torrent")
        .savepath(qbittorrent.inner(torrent.data_dir))
        .tags(["audiobook"])
        .skip_checking(True)
        .build()
    )
    await qbt_api.torrents.add(form)
    for _ in range(100):
        infos = await qbt_api.torrents.info(filter=InfoFilter.SEEDING)
        if infos:
            break
        await asyncio.sleep(0.1)
    assert [t.hash for t in infos] == [torrent.info_hash]
    assert infos[0].name == "book.m4b"
    assert [tag.strip() for tag in infos[0].tags] == ["audiobook"]
    trackers = [t.url for t in await qbt_api.torrents.trackers(torrent.info_hash)]
    assert MAM_ANNOUNCE in trackers
