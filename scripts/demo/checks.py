"""End-to-end checks on a running demo stack (``scripts/e2e``; SPEC §2-§4, §10-§12).

The launcher (``python -m scripts.demo --exit-after-check``) starts the stack, then
:func:`run_checks` plays these steps. Each is checked through Home Assistant's REST API and
qBittorrent's API, and the dashboard (or form) it leaves is opened in headless Chromium, checked in
the rendered page and saved as a screenshot.

The account has one qBittorrent client per ``--clients`` (``scripts/e2e`` runs two: "Home",
qBittorrent 4.5.2 with the nine torrents named below, from the setup form, and "Seedbox",
qBittorrent 5.x when the trixie chroot has it, with one paid MAM download and one seed, added
through the subentry flow). Every qBittorrent check covers every client's qBittorrent (the
emergency and the recovery check each client on its own), the counts below are totals over the
clients, and each client's own sensors and ``get_status`` entry are checked against its torrents.

1. **normal**: the entry came from the REST config flow and is loaded, every dashboard entity
   exists and is available, the start was quiet (no "Invalid config" notification, no integration
   failed to set up), HA listens on 127.0.0.1 only, the rules pages were fetched; protection
   ``idle``, no emergency values shown, *Release freeze* unavailable. Screenshot ``<stem>.png``.
   Then **clients** (SPEC §12): one ``qbittorrent`` subentry per client, each a device under the
   account's (``via_device``) with its own ``seeding_allocation``, ``stalled_torrents``,
   ``frozen_torrents``, ``forced_torrents`` and ``qbittorrent_connected`` (on); the account's
   sensors of the same keys are the sums; ``get_status`` lists each client, idle.

2. **freeleech** (SPEC §11): every MAM torrent is registered at the simulator's search with its
   flags (two paid, freeleech, personal freeleech, VIP; the account's class is VIP, so VIP
   torrents are free for it). mam_guard looks each MAM download up once: the checks wait (with
   a deadline) until the simulator has received a search for each and ``get_status`` says
   ``freeleech.queued`` 0. Then: exactly one search per MAM download and none for the seeds
   (complete: never looked up), none without a hash; at least 5 s apart; the *Paid downloads*
   sensor and ``get_status``'s ``freeleech`` section say 2 (the two paid ones).
3. **emergency**: ratio 0.97 and an immediate poll. qBittorrent: the paid MAM downloads stopped
   and tagged ``mam_guard_frozen``; the three untagged downloads MAM says are free (freeleech,
   personal freeleech, VIP) still downloading, without any tag; the freeleech-tagged and the
   non-MAM download untouched; seeds force-started and tagged ``mam_guard_forced``, capacity
   raised, upload limits off. HA: protection ``protected``, the names in the ``torrents``
   attributes and ``reasons`` (``paid``) of the frozen list, ``get_status``'s
   ``emergency.frozen`` and ``emergency.spared`` (``free``, ``personal_fl``, ``vip``,
   ``exempt_tag``), *Paid downloads* 0 (nothing that costs ratio is downloading), the
   blueprint's notification; each client's seeding allocation 50, frozen = its paid downloads,
   force-started = its seeds, ``get_status`` ``emergency.clients``: each ``protected``; the
   account's sensors their sums. Screenshot ``<stem>-emergency.png`` (the list of frozen
   torrents, none of the spared ones in it).
4. **recovery**: ratio 1.12; each qBittorrent exactly as recorded before step 3; each client's
   sensors back (allocation 4, nothing frozen); *Paid downloads* 2 again.
5. **qbittorrent-down**: the first qBittorrent stopped, then ratio 0.97: the emergency is declared
   but protection says ``unreachable``, actions pending, nothing claimed frozen in it, and the
   notification says so. With several clients the others are frozen meanwhile, the reason names
   the stopped client (and only it), its *qBittorrent connected* is off and ``get_status`` says
   it is unreachable, the others protected. Screenshot ``<stem>-qbittorrent-down.png``.
   qBittorrent started again: the freeze completes (``protected``, qBittorrent as in step 3, the
   "applied" notification); then the recovery as in step 4.
6. **purchase**: *Buy upload credit* set to "To end a ratio emergency" through the options flow
   over REST (its form is in sections; the entry stores the option flat, as its diagnostics
   show) and 61,250 points; then ratio 0.95 and an immediate poll. The emergency is declared and
   qBittorrent frozen, and in the same poll MAM Guard buys upload credit: exactly one purchase at
   the simulator (``GET /_sim/state``), 56 GB for 28,000 points (the smallest amount >= 50 GB
   that lifts the ratio above threshold + margin), one ``mam_guard_purchase`` event and the
   *Last purchase* sensor (reason ``emergency``, success). The next poll reads ratio 1.01: the
   emergency ends, qBittorrent is exactly as before step 3, still one purchase. Screenshot
   ``<stem>-purchase.png`` (the Bonus points card with the purchase). Then the option is set
   back to off and the ratio rises to 1.12.
7. **hold-off**: the *Trigger freeze* button (a manual emergency, the button then unavailable),
   then the *Release freeze* button: qBittorrent exactly as before, ``hold_off_until`` about an hour
   ahead. Screenshot ``<stem>-hold-off.png``.
8. **setup-form**: Settings > Add integration > MAM Guard renders its first form without a
   "Translation error". Screenshot ``<stem>-setup-form.png``.
9. **options-form**: the integration's page shows the entry with its clients and the *Add
   qBittorrent client* button (SPEC §12); the options form of the entry, in its sections. Screenshot
   ``<stem>-options-form.png``.

At the end, the simulator still counts exactly one search per MAM download: the emergencies, the
qBittorrent restart and the two reloads of the purchase step looked nothing up again (the answers
are cached in storage; a re-check is due only for answers older than an hour).

Each check prints ``PASS``/``FAIL``; the totals go to ``--results`` for the shell script.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import itertools
import json
from pathlib import Path
import re
import sys
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import psutil  # type: ignore[import-untyped]

from scripts.demo.browser import DASHBOARD_HEIGHT, Browser, Page, chromium
from scripts.demo.stack import (
    ACCOUNT_AFTER_PURCHASE,
    ACCOUNT_EMERGENCY,
    ACCOUNT_PURCHASE_EMERGENCY,
    ACCOUNT_PURCHASE_POINTS,
    ACCOUNT_RECOVERED,
    AUTOMATION_ENTITY,
    CLIENT_KEYS,
    DASHBOARD_PATH,
    EMERGENCY_ENTITY,
    PREFIX,
    PURCHASE_COST,
    PURCHASE_GB,
    PURCHASE_OPTIONS,
    PURCHASE_OPTIONS_OFF,
    QBT_PREFS,
    RATIO_ENTITY,
    REPO,
    HomeAssistant,
    log,
)

if TYPE_CHECKING:
    from scripts.demo.stack import Client, Stack

TAG_FROZEN, TAG_FORCED = "mam_guard_frozen", "mam_guard_forced"
STOPPED_DL = {"pausedDL", "stoppedDL"}  # qBittorrent 4.x / 5.x
RAISED_TO = 50
FROZEN_SENSOR = f"sensor.{PREFIX}_frozen_torrents"
FORCED_SENSOR = f"sensor.{PREFIX}_force_started_torrents"
STATUS_SENSOR = f"sensor.{PREFIX}_ratio_status"
PROTECTION_SENSOR = f"sensor.{PREFIX}_protection"
ALLOCATION_SENSOR = f"sensor.{PREFIX}_seeding_allocation"
STALLED_SENSOR = f"sensor.{PREFIX}_stalled_mam_torrents"
ACCOUNT_DEVICE = "MAM FixtureUser"  # the entry's title: "MAM " + the simulator's username
RULES_SENSOR = f"sensor.{PREFIX}_rules_version"
LAST_PURCHASE_SENSOR = f"sensor.{PREFIX}_last_purchase"
PAID_DOWNLOADS_SENSOR = f"sensor.{PREFIX}_paid_downloads"
POINTS_SENSOR = f"sensor.{PREFIX}_bonus_points"
PURCHASE_EVENT = "mam_guard_purchase"
RELEASE_BUTTON = f"button.{PREFIX}_release_freeze"
TRIGGER_BUTTON = f"button.{PREFIX}_trigger_freeze"
EVENT_SENSORS = tuple(
    f"binary_sensor.{PREFIX}_{key}_event"
    for key in ("freeleech", "bonus_points", "upload_multiplier")
)
DASHBOARD_FILE = REPO / "dashboards" / "mam_guard.yaml"
RUNNING_DL = {"stalledDL", "downloading"}  # the demo's downloads have no peers: stalledDL
MIN_LOOKUP_GAP = 4.95  # s between two searches at the simulator (SPEC §11: >= 5 s; clock slack)
# Always on the dashboard (headings and the cards' fixed texts).
DASHBOARD_TEXTS = ("Am I safe?", "What MAM Guard did", "What is coming", "This week", "Account")
CARD_TAGS = (
    "hui-markdown-card",
    "hui-gauge-card",
    "hui-tile-card",
    "hui-history-graph-card",
    "hui-logbook-card",
    "hui-entities-card",
)
# HA's own messages when it could not set something up (the "Invalid config" notification).
SETUP_FAILED = re.compile(
    r"Setup failed for '?([a-z_]+)|Unable to set up dependencies of '?([a-z_]+)"
)


@dataclass(frozen=True)
class TorrentView:
    """What the emergency may change on a torrent."""

    state: str
    tags: frozenset[str]
    force_start: bool


@dataclass(frozen=True)
class QbtView:
    """qBittorrent as the checks see it."""

    torrents: dict[str, TorrentView]
    prefs: dict[str, Any]
    alt_speed: int


class Checks:
    """Named pass/fail results, printed as they happen."""

    def __init__(self) -> None:
        """No results yet."""
        self.passed = 0
        self.failures: list[str] = []

    def check(self, name: str, ok: bool, detail: object = "") -> bool:
        """Record one result."""
        if ok:
            self.passed += 1
            print(f"PASS {name}", flush=True)
        else:
            self.failures.append(name)
            print(f"FAIL {name}: {detail}", flush=True)
        return ok

    async def eventually(
        self,
        name: str,
        probe: Callable[[], Awaitable[tuple[bool, object]]],
        *,
        within: float = 30.0,
    ) -> bool:
        """Poll ``probe`` (-> ok, detail) until ok or the deadline; record one result."""
        deadline = time.monotonic() + within
        while True:
            try:
                ok, detail = await probe()
            except (aiohttp.ClientError, TimeoutError, RuntimeError) as err:
                ok, detail = False, repr(err)
            if ok or time.monotonic() > deadline:
                return self.check(name, ok, detail)
            await asyncio.sleep(0.5)


class Screenshots:
    """Where each step's screenshot goes: ``base`` itself, then ``<stem>-<step>.png`` next to it."""

    def __init__(self, base: Path) -> None:
        """``base`` is the normal dashboard's screenshot (docs/screenshot.png for the docs)."""
        self.base = base

    def path(self, step: str) -> Path:
        """The file of one step (``normal`` is the base file)."""
        if step == "normal":
            return self.base
        return self.base.with_name(f"{self.base.stem}-{step}{self.base.suffix}")


