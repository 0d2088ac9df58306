"""End-to-end checks on a running demo stack (``scripts/e2e``; SPEC §4 through the real services).

The launcher (``scripts.demo_stack --exit-after-check``) starts the stack, then :func:`run_checks`

1. checks the setup: the config entry came from the REST config flow and is loaded, every entity
   the YAML dashboard uses exists and is available, HA listens on 127.0.0.1 only, the rules
   pages were fetched from the simulator at startup;
2. records qBittorrent's torrents (state, tags, force start), all its preferences and the
   alternative speed mode;
3. drops the simulated ratio to 0.97 and asks HA for an immediate poll, then checks the freeze in
   qBittorrent (paid MAM downloads stopped and tagged ``mam_guard_frozen``, the freeleech-tagged and
   the non-MAM download untouched, seeds force-started and tagged ``mam_guard_forced``, capacity
   raised, upload limit and alternative speed limits off) and in HA (entities, the blueprint's
   notification);
4. opens the dashboard in headless Chromium (trusted_networks login, or injected ``hassTokens`` if
   that fails), checks through the shadow DOM that the cards rendered without warnings, and saves
   a screenshot;
5. raises the ratio to 1.12 (above 1.10: status normal again), polls, and checks that
   qBittorrent is exactly as recorded in step 2, the entities and the notification followed, and
   no site event is on (the default pages announce none);
6. at once runs a manual cycle: ``mam_guard.trigger_freeze`` (same freeze, event with counts),
   then ``mam_guard.release_freeze`` (qBittorrent exactly as in step 2 again).

Each check prints ``PASS``/``FAIL``; the totals go to ``--results`` for the shell script.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
from dataclasses import dataclass
import json
import os
from pathlib import Path
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import psutil  # type: ignore[import-untyped]

from scripts.demo_stack import (
    ACCOUNT_EMERGENCY,
    ACCOUNT_RECOVERED,
    AUTOMATION_ENTITY,
    DASHBOARD_PATH,
    EMERGENCY_ENTITY,
    PREFIX,
    QBT_PREFS,
    REPO,
    HomeAssistant,
    die_with_parent,
    log,
)

if TYPE_CHECKING:
    from scripts.demo_stack import Stack

TAG_FROZEN, TAG_FORCED = "mam_guard_frozen", "mam_guard_forced"
STOPPED_DL = {"pausedDL", "stoppedDL"}  # qBittorrent 4.x / 5.x
RAISED_TO = 50
FROZEN_SENSOR = f"sensor.{PREFIX}_frozen_torrents"
FORCED_SENSOR = f"sensor.{PREFIX}_force_started_torrents"
STATUS_SENSOR = f"sensor.{PREFIX}_ratio_status"
ALLOCATION_SENSOR = f"sensor.{PREFIX}_seeding_allocation"
RULES_SENSOR = f"sensor.{PREFIX}_rules_version"
DASHBOARD_FILE = REPO / "dashboards" / "mam_guard.yaml"
VIEWPORT = (1280, 900)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)
# Walks the whole page including every shadow root (HA's frontend is web components all the way).
DEEP_DOM_JS = """(() => {
  const texts = [], tags = {};
  const walk = (node) => {
    if (!node) return;
    if (node.nodeType === Node.TEXT_NODE) {
      const t = node.textContent.trim();
      if (t) texts.push(t);
      return;
    }
    if (node.nodeType === Node.ELEMENT_NODE) {
      const name = node.localName;
      if (name === 'style' || name === 'script') return;
      if (name.startsWith('hui-')) tags[name] = (tags[name] || 0) + 1;
      if (node.shadowRoot) walk(node.shadowRoot);
    }
    for (const child of node.childNodes) walk(child);
  };
  walk(document.documentElement);
  return {url: location.href, text: texts.join('\\n'), tags};
})()"""
CARD_TAGS = ("hui-tile-card", "hui-entities-card", "hui-glance-card", "hui-history-graph-card")
DASHBOARD_TEXTS = (
    "Emergency",
    "Account",
    "VIP",
    "Site events and rules",
    "Ratio emergency",
    "Frozen downloads",
    "Force-started seeds",
    "Seeding allocation",
    "Enforcement",
    "Bonus points per day",
    "Refresh rules",
    "Problem",  # the emergency binary sensor (device class problem) is on while we look
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
        within: float = 60.0,
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


async def qbt_view(stack: Stack) -> QbtView:
    """Read torrents, preferences and the speed-limits mode straight from qBittorrent's API."""
    async with stack.qbt_client() as client:
        infos = await client.torrents.info()
        prefs = dict(await client.app.preferences())
        alt_speed = await client.transfer.speed_limits_mode()
    torrents = {
        t.hash: TorrentView(str(t.state), frozenset(t.tags), bool(t.force_start)) for t in infos
    }
    return QbtView(torrents, prefs, alt_speed)


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


