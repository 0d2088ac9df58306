"""Debian's headless Chromium on Home Assistant's frontend, over the DevTools protocol (CDP).

The frontend is web components all the way down, so every query walks the shadow roots
(:data:`DEEP_DOM_JS`). :class:`Browser` opens a page as the logged-in demo user (trusted_networks,
or injected tokens when that fails), waits until given texts are rendered, clicks elements by
their text, and saves screenshots of the whole page.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
import contextlib
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import shutil
import signal
import subprocess
import tempfile
import time
from typing import TYPE_CHECKING, Any

import aiohttp

from scripts.demo.stack import die_with_parent

if TYPE_CHECKING:
    from scripts.demo.stack import Stack

WIDTH = 1280
VIEWPORT_HEIGHT = 900  # forms and dialogs
DASHBOARD_HEIGHT = 2600  # taller than the dashboard: the logbook renders only what is visible
MAX_HEIGHT = 4000
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
# Walks the whole page including every shadow root. Returns the visible texts, the count of each
# hui-/ha- element, and the alerts' types (ha-alert, e.g. the protection card's colour).
DEEP_DOM_JS = """(() => {
  const texts = [], tags = {}, alerts = [];
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
      if (name.startsWith('hui-') || name.startsWith('ha-') || name.startsWith('dialog-'))
        tags[name] = (tags[name] || 0) + 1;
      if (name === 'ha-alert') alerts.push(node.getAttribute('alert-type') || '');
      if (node.shadowRoot) walk(node.shadowRoot);
    }
    for (const child of node.childNodes) walk(child);
  };
  walk(document.documentElement);
  return {url: location.href, text: texts.join('\\n'), tags, alerts};
})()"""
# Clicks the first visible element whose own text or aria-label is exactly `wanted` (buttons, icon
# buttons, list items, menu entries), searching every shadow root. Returns whether one was found.
CLICK_TEXT_JS = """((wanted) => {
  let found = null;
  const walk = (node) => {
    if (!node || found) return;
    if (node.nodeType === Node.ELEMENT_NODE) {
      const own = Array.from(node.childNodes)
        .filter((c) => c.nodeType === Node.TEXT_NODE).map((c) => c.textContent.trim())
        .filter((t) => t).join(' ');
      const named = own === wanted || node.getAttribute('aria-label') === wanted;
      if (named && node.getClientRects().length) { found = node; return; }
      if (node.shadowRoot) walk(node.shadowRoot);
    }
    for (const child of node.childNodes) walk(child);
  };
  walk(document.documentElement);
  if (!found) return false;
  found.scrollIntoView({block: 'center'});
  found.click();
  return true;
})"""
# How much of the page to show: the bottom of the dashboard's lowest card (the viewport is taller
# than the dashboard while it renders, see DASHBOARD_HEIGHT), and how far an open dialog's content
# overflows its scrolling box.
PAGE_SIZE_JS = """(() => {
  let viewBottom = null, overflow = 0;
  const walk = (node, inDialog) => {
    if (!node) return;
    if (node.nodeType === Node.ELEMENT_NODE) {
      const name = node.localName;
      if (name === 'hui-card' && node.getClientRects().length)
        viewBottom = Math.max(viewBottom || 0, Math.ceil(node.getBoundingClientRect().bottom));
      inDialog = inDialog || name.includes('dialog');
      if (inDialog && node.clientHeight >= 100)
        overflow = Math.max(overflow, node.scrollHeight - node.clientHeight);
      if (node.shadowRoot) walk(node.shadowRoot, inDialog);
    }
    for (const child of node.childNodes) walk(child, inDialog);
  };
  walk(document.documentElement, false);
  return {viewBottom, overflow, height: window.innerHeight};
})()"""


@dataclass
class Page:
    """What :data:`DEEP_DOM_JS` saw."""

    url: str = ""
    text: str = ""
    tags: dict[str, int] = field(default_factory=dict)
    alerts: list[str] = field(default_factory=list)

    def missing(self, texts: tuple[str, ...]) -> list[str]:
        """The wanted texts not on the page."""
        return [t for t in texts if t not in self.text]


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


class Browser:
    """One Chromium tab on the demo's Home Assistant, as its logged-in user."""

    def __init__(self, stack: Stack, cdp: Cdp) -> None:
        """Use a CDP connection to a fresh tab."""
        self.stack = stack
        self.cdp = cdp
        self.logged_in_by_trusted_networks: bool | None = None  # known after the first open

    async def page(self) -> Page:
        """The page as it is now (an empty Page between two documents)."""
        with contextlib.suppress(RuntimeError):
            raw = await self.cdp.evaluate(DEEP_DOM_JS) or {}
            return Page(raw.get("url", ""), raw.get("text", ""), raw["tags"], raw["alerts"])
        return Page()

    async def wait_for(
        self, texts: tuple[str, ...], *, within: float = 30.0, absent: tuple[str, ...] = ()
    ) -> tuple[bool, Page]:
        """Poll the page until every text of ``texts`` and none of ``absent`` is shown."""
        deadline = time.monotonic() + within
        while True:
            page = await self.page()
            if not page.missing(texts) and not any(t in page.text for t in absent):
                return True, page
            if time.monotonic() > deadline:
                return False, page
            await asyncio.sleep(0.5)

    async def open(
        self,
        path: str,
        texts: tuple[str, ...],
        *,
        within: float = 40.0,
        height: int = VIEWPORT_HEIGHT,
    ) -> tuple[bool, Page]:
        """Navigate to ``path`` of HA and wait for ``texts``; log in by tokens if needed."""
        await self.resize(height)
        url = f"{self.stack.ha.base}{path}"
        await self.cdp.send("Page.navigate", url=url)
        ok, page = await self.wait_for(texts, within=within)
        if self.logged_in_by_trusted_networks is None:
            self.logged_in_by_trusted_networks = ok
            if not ok:  # the login page, most likely: the fallback the frontend itself uses
                await self.inject_tokens()
                await self.cdp.send("Page.navigate", url=url)
                ok, page = await self.wait_for(texts, within=within)
        return ok, page

    async def resize(self, height: int) -> None:
        """Set the viewport (the width stays :data:`WIDTH`)."""
        await self.cdp.send(
            "Emulation.setDeviceMetricsOverride",
            width=WIDTH,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    async def click(self, text: str, *, within: float = 15.0) -> bool:
        """Click the element showing exactly ``text`` (waits until one is there)."""
        deadline = time.monotonic() + within
        while True:
            with contextlib.suppress(RuntimeError):
                if await self.cdp.evaluate(f"{CLICK_TEXT_JS}({json.dumps(text)})"):
                    return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.5)

    async def screenshot(self, path: Path, *, settle: float = 1.5) -> int:
        """Save a PNG of the whole dashboard, or of the whole open dialog; returns its size.

        A dashboard is cut at the bottom of its view; a dialog whose content scrolls gets a taller
        viewport until nothing is hidden (at most :data:`MAX_HEIGHT`).
        """
        await asyncio.sleep(settle)  # charts animate, tiles fade in
        clip: dict[str, float] | None = None
        for _ in range(4):
            size = await self.cdp.evaluate(PAGE_SIZE_JS) or {}
            height = int(size.get("height") or VIEWPORT_HEIGHT)
            if size.get("viewBottom") and not size.get("overflow"):
                bottom = min(int(size["viewBottom"]) + 16, MAX_HEIGHT)
                if bottom > height:
                    await self.resize(bottom)
                    await asyncio.sleep(1.0)
                clip = {"x": 0, "y": 0, "width": WIDTH, "height": bottom, "scale": 1}
                break
            if int(size.get("overflow") or 0) <= 1 or height >= MAX_HEIGHT:
                break
            await self.resize(min(height + int(size["overflow"]), MAX_HEIGHT))
            await asyncio.sleep(1.0)  # the dialog grows with the viewport
        params: dict[str, Any] = {"format": "png"}
        if clip is not None:
            params["clip"] = clip
        shot = await self.cdp.send("Page.captureScreenshot", **params)
        data = base64.b64decode(shot["data"])
        await asyncio.to_thread(_write, path, data)
        return len(data)

    async def inject_tokens(self) -> None:
        """Fallback login: put a fresh token pair into localStorage as the frontend would."""
        ha = self.stack.ha
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
        await self.cdp.evaluate(
            f"localStorage.setItem('hassTokens', {json.dumps(json.dumps(tokens))})"
        )


@contextlib.asynccontextmanager
async def chromium(stack: Stack) -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, fresh profile; yields a Browser on its first tab."""
    binary = shutil.which("chromium")
    if binary is None:
        raise RuntimeError("chromium is not installed (scripts/e2e installs it with apt)")
    profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=stack.dir))
    with (stack.dir / "logs" / "chromium.log").open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            binary,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={WIDTH},900",
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
                yield Browser(stack, Cdp(ws))
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


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