# -- what the demo's torrents must show -------------------------------------------------------


def named(stack: Stack, *roles: str, client: Client | None = None) -> list[str]:
    """The names of the demo torrents of these roles, in one client or in all, sorted.

    ``freeze``: the paid MAM downloads; ``seed``: the MAM seeds; ``spare``: the untagged MAM
    downloads MAM says are free (see :class:`scripts.demo.stack.DemoTorrent`).
    """
    torrents = stack.torrents if client is None else client.torrents
    return sorted(t.name for t in torrents.values() if t.role in roles)


def reasons(stack: Stack, *roles: str, client: Client | None = None) -> dict[str, str]:
    """SPEC §11: name -> why mam_guard freezes (``freeze``) or spares the download."""
    torrents = stack.torrents if client is None else client.torrents
    return {t.name: t.reason for t in torrents.values() if t.role in roles}


def looked_up(stack: Stack) -> list[str]:
    """The MAM downloads mam_guard asks MAM about (every client's)."""
    return sorted(t.name for t in stack.torrents.values() if t.looked_up)


def several(stack: Stack) -> bool:
    """More than one qBittorrent client (the checks then name the client they are about)."""
    return len(stack.clients) > 1


def qbt_name(stack: Stack, client: Client) -> str:
    """How a check names a client: "qBittorrent" alone, "qBittorrent 'Seedbox'" among several."""
    return f"qBittorrent {client.name!r}" if several(stack) else "qBittorrent"


def frozen_text(count: int) -> str:
    """The dashboard's frozen list: its title for ``count`` frozen downloads."""
    if count == 0:
        return "No download is frozen."
    return f"{count} MAM download{'' if count == 1 else 's'} frozen"


def plural(count: int, word: str) -> str:
    """``count word`` or ``count words`` (as the blueprint's notification writes it)."""
    return f"{count} {word}{'' if count == 1 else 's'}"


# -- probes -----------------------------------------------------------------------------------

type Views = dict[str, QbtView]  # client name -> what its qBittorrent showed


async def qbt_view(stack: Stack, client: Client | None = None) -> QbtView:
    """Read torrents, preferences and the speed-limits mode straight from qBittorrent's API."""
    async with stack.qbt_client(client) as api:
        infos = await api.torrents.info()
        prefs = dict(await api.app.preferences())
        alt_speed = await api.transfer.speed_limits_mode()
    torrents = {
        t.hash: TorrentView(str(t.state), frozenset(t.tags), bool(t.force_start)) for t in infos
    }
    return QbtView(torrents, prefs, alt_speed)


async def qbt_views(stack: Stack) -> Views:
    """Every client's qBittorrent, by client name."""
    views = await asyncio.gather(*(qbt_view(stack, c) for c in stack.clients))
    return {c.name: view for c, view in zip(stack.clients, views, strict=True)}


def dashboard_entities() -> set[str]:
    """Every mam_guard entity id the YAML dashboard refers to."""
    pattern = rf"\b(?:sensor|binary_sensor|switch|button)\.{PREFIX}_[a-z0-9_]+"
    return set(re.findall(pattern, DASHBOARD_FILE.read_text()))


def state_is(ha: HomeAssistant, entity_id: str, want: str) -> Callable[[], Awaitable[Any]]:
    """Probe: the entity's state equals ``want`` (numbers compared as numbers)."""

    async def probe() -> tuple[bool, object]:
        state = await ha.state(entity_id)
        shown = None if state is None else state["state"]
        try:
            ok = shown is not None and float(shown) == float(want)
        except ValueError:
            ok = shown == want
        return ok, f"{entity_id} is {shown!r}, want {want!r}"

    return probe


def attributes_are(
    ha: HomeAssistant, entity_id: str, want: dict[str, Any]
) -> Callable[[], Awaitable[Any]]:
    """Probe: these attributes of the entity have exactly these values."""

    async def probe() -> tuple[bool, object]:
        state = await ha.state(entity_id)
        attrs = {} if state is None else state["attributes"]
        shown = {key: attrs.get(key, "<missing>") for key in want}
        return shown == want, f"{entity_id}: {shown}, want {want}"

    return probe


def is_number(ha: HomeAssistant, entity_id: str) -> Callable[[], Awaitable[Any]]:
    """Probe: the entity's state is a number."""

    async def probe() -> tuple[bool, object]:
        state = await ha.state(entity_id)
        shown = None if state is None else state["state"]
        try:
            float(shown or "")
        except ValueError:
            return False, f"{entity_id} is {shown!r}"
        return True, shown

    return probe


async def notifications(ha: HomeAssistant) -> list[dict[str, Any]]:
    """Every persistent notification."""
    notes: list[dict[str, Any]] = await ha.ws_command({"type": "persistent_notification/get"})
    return notes


async def notification(ha: HomeAssistant) -> dict[str, Any]:
    """The blueprint automation's persistent notification (id mam_guard_emergency), or {}."""
    for note in await notifications(ha):
        if note.get("notification_id") == "mam_guard_emergency":
            return dict(note)
    return {}


def notified(
    ha: HomeAssistant, *, title: str, says: tuple[str, ...]
) -> Callable[[], Awaitable[Any]]:
    """Probe: the blueprint's notification has this title and says all of ``says``."""

    async def probe() -> tuple[bool, object]:
        note = await notification(ha)
        text = note.get("message", "")
        return note.get("title") == title and all(s in text for s in says), note

    return probe


async def reason(ha: HomeAssistant) -> str:
    """The protection sensor's plain-language reason ("" when there is none)."""
    state = await ha.state(PROTECTION_SENSOR)
    return "" if state is None else str(state["attributes"].get("reason") or "")