async def notification(ha: HomeAssistant) -> dict[str, Any]:
    """The blueprint automation's persistent notification (id mam_guard_emergency), or {}."""
    notes = await ha.ws_command({"type": "persistent_notification/get"})
    for note in notes:
        if note.get("notification_id") == "mam_guard_emergency":
            return dict(note)
    return {}


async def check_setup(stack: Stack, checks: Checks) -> None:
    """The entry exists and every dashboard entity is there and available."""
    checks.check("config entry created through the REST config flow", bool(stack.entry_id))
    entries = await stack.ha.request("GET", "/api/config/config_entries/entry?domain=mam_guard")
    checks.check(
        "config entry loaded",
        [e["state"] for e in entries] == ["loaded"],
        [(e["title"], e["state"]) for e in entries],
    )
    states = {s["entity_id"]: s["state"] for s in await stack.ha.request("GET", "/api/states")}
    wanted = dashboard_entities()
    missing = sorted(wanted - states.keys())
    checks.check(f"all {len(wanted)} dashboard entities exist", not missing, missing)
    unavailable = sorted(e for e in wanted if states.get(e) == "unavailable")
    checks.check("no dashboard entity is unavailable", not unavailable, unavailable)
    checks.check("Home Assistant listens on 127.0.0.1 only", *listens_on_loopback_only(stack))
    await checks.eventually(  # 7 pages, 2 s apart; also makes the screenshot show a version
        "rules fetched from the simulator at startup (rules version is a number)",
        is_number(stack.ha, RULES_SENSOR),
    )
    checks.check(
        "no emergency at start",
        states.get(EMERGENCY_ENTITY) == "off" and states.get(FROZEN_SENSOR) == "0",
        {e: states.get(e) for e in (EMERGENCY_ENTITY, FROZEN_SENSOR)},
    )


def listens_on_loopback_only(stack: Stack) -> tuple[bool, object]:
    """Every listening TCP socket of the hass process is on 127.0.0.1."""
    assert stack.ha.proc is not None
    sockets = psutil.Process(stack.ha.proc.pid).net_connections(kind="inet")
    mine = sorted({f"{c.laddr[0]}:{c.laddr[1]}" for c in sockets if c.status == psutil.CONN_LISTEN})
    return bool(mine) and all(addr.startswith("127.0.0.1:") for addr in mine), mine


def freeze_problems(stack: Stack, before: QbtView, now: QbtView) -> list[str]:
    """What differs from SPEC §4's expected emergency state (empty when all is right)."""
    problems: list[str] = []
    for info_hash, spec in stack.torrents.items():
        old, new = before.torrents[info_hash], now.torrents.get(info_hash)
        if new is None:
            problems.append(f"{spec.name}: gone")
        elif spec.role == "freeze" and (new.state not in STOPPED_DL or TAG_FROZEN not in new.tags):
            problems.append(f"{spec.name}: not frozen ({new})")
        elif spec.role == "seed" and (not new.force_start or TAG_FORCED not in new.tags):
            problems.append(f"{spec.name}: not force-started ({new})")
        elif spec.role in {"exempt", "other"} and new != old:
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


async def check_emergency(stack: Stack, checks: Checks, before: QbtView) -> None:
    """Ratio below the threshold: the freeze happens in qBittorrent and shows in HA."""
    ha = stack.ha
    stack.set_account(ACCOUNT_EMERGENCY)
    await stack.poll_now()
    await checks.eventually(
        "emergency binary sensor turns on", state_is(ha, EMERGENCY_ENTITY, "on")
    )

    async def frozen() -> tuple[bool, object]:
        problems = freeze_problems(stack, before, await qbt_view(stack))
        return not problems, problems

    await checks.eventually(
        "qBittorrent: paid MAM downloads frozen and tagged, seeds forced, capacity raised, "
        "freeleech and non-MAM untouched",
        frozen,
        within=45,
    )
    await ha.update_entity(ALLOCATION_SENSOR)
    await checks.eventually("frozen torrents sensor = 2", state_is(ha, FROZEN_SENSOR, "2"))
    await checks.eventually("force-started torrents sensor = 2", state_is(ha, FORCED_SENSOR, "2"))
    await checks.eventually("ratio status = emergency", state_is(ha, STATUS_SENSOR, "emergency"))
    await checks.eventually(
        f"seeding allocation sensor = {RAISED_TO}",
        state_is(ha, ALLOCATION_SENSOR, str(RAISED_TO)),
    )

    async def notified() -> tuple[bool, object]:
        note = await notification(ha)
        text = note.get("message", "")
        ok = note.get("title") == "MAM ratio emergency" and "ratio 0.97" in text
        return ok and "stopped 2 paid" in text and "force-started 2 seed" in text, note

    await checks.eventually("blueprint automation notified the emergency start", notified)


