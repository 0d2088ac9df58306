"""The demo stack: MAM simulator, real qBittorrents and a real Home Assistant, supervised.

1. the MAM simulator (in this process) with the realistic rules pages, account ``FixtureUser``;
2. ``qbittorrent-nox`` (``tests.support.qbt_daemon``), one per qBittorrent client of the account
   (SPEC §12; ``--clients N``, see :func:`demo_clients`). The first, "Home" (the host's 4.5.2),
   has the nine real torrents of :data:`DEMO_TORRENTS`: two paid MAM downloads, one
   freeleech-tagged MAM download, three untagged MAM downloads that MAM's search says are free
   for the account (freeleech, personal freeleech, VIP), two MAM seeds and one download from
   another tracker. Each further one ("Seedbox", the 5.x build of the trixie chroot when
   ``scripts/setup`` built it, else another 4.5.2) has :data:`SEEDBOX_TORRENTS`: one paid MAM
   download and one MAM seed. Their queue and upload limits are set low so an emergency visibly
   raises them. Every MAM torrent is registered at the simulator's search with its flags, so
   mam_guard's freeleech lookups (SPEC §11) get MAM's answers;
3. Home Assistant (``hass -c <dir>/config --skip-pip``) on 127.0.0.1 only, with trusted_networks
   (a browser on this machine needs no password), the YAML dashboard ``dashboards/mam_guard.yaml``
   and an automation from the notify blueprint. Onboarding and the mam_guard config entry go
   through HA's REST API like the UI's do (see :func:`write_ha_config` for the two things seeded
   in ``.storage`` instead): the config flow adds the account with its first qBittorrent, the
   subentry flow (*Add qBittorrent client*) each further one; a week of ratio statistics is
   imported so the graph has a history.

While the demo runs, :meth:`Stack.supervise` watches the child processes: Home Assistant exiting
ends the demo with its log tail; a qBittorrent exiting (a crash, an OOM kill, someone's ``kill``)
is reported with its exit status and log, and it is started again with the same profile and
port, so its torrents and settings come back and mam_guard finishes whatever it could not do
meanwhile. After :data:`QBT_MAX_RESTARTS` such restarts of one qBittorrent the demo stops
instead: a demo whose qBittorrent keeps dying would only show errors. An outage on purpose (the
e2e's "qBittorrent down" step) goes through :meth:`Stack.stop_qbittorrent` and
:meth:`Stack.restart_qbittorrent` and is not reported.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import contextlib
import ctypes
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
import json
import os
from pathlib import Path
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import aiohttp
from aioqbt.client import APIClient, create_client

from mam_simulator import MamSimulator
from tests.support.mam_pages import default_pages
from tests.support.qbt_daemon import (
    TRIXIE_ROOT,
    QbtDaemon,
    available_flavours,
    free_port,
    start_qbt,
    stop_process,
)
from tests.support.qbt_helpers import add_torrents, wait_states
from tests.support.torrents import MAM_ANNOUNCE, OTHER_ANNOUNCE, TorrentFile, make_torrent

REPO = Path(__file__).resolve().parents[2]
HASS = REPO / ".venv" / "bin" / "hass"
PREFIX = "mam_fixtureuser"  # entity id prefix: "MAM " + the simulator's username FixtureUser
RATIO_ENTITY = f"sensor.{PREFIX}_ratio"
EMERGENCY_ENTITY = f"binary_sensor.{PREFIX}_ratio_emergency"
QBT_ENTITIES = (f"sensor.{PREFIX}_seeding_allocation", f"sensor.{PREFIX}_stalled_mam_torrents")
# A qBittorrent client's entities (SPEC §12), on its own device: the unique_id ends with the key.
CLIENT_KEYS = (
    "seeding_allocation",
    "stalled_torrents",
    "frozen_torrents",
    "forced_torrents",
    "qbittorrent_connected",
)
SUBENTRY_QBITTORRENT = "qbittorrent"
MAX_CLIENTS = 4
AUTOMATION_ENTITY = "automation.mam_guard_emergency_notification"
DASHBOARD_PATH = "mam-guard"
QBT_MAX_RESTARTS = 3  # unexpected exits of one qBittorrent the demo recovers from (supervise)
DEMO_COOKIE = "demo-session-cookie"
HA_USER, HA_PASSWORD = "demo", "demo-password"
GiB = 1024**3

# The simulated account: healthy first, below 1.00 during the emergency, above it afterwards.
ACCOUNT_NORMAL: dict[str, Any] = {
    "ratio": 1.18,
    "uploaded_bytes": 826 * GiB,
    "downloaded_bytes": 700 * GiB,
    "seedbonus": 23_450,
    "wedges": 4,
    "vip_until": "2027-03-01 00:00:00",
    "unsat_count": 12,
    "unsat_limit": 50,
}
# MAM's ratio is uploaded / downloaded: the bytes always agree with it (826 / 852 = 0.97,
# 954 / 852 = 1.12), so the buffer and upload-needed sensors tell the same story as the ratio.
ACCOUNT_EMERGENCY: dict[str, Any] = {
    "ratio": 0.97,
    "uploaded_bytes": 826 * GiB,
    "downloaded_bytes": 852 * GiB,
}
ACCOUNT_RECOVERED: dict[str, Any] = {
    "ratio": 1.12,
    "uploaded_bytes": 954 * GiB,
    "downloaded_bytes": 852 * GiB,
}

# The purchase scenario (``--scenario purchase``, the e2e's "purchase" step): with the option
# "Buy upload credit" on "To end a ratio emergency" and enough points, a drop to 0.95 makes MAM
# Guard buy upload credit in the poll that declares the emergency, and the next poll ends it.
PURCHASE_OPTIONS: dict[str, Any] = {"upload_credit": "emergency"}
PURCHASE_OPTIONS_OFF: dict[str, Any] = {"upload_credit": "off"}
ACCOUNT_PURCHASE_POINTS: dict[str, Any] = {"seedbonus": 61_250}
ACCOUNT_PURCHASE_EMERGENCY: dict[str, Any] = {
    "ratio": 0.95,
    "uploaded_bytes": 878 * GiB,
    "downloaded_bytes": 924 * GiB,
}
# What it buys: the smallest whole GB, at least 50, that lifts the ratio to the threshold (1.00)
# + margin (0) + 0.01 (MAM shows two decimals): 1.01 x 924 - 878 = 55.24 -> 56 GB, 500 points
# a GB. The simulator then reports 934 / 924 = 1.01: above 1.00, so the next poll ends it.
PURCHASE_GB = 56
PURCHASE_COST = 56 * 500
# After the e2e's purchase step: uploads bring the ratio back to 1.12, the points stay spent.
ACCOUNT_AFTER_PURCHASE: dict[str, Any] = {"ratio": 1.12, "uploaded_bytes": 1035 * GiB}

# qBittorrent preferences before any emergency: low enough that the raise to 50 is visible.
QBT_PREFS: dict[str, Any] = {
    "max_active_downloads": 8,
    "max_active_uploads": 4,
    "max_active_torrents": 10,
    "up_limit": 512_000,  # bytes/s; the alternative speed limits are switched on as well
}


@dataclass(frozen=True)
class DemoTorrent:
    """One torrent of the demo, what MAM's search says about it and what the emergency must do.

    ``role``: ``freeze`` (a paid MAM download: stopped and tagged), ``spare`` (an untagged MAM
    download MAM says is free for this account: keeps running, no tag), ``exempt`` (a MAM
    download with an exempt tag: left alone), ``seed`` (force-started), ``other`` (not MAM: left
    alone). ``flags`` are the search flags the simulator answers with (SPEC §11: ``free``,
    ``personal_freeleech``, ``vip``, ``fl_vip``; none: paid). ``reason`` is why mam_guard freezes
    or spares the download (``get_status``: ``emergency.frozen.reasons``, ``emergency.spared``).
    """

    name: str
    role: str  # "freeze" | "spare" | "exempt" | "seed" | "other"
    tracker: str = MAM_ANNOUNCE
    tags: tuple[str, ...] = ()
    size: int = 8 * 1024**2
    flags: tuple[str, ...] = ()
    reason: str = ""

    @property
    def seeding(self) -> bool:
        """Seeds have their data on disk; the others stay downloading (no peers exist)."""
        return self.role == "seed"

    @property
    def on_mam(self) -> bool:
        """A MAM torrent: registered at the simulator's search."""
        return self.tracker == MAM_ANNOUNCE

    @property
    def looked_up(self) -> bool:
        """mam_guard asks MAM about it: a MAM download (SPEC §11: incomplete MAM torrents only)."""
        return self.on_mam and not self.seeding