def freeze_problems(client: Client, before: QbtView, now: QbtView) -> list[str]:
    """What differs from SPEC §4's expected emergency state (empty when all is right)."""
    problems: list[str] = []
    for info_hash, spec in client.torrents.items():
        old, new = before.torrents[info_hash], now.torrents.get(info_hash)
        if new is None:
            problems.append(f"{spec.name}: gone")
        elif spec.role == "freeze" and (new.state not in STOPPED_DL or TAG_FROZEN not in new.tags):
            problems.append(f"{spec.name}: not frozen ({new})")
        elif spec.role == "seed" and (not new.force_start or TAG_FORCED not in new.tags):
            problems.append(f"{spec.name}: not force-started ({new})")
        elif spec.role in {"spare", "exempt", "other"} and new != old:
            problems.append(f"{spec.name}: touched ({old} -> {new})")
    prefs = now.prefs
    for key in ("max_active_uploads", "max_active_torrents"):
        if prefs.get(key, 0) < RAISED_TO:
            problems.append(f"{key} = {prefs.get(key)}, want >= {RAISED_TO}")
    if prefs.get("up_limit") not in (0, -1):
        problems.append(f"up_limit = {prefs.get('up_limit')}, want unlimited")
    if now.alt_speed != 0:
        problems.append("alternative speed limits still on")
    return problems


def restore_problems(before: QbtView, now: QbtView) -> list[str]:
    """Differences between the pre-emergency qBittorrent and now (empty when identical)."""
    problems = [
        f"{h[:8]}: {old} -> {now.torrents.get(h)}"
        for h, old in before.torrents.items()
        if now.torrents.get(h) != old
    ]
    problems += [
        f"pref {k}: {before.prefs.get(k)!r} -> {now.prefs.get(k)!r}"
        for k in sorted(before.prefs.keys() | now.prefs.keys())
        if before.prefs.get(k) != now.prefs.get(k)
    ]
    if before.alt_speed != now.alt_speed:
        problems.append(f"alternative speed mode {before.alt_speed} -> {now.alt_speed}")
    return problems


def _clients(stack: Stack, clients: list[Client] | None) -> list[Client]:
    return stack.clients if clients is None else clients


def frozen_in_qbt(
    stack: Stack, before: Views, clients: list[Client] | None = None
) -> Callable[[], Awaitable[Any]]:
    """Probe: these qBittorrents (default: every client's) are in SPEC §4's emergency state."""

    async def probe() -> tuple[bool, object]:
        problems: list[str] = []
        for client in _clients(stack, clients):
            now = await qbt_view(stack, client)
            found = freeze_problems(client, before[client.name], now)
            problems += [f"{client.name}: {p}" if several(stack) else p for p in found]
        return not problems, problems

    return probe


def restored_in_qbt(
    stack: Stack, before: Views, clients: list[Client] | None = None
) -> Callable[[], Awaitable[Any]]:
    """Probe: these qBittorrents (default: every client's) are exactly as ``before``."""

    async def probe() -> tuple[bool, object]:
        problems: list[str] = []
        for client in _clients(stack, clients):
            found = restore_problems(before[client.name], await qbt_view(stack, client))
            problems += [f"{client.name}: {p}" if several(stack) else p for p in found]
        return not problems, problems

    return probe


def spared_in_qbt(stack: Stack) -> Callable[[], Awaitable[Any]]:
    """Probe: the untagged downloads MAM says are free still download, and carry no tag at all."""

    async def probe() -> tuple[bool, object]:
        problems: list[str] = []
        for client in stack.clients:
            now = await qbt_view(stack, client)
            problems += [
                f"{spec.name}: {now.torrents.get(h)}"
                for h, spec in client.torrents.items()
                if spec.role == "spare"
                and ((t := now.torrents.get(h)) is None or t.state not in RUNNING_DL or t.tags)
            ]
        return not problems, problems

    return probe


async def sim_torrents(stack: Stack) -> dict[str, Any]:
    """``GET /_sim/torrents``: what the simulator's search knows, and the searches per hash."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(f"{stack.sim.base_url}/_sim/torrents") as resp,
    ):
        known: dict[str, Any] = await resp.json()
    return known


def one_search_each(stack: Stack) -> Callable[[], Awaitable[Any]]:
    """Probe: the simulator counted exactly one search per MAM download, and no other search.

    Seeds are registered too (they are MAM torrents) but complete: never looked up (SPEC §11).
    """

    async def probe() -> tuple[bool, object]:
        searches = {h.lower(): n for h, n in (await sim_torrents(stack))["searches"].items()}
        want = {h.lower(): 1 for h, spec in stack.torrents.items() if spec.looked_up}
        names = {h.lower(): spec.name for h, spec in stack.torrents.items()}
        shown = {names.get(h, h or "<no hash>"): n for h, n in searches.items()}
        return searches == want, f"searches {shown}, want one for each of {looked_up(stack)}"

    return probe


def lookups_answered(stack: Stack) -> Callable[[], Awaitable[Any]]:
    """Probe: every MAM download was searched and mam_guard's lookup queue is empty."""

    async def probe() -> tuple[bool, object]:
        missing = stack.unanswered(await stack.ha.get_status())
        return not missing, f"not answered yet: {missing}"

    return probe


def paid_downloads_are(stack: Stack, want: int) -> Callable[[], Awaitable[Any]]:
    """Probe: the Paid downloads sensor says ``want``, after a qBittorrent poll (the heartbeat).

    The sensor (the account's total over its clients) follows qBittorrent polls (every minute);
    each try asks every client for one, as a user's ``homeassistant.update_entity`` would.
    """
    shown = state_is(stack.ha, PAID_DOWNLOADS_SENSOR, str(want))

    async def probe() -> tuple[bool, object]:
        await stack.ha.update_entity(PAID_DOWNLOADS_SENSOR, *stack.qbt_poll_entities())
        ok, detail = await shown()
        return ok, detail

    return probe


def status_part(
    ha: HomeAssistant, path: tuple[str, ...], want: dict[str, Any]
) -> Callable[[], Awaitable[Any]]:
    """Probe: this part of the ``get_status`` response (keys ``path``) is exactly ``want``."""

    async def probe() -> tuple[bool, object]:
        part: Any = await ha.get_status()
        for key in path:
            part = part.get(key) if isinstance(part, dict) else None
        return part == want, f"get_status {'.'.join(path)} = {part}, want {want}"

    return probe


def freeleech_status(paid_downloads: int, lookups: int) -> dict[str, Any]:
    """``get_status``'s ``freeleech`` section once every answer is in (SPEC §11)."""
    return {
        "enabled": True,
        "vip_account": True,  # the simulated account's class is VIP
        "queued": 0,
        "lookups_last_hour": lookups,
        "paused_until": None,
        "paid_downloads": paid_downloads,
    }


def listens_on_loopback_only(stack: Stack) -> tuple[bool, object]:
    """Every listening TCP socket of the hass process is on 127.0.0.1."""
    assert stack.ha.proc is not None
    sockets = psutil.Process(stack.ha.proc.pid).net_connections(kind="inet")
    mine = sorted({f"{c.laddr[0]}:{c.laddr[1]}" for c in sockets if c.status == psutil.CONN_LISTEN})
    return bool(mine) and all(addr.startswith("127.0.0.1:") for addr in mine), mine


# -- the dashboard in the browser ---------------------------------------------------------------


async def check_dashboard(
    browser: Browser | None,
    checks: Checks,
    step: str,
    shot: Path,
    *,
    texts: tuple[str, ...],
    alert: str,
    absent: tuple[str, ...] = (),
) -> None:
    """Open the dashboard, wait for ``texts`` (and none of ``absent``), check it, screenshot it."""
    if browser is None:
        checks.check(f"{step}: dashboard in the browser", False, "Chromium did not start")
        return
    wanted = DASHBOARD_TEXTS + texts
    ok, page = await browser.open(f"/{DASHBOARD_PATH}", wanted, within=40, height=DASHBOARD_HEIGHT)
    if browser.logged_in_by_trusted_networks is not None and step == "normal":
        checks.check(
            "browser: trusted_networks logs in without a password",
            browser.logged_in_by_trusted_networks,
            page.url,
        )
    if ok and absent:
        ok, page = await browser.wait_for(wanted, absent=absent, within=10)
    shown = ", ".join(repr(t if len(t) < 40 else t[:37] + "...") for t in texts)
    hidden = f" and not {', '.join(repr(t) for t in absent)}" if absent else ""
    checks.check(
        f"{step}: the dashboard shows {shown}{hidden}",
        ok,
        {
            "url": page.url,
            "missing": page.missing(wanted),
            "shown": [t for t in absent if t in page.text],
        },
    )
    missing_cards = [t for t in CARD_TAGS if not page.tags.get(t)]
    checks.check(f"{step}: every kind of card rendered", not missing_cards, missing_cards)
    warnings = sum(
        page.tags.get(t, 0) for t in ("hui-warning", "hui-warning-element", "hui-error-card")
    )
    checks.check(
        f"{step}: no card warnings or errors",
        not warnings and "Entity not available" not in page.text,
        _warning_lines(page),
    )
    checks.check(
        f"{step}: the protection card is a {alert!r} alert", page.alerts[:1] == [alert], page.alerts
    )
    size = await browser.screenshot(shot)
    checks.check(f"{step}: screenshot {_shown(shot)} ({size // 1024} KiB)", size > 20_000, size)