async def check_manual_cycle(stack: Stack, checks: Checks, before: QbtView) -> None:
    """mam_guard.trigger_freeze right after a release, then mam_guard.release_freeze."""
    ha = stack.ha
    await ha.call("mam_guard", "trigger_freeze", {})
    await checks.eventually(
        "manual freeze (trigger_freeze): emergency on", state_is(ha, EMERGENCY_ENTITY, "on")
    )

    async def frozen() -> tuple[bool, object]:
        problems = freeze_problems(stack, before, await qbt_view(stack))
        return not problems, problems

    await checks.eventually("manual freeze: qBittorrent frozen as in SPEC 4", frozen, within=45)

    async def notified() -> tuple[bool, object]:
        note = await notification(ha)
        text = note.get("message", "")
        ok = text.startswith("Manual freeze") and "stopped 2 paid" in text
        return ok and "force-started 2 seed" in text, note

    await checks.eventually("manual freeze: the started event carries the counts", notified)
    await ha.call("mam_guard", "release_freeze", {})
    await checks.eventually("release_freeze: emergency off", state_is(ha, EMERGENCY_ENTITY, "off"))

    async def restored() -> tuple[bool, object]:
        problems = restore_problems(before, await qbt_view(stack))
        return not problems, problems

    await checks.eventually("release_freeze: qBittorrent exactly as before", restored, within=45)


async def check_recovery(stack: Stack, checks: Checks, before: QbtView) -> None:
    """Ratio back above the threshold: everything is undone exactly."""
    ha = stack.ha
    stack.set_account(ACCOUNT_RECOVERED)
    await stack.poll_now()
    await checks.eventually(
        "emergency binary sensor turns off", state_is(ha, EMERGENCY_ENTITY, "off")
    )

    async def restored() -> tuple[bool, object]:
        problems = restore_problems(before, await qbt_view(stack))
        return not problems, problems

    await checks.eventually(
        "qBittorrent: torrents, tags and all preferences exactly as before the emergency",
        restored,
        within=45,
    )
    await ha.update_entity(ALLOCATION_SENSOR)
    await checks.eventually("frozen torrents sensor = 0", state_is(ha, FROZEN_SENSOR, "0"))
    await checks.eventually("force-started torrents sensor = 0", state_is(ha, FORCED_SENSOR, "0"))
    await checks.eventually("ratio status = normal", state_is(ha, STATUS_SENSOR, "normal"))
    await checks.eventually(
        "seeding allocation sensor back to its old value",
        state_is(ha, ALLOCATION_SENSOR, str(QBT_PREFS["max_active_uploads"])),
    )

    async def notified() -> tuple[bool, object]:
        note = await notification(ha)
        return note.get("title") == "MAM ratio emergency is over", note

    await checks.eventually("blueprint automation notified the emergency end", notified)
    events = [f"binary_sensor.{PREFIX}_{k}_event" for k in ("freeleech", "bonus_points")]
    events.append(f"binary_sensor.{PREFIX}_upload_multiplier_event")
    for entity_id in events:
        await checks.eventually(f"{entity_id} is off", state_is(ha, entity_id, "off"), within=5)
    automation = await ha.state(AUTOMATION_ENTITY)
    checks.check(
        "blueprint automation ran",
        automation is not None and automation["attributes"].get("last_triggered") is not None,
        automation,
    )


# -- browser ----------------------------------------------------------------------------------


class Cdp:
    """A minimal Chrome DevTools Protocol client on one page target (aiohttp websocket)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Use an open websocket to a page target."""
        self.ws = ws
        self.last_id = 0

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a command and wait for its answer (events in between are dropped)."""
        self.last_id += 1
        await self.ws.send_json({"id": self.last_id, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json(timeout=60)
            if msg.get("id") == self.last_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg.get("result", {})
                return result

    async def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page and return its value."""
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript failed: {result['exceptionDetails']}")
        return result["result"].get("value")


@contextlib.asynccontextmanager
async def chromium(stack: Stack) -> AsyncIterator[Cdp]:
    """Debian's Chromium, headless, fresh profile; yields a CDP client on its first page."""
    binary = shutil.which("chromium")
    if binary is None:
        raise RuntimeError("chromium is not installed (scripts/e2e installs it with apt)")
    profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=stack.dir))
    with (stack.dir / "logs" / "chromium.log").open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            binary,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}",
            "about:blank",
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    stack.record_pid("chromium", proc.pid)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if proc.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError("Chromium did not open its DevTools port")
            await asyncio.sleep(0.1)
        port = port_file.read_text().split()[0]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
                pages = [t for t in await resp.json() if t["type"] == "page"]
            async with session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                yield Cdp(ws)
    finally:
        await stop_group(proc)
        shutil.rmtree(profile, ignore_errors=True)