# The simulated account's class is VIP (the simulator's default, and the account has VIP until
# 2027): VIP torrents are free for it, so the VIP download is spared (reason "vip").
DEMO_TORRENTS = (
    DemoTorrent("MAM paid download - The Long Earth.m4b", "freeze", reason="paid"),
    DemoTorrent("MAM paid download - Piranesi.m4b", "freeze", reason="paid"),
    DemoTorrent(
        "MAM freeleech download - Dune.m4b",
        "exempt",
        tags=("freeleech",),
        flags=("free",),
        reason="exempt_tag",
    ),
    DemoTorrent("MAM untagged freeleech - Hyperion.m4b", "spare", flags=("free",), reason="free"),
    DemoTorrent(
        "MAM personal freeleech (wedge) - Foundation.m4b",
        "spare",
        flags=("personal_freeleech",),
        reason="personal_fl",
    ),
    DemoTorrent("MAM VIP torrent - Neuromancer.m4b", "spare", flags=("vip",), reason="vip"),
    DemoTorrent("MAM seed - Project Hail Mary.m4b", "seed", size=4 * 1024**2),
    DemoTorrent("MAM seed - The Martian.m4b", "seed", size=4 * 1024**2),
    DemoTorrent("Other tracker - debian-netinst.iso", "other", tracker=OTHER_ANNOUNCE),
)
# Each further qBittorrent (a seedbox): one paid MAM download and one MAM seed.
SEEDBOX_TORRENTS = (
    DemoTorrent("MAM paid download - Children of Time.m4b", "freeze", reason="paid"),
    DemoTorrent("MAM seed - Station Eleven.m4b", "seed", size=4 * 1024**2),
)


@dataclass(frozen=True)
class DemoClient:
    """One qBittorrent client of the demo account: its name in HA, its build, its torrents."""

    name: str  # the subentry's title and its device's name (form field "name")
    flavour: str  # "4" (the host's 4.5.2) or "5" (the trixie chroot's 5.x): tests.support
    torrents: tuple[DemoTorrent, ...]


def demo_clients(count: int, flavours: list[str] | None = None) -> tuple[DemoClient, ...]:
    """The first client "Home" (4.5.2, every demo torrent), then "Seedbox", "Seedbox 3", ....

    The seedboxes run qBittorrent 5.x when the trixie chroot has it (``scripts/setup``), so the
    demo shows both API generations at once; else 4.5.2 again. Torrent names are unique over all
    clients (the account's lists name them together).
    """
    if not 1 <= count <= MAX_CLIENTS:
        raise ValueError(f"--clients must be 1 to {MAX_CLIENTS}, not {count}")
    have = available_flavours() if flavours is None else flavours
    seedbox_flavour = "5" if "5" in have else "4"
    clients = [DemoClient("Home", "4", DEMO_TORRENTS)]
    for number in range(2, count + 1):
        name = "Seedbox" if number == 2 else f"Seedbox {number}"
        suffix = "" if number == 2 else f" ({name})"
        torrents = tuple(
            replace(t, name=t.name.replace(".m4b", f"{suffix}.m4b")) for t in SEEDBOX_TORRENTS
        )
        clients.append(DemoClient(name, seedbox_flavour, torrents))
    return tuple(clients)


@dataclass
class Client:
    """A running qBittorrent of the demo and what HA made of it."""

    spec: DemoClient
    port: int
    qbt: QbtDaemon | None = None
    torrents: dict[str, DemoTorrent] = field(default_factory=dict)  # info hash -> torrent
    subentry_id: str = ""  # the config subentry (type qbittorrent) HA made for it
    entities: dict[str, str] = field(default_factory=dict)  # CLIENT_KEYS -> entity id
    down_on_purpose: bool = False  # stop_qbittorrent(): the supervisor stays quiet
    restarts: int = 0  # after an unexpected exit (see Stack.supervise)

    @property
    def name(self) -> str:
        """Its name in HA (the subentry's title, the device's name)."""
        return self.spec.name

    @property
    def daemon(self) -> QbtDaemon:
        """The running qBittorrent."""
        assert self.qbt is not None
        return self.qbt

    @property
    def slug(self) -> str:
        """For file names: "home", "seedbox", "seedbox-3"."""
        return self.name.lower().replace(" ", "-")

    def log_path(self) -> Path:
        """qBittorrent's own log (its stdout says little), or its stdout when there is none."""
        own = self.daemon.workdir / "profile" / "qBittorrent" / "data" / "logs" / "qbittorrent.log"
        return own if own.exists() else self.daemon.log_path