def _warning_lines(page: Page) -> list[str]:
    words = ("not found", "not available", "warning", "error")
    return [line for line in page.text.splitlines() if any(w in line.lower() for w in words)][:10]


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(REPO))
    return str(path)


# -- the steps --------------------------------------------------------------------------------


async def check_setup(stack: Stack, checks: Checks) -> None:
    """The entry exists, the start was quiet, every dashboard entity is there and available."""
    ha = stack.ha
    checks.check("config entry created through the REST config flow", bool(stack.entry_id))
    entries = await ha.request("GET", "/api/config/config_entries/entry?domain=mam_guard")
    checks.check(
        "config entry loaded",
        [e["state"] for e in entries] == ["loaded"],
        [(e["title"], e["state"]) for e in entries],
    )
    states = {s["entity_id"]: s for s in await ha.request("GET", "/api/states")}
    wanted = dashboard_entities()
    missing = sorted(wanted - states.keys())
    checks.check(f"all {len(wanted)} dashboard entities exist", not missing, missing)
    unavailable = sorted(
        e for e in wanted - {RELEASE_BUTTON} if states.get(e, {}).get("state") == "unavailable"
    )
    checks.check("no dashboard entity is unavailable", not unavailable, unavailable)
    checks.check("Home Assistant listens on 127.0.0.1 only", *listens_on_loopback_only(stack))
    failed = sorted(
        {m.group(1) or m.group(2) for m in SETUP_FAILED.finditer(ha.log_path.read_text())}
    )
    checks.check("quiet start: no integration failed to set up (hass log)", not failed, failed)
    notes = [n for n in await notifications(ha) if n.get("notification_id") == "invalid_config"]
    checks.check("quiet start: no 'Invalid config' notification", not notes, notes)
    await checks.eventually(  # 7 pages, 2 s apart; also makes the screenshot show a version
        "rules fetched from the simulator at startup (rules version is a number)",
        is_number(ha, RULES_SENSOR),
    )
    checks.check(
        "no emergency at start",
        states[EMERGENCY_ENTITY]["state"] == "off" and states[FROZEN_SENSOR]["state"] == "0",
        {e: states[e]["state"] for e in (EMERGENCY_ENTITY, FROZEN_SENSOR)},
    )
    await checks.eventually("protection = idle", state_is(ha, PROTECTION_SENSOR, "idle"))
    checks.check("protection has a plain-language reason", bool(await reason(ha)), await reason(ha))
    await checks.eventually(
        "no emergency values shown (since, trigger_ratio, hold_off_until null)",
        attributes_are(
            ha, EMERGENCY_ENTITY, {"since": None, "trigger_ratio": None, "hold_off_until": None}
        ),
    )
    await checks.eventually(
        "Release freeze button unavailable without an emergency",
        state_is(ha, RELEASE_BUTTON, "unavailable"),
    )
    trigger = states.get(TRIGGER_BUTTON, {}).get("state")
    checks.check("Trigger freeze button available", trigger not in (None, "unavailable"), trigger)


async def check_normal(
    stack: Stack, checks: Checks, browser: Browser | None, shots: Screenshots
) -> None:
    """Step 1 in the browser: all is well."""
    await check_dashboard(
        browser,
        checks,
        "normal",
        shots.path("normal"),
        texts=("No download is frozen.", "Trigger freeze", await reason(stack.ha)),
        absent=("Release freeze",),
        alert="success",
    )


async def check_freeleech(stack: Stack, checks: Checks) -> None:
    """Step 2: MAM's answer about each download is in, asked once each, 5 s apart (SPEC §11)."""
    ha, step = stack.ha, "freeleech"
    paid, asked = named(stack, "freeze"), looked_up(stack)
    known = (await sim_torrents(stack))["torrents"]
    flags = {
        spec.name: sorted(k for k, v in known.get(h.lower(), {}).items() if v is True)
        for h, spec in stack.torrents.items()
        if spec.on_mam
    }
    want = {spec.name: sorted(spec.flags) for spec in stack.torrents.values() if spec.on_mam}
    checks.check(
        f"{step}: every MAM torrent registered at the simulator's search with its flags",
        flags == want and len(known) == len(want),
        {"registered": flags, "want": want},
    )
    await checks.eventually(
        f"{step}: MAM answered about each of the {len(asked)} MAM downloads "
        "(get_status freeleech.queued = 0)",
        lookups_answered(stack),
        within=5 * len(asked) + 60,
    )
    await checks.eventually(
        f"{step}: exactly one search per MAM download at the simulator, none for the seeds",
        one_search_each(stack),
        within=5,
    )
    times = [at for at, info_hash in stack.sim.search_log if info_hash]
    gaps = [round((b - a).total_seconds(), 2) for a, b in itertools.pairwise(times)]
    checks.check(
        f"{step}: the searches came at least 5 s apart",
        all(gap >= MIN_LOOKUP_GAP for gap in gaps),
        gaps,
    )
    await checks.eventually(
        f"{step}: {PAID_DOWNLOADS_SENSOR} = {len(paid)} (the paid ones; none unknown)",
        paid_downloads_are(stack, len(paid)),
        within=45,
    )
    await checks.eventually(
        f"{step}: get_status freeleech: on, VIP account, nothing queued, "
        f"{len(asked)} lookups this hour, not paused, paid_downloads {len(paid)}",
        status_part(ha, ("freeleech",), freeleech_status(len(paid), len(asked))),
    )


async def check_lists(
    stack: Stack, checks: Checks, step: str, clients: list[Client] | None = None
) -> None:
    """The frozen and force-started sensors name the demo's torrents (and count them).

    The account's sensors list what is frozen in ``clients`` (default: all of them) together;
    with several clients, each client's own sensors list its own (SPEC §12). The frozen list
    also says why each is frozen (``reasons``, SPEC §11): ``paid``, as MAM said.
    """
    ha = stack.ha
    clients = _clients(stack, clients)
    paid = sorted(n for c in clients for n in named(stack, "freeze", client=c))
    seeds = sorted(n for c in clients for n in named(stack, "seed", client=c))
    why = {k: v for c in clients for k, v in reasons(stack, "freeze", client=c).items()}
    lists: list[tuple[str, list[str], dict[str, Any]]] = [
        (FROZEN_SENSOR, paid, {"reasons": why}),
        (FORCED_SENSOR, seeds, {}),
    ]
    if several(stack):
        for client in clients:
            frozen = client.entities.get("frozen_torrents", f"<{client.name} frozen_torrents>")
            forced = client.entities.get("forced_torrents", f"<{client.name} forced_torrents>")
            lists.append(
                (
                    frozen,
                    named(stack, "freeze", client=client),
                    {"reasons": reasons(stack, "freeze", client=client)},
                )
            )
            lists.append((forced, named(stack, "seed", client=client), {}))
    for entity_id, names, extra in lists:
        await checks.eventually(
            f"{step}: {entity_id} = {len(names)}", state_is(ha, entity_id, str(len(names)))
        )
        because = f", reasons {extra['reasons']}" if extra else ""
        await checks.eventually(
            f"{step}: {entity_id} lists {names}{because}",
            attributes_are(ha, entity_id, {"torrents": names, "more": 0, **extra}),
        )


# The account's sensor holding the total of each client sensor (SPEC §12).
ACCOUNT_TOTALS = {
    "seeding_allocation": ALLOCATION_SENSOR,
    "stalled_torrents": STALLED_SENSOR,
    "frozen_torrents": FROZEN_SENSOR,
    "forced_torrents": FORCED_SENSOR,
}


def _number(state: dict[str, Any] | None) -> float | None:
    try:
        return float(state["state"]) if state is not None else None
    except ValueError:
        return None