async def stop_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the browser's process group (it has its own: renderers, zygotes, GPU process)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), 10)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


async def inject_tokens(stack: Stack, cdp: Cdp) -> None:
    """Fallback login: put a fresh token pair into localStorage as the frontend would."""
    ha = stack.ha
    async with ha.http.post(
        f"{ha.base}/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": ha.refresh_token,
            "client_id": f"{ha.base}/",
        },
    ) as resp:
        tokens = await resp.json()
    tokens |= {
        "hassUrl": ha.base,
        "clientId": f"{ha.base}/",
        "refresh_token": ha.refresh_token,
        "expires": int(time.time() * 1000) + tokens["expires_in"] * 1000,
    }
    await cdp.evaluate(f"localStorage.setItem('hassTokens', {json.dumps(json.dumps(tokens))})")


async def wait_dashboard(cdp: Cdp, within: float) -> tuple[bool, dict[str, Any]]:
    """Poll the deep DOM until every card and text is there (True) or the deadline (False)."""
    deadline = time.monotonic() + within
    page: dict[str, Any] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(RuntimeError):  # the page may be between two documents
            page = await cdp.evaluate(DEEP_DOM_JS) or {}
        tags, text = page.get("tags", {}), page.get("text", "")
        if all(tags.get(t) for t in CARD_TAGS) and all(s in text for s in DASHBOARD_TEXTS):
            return True, page
        await asyncio.sleep(0.5)
    return False, page


async def check_browser(stack: Stack, checks: Checks, screenshot: Path) -> None:
    """Open the dashboard headless, check the rendered cards, save a screenshot."""
    url = f"{stack.ha.base}/{DASHBOARD_PATH}"
    async with chromium(stack) as cdp:
        await cdp.send(
            "Emulation.setDeviceMetricsOverride",
            width=VIEWPORT[0],
            height=VIEWPORT[1],
            deviceScaleFactor=1,
            mobile=False,
        )
        await cdp.send("Page.navigate", url=url)
        auto_login, page = await wait_dashboard(cdp, 40)
        checks.check(
            "browser: trusted_networks logs in without a password", auto_login, page.get("url")
        )
        if not auto_login:
            await inject_tokens(stack, cdp)
            await cdp.send("Page.navigate", url=url)
            rendered, page = await wait_dashboard(cdp, 40)
        else:
            rendered = True
        tags, text = page.get("tags", {}), page.get("text", "")
        checks.check(
            "browser: dashboard cards rendered (tile, entities, glance, history-graph)",
            rendered,
            {
                "url": page.get("url"),
                "tags": tags,
                "missing": [s for s in DASHBOARD_TEXTS if s not in text],
            },
        )
        warnings = tags.get("hui-warning", 0) + tags.get("hui-warning-element", 0)
        checks.check(
            "browser: no card warnings (unknown entities)",
            not warnings and "Entity not available" not in text,
            [line for line in text.splitlines() if "not" in line.lower()][:10],
        )
        await asyncio.sleep(2)  # let the history chart finish its animation
        shot = await cdp.send("Page.captureScreenshot", format="png")
    data = base64.b64decode(shot["data"])
    await asyncio.to_thread(_write, screenshot, data)
    checks.check(
        f"browser: screenshot saved ({len(data) // 1024} KiB)", len(data) > 20_000, screenshot
    )


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)


async def run_checks(stack: Stack, screenshot: Path, results: Path | None) -> int:
    """All checks in order; 0 when every one passed."""
    checks = Checks()
    started = time.monotonic()
    try:
        await check_setup(stack, checks)
        before = await qbt_view(stack)
    except Exception as err:  # nothing sensible can follow
        log(f"the setup checks stopped early: {err!r}")
        checks.check("setup checks completed", False, repr(err))
    else:
        phases: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("emergency", lambda: check_emergency(stack, checks, before)),
            ("browser", lambda: check_browser(stack, checks, screenshot)),
            ("recovery", lambda: check_recovery(stack, checks, before)),
            ("manual cycle", lambda: check_manual_cycle(stack, checks, before)),
        ]
        for name, phase in phases:
            try:  # a crash in one phase is one failure; the next phases still run
                await phase()
            except Exception as err:
                log(f"the {name} checks stopped early: {err!r}")
                checks.check(f"{name} checks completed", False, repr(err))
    log(f"checks took {time.monotonic() - started:.1f} s")
    if results is not None:
        summary = {"passed": checks.passed, "failed": len(checks.failures)}
        await asyncio.to_thread(
            _write, results, json.dumps(summary | {"failures": checks.failures})
        )
    print(f"{checks.passed} passed, {len(checks.failures)} failed", file=sys.stderr, flush=True)
    return 1 if checks.failures else 0