CONFIGURATION_YAML = """\
# Written by scripts/demo/stack.py for the mam_guard demo; the whole folder is thrown away.
homeassistant:
  name: MAM Guard demo
  country: US
  currency: USD
  unit_system: metric
  time_zone: UTC
  auth_providers:
    - type: trusted_networks  # first: a browser on this machine is logged in without a password
      trusted_networks: [127.0.0.1/32, "::1/128"]
      allow_bypass_login: true
    - type: homeassistant
# http (127.0.0.1:{port} only) is in .storage/http: HA 2026.10 moved it out of YAML.
frontend:
recorder:
  commit_interval: 1
  purge_keep_days: 1
history:
logbook:
automation:
  - id: mam_guard_demo_notify
    alias: MAM Guard emergency notification
    use_blueprint:
      path: mam_guard/notify_emergency.yaml
      input:
        notify_action:
          - action: persistent_notification.create
            data:
              notification_id: mam_guard_emergency
              title: "{{{{ title }}}}"
              message: "{{{{ message }}}}"
lovelace:
  dashboards:
    {dashboard}:
      mode: yaml
      filename: dashboards/mam_guard.yaml
      title: MAM Guard
      icon: mdi:shield-half-full
      show_in_sidebar: true
logger:
  default: warning
  logs:
    custom_components.mam_guard: info
"""


def log(message: str) -> None:
    """Progress on stderr, prefixed like scripts/setup does."""
    print(f"[demo] {message}", file=sys.stderr, flush=True)


def pick_port(preferred: int, *, fixed: bool) -> int:
    """``preferred`` when it is free on 127.0.0.1 (and ``fixed``), else any free port."""
    if fixed:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # Like the servers themselves: a port in TIME_WAIT (a run just stopped) is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", preferred))
            except OSError:
                log(f"port {preferred} is busy, using a free one")
            else:
                return preferred
    return free_port()


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask the kernel to SIGTERM the child when this launcher dies (even by SIGKILL)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class HaError(RuntimeError):
    """Home Assistant answered something unexpected."""