def totals_are(
    stack: Stack,
    key: str,
    want: Callable[[Client], float] | None = None,
    *,
    poll: bool = False,
) -> Callable[[], Awaitable[Any]]:
    """Probe: each client's ``key`` sensor says ``want(client)`` (None: any number), and the
    account's sensor of the same key their sum (SPEC §12: the account's are totals).

    ``poll``: each try first asks every qBittorrent for a heartbeat (``update_entity``).
    """
    ha = stack.ha

    async def probe() -> tuple[bool, object]:
        if poll:
            await stack.poll_qbittorrent()
        shown: dict[str, float | None] = {}
        for client in stack.clients:
            entity_id = client.entities.get(key)
            shown[client.name] = None if entity_id is None else _number(await ha.state(entity_id))
        total = _number(await ha.state(ACCOUNT_TOTALS[key]))
        values = list(shown.values())
        ok = (
            all(v is not None for v in values)
            and (want is None or all(shown[c.name] == want(c) for c in stack.clients))
            and total == sum(v for v in values if v is not None)
        )
        wanted = None if want is None else {c.name: want(c) for c in stack.clients}
        return ok, {"clients": shown, "want": wanted, "account": total}

    return probe


def client_status(
    stack: Stack, want: Callable[[Client], dict[str, Any]]
) -> Callable[[], Awaitable[Any]]:
    """Probe: ``get_status``'s ``emergency.clients`` has each client (by subentry) with these
    values (each compared key by key; ``frozen``/``forced`` by their ``count``)."""

    async def probe() -> tuple[bool, object]:
        status = await stack.ha.get_status()
        found = (status.get("emergency") or {}).get("clients") or {}
        shown: dict[str, Any] = {}
        wanted: dict[str, Any] = {}
        for client in stack.clients:
            part = found.get(client.subentry_id) or {}
            wanted[client.name] = want(client)
            shown[client.name] = {
                k: (part.get(k) or {}).get("count") if k in {"frozen", "forced"} else part.get(k)
                for k in wanted[client.name]
            }
        ok = shown == wanted and len(found) == len(stack.clients)
        return ok, {"shown": shown, "want": wanted, "clients in get_status": len(found)}

    return probe


async def check_clients(stack: Stack, checks: Checks) -> None:
    """SPEC §12: each qBittorrent is a subentry and a device under the account, with its own
    sensors; the account's sensors of the same keys are their totals."""
    ha, step = stack.ha, "clients"
    names = [c.name for c in stack.clients]
    subentries = await ha.subentries(stack.entry_id)
    how = "the first from the setup form" + (
        ", the others through the subentry flow (Add qBittorrent client)" if several(stack) else ""
    )
    checks.check(
        f"{step}: one qbittorrent subentry per client, {names} ({how})",
        sorted(s["title"] for s in subentries if s["subentry_type"] == "qbittorrent")
        == sorted(names)
        and len(subentries) == len(names)
        and all(c.subentry_id for c in stack.clients),
        subentries,
    )
    devices = [
        d
        for d in await ha.devices()
        if d.get("config_entry_id") == stack.entry_id
        or stack.entry_id in (d.get("config_entries") or [])
    ]
    account = [d for d in devices if not _subentry_of(d, stack.entry_id)]
    checks.check(
        f"{step}: one account device, {ACCOUNT_DEVICE!r}",
        [d["name"] for d in account] == [ACCOUNT_DEVICE],
        [(d["name"], _subentry_of(d, stack.entry_id)) for d in devices],
    )
    account_id = account[0]["id"] if account else None
    registry = await ha.registry_entities()
    for client in stack.clients:
        device = next(
            (d for d in devices if _subentry_of(d, stack.entry_id) == client.subentry_id), None
        )
        checks.check(
            f"{step}: {client.name!r} is a device of its subentry, under the account's "
            "(via_device)",
            device is not None
            and device["name"] == client.name
            and device.get("via_device_id") == account_id
            and account_id is not None,
            device,
        )
        on_device = {
            e["entity_id"]
            for e in registry
            if device is not None and e.get("device_id") == device["id"]
        }
        mine = {client.entities.get(key) for key in CLIENT_KEYS}
        checks.check(
            f"{step}: {client.name!r} has its own {', '.join(CLIENT_KEYS)} on its device",
            len(client.entities) == len(CLIENT_KEYS) and mine <= on_device,
            {"found": client.entities, "on its device": sorted(on_device)},
        )
        connected = client.entities.get("qbittorrent_connected", "<qbittorrent_connected>")
        await checks.eventually(
            f"{step}: {connected} is on", state_is(ha, connected, "on"), within=60
        )
    prefs = float(QBT_PREFS["max_active_uploads"])
    await checks.eventually(
        f"{step}: each client's seeding allocation is {prefs:.0f}, the account's their sum",
        totals_are(stack, "seeding_allocation", lambda _c: prefs, poll=True),
    )
    await checks.eventually(
        f"{step}: the account's stalled MAM torrents are the sum of the clients'",
        totals_are(stack, "stalled_torrents"),
    )
    for key in ("frozen_torrents", "forced_torrents"):
        await checks.eventually(
            f"{step}: {key} 0 on each client and on the account",
            totals_are(stack, key, lambda _c: 0),
        )
    await checks.eventually(
        f"{step}: get_status emergency.clients lists each client by name, idle",
        client_status(stack, lambda c: {"name": c.name, "protection": "idle"}),
    )


def _subentry_of(device: dict[str, Any], entry_id: str) -> str | None:
    """The config subentry a device belongs to (None: the entry itself)."""
    if "config_subentry_id" in device:
        return device["config_subentry_id"] or None
    subentries = (device.get("config_entries_subentries") or {}).get(entry_id) or [None]
    return subentries[0] or None


async def check_emergency(
    stack: Stack, checks: Checks, before: Views, browser: Browser | None, shots: Screenshots
) -> None:
    """Step 3: ratio below the threshold, the freeze happens in qBittorrent and shows in HA.

    With several clients, every qBittorrent is checked on its own, and each client's sensors
    and ``get_status`` entry say what happened in it; the account's sensors are the totals.
    """
    ha = stack.ha
    paid, seeds = named(stack, "freeze"), named(stack, "seed")
    frozen_why, spared = reasons(stack, "freeze"), reasons(stack, "spare", "exempt")
    stack.set_account(ACCOUNT_EMERGENCY)
    await stack.poll_now()
    await checks.eventually(
        "emergency binary sensor turns on", state_is(ha, EMERGENCY_ENTITY, "on")
    )
    for client in stack.clients:
        await checks.eventually(
            f"{qbt_name(stack, client)}: paid MAM downloads frozen and tagged, seeds forced, "
            "capacity raised, freeleech and non-MAM untouched",
            frozen_in_qbt(stack, before, [client]),
            within=45,
        )
    await checks.eventually("protection = protected", state_is(ha, PROTECTION_SENSOR, "protected"))
    await checks.eventually(
        f"the untagged downloads MAM says are free keep downloading, without any tag: "
        f"{named(stack, 'spare')}",
        spared_in_qbt(stack),
    )
    await check_lists(stack, checks, "emergency")
    await checks.eventually(
        f"get_status emergency.frozen: {len(paid)} frozen, each for reason 'paid'",
        status_part(
            ha,
            ("emergency", "frozen"),
            {"count": len(paid), "torrents": paid, "more": 0, "reasons": frozen_why},
        ),
    )
    await checks.eventually(
        f"get_status emergency.spared: {len(spared)} downloads and why: "
        + ", ".join(sorted(spared.values())),
        status_part(
            ha, ("emergency", "spared"), {"count": len(spared), "torrents": spared, "more": 0}
        ),
    )
    await checks.eventually(
        f"{PAID_DOWNLOADS_SENSOR} = 0 (the paid downloads are frozen; the free ones cost nothing)",
        paid_downloads_are(stack, 0),
        within=45,
    )
    await checks.eventually(
        "get_status freeleech: on, VIP account, nothing queued, paid_downloads 0",
        status_part(ha, ("freeleech",), freeleech_status(0, len(looked_up(stack)))),
    )
    await stack.poll_qbittorrent()
    await checks.eventually("ratio status = emergency", state_is(ha, STATUS_SENSOR, "emergency"))
    raised = RAISED_TO * len(stack.clients)
    await checks.eventually(
        f"seeding allocation sensor = {raised}"
        + (" (the clients' total)" if several(stack) else ""),
        state_is(ha, ALLOCATION_SENSOR, str(raised)),
    )
    await check_client_sensors(stack, checks, "emergency", frozen=True)
    await checks.eventually(
        "emergency attributes: trigger_ratio 0.97, not manual, no hold-off",
        attributes_are(
            ha,
            EMERGENCY_ENTITY,
            {"trigger_ratio": ACCOUNT_EMERGENCY["ratio"], "manual": False, "hold_off_until": None},
        ),
    )
    await checks.eventually(
        "Release freeze button available", _available(ha, RELEASE_BUTTON, want=True)
    )
    await checks.eventually(
        "blueprint automation notified the emergency start",
        notified(
            ha,
            title="MAM ratio emergency",
            says=(
                "ratio 0.97",
                f"stopped {plural(len(paid), 'paid MAM download')}",
                f"force-started {plural(len(seeds), 'seed')}",
            ),
        ),
    )
    await check_dashboard(
        browser,
        checks,
        "emergency",
        shots.path("emergency"),
        texts=(
            frozen_text(len(paid)),
            "(paid)",
            *paid,
            *seeds,
            "Release freeze",
            await reason(ha),
        ),
        absent=tuple(spared),  # the frozen list names no spared download
        alert="info",
    )


