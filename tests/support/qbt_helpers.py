"""Arranging real qBittorrent state for lib tests and benchmarks: add torrents, poll, restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import subprocess
import time
from typing import Any
import urllib.error
import urllib.parse
import urllib.request

import aiohttp
from aioqbt.api import AddFormBuilder
from aioqbt.client import APIClient, create_client

from custom_components.mam_guard.lib.emergency import EmergencyRecord
from custom_components.mam_guard.lib.engine import STOPPED_STATES
from tests.support.qbt_daemon import QbtDaemon, free_port, stop_process
from tests.support.torrents import TorrentFile

# Per torrent: "stopped" / "forced" / "running" (by state), the force_start flag, the tags.
type Observed = dict[str, tuple[str, bool, frozenset[str]]]


class Crash(BaseException):
    """Raised by :meth:`Storage.persist` to stop the executor right after (or during) a write."""


@dataclass
class Storage:
    """HA storage stand-in: JSON round-trip on every write; can 'crash' at the n-th write."""

    writes: list[dict[str, Any]] = field(default_factory=list)
    crash_after: int | None = None  # die during the n-th write (counting from 1) ...
    lose_write: bool = False  # ... before it reached the disk (True) or right after (False)

    async def persist(self, record: EmergencyRecord) -> None:
        data = json.loads(json.dumps(record.to_dict()))
        if self.crash_after is not None and len(self.writes) + 1 >= self.crash_after:
            self.crash_after = None
            if not self.lose_write:
                self.writes.append(data)
            raise Crash
        self.writes.append(data)

    def load(self) -> EmergencyRecord:
        return EmergencyRecord.from_dict(self.writes[-1] if self.writes else None)


async def observe(api: APIClient, hashes: list[str]) -> Observed:
    """Per torrent: stopped/forced/running (by state), the force_start flag, tags."""
    infos = await api.torrents.info(hashes=hashes)
    return {
        t.hash: (
            "stopped"
            if t.state in STOPPED_STATES
            else "forced"  # also waits out the state lag after set_force_start
            if t.state.startswith("forced")
            else "running",
            bool(t.force_start),
            frozenset(tag.strip() for tag in t.tags if tag.strip()),
        )
        for t in infos
    }


async def settle(api: APIClient, hashes: list[str], expected: Observed) -> None:
    """Wait until :func:`observe` shows ``expected``; fail showing the difference."""

    async def same() -> bool:
        return await observe(api, hashes) == expected

    try:
        await eventually(same, within=20)
    except AssertionError:
        observed = await observe(api, hashes)
        diff = {
            h: {"observed": observed.get(h), "expected": expected.get(h)}
            for h in sorted({*observed, *expected})
            if observed.get(h) != expected.get(h)
        }
        raise AssertionError(f"qBittorrent differs from the expectation: {diff}") from None


@asynccontextmanager
async def logged_in_client(daemon: QbtDaemon) -> AsyncIterator[APIClient]:
    """An aioqbt client on its own session (unsafe jar: the SID cookie of an IP host is kept)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        client = await create_client(
            daemon.url + "/api/v2/", daemon.username, daemon.password, http=session
        )
        assert client.api_version is not None, "login/version probe failed (cookie dropped?)"
        async with client:
            yield client


async def eventually[T](
    probe: Callable[[], Awaitable[T | None]], *, within: float = 20.0, interval: float = 0.1
) -> T:
    """Poll ``probe`` until it returns something truthy (no fixed sleeps); fail at the deadline."""
    deadline = time.monotonic() + within
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {within} s (last: {last!r})")


async def add_torrents(
    client: APIClient,
    daemon: QbtDaemon,
    torrents: Iterable[TorrentFile],
    *,
    tags: Iterable[str] = (),
    stopped: bool = False,
    skip_checking: bool | None = None,
) -> None:
    """Add in one ``torrents/add`` call; the data dir must lie under the daemon's work dir.

    ``skip_checking`` defaults to True only for torrents with data: a data-less torrent added with
    skip_checking shows ``missingFiles``, with a check it becomes a real ``stalledDL`` download.
    """
    items = list(torrents)
    if not items:
        return
    builder = AddFormBuilder.with_client(client).savepath(daemon.inner(items[0].data_dir))
    for t in items:
        builder = builder.include_file(t.blob, f"{t.info_hash}.torrent")
    tag_list = list(tags)
    if tag_list:
        builder = builder.tags(tag_list)
    if skip_checking is None:
        skip_checking = all((t.data_dir / t.name).exists() for t in items)
    builder = builder.skip_checking(skip_checking)
    if stopped:
        builder = builder.stopped(True)
    await client.torrents.add(builder.build())


async def wait_states(
    client: APIClient, expected: Mapping[str, Collection[str]], *, within: float = 30.0
) -> dict[str, str]:
    """Wait until every hash is in one of its expected states; return hash -> state."""

    async def probe() -> dict[str, str] | None:
        infos = await client.torrents.info(hashes=list(expected))
        states = {t.hash: t.state for t in infos}
        ok = all(states.get(h) in want for h, want in expected.items())
        return states if ok else None

    return await eventually(probe, within=within)


def restart_qbt(daemon: QbtDaemon, *, timeout: float = 30.0) -> QbtDaemon:
    """Stop the daemon (SIGTERM: it saves its state), start it again on the same profile and port.

    Unlike ``start_qbt`` this keeps the work dir (also inside the chroot) and does not rewrite the
    conf, so preferences, torrents and tags survive as they would across a real restart.
    """
    daemon.stop()
    return spawn_again(daemon, timeout=timeout)


def spawn_again(daemon: QbtDaemon, *, timeout: float = 30.0) -> QbtDaemon:
    """Start a stopped daemon again on its profile and Web UI port."""
    port = urllib.parse.urlsplit(daemon.url).port
    args = [
        f"--profile={daemon.inner(daemon.workdir / 'profile')}",
        f"--webui-port={port}",
        f"--torrenting-port={free_port()}",
    ]
    cmd = [*daemon.proc.args[: 3 if daemon.chroot else 1], *args]  # type: ignore[index]
    started = time.monotonic()
    with daemon.log_path.open("ab") as log_file:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={
                **os.environ,
                "HOME": daemon.inner(daemon.workdir),
                "QBT_CONFIRM_LEGAL_NOTICE": "1",
            },
        )
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"qbittorrent-nox exited rc={proc.returncode}")
        try:
            urllib.request.urlopen(daemon.url + "/api/v2/app/version", timeout=1).close()
            break
        except urllib.error.HTTPError:
            break
        except OSError:
            if time.monotonic() - started > timeout:
                stop_process(proc)
                raise TimeoutError("qbittorrent-nox did not come back") from None
            time.sleep(0.05)
    daemon.proc = proc  # the fixture's cleanup now stops the new process
    return daemon


def data_dir(daemon: QbtDaemon) -> Path:
    """Where test data must live so both flavours (host and chroot) see it."""
    return daemon.workdir / "data"