class HomeAssistant:
    """A ``hass`` child process and a small REST/websocket client for it."""

    def __init__(self, config: Path, port: int, log_path: Path) -> None:
        """Nothing runs until :meth:`start`."""
        self.config = config
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.session: aiohttp.ClientSession | None = None
        self.token = ""  # long-lived access token
        self.refresh_token = ""  # from onboarding, client_id = base + "/" (browser fallback)

    @property
    def http(self) -> aiohttp.ClientSession:
        """The client session (exists once started)."""
        assert self.session is not None
        return self.session

    async def start(self) -> None:
        """Spawn hass in its own session (Ctrl-C reaches only the launcher, which stops it)."""
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        with self.log_path.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                str(HASS),
                "-c",
                str(self.config),
                "--skip-pip",
                "--log-no-color",
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    async def stop(self, grace: float = 40.0) -> None:
        """SIGTERM (HA shuts down cleanly and writes its storage); SIGKILL after ``grace`` s."""
        if self.session is not None:
            await self.session.close()
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), grace)
        except TimeoutError:
            log("Home Assistant did not stop in time: killing it")
            self.proc.kill()
            await self.proc.wait()

    def exited(self) -> str | None:
        """How the hass process ended ("exited with 1", "was killed by SIGKILL"), None if alive."""
        if self.proc is None or self.proc.returncode is None:
            return None
        return _how_it_ended(self.proc.returncode)

    def log_tail(self, lines: int = 12) -> str:
        """The last lines of hass's output, indented for the launcher's log."""
        tail = self.log_path.read_text(errors="replace").strip().splitlines()[-lines:]
        return "  " + "\n  ".join(tail)

    def check_alive(self) -> None:
        """Raise HaError with the end of its log when the hass process has exited."""
        if (how := self.exited()) is not None:
            raise HaError(
                f"Home Assistant {how}; {self.log_path.name} ends with:\n{self.log_tail()}"
            )

    async def wait_up(self, within: float = 120.0) -> None:
        """Wait until the HTTP server answers (onboarding views need no auth)."""
        deadline = time.monotonic() + within
        while True:
            self.check_alive()
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self.http.get(f"{self.base}/api/onboarding") as resp:
                    if resp.status == 200:
                        return
            if time.monotonic() > deadline:
                raise HaError(f"Home Assistant did not answer within {within:.0f} s")
            await asyncio.sleep(0.5)

    # -- REST ---------------------------------------------------------------------------------

    def _headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    async def request(
        self, method: str, path: str, body: Any = None, *, token: str | None = None
    ) -> Any:
        """JSON request with the long-lived token; raises HaError on a non-2xx answer."""
        async with self.http.request(
            method, self.base + path, json=body, headers=self._headers(token)
        ) as resp:
            text = await resp.text()
            if resp.status >= 300:
                raise HaError(f"{method} {path} -> {resp.status}: {text[:500]}")
            return json.loads(text) if text else None

    async def state(self, entity_id: str) -> dict[str, Any] | None:
        """``/api/states/<entity_id>``, None while the entity does not exist."""
        async with self.http.get(
            f"{self.base}/api/states/{entity_id}", headers=self._headers()
        ) as resp:
            if resp.status == 404:
                return None
            if resp.status != 200:
                raise HaError(f"GET state {entity_id} -> {resp.status}")
            data: dict[str, Any] = await resp.json()
            return data

    async def call(self, domain: str, service: str, data: dict[str, Any]) -> None:
        """Call an action (service) and wait for it to finish."""
        await self.request("POST", f"/api/services/{domain}/{service}", data)

    async def get_status(self) -> dict[str, Any]:
        """mam_guard's ``get_status`` action and its response (``?return_response`` over REST)."""
        reply = await self.request("POST", "/api/services/mam_guard/get_status?return_response", {})
        status: dict[str, Any] = reply["service_response"]
        return status

    async def update_entity(self, *entity_ids: str) -> None:
        """``homeassistant.update_entity``: for mam_guard entities, an immediate poll."""
        await self.call("homeassistant", "update_entity", {"entity_id": list(entity_ids)})

    async def ws_command(self, command: dict[str, Any], *, token: str | None = None) -> Any:
        """Run one websocket command and return its result."""
        async with self.http.ws_connect(f"{self.base}/api/websocket") as ws:
            await ws.receive_json()  # auth_required
            await ws.send_json({"type": "auth", "access_token": token or self.token})
            if (reply := await ws.receive_json())["type"] != "auth_ok":
                raise HaError(f"websocket auth failed: {reply}")
            await ws.send_json({"id": 1, **command})
            reply = await ws.receive_json()
        if not reply.get("success"):
            raise HaError(f"websocket {command['type']} failed: {reply}")
        return reply["result"]

    # -- setup --------------------------------------------------------------------------------

    async def onboard(self) -> None:
        """Onboarding over REST (core_config is pre-seeded, see write_ha_config).

        Keeps a long-lived token for everything else and the onboarding refresh token (its
        client_id is the frontend's) for the browser fallback.
        """
        client_id = f"{self.base}/"
        async with self.http.post(
            f"{self.base}/api/onboarding/users",
            json={
                "client_id": client_id,
                "name": "Demo",
                "username": HA_USER,
                "password": HA_PASSWORD,
                "language": "en",
            },
        ) as resp:
            if resp.status != 200:
                raise HaError(f"onboarding/users -> {resp.status}: {await resp.text()}")
            auth_code = (await resp.json())["auth_code"]
        async with self.http.post(
            f"{self.base}/auth/token",
            data={"grant_type": "authorization_code", "code": auth_code, "client_id": client_id},
        ) as resp:
            tokens = await resp.json()
        access, self.refresh_token = tokens["access_token"], tokens["refresh_token"]
        await self.request("POST", "/api/onboarding/analytics", token=access)
        await self.request(
            "POST",
            "/api/onboarding/integration",
            {"client_id": client_id, "redirect_uri": f"{self.base}/?auth_callback=1"},
            token=access,
        )
        self.token = await self.ws_command(
            {
                "type": "auth/long_lived_access_token",
                "client_name": "mam_guard demo",
                "lifespan": 30,
            },
            token=access,
        )

    async def wait_running(self, within: float = 90.0) -> dict[str, Any]:
        """Wait for the core state RUNNING; refuse recovery mode (the frontend is missing)."""
        deadline = time.monotonic() + within
        while True:
            self.check_alive()
            config: dict[str, Any] = await self.request("GET", "/api/config")
            if config.get("recovery_mode"):
                raise HaError("Home Assistant started in recovery mode (is hass_frontend missing?)")
            if config.get("state") == "RUNNING":
                await self.ws_command({"type": "get_services"})  # the frontend's first need
                return config
            if time.monotonic() > deadline:
                raise HaError(f"Home Assistant is still {config.get('state')} after {within} s")
            await asyncio.sleep(0.5)

    async def add_mam_guard(self, user_input: dict[str, Any]) -> str:
        """Run mam_guard's config flow (step user) like the UI does; return the entry id."""
        flow = await self.request(
            "POST", "/api/config/config_entries/flow", {"handler": "mam_guard"}
        )
        if flow.get("type") != "form" or flow.get("step_id") != "user":
            raise HaError(f"unexpected first flow step: {flow}")
        result = await self.request(
            "POST", f"/api/config/config_entries/flow/{flow['flow_id']}", user_input
        )
        if result.get("type") != "create_entry":
            raise HaError(f"the config flow did not create an entry: {result}")
        entry_id: str = result["result"]["entry_id"]
        return entry_id

    async def add_qbittorrent(self, entry_id: str, user_input: dict[str, Any]) -> None:
        """Add a qBittorrent client to the entry through its subentry flow, as the UI does.

        The entry's *Add qBittorrent client* button: ``POST .../subentries/flow`` with the
        handler ``[entry_id, "qbittorrent"]`` shows the form, posting the form creates the
        subentry (its id is not in the answer: see :meth:`subentries`).
        """
        flow = await self.request(
            "POST",
            "/api/config/config_entries/subentries/flow",
            {"handler": [entry_id, SUBENTRY_QBITTORRENT]},
        )
        if flow.get("type") != "form" or flow.get("step_id") != "user":
            raise HaError(f"unexpected first subentry flow step: {flow}")
        result = await self.request(
            "POST", f"/api/config/config_entries/subentries/flow/{flow['flow_id']}", user_input
        )
        if result.get("type") != "create_entry":
            raise HaError(f"the subentry flow did not add the qBittorrent: {result}")

    async def subentries(self, entry_id: str) -> list[dict[str, Any]]:
        """The entry's subentries (subentry_id, subentry_type, title, unique_id)."""
        found: list[dict[str, Any]] = await self.ws_command(
            {"type": "config_entries/subentries/list", "entry_id": entry_id}
        )
        return found

    async def devices(self) -> list[dict[str, Any]]:
        """The device registry."""
        found: list[dict[str, Any]] = await self.ws_command({"type": "config/device_registry/list"})
        return found

    async def registry_entities(self) -> list[dict[str, Any]]:
        """The entity registry."""
        found: list[dict[str, Any]] = await self.ws_command({"type": "config/entity_registry/list"})
        return found

    async def set_options(self, entry_id: str, changes: dict[str, Any]) -> None:
        """Change options through mam_guard's options flow, as the UI's *Configure* does.

        The form comes in sections (emergency, vip_points, rules, purchases), each prefilled with
        the entry's values; like the frontend, this sends every field back, with ``changes``
        (flat option keys) applied in whichever section holds them. The entry stores them flat
        and reloads (OptionsFlowWithReload): this waits until it is loaded again with new
        entities, which also means its first poll ran.
        """
        before = await self.state(RATIO_ENTITY)
        flow = await self.request(
            "POST", "/api/config/config_entries/options/flow", {"handler": entry_id}
        )
        if flow.get("type") != "form":
            raise HaError(f"unexpected options flow step: {flow}")
        user_input: dict[str, dict[str, Any]] = {}
        left = dict(changes)
        for section in flow["data_schema"]:
            if section.get("type") != "expandable":
                raise HaError(f"options form field outside a section: {section}")
            values = {field["name"]: field.get("default") for field in section["schema"]}
            for key in values.keys() & left.keys():
                values[key] = left.pop(key)
            user_input[section["name"]] = values
        if left:
            raise HaError(f"the options form has no field {sorted(left)}")
        result = await self.request(
            "POST", f"/api/config/config_entries/options/flow/{flow['flow_id']}", user_input
        )
        if result.get("type") != "create_entry":
            raise HaError(f"the options flow did not save: {result}")
        # The reload removes and adds the entities again: a new state object for the ratio.
        old = None if before is None else before["last_updated"]
        await self.wait_entity(RATIO_ENTITY, lambda s: s["last_updated"] != old, within=60)
        await self.wait_state(RATIO_ENTITY, _is_number)

    @contextlib.asynccontextmanager
    async def events(self, event_type: str) -> AsyncIterator[list[dict[str, Any]]]:
        """Collect the bus events of ``event_type`` while the block runs (websocket)."""
        seen: list[dict[str, Any]] = []
        # A session of its own: the shared one's 30 s total timeout is for requests.
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{self.base}/api/websocket") as ws,
        ):
            await ws.receive_json()  # auth_required
            await ws.send_json({"type": "auth", "access_token": self.token})
            if (reply := await ws.receive_json())["type"] != "auth_ok":
                raise HaError(f"websocket auth failed: {reply}")
            await ws.send_json({"id": 1, "type": "subscribe_events", "event_type": event_type})
            if not (reply := await ws.receive_json()).get("success"):
                raise HaError(f"subscribe_events failed: {reply}")

            async def read() -> None:
                async for msg in ws:
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        data = json.loads(msg.data)
                        if data.get("type") == "event":
                            seen.append(data["event"])

            reader = asyncio.create_task(read())
            try:
                yield seen
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader

    async def wait_state(
        self, entity_id: str, accept: Callable[[str], bool], *, within: float = 60.0
    ) -> dict[str, Any]:
        """Poll an entity until ``accept(state)``; HaError with the last state at the deadline."""
        return await self.wait_entity(entity_id, lambda s: accept(s["state"]), within=within)

    async def wait_entity(
        self,
        entity_id: str,
        accept: Callable[[dict[str, Any]], bool],
        *,
        within: float = 60.0,
    ) -> dict[str, Any]:
        """Poll an entity until ``accept(its state object)``; HaError at the deadline."""
        deadline = time.monotonic() + within
        last: dict[str, Any] | None = None
        while True:
            self.check_alive()
            last = await self.state(entity_id)
            if last is not None and accept(last):
                return last
            if time.monotonic() > deadline:
                shown = None if last is None else last["state"]
                raise HaError(f"{entity_id} still {shown!r} after {within:.0f} s")
            await asyncio.sleep(0.5)