async def check_client_sensors(stack: Stack, checks: Checks, step: str, *, frozen: bool) -> None:
    """Each client's seeding allocation, frozen and force-started counts and ``get_status``
    entry, the account's sensors their totals (SPEC §12); ``frozen``: during an emergency."""
    prefs = float(RAISED_TO if frozen else QBT_PREFS["max_active_uploads"])
    paid: Callable[[Client], float] = lambda c: len(named(stack, "freeze", client=c))  # noqa: E731
    seeds: Callable[[Client], float] = lambda c: len(named(stack, "seed", client=c))  # noqa: E731
    per_client = " on each client, the account's their sum" if several(stack) else ""
    await checks.eventually(
        f"{step}: seeding allocation {prefs:.0f}{per_client}",
        totals_are(stack, "seeding_allocation", lambda _c: prefs, poll=True),
    )
    if frozen:
        await checks.eventually(
            f"{step}: frozen torrents = its paid downloads{per_client}",
            totals_are(stack, "frozen_torrents", paid),
        )
        await checks.eventually(
            f"{step}: force-started torrents = its seeds{per_client}",
            totals_are(stack, "forced_torrents", seeds),
        )
    else:
        for key in ("frozen_torrents", "forced_torrents"):
            await checks.eventually(
                f"{step}: {key} 0{per_client}", totals_are(stack, key, lambda _c: 0)
            )
    protection = "protected" if frozen else "idle"

    def want(client: Client) -> dict[str, Any]:
        counts = (paid(client), seeds(client)) if frozen else (0, 0)
        return {
            "name": client.name,
            "protection": protection,
            "frozen": counts[0],
            "forced": counts[1],
        }

    await checks.eventually(
        f"{step}: get_status emergency.clients: each client {protection}, its own counts",
        client_status(stack, want),
    )


def _available(ha: HomeAssistant, entity_id: str, *, want: bool) -> Callable[[], Awaitable[Any]]:
    async def probe() -> tuple[bool, object]:
        state = await ha.state(entity_id)
        shown = None if state is None else state["state"]
        return (shown not in (None, "unavailable")) == want, f"{entity_id} is {shown!r}"

    return probe


async def check_recovery(stack: Stack, checks: Checks, before: Views, step: str) -> None:
    """Step 4: ratio back above the threshold, everything is undone exactly, in every client."""
    ha = stack.ha
    paid = named(stack, "freeze")
    stack.set_account(ACCOUNT_RECOVERED)
    await stack.poll_now()
    await checks.eventually(
        f"{step}: emergency binary sensor turns off", state_is(ha, EMERGENCY_ENTITY, "off")
    )
    for client in stack.clients:
        await checks.eventually(
            f"{step}: {qbt_name(stack, client)} torrents, tags and all preferences exactly as "
            "before the emergency",
            restored_in_qbt(stack, before, [client]),
            within=45,
        )
    await stack.poll_qbittorrent()
    await checks.eventually(f"{step}: protection = idle", state_is(ha, PROTECTION_SENSOR, "idle"))
    empty: tuple[tuple[str, dict[str, Any]], ...] = (
        (FROZEN_SENSOR, {"torrents": [], "more": 0, "reasons": {}}),
        (FORCED_SENSOR, {"torrents": [], "more": 0}),
    )
    for entity_id, attributes in empty:
        await checks.eventually(
            f"{step}: {entity_id} = 0, lists nothing", attributes_are(ha, entity_id, attributes)
        )
    await checks.eventually(f"{step}: ratio status = normal", state_is(ha, STATUS_SENSOR, "normal"))
    await checks.eventually(
        f"{step}: past emergency values not shown (since, trigger_ratio null)",
        attributes_are(ha, EMERGENCY_ENTITY, {"since": None, "trigger_ratio": None}),
    )
    old = QBT_PREFS["max_active_uploads"] * len(stack.clients)
    await checks.eventually(
        f"{step}: seeding allocation sensor back to its old value",
        state_is(ha, ALLOCATION_SENSOR, str(old)),
    )
    await check_client_sensors(stack, checks, step, frozen=False)
    await checks.eventually(
        f"{step}: blueprint automation notified the emergency end",
        notified(
            ha,
            title="MAM ratio emergency is over",
            says=(f"resumed {plural(len(paid), 'paid MAM download')}",),
        ),
    )
    await checks.eventually(
        f"{step}: {PAID_DOWNLOADS_SENSOR} = {len(paid)} again (the paid ones download again)",
        paid_downloads_are(stack, len(paid)),
        within=45,
    )


async def check_events_off(stack: Stack, checks: Checks) -> None:
    """The default pages announce no site event; the blueprint automation ran."""
    for entity_id in EVENT_SENSORS:
        await checks.eventually(
            f"{entity_id} is off", state_is(stack.ha, entity_id, "off"), within=5
        )
    automation = await stack.ha.state(AUTOMATION_ENTITY)
    checks.check(
        "blueprint automation ran",
        automation is not None and automation["attributes"].get("last_triggered") is not None,
        automation,
    )


async def check_qbittorrent_down(
    stack: Stack, checks: Checks, before: Views, browser: Browser | None, shots: Screenshots
) -> None:
    """Step 5: an emergency while a qBittorrent is down says so; the freeze completes later.

    The first client is stopped. With several clients, the others are frozen meanwhile (one
    unreachable client never blocks the others, SPEC §12), the account's frozen count is theirs
    only, and the protection's reason names the client that is not protected.
    """
    ha = stack.ha
    down, up = stack.first, stack.clients[1:]
    paid, seeds = named(stack, "freeze"), named(stack, "seed")
    await stack.stop_qbittorrent(down)
    stack.set_account(ACCOUNT_EMERGENCY)
    await ha.update_entity(RATIO_ENTITY)
    step = "qBittorrent down" if not up else f"qBittorrent {down.name!r} down"
    await checks.eventually(
        f"{step}: emergency declared anyway", state_is(ha, EMERGENCY_ENTITY, "on")
    )
    await checks.eventually(
        f"{step}: protection = unreachable", state_is(ha, PROTECTION_SENSOR, "unreachable")
    )
    state = await ha.state(PROTECTION_SENSOR) or {"attributes": {}}
    pending = state["attributes"].get("pending_actions")
    checks.check(f"{step}: actions listed as pending", bool(pending), pending)
    checks.check(
        f"{step}: the reason says downloads are not frozen",
        "not frozen" in (await reason(ha)).lower(),
        await reason(ha),
    )
    frozen_elsewhere = sorted(n for c in up for n in named(stack, "freeze", client=c))
    if not up:
        await checks.eventually(
            f"{step}: nothing claimed frozen (frozen torrents = 0)",
            state_is(ha, FROZEN_SENSOR, "0"),
        )
    else:

        async def names_down() -> tuple[bool, object]:
            said = await reason(ha)
            named_up = [c.name for c in up if f"'{c.name}'" in said]
            return f"'{down.name}'" in said and not named_up, said

        await checks.eventually(
            f"{step}: the reason names the client that is not protected, and only it",
            names_down,
        )
        await checks.eventually(
            f"{step}: {', '.join(repr(c.name) for c in up)} frozen as in SPEC 4 meanwhile "
            "(one unreachable client blocks no other)",
            frozen_in_qbt(stack, before, up),
            within=45,
        )
        connected = down.entities.get("qbittorrent_connected", "<qbittorrent_connected>")
        await checks.eventually(f"{step}: {connected} is off", state_is(ha, connected, "off"))
        frozen_down = down.entities.get("frozen_torrents", "<frozen_torrents>")
        await checks.eventually(
            f"{step}: nothing claimed frozen in {down.name!r} ({frozen_down} = 0)",
            state_is(ha, frozen_down, "0"),
        )
        await checks.eventually(
            f"{step}: the account's frozen torrents = the others' only ({len(frozen_elsewhere)})",
            state_is(ha, FROZEN_SENSOR, str(len(frozen_elsewhere))),
        )
        await checks.eventually(
            f"{step}: get_status emergency.clients: {down.name!r} unreachable, the others "
            "protected",
            client_status(
                stack,
                lambda c: {
                    "protection": "unreachable" if c is down else "protected",
                    "frozen": 0 if c is down else len(named(stack, "freeze", client=c)),
                },
            ),
        )
    await checks.eventually(
        f"{step}: the notification says downloads are NOT frozen",
        notified(
            ha, title="MAM ratio emergency", says=("qBittorrent cannot be reached", "NOT frozen")
        ),
    )
    await check_dashboard(
        browser,
        checks,
        "qbittorrent-down",
        shots.path("qbittorrent-down"),
        texts=(
            frozen_text(len(frozen_elsewhere)),
            *frozen_elsewhere,
            "Still to do in qBittorrent",
            await reason(ha),
        ),
        alert="error",
    )

    await stack.restart_qbittorrent(down)
    await stack.poll_qbittorrent()  # the qBittorrent poll runs the emergency heartbeat
    back = "qBittorrent back" if not up else f"qBittorrent {down.name!r} back"
    await checks.eventually(
        f"{back}: protection = protected",
        state_is(ha, PROTECTION_SENSOR, "protected"),
        within=90,
    )
    await checks.eventually(
        f"{back}: the freeze completed as in SPEC 4", frozen_in_qbt(stack, before)
    )
    await check_lists(stack, checks, back)
    await checks.eventually(
        f"{back}: the notification says the freeze is now in place",
        notified(
            ha,
            title="MAM ratio emergency",
            says=("Now in place", f"stopped {len(paid)} paid", plural(len(seeds), "seed")),
        ),
    )
    await check_recovery(stack, checks, before, "after the outage")