def _how_it_ended(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with {returncode}"


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


class Stack:
    """The services of the demo, started and stopped together."""

    def __init__(
        self,
        workdir: Path,
        *,
        ha_port: int,
        sim_port: int,
        qbt_ports: list[int],
        clients: tuple[DemoClient, ...] | None = None,
    ) -> None:
        """Plan the stack in ``workdir`` (one qBittorrent per client and port); :meth:`start`."""
        self.dir = workdir
        self.ha_port = ha_port
        self.sim = MamSimulator()
        self.sim_port = sim_port
        specs = clients if clients is not None else demo_clients(len(qbt_ports))
        if len(specs) != len(qbt_ports):
            raise ValueError(f"{len(specs)} clients but {len(qbt_ports)} qBittorrent ports")
        self.clients = [Client(spec, port) for spec, port in zip(specs, qbt_ports, strict=True)]
        self.ha = HomeAssistant(workdir / "config", ha_port, workdir / "logs" / "hass.out")
        self.entry_id = ""

    @property
    def first(self) -> Client:
        """The account's first qBittorrent (the one the config flow's own form adds)."""
        return self.clients[0]

    @property
    def daemon(self) -> QbtDaemon:
        """The first qBittorrent."""
        return self.first.daemon

    @property
    def torrents(self) -> dict[str, DemoTorrent]:
        """Every demo torrent, over all clients: info hash -> torrent."""
        return {h: t for client in self.clients for h, t in client.torrents.items()}

    @property
    def qbt_restarts(self) -> int:
        """Restarts after unexpected exits, over all clients (see :meth:`supervise`)."""
        return sum(client.restarts for client in self.clients)

    async def start(self) -> None:
        """Bring everything up; HA starts first (the slowest) while the others get ready."""
        if self.dir.exists():
            if any(self.dir.iterdir()) and not (self.dir / "pids").exists():
                raise HaError(f"{self.dir} is not an earlier demo folder: not deleting it")
            await asyncio.to_thread(stop_leftovers, self.dir)
            shutil.rmtree(self.dir)
        (self.dir / "logs").mkdir(parents=True)
        self.record_pid("launcher", os.getpid())  # also marks the folder as ours
        write_ha_config(self.dir / "config", self.ha_port)
        await self.ha.start()
        assert self.ha.proc is not None
        self.record_pid("hass", self.ha.proc.pid)
        log(f"Home Assistant starting (log: {self.ha.log_path.relative_to(REPO)})")
        await self.start_simulator()
        for client in self.clients:  # each blocks ~0.2 s: a Ctrl-C then still finds it
            self.start_qbittorrent(client)
        await asyncio.gather(*(self.add_torrents(client) for client in self.clients))
        await self.ha.wait_up()
        await self.ha.onboard()
        token_file = self.dir / "token"
        token_file.touch(mode=0o600)
        token_file.write_text(self.ha.token + "\n")
        await self.ha.wait_running()
        log("Home Assistant is running and onboarded; adding mam_guard through its config flow")
        self.entry_id = await self.ha.add_mam_guard(
            {
                "mam_id": DEMO_COOKIE,
                **self.client_form(self.first),
                "advanced": {"mam_base_url": self.sim.base_url},
            }
        )
        for client in self.clients[1:]:
            await self.ha.add_qbittorrent(self.entry_id, self.client_form(client))
            log(f"qBittorrent {client.name!r} added through the subentry flow")
        await self.find_subentries()
        await self.ha.wait_state(RATIO_ENTITY, _is_number)
        await self.ha.wait_state(EMERGENCY_ENTITY, lambda s: s in {"on", "off"})
        await self.find_client_entities()
        await self.seed_ratio_history()

    @staticmethod
    def client_form(client: Client) -> dict[str, Any]:
        """A qBittorrent's fields of the setup form and of *Add qBittorrent client*."""
        return {
            "name": client.name,
            "qbt_url": client.daemon.url,
            "qbt_username": client.daemon.username,
            "qbt_password": client.daemon.password,
            "qbt_verify_ssl": True,
        }

    async def find_subentries(self) -> None:
        """Note each client's subentry id (the flows' answers do not say it)."""
        by_title = {
            s["title"]: s["subentry_id"]
            for s in await self.ha.subentries(self.entry_id)
            if s["subentry_type"] == SUBENTRY_QBITTORRENT
        }
        for client in self.clients:
            client.subentry_id = by_title.get(client.name, "")
        if missing := [c.name for c in self.clients if not c.subentry_id]:
            raise HaError(f"no qBittorrent subentry for {missing}; the entry has {by_title}")

    async def find_client_entities(self, within: float = 60.0) -> None:
        """Note each client's entities (CLIENT_KEYS), from the entity registry.

        They are on the client's own device, in its subentry; the unique_id ends with the key.
        A client whose entities do not all appear within ``within`` s is logged (the e2e checks
        then say what is missing) rather than ending the demo.
        """
        deadline = time.monotonic() + within
        while True:
            entities = await self.ha.registry_entities()
            for client in self.clients:
                mine = [
                    e
                    for e in entities
                    if e.get("config_entry_id") == self.entry_id
                    and e.get("config_subentry_id") == client.subentry_id
                ]
                client.entities = {
                    key: e["entity_id"]
                    for key in CLIENT_KEYS
                    for e in mine
                    if str(e.get("unique_id", "")).endswith(f"_{key}")
                }
            missing = {
                c.name: sorted(set(CLIENT_KEYS) - c.entities.keys())
                for c in self.clients
                if len(c.entities) < len(CLIENT_KEYS)
            }
            if not missing:
                return
            if time.monotonic() > deadline:
                log(f"qBittorrent clients still without all their entities: {missing}")
                return
            await asyncio.sleep(0.5)

    async def seed_ratio_history(self, hours: int = 7 * 24) -> None:
        """A week of hourly ratio statistics, so the week's graph is not a lone dot at first.

        Demo data only (the config is thrown away): the ratio drifted down from 1.31 towards
        today's value, which is what makes a ratio emergency plausible. Uses the recorder's
        ``recorder/import_statistics`` websocket command, as HA's own statistics tools do.
        """
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        start_value, end_value = 1.31, float(ACCOUNT_NORMAL["ratio"])
        stats = []
        for i in range(hours):
            value = round(start_value + (end_value - start_value) * i / (hours - 1), 3)
            start = now - timedelta(hours=hours - i)
            stats.append({"start": start.isoformat(), "mean": value, "min": value, "max": value})
        await self.ha.ws_command(
            {
                "type": "recorder/import_statistics",
                "metadata": {
                    "has_mean": True,
                    "mean_type": 1,  # arithmetic
                    "has_sum": False,
                    "name": None,
                    "source": "recorder",
                    "statistic_id": RATIO_ENTITY,
                    "unit_class": None,
                    "unit_of_measurement": None,
                },
                "stats": stats,
            }
        )

    async def stop(self) -> None:
        """Stop HA first (it may still talk to the others), then qBittorrent, then the simulator.

        A qBittorrent of the trixie chroot works in the chroot's /tmp: its logs are copied to
        ``<dir>/logs`` first, then its folder is removed.
        """
        with contextlib.suppress(Exception):
            await self.ha.stop()
        running = [c.qbt for c in self.clients if c.qbt is not None]
        await asyncio.gather(*(asyncio.to_thread(stop_process, q.proc) for q in running))
        for client in self.clients:
            if client.qbt is not None and client.qbt.chroot is not None:
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(self.keep_logs, client)
                await asyncio.to_thread(shutil.rmtree, client.qbt.workdir, True)
        await self.sim.stop()

    def keep_logs(self, client: Client) -> None:
        """Copy a chroot qBittorrent's logs into ``<dir>/logs`` (its folder is removed)."""
        daemon = client.daemon
        for source in {daemon.log_path, client.log_path()}:
            if source.exists():
                shutil.copyfile(source, self.dir / "logs" / f"{client.slug}-{source.name}")

    async def start_simulator(self) -> None:
        """The MAM fake in this process: account FixtureUser, realistic pages, cookie rotation."""
        self.sim.add_cookie(DEMO_COOKIE)
        self.sim.pages = default_pages()
        self.set_account(ACCOUNT_NORMAL)
        await self.sim.start("127.0.0.1", self.sim_port)
        log(f"MAM simulator on {self.sim.base_url}")

    def start_qbittorrent(self, client: Client) -> None:
        """A hermetic qbittorrent-nox (every peer protocol off, trackers unreachable).

        The 4.5.2 one works in ``<dir>/qbittorrent`` (the first client) or
        ``<dir>/qbittorrent-<name>``; the chroot's 5.x one in the chroot's /tmp, noted in
        ``<dir>/chroot-workdirs`` for :func:`stop_leftovers`.
        """
        workdir = self.dir / (
            "qbittorrent" if client is self.first else f"qbittorrent-{client.slug}"
        )
        client.qbt = start_qbt(workdir, port=client.port, flavour=client.spec.flavour)
        if client.qbt.chroot is not None:
            with (self.dir / "chroot-workdirs").open("a") as noted:
                noted.write(f"{client.qbt.workdir}\n")
        self.record_pid(f"qbittorrent-{client.slug}", client.qbt.proc.pid)
        build = "5.x, trixie chroot" if client.spec.flavour == "5" else "4.5.2"
        log(
            f"qBittorrent {client.name!r} ({build}) on {client.qbt.url} "
            f"(started in {client.qbt.startup_s:.1f} s)"
        )

    def client(self, client: Client | None) -> Client:
        """``client``, or the first one."""
        return self.first if client is None else client

    async def stop_qbittorrent(self, client: Client | None = None) -> None:
        """Stop a qBittorrent on purpose (an outage to show); the supervisor does not restart it."""
        client = self.client(client)
        client.down_on_purpose = True
        await asyncio.to_thread(stop_process, client.daemon.proc)
        log(f"qBittorrent {client.name!r} stopped on purpose (an outage)")

    async def restart_qbittorrent(self, client: Client | None = None, within: float = 30.0) -> None:
        """Start a qBittorrent again with the same command line: same profile, port and torrents.

        ``start_qbt`` would rewrite qBittorrent.conf, losing the preferences set since (the
        demo's, or an emergency's): a restart must find them as a real restart would.
        """
        client = self.client(client)
        daemon = client.daemon
        home = daemon.inner(daemon.workdir)
        with daemon.log_path.open("ab") as out:
            proc = subprocess.Popen(  # noqa: S603, ASYNC220 - our own argv; returns at once
                daemon.proc.args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - a prctl call, no Python
                env={**os.environ, "HOME": home, "QBT_CONFIRM_LEGAL_NOTICE": "1"},
            )
        daemon.proc = proc
        self.record_pid(f"qbittorrent-{client.slug}", proc.pid)
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                if proc.poll() is not None:
                    raise HaError(
                        f"qBittorrent {client.name!r} exited at once (rc {proc.returncode}): "
                        f"see {daemon.log_path}"
                    )
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(f"{daemon.url}/api/v2/app/version"):
                        break  # any answer (403 before login): the Web UI is up
                if time.monotonic() > deadline:
                    raise HaError(
                        f"qBittorrent {client.name!r} did not come back within {within:.0f} s"
                    )
                await asyncio.sleep(0.1)
        client.down_on_purpose = False
        log(
            f"qBittorrent {client.name!r} started again "
            f"(pid {proc.pid}, same profile, port and torrents)"
        )

    def qbt_log(self, client: Client | None = None) -> Path:
        """A qBittorrent's own log (its stdout says little), or its stdout when there is none."""
        return self.client(client).log_path()

    async def supervise(self, interval: float = 1.0) -> None:
        """Watch the children until cancelled; raise HaError when the demo cannot go on.

        Home Assistant exiting ends the demo. A qBittorrent exiting unexpectedly is reported
        with its exit status and log, then it is started again (see the module docstring).
        """
        while True:
            await asyncio.sleep(interval)
            if (ha_how := self.ha.exited()) is not None:
                log(
                    f"Home Assistant {ha_how}: the demo cannot go on. "
                    f"{self.ha.log_path.relative_to(REPO)} ends with:\n{self.ha.log_tail()}"
                )
                raise HaError(f"Home Assistant {ha_how}")
            for client in self.clients:
                proc = client.daemon.proc
                if proc.poll() is None or client.down_on_purpose:
                    continue
                how = _how_it_ended(proc.returncode)
                qbt_log = client.log_path()
                tail = qbt_log.read_text(errors="replace").strip().splitlines()[-3:]
                log(
                    f"qBittorrent {client.name!r} (pid {proc.pid}) {how}. Until it is back, "
                    "mam_guard cannot reach it (during an emergency its protection sensor says "
                    f"so). {shown_path(qbt_log)} ends with:\n  " + "\n  ".join(tail)
                )
                if client.restarts >= QBT_MAX_RESTARTS:
                    raise HaError(
                        f"qBittorrent {client.name!r} died {client.restarts + 1} times: stopping "
                        f"the demo (see {shown_path(client.log_path())})"
                    )
                client.restarts += 1
                log(
                    f"starting qBittorrent {client.name!r} again "
                    f"(restart {client.restarts} of {QBT_MAX_RESTARTS})"
                )
                await self.restart_qbittorrent(client)

    @contextlib.asynccontextmanager
    async def qbt_client(self, client: Client | None = None) -> AsyncIterator[APIClient]:
        """A logged-in aioqbt client (the unsafe jar keeps the SID cookie for an IP host)."""
        daemon = self.client(client).daemon
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            api = await create_client(
                daemon.url + "/api/v2/", daemon.username, daemon.password, http=session
            )
            async with api:
                yield api

    async def add_torrents(self, client: Client) -> None:
        """Set the demo prefs, add the client's torrents and wait until they download or seed."""
        data = client.daemon.workdir / "data"
        groups: dict[tuple[tuple[str, ...], bool], list[TorrentFile]] = {}
        for spec in client.spec.torrents:
            made = make_torrent(
                data, spec.name, spec.size, tracker=spec.tracker, with_data=spec.seeding
            )
            client.torrents[made.info_hash] = spec
            groups.setdefault((spec.tags, spec.seeding), []).append(made)
            if spec.on_mam:  # before mam_guard first sees it: its one lookup finds it
                self.sim.add_torrent(
                    made.info_hash,
                    free="free" in spec.flags,
                    personal_freeleech="personal_freeleech" in spec.flags,
                    vip="vip" in spec.flags,
                    fl_vip="fl_vip" in spec.flags,
                    title=spec.name.removesuffix(".m4b"),
                )
        async with self.qbt_client(client) as api:
            await api.app.set_preferences(QBT_PREFS)
            await api.transfer.set_speed_limits_mode(1)  # alternative speed limits on
            for (tags, _seeding), files in groups.items():
                await add_torrents(api, client.daemon, files, tags=tags)
            await wait_states(
                api,
                {
                    h: {"stalledUP", "uploading"} if t.seeding else {"stalledDL", "downloading"}
                    for h, t in client.torrents.items()
                },
            )
        log(f"qBittorrent {client.name!r} has {len(client.torrents)} demo torrents")

    def unanswered(self, status: dict[str, Any]) -> list[str]:
        """The MAM downloads mam_guard has not looked up yet (its ``get_status`` response given).

        Answered means: the simulator received a search for each of them and mam_guard's queue
        is empty (``freeleech.queued`` 0: every answer is recorded).
        """
        searched = {h.lower() for h, n in self.sim.searches.items() if n}
        missing = [
            s.name for h, s in self.torrents.items() if s.looked_up and h.lower() not in searched
        ]
        queued = (status.get("freeleech") or {}).get("queued")
        return missing if queued == 0 else [*missing, f"{queued} queued in mam_guard"]

    async def wait_lookups(self, within: float = 120.0) -> bool:
        """Wait until mam_guard knows what MAM says about every demo download (SPEC §11).

        Lookups go out at least 5 s apart, so this takes about 5 s per download after setup.
        Then a qBittorrent poll (the heartbeat) updates the paid downloads sensor. False when
        the deadline passed first (the freeze then counts the unknown ones as paid, and gives
        each back at the heartbeat after its answer arrives).
        """
        deadline = time.monotonic() + within
        while missing := self.unanswered(await self.ha.get_status()):
            if time.monotonic() > deadline:
                log(f"MAM's answers still missing after {within:.0f} s: {missing}")
                return False
            await asyncio.sleep(1)
        await self.poll_qbittorrent()
        return True

    def record_pid(self, name: str, pid: int) -> None:
        """Note a child in ``<dir>/pids`` so scripts/e2e can make sure none outlives the run."""
        with (self.dir / "pids").open("a") as pids:
            pids.write(f"{pid} {name}\n")

    def set_account(self, values: dict[str, Any]) -> None:
        """Change the simulated MAM account (what the next poll sees)."""
        for key, value in values.items():
            setattr(self.sim.state, key, value)

    async def set_options(self, changes: dict[str, Any]) -> None:
        """Change mam_guard's options through its options flow (the entry reloads)."""
        await self.ha.set_options(self.entry_id, changes)
        log(f"options saved through the options flow: {changes} (MAM Guard reloaded)")

    def qbt_poll_entities(self) -> list[str]:
        """Entities whose ``update_entity`` polls qBittorrent: each client's own sensors.

        The account's sensors of the same keys are totals over the clients; their update alone
        need not poll any qBittorrent, so each client's seeding allocation is updated too.
        """
        own = [e for c in self.clients if (e := c.entities.get("seeding_allocation"))]
        return [*QBT_ENTITIES, *own]

    async def poll_qbittorrent(self) -> None:
        """Make mam_guard poll every qBittorrent now (its heartbeat) instead of in a minute."""
        await self.ha.update_entity(*self.qbt_poll_entities())

    async def poll_now(self) -> None:
        """Make mam_guard poll MAM and qBittorrent now instead of in up to 5 minutes."""
        await self.ha.update_entity(RATIO_ENTITY)
        await asyncio.sleep(2)  # the emergency acts right after the account poll
        await self.poll_qbittorrent()


def shown_path(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(REPO))
    return str(path)


def stop_leftovers(workdir: Path) -> None:
    """Stop children of an earlier run in ``workdir`` that outlived it (its launcher was killed).

    Only pids listed in ``<workdir>/pids`` whose command line still names ``workdir`` (or, for a
    qBittorrent of the trixie chroot, its folder there, noted in ``<workdir>/chroot-workdirs``)
    are touched; those folders are removed afterwards.
    """
    pids_file = workdir / "pids"
    if not pids_file.exists():
        return
    noted = workdir / "chroot-workdirs"
    chroot_dirs = [Path(line) for line in noted.read_text().split()] if noted.exists() else []
    markers = [str(workdir)] + [
        "/" + str(d.relative_to(TRIXIE_ROOT)) for d in chroot_dirs if d.is_relative_to(TRIXIE_ROOT)
    ]
    for line in pids_file.read_text().splitlines():
        pid, name = int(line.split()[0]), line.split()[1]
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # gone
        if name == "launcher":
            if "scripts.demo" in cmdline and pid != os.getpid():
                raise HaError(f"a demo is still running in {workdir} (pid {pid}): stop it first")
            continue
        if not any(marker in cmdline for marker in markers):
            continue  # the pid was reused by something else
        log(f"stopping a leftover process of an earlier run: {pid} {cmdline[:80]}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                time.sleep(0.1)
                os.kill(pid, 0)
            os.kill(pid, signal.SIGKILL)
    for folder in chroot_dirs:
        shutil.rmtree(folder, ignore_errors=True)


def write_ha_config(config: Path, port: int) -> None:
    """configuration.yaml plus links to the repo's integration, dashboard and blueprint."""
    (config / "custom_components").mkdir(parents=True)
    (config / "custom_components" / "mam_guard").symlink_to(REPO / "custom_components/mam_guard")
    (config / "dashboards").symlink_to(REPO / "dashboards")
    blueprints = config / "blueprints" / "automation" / "mam_guard"
    blueprints.mkdir(parents=True)
    (blueprints / "notify_emergency.yaml").symlink_to(
        REPO / "blueprints/automation/mam_guard/notify_emergency.yaml"
    )
    (config / "configuration.yaml").write_text(
        CONFIGURATION_YAML.format(port=port, dashboard=DASHBOARD_PATH)
    )
    # Onboarding's core_config step does nothing but start config flows for google_translate,
    # met, radio_browser and shopping_list, whose packages are not in .venv (errors and broken
    # entries in the demo). So that step is marked done here; user, analytics and integration go
    # through REST (HomeAssistant.onboard).
    storage = config / ".storage"
    storage.mkdir()
    _write_store(storage, "onboarding", (4, 1), {"done": ["core_config"]})
    # Since 2026.10 the http settings live in .storage/http; YAML `http:` would only be a "pending"
    # trial that HA reverts to the default (0.0.0.0:8123) after 5 minutes unless someone confirms
    # it in the UI. So the demo's settings are stored as the confirmed ("stable") ones, in the
    # shape HA's HTTP_STORAGE_SCHEMA gives them (importing it here would cost 3 s).
    http = {
        "server_host": ["127.0.0.1"],
        "server_port": port,
        "cors_allowed_origins": ["https://cast.home-assistant.io"],
        "login_attempts_threshold": -1,
        "ip_ban_enabled": True,
        "ssl_profile": "modern",
        "use_x_frame_options": True,
        "created_at": datetime.now(UTC).isoformat(),
        "error": None,
        "error_message": None,
    }
    _write_store(
        storage, "http", (2, 2), {"stable": http, "pending": None, "yaml_migration_done": True}
    )


def _write_store(storage: Path, key: str, version: tuple[int, int], data: object) -> None:
    """A file of HA's .storage as helpers.storage.Store writes it."""
    major, minor = version
    body = {"version": major, "minor_version": minor, "key": key, "data": data}
    (storage / key).write_text(json.dumps(body, indent=2))