async def check_hold_off(
    stack: Stack, checks: Checks, before: Views, browser: Browser | None, shots: Screenshots
) -> None:
    """Step 7: Trigger freeze, then Release freeze (buttons): the hold-off is visible."""
    ha = stack.ha
    await ha.call("button", "press", {"entity_id": TRIGGER_BUTTON})
    await checks.eventually(
        "Trigger freeze button: manual emergency on", state_is(ha, EMERGENCY_ENTITY, "on")
    )
    await checks.eventually(
        "manual freeze: qBittorrent frozen as in SPEC 4", frozen_in_qbt(stack, before), within=45
    )
    await checks.eventually(
        "manual freeze: protection = protected, manual = true",
        _all(
            state_is(ha, PROTECTION_SENSOR, "protected"),
            attributes_are(ha, EMERGENCY_ENTITY, {"manual": True}),
        ),
    )
    await checks.eventually(
        "manual freeze: Trigger freeze button unavailable",
        _available(ha, TRIGGER_BUTTON, want=False),
    )
    await checks.eventually(
        "manual freeze: the started event carries the counts",
        notified(
            ha,
            title="MAM ratio emergency",
            says=(
                "Manual freeze",
                f"stopped {len(named(stack, 'freeze'))} paid",
                plural(len(named(stack, "seed")), "seed"),
            ),
        ),
    )
    pressed = datetime.now(UTC)
    await ha.call("button", "press", {"entity_id": RELEASE_BUTTON})
    await checks.eventually(
        "Release freeze button: emergency off", state_is(ha, EMERGENCY_ENTITY, "off")
    )
    await checks.eventually(
        "Release freeze: qBittorrent exactly as before", restored_in_qbt(stack, before), within=45
    )

    async def hold_off() -> tuple[bool, object]:
        state = await ha.state(EMERGENCY_ENTITY)
        attrs = {} if state is None else state["attributes"]
        until = attrs.get("hold_off_until")
        if not until:
            return False, attrs
        ahead = datetime.fromisoformat(until) - pressed
        return timedelta(minutes=59) < ahead < timedelta(minutes=61), attrs

    await checks.eventually("Release freeze: hold_off_until set, an hour ahead", hold_off)
    await checks.eventually(
        "Release freeze: protection = idle, Trigger freeze available again",
        _all(state_is(ha, PROTECTION_SENSOR, "idle"), _available(ha, TRIGGER_BUTTON, want=True)),
    )
    await check_dashboard(
        browser,
        checks,
        "hold-off",
        shots.path("hold-off"),
        texts=("Hold-off until", "no automatic freeze starts before then", "Trigger freeze"),
        absent=("Release freeze",),
        alert="success",
    )


async def sim_state(stack: Stack) -> dict[str, Any]:
    """``GET /_sim/state``: the simulated account and every purchase the simulator applied."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(f"{stack.sim.base_url}/_sim/state") as resp,
    ):
        state: dict[str, Any] = await resp.json()
    return state


def purchases_at_sim(stack: Stack, want: list[dict[str, Any]]) -> Callable[[], Awaitable[Any]]:
    """Probe: the simulator applied exactly these purchases (kind, amount, cost), in order."""

    async def probe() -> tuple[bool, object]:
        state = await sim_state(stack)
        seen = [{k: p[k] for k in ("kind", "amount", "cost")} for p in state["purchases"]]
        return state["purchases_applied"] == len(want) and seen == want, state["purchases"]

    return probe


async def stored_options(ha: HomeAssistant, entry_id: str) -> dict[str, Any]:
    """The entry's options as stored, from its diagnostics download (they are not secret)."""
    diagnostics = await ha.request("GET", f"/api/diagnostics/config_entry/{entry_id}")
    options: dict[str, Any] = diagnostics["data"]["entry"]["options"]
    return options


def _flat_with(options: dict[str, Any], want: dict[str, Any]) -> bool:
    nested = [k for k, v in options.items() if isinstance(v, dict)]
    return not nested and all(options.get(k) == v for k, v in want.items())


async def check_purchase(
    stack: Stack, checks: Checks, before: Views, browser: Browser | None, shots: Screenshots
) -> None:
    """Step 6: with upload credit on, a purchase ends the emergency at the next poll."""
    ha, step = stack.ha, "purchase"
    points = float(ACCOUNT_PURCHASE_POINTS["seedbonus"])
    bought = {"kind": "upload", "amount": PURCHASE_GB, "cost": PURCHASE_COST}
    await checks.eventually(
        f"{step}: no purchase at the simulator yet", purchases_at_sim(stack, [])
    )
    stack.set_account(ACCOUNT_PURCHASE_POINTS)
    await stack.set_options(PURCHASE_OPTIONS)  # the reload polls: the new balance shows
    options = await stored_options(ha, stack.entry_id)
    checks.check(
        f"{step}: the options flow (in sections) stored upload_credit = emergency, flat",
        _flat_with(options, PURCHASE_OPTIONS),
        options,
    )
    await checks.eventually(
        f"{step}: bonus points = {points:,.0f}", state_is(ha, POINTS_SENSOR, str(points))
    )
    async with ha.events(PURCHASE_EVENT) as events:
        stack.set_account(ACCOUNT_PURCHASE_EMERGENCY)
        await stack.poll_now()
        await checks.eventually(
            f"{step}: ratio {ACCOUNT_PURCHASE_EMERGENCY['ratio']} -> emergency declared",
            attributes_are(
                ha, EMERGENCY_ENTITY, {"trigger_ratio": ACCOUNT_PURCHASE_EMERGENCY["ratio"]}
            ),
        )
        await checks.eventually(
            f"{step}: qBittorrent frozen as in SPEC 4 meanwhile",
            frozen_in_qbt(stack, before),
            within=45,
        )
        await checks.eventually(
            f"{step}: exactly one purchase at the simulator: {PURCHASE_GB} GB of upload credit "
            f"for {PURCHASE_COST:,} points (the smallest >= 50 GB above threshold + margin)",
            purchases_at_sim(stack, [bought]),
        )
        await checks.eventually(
            f"{step}: {LAST_PURCHASE_SENSOR}: upload, reason emergency, success, not a dry run",
            attributes_are(
                ha,
                LAST_PURCHASE_SENSOR,
                {
                    "kind": "upload",
                    "amount": PURCHASE_GB,
                    "cost": PURCHASE_COST,
                    "reason": "emergency",
                    "success": True,
                    "dry_run": False,
                },
            ),
        )
        await checks.eventually(
            f"{step}: one {PURCHASE_EVENT} event, reason emergency, success, points "
            f"{points:,.0f} -> {points - PURCHASE_COST:,.0f}",
            _one_purchase_event(events, points),
        )
        await checks.eventually(
            f"{step}: the emergency stays declared until the next poll",
            state_is(ha, EMERGENCY_ENTITY, "on"),
            within=1,
        )
        await stack.poll_now()  # the next poll reads the ratio the purchase made
        ratio_after = (await sim_state(stack))["ratio"]
        await checks.eventually(
            f"{step}: the next poll (ratio {ratio_after}) ends the emergency",
            _all(
                state_is(ha, EMERGENCY_ENTITY, "off"), state_is(ha, RATIO_ENTITY, str(ratio_after))
            ),
        )
        await checks.eventually(
            f"{step}: qBittorrent torrents, tags and all preferences exactly as before",
            restored_in_qbt(stack, before),
            within=45,
        )
        await checks.eventually(
            f"{step}: protection = idle", state_is(ha, PROTECTION_SENSOR, "idle")
        )
        await checks.eventually(
            f"{step}: bonus points = {points - PURCHASE_COST:,.0f} after the purchase",
            state_is(ha, POINTS_SENSOR, str(points - PURCHASE_COST)),
        )
        await checks.eventually(
            f"{step}: still exactly one purchase and one event after the next poll",
            _all(purchases_at_sim(stack, [bought]), _one_purchase_event(events, points)),
        )
    await check_dashboard(
        browser,
        checks,
        step,
        shots.path(step),
        texts=(
            "Bonus points",
            f"{PURCHASE_GB} GB of upload credit to end a ratio emergency",
            f"{PURCHASE_COST:,} points",
            "No download is frozen.",
        ),
        alert="success",
    )
    # Back to the defaults for the next steps: upload credit off, the ratio up again by uploads.
    stack.set_account(ACCOUNT_AFTER_PURCHASE)
    await stack.set_options(PURCHASE_OPTIONS_OFF)
    options = await stored_options(ha, stack.entry_id)
    checks.check(
        f"{step}: upload_credit back to off (options flow)",
        _flat_with(options, PURCHASE_OPTIONS_OFF),
        options,
    )
    await checks.eventually(
        f"{step}: ratio {ACCOUNT_AFTER_PURCHASE['ratio']} after, status normal, no new purchase",
        _all(state_is(ha, STATUS_SENSOR, "normal"), purchases_at_sim(stack, [bought])),
    )


def _one_purchase_event(
    events: list[dict[str, Any]], points_before: float
) -> Callable[[], Awaitable[Any]]:
    async def probe() -> tuple[bool, object]:
        data = [e.get("data", {}) for e in events]
        want = {
            "kind": "upload",
            "amount": PURCHASE_GB,
            "cost": PURCHASE_COST,
            "reason": "emergency",
            "success": True,
            "dry_run": False,
            "points_before": points_before,
            "points_after": points_before - PURCHASE_COST,
        }
        shown = [{k: d.get(k, "<missing>") for k in want} for d in data]
        return shown == [want], data

    return probe


def _all(*probes: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
    async def probe() -> tuple[bool, object]:
        results = [await p() for p in probes]
        return all(ok for ok, _ in results), [detail for ok, detail in results if not ok]

    return probe


async def check_forms(
    stack: Stack, checks: Checks, browser: Browser | None, shots: Screenshots
) -> None:
    """Steps 8 and 9: the first setup form and the options form render, translated."""
    if browser is None:
        checks.check("forms in the browser", False, "Chromium did not start")
        return
    # Settings > Devices & services > Add integration > MAM Guard (what the "my" link opens).
    ok, page = await browser.open(
        "/config/integrations/dashboard/add?domain=mam_guard", ("MAM Guard",), within=30
    )
    confirm, page = await browser.wait_for(("Do you want to set up MAM Guard?",), within=15)
    if confirm:  # the frontend asks before it starts a flow from a link
        await browser.click("OK")
    form_texts = ("MAM session cookie", "qBittorrent name", "qBittorrent Web UI URL", "Advanced")
    ok, page = await browser.wait_for(form_texts, within=30)
    checks.check(
        "setup form: rendered with its fields, no 'Translation error'",
        ok and "Translation error" not in page.text,
        {"missing": page.missing(form_texts), "errors": _translation_errors(page)},
    )
    size = await browser.screenshot(shots.path("setup-form"))
    checks.check(f"setup form: screenshot ({size // 1024} KiB)", size > 20_000, size)

    entry_texts = ("MAM FixtureUser", "Add qBittorrent client", *(c.name for c in stack.clients))
    ok, page = await browser.open(
        "/config/integrations/integration/mam_guard", entry_texts, within=30
    )
    checks.check(
        "integration page: the entry offers 'Add qBittorrent client' and lists its clients "
        f"{[c.name for c in stack.clients]}",
        ok,
        {"url": page.url, "missing": page.missing(entry_texts)},
    )
    clicked = await browser.click("Configure")
    options_texts = ("MAM Guard options", "Emergency ratio threshold", "Submit")
    ok, page = await browser.wait_for(options_texts, within=30)
    sections = page.tags.get("ha-form-expandable", 0)
    checks.check(
        "options form: rendered in sections, no 'Translation error'",
        clicked and ok and sections >= 2 and "Translation error" not in page.text,
        {
            "clicked": clicked,
            "missing": page.missing(options_texts),
            "sections": sections,
            "errors": _translation_errors(page),
        },
    )
    size = await browser.screenshot(shots.path("options-form"))
    checks.check(f"options form: screenshot ({size // 1024} KiB)", size > 20_000, size)


def _translation_errors(page: Page) -> list[str]:
    return [line for line in page.text.splitlines() if "Translation error" in line][:5]


# -- the run ----------------------------------------------------------------------------------


async def run_checks(stack: Stack, screenshot: Path, results: Path | None) -> int:
    """All steps in order; 0 when every check passed."""
    checks = Checks()
    shots = Screenshots(screenshot)
    started = time.monotonic()
    try:
        await check_setup(stack, checks)
        before = await qbt_views(stack)
    except Exception as err:  # nothing sensible can follow
        log(f"the setup checks stopped early: {err!r}")
        checks.check("setup checks completed", False, repr(err))
    else:
        async with contextlib.AsyncExitStack() as exits:
            browser: Browser | None = None
            try:  # one browser for every step; without it the API checks still run
                browser = await exits.enter_async_context(chromium(stack))
            except (RuntimeError, OSError, aiohttp.ClientError) as err:
                checks.check("Chromium started", False, repr(err))
            steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
                ("normal", lambda: check_normal(stack, checks, browser, shots)),
                ("clients", lambda: check_clients(stack, checks)),
                ("freeleech", lambda: check_freeleech(stack, checks)),
                ("emergency", lambda: check_emergency(stack, checks, before, browser, shots)),
                ("recovery", lambda: check_recovery(stack, checks, before, "recovery")),
                ("events", lambda: check_events_off(stack, checks)),
                (
                    "qbittorrent-down",
                    lambda: check_qbittorrent_down(stack, checks, before, browser, shots),
                ),
                ("purchase", lambda: check_purchase(stack, checks, before, browser, shots)),
                ("hold-off", lambda: check_hold_off(stack, checks, before, browser, shots)),
                ("forms", lambda: check_forms(stack, checks, browser, shots)),
            ]
            for name, step in steps:
                step_started = time.monotonic()
                try:  # a crash in one step is one failure; the next steps still run
                    await step()
                except Exception as err:
                    log(f"the {name} checks stopped early: {err!r}")
                    checks.check(f"{name} checks completed", False, repr(err))
                log(f"step {name}: {time.monotonic() - step_started:.1f} s")
        await checks.eventually(
            "still exactly one search per MAM download at the simulator after the whole run "
            "(answers cached across emergencies, a qBittorrent restart and two reloads)",
            one_search_each(stack),
            within=1,
        )
        checks.check(
            "qBittorrent never exited unexpectedly (the supervisor restarted it 0 times)",
            stack.qbt_restarts == 0,
            stack.qbt_restarts,
        )
    log(f"checks took {time.monotonic() - started:.1f} s")
    if results is not None:
        summary = {"passed": checks.passed, "failed": len(checks.failures)}
        await asyncio.to_thread(
            _write, results, json.dumps(summary | {"failures": checks.failures})
        )
    print(f"{checks.passed} passed, {len(checks.failures)} failed", file=sys.stderr, flush=True)
    return 1 if checks.failures else 0


def _write(path: Path, data: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)
