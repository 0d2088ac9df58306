"""The launcher: ``python -m scripts.demo`` (run by ``scripts/develop`` and ``scripts/e2e``).

It starts the stack (:mod:`scripts.demo.stack`), then either serves the demo until Ctrl-C
(printing a guide; ``--scenario emergency`` plays a freeze and its release by itself,
``--scenario purchase`` an emergency that an upload-credit purchase ends) or, with
``--exit-after-check``, runs the end-to-end checks (:mod:`scripts.demo.checks`) and stops. The
supervisor (:meth:`Stack.supervise`) runs alongside either: a dead qBittorrent is reported and
restarted, a dead Home Assistant ends the demo. ``--clients N`` (default 1) gives the account N
qBittorrent clients (SPEC §12): "Home", then "Seedbox", ..., each added through the integration's
own flows. Ctrl-C (or SIGTERM) stops HA, the qBittorrents and the simulator; the children also
get SIGTERM from the kernel if this process dies.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Iterable
import os
from pathlib import Path
import signal
import sys
import textwrap
import time

from scripts.demo.stack import (
    ACCOUNT_EMERGENCY,
    ACCOUNT_PURCHASE_EMERGENCY,
    ACCOUNT_PURCHASE_POINTS,
    ACCOUNT_RECOVERED,
    DASHBOARD_PATH,
    HA_PASSWORD,
    HA_USER,
    MAX_CLIENTS,
    PURCHASE_COST,
    PURCHASE_GB,
    PURCHASE_OPTIONS,
    RATIO_ENTITY,
    REPO,
    Client,
    HaError,
    Stack,
    demo_clients,
    log,
    pick_port,
    shown_path,
)


async def answers_first(stack: Stack) -> None:
    """Before a scenario's emergency: MAM's answer about every demo download is in (SPEC §11).

    mam_guard looks each download up once, at least 5 s apart: about half a minute after the
    start. Without the answers, the freeleech downloads would be frozen as unknown at first and
    given back at the next heartbeat (within a minute) once MAM says they are free.
    """
    if stack.unanswered(await stack.ha.get_status()):
        log("scenario: waiting for MAM's answers about the demo downloads (lookups 5 s apart)")
        if await stack.wait_lookups():
            log("scenario: MAM's answers are in")


async def emergency_scenario(stack: Stack, start_after: float, duration: float) -> None:
    """Ratio below 1.00 after ``start_after`` s, back above it ``duration`` s later."""
    log(f"scenario: the ratio drops to {ACCOUNT_EMERGENCY['ratio']} in {start_after:.0f} s")
    await asyncio.sleep(start_after)
    await answers_first(stack)
    stack.set_account(ACCOUNT_EMERGENCY)
    await stack.poll_now()
    log(
        f"scenario: ratio is now {ACCOUNT_EMERGENCY['ratio']} -> emergency "
        f"(recovery to {ACCOUNT_RECOVERED['ratio']} in {duration:.0f} s)"
    )
    await asyncio.sleep(duration)
    stack.set_account(ACCOUNT_RECOVERED)
    await stack.poll_now()
    log(f"scenario: ratio recovered to {ACCOUNT_RECOVERED['ratio']} -> the freeze is released")


async def purchase_scenario(stack: Stack, start_after: float, next_poll_after: float) -> None:
    """Upload credit on, enough points; the ratio drops; the purchase ends the emergency.

    The option is set through the options flow at once (MAM Guard reloads and polls, showing the
    new balance). After ``start_after`` s the ratio drops to 0.95 and MAM Guard polls: the
    emergency is declared and, in the same poll, upload credit bought; the simulator's ratio is
    then 1.01. The next poll, ``next_poll_after`` s later, ends the emergency.
    """
    stack.set_account(ACCOUNT_PURCHASE_POINTS)
    await stack.set_options(PURCHASE_OPTIONS)
    log(
        f"scenario: upload credit 'To end a ratio emergency' is on, "
        f"{ACCOUNT_PURCHASE_POINTS['seedbonus']:,} points; the ratio drops to "
        f"{ACCOUNT_PURCHASE_EMERGENCY['ratio']} in {start_after:.0f} s"
    )
    await asyncio.sleep(start_after)
    await answers_first(stack)
    stack.set_account(ACCOUNT_PURCHASE_EMERGENCY)
    await stack.poll_now()
    bought = ", ".join(f"{p['amount']} GB for {p['cost']:,.0f} points" for p in stack.sim.purchases)
    log(
        f"scenario: ratio is now {ACCOUNT_PURCHASE_EMERGENCY['ratio']} -> emergency; MAM Guard "
        f"bought {bought or 'nothing (yet)'} (expected {PURCHASE_GB} GB for {PURCHASE_COST:,}); "
        f"the simulator's ratio is now {stack.sim.state.ratio}; "
        f"next poll in {next_poll_after:.0f} s"
    )
    await asyncio.sleep(next_poll_after)
    await stack.poll_now()
    log(f"scenario: polled again at ratio {stack.sim.state.ratio} -> the emergency is over")


def guide(stack: Stack, args: argparse.Namespace) -> str:
    """What to open and what to try, printed once the stack is ready."""
    ha, sim = stack.ha.base, stack.sim.base_url
    token = (stack.dir / "token").relative_to(REPO)
    auth = f'-H "Authorization: Bearer $(cat {token})"'
    scenarios = {
        "emergency": f"The emergency scenario runs by itself: ratio {ACCOUNT_EMERGENCY['ratio']} "
        f"in {args.emergency_after:.0f} s, recovery {args.emergency_for:.0f} s later.",
        "purchase": "The purchase scenario runs by itself: the option 'Buy upload credit: To end "
        "a ratio emergency' is set now through the options flow (the points go up to "
        f"{ACCOUNT_PURCHASE_POINTS['seedbonus']:,}); the ratio drops to "
        f"{ACCOUNT_PURCHASE_EMERGENCY['ratio']} in {args.emergency_after:.0f} s and MAM Guard "
        f"declares the emergency and buys {PURCHASE_GB} GB of upload credit "
        f"({PURCHASE_COST:,} points); the next poll, {args.emergency_for:.0f} s later, ends the "
        "emergency (ratio 1.01). The dashboard's Bonus points card shows the last purchase.",
    }
    scenario = textwrap.fill(
        scenarios.get(
            args.scenario,
            "Re-run with --scenario emergency to watch a freeze and its release happen by itself, "
            "or with --scenario purchase to watch an upload-credit purchase end an emergency.",
        ),
        98,
    )
    qbt = stack.daemon
    logs = [stack.ha.log_path, stack.dir / "config" / "home-assistant.log"]
    logs += [c.log_path() for c in stack.clients]
    clients = "\n".join(
        f"  {'qBittorrent' if i == 0 else '':<15}{c.daemon.url}  {c.name!r}, "
        f"{'5.x' if c.spec.flavour == '5' else '4.5.2'}, {len(c.torrents)} torrents"
        for i, c in enumerate(stack.clients)
    )
    return f"""
MAM Guard demo is ready.

  Dashboard      {ha}/{DASHBOARD_PATH}
                 (no login needed from this machine; else user {HA_USER!r}, {HA_PASSWORD!r})
  Integration    {ha}/config/integrations/integration/mam_guard
{clients}
                 (user {qbt.username!r}, password {qbt.password!r})
  MAM simulator  {sim}/_sim/state  (control API: GET shows, POST changes the account)
  Logs           {", ".join(shown_path(p) for p in logs)}

{scenario}

Trigger an emergency by hand: set the simulated ratio, then make mam_guard poll now (it polls
MAM every 5 minutes; homeassistant.update_entity on the ratio sensor refreshes it at once, also
from Developer tools > Actions):

  curl -s -X POST -d '{{"ratio": 0.95}}' {sim}/_sim/state >/dev/null
  curl -s -X POST {auth} \\
       -d '{{"entity_id": "{RATIO_ENTITY}"}}' \\
       {ha}/api/services/homeassistant/update_entity

MAM Guard asks MAM's search about each MAM download once (5 s apart, half a minute after the
start): the simulator says two are paid, Dune (also tagged freeleech) and Hyperion are
freeleech, Foundation is personal freeleech (a wedge) and Neuromancer is VIP, which is free for
this VIP-class account. In the emergency the two paid MAM downloads are stopped and tagged
mam_guard_frozen, the seeds are force-started (mam_guard_forced), max active uploads/torrents go
to 50, the upload limit and the alternative speed limits are lifted; the three free untagged
downloads keep running without any tag, as do the freeleech-tagged and the non-MAM download.
Recover with {{"ratio": 1.15}} and the same update_entity call: everything is undone. The
dashboard says whether you are protected, lists the frozen and force-started torrents, and has
the Release and Trigger freeze buttons; the blueprint automation adds a notification. Why each
download is frozen or spared:

  curl -s -X POST {auth} \\
       '{ha}/api/services/mam_guard/get_status?return_response'

(emergency.frozen.reasons, emergency.spared, freeleech; MAM's answers: {sim}/_sim/torrents).
{clients_guide(stack)}
If a qBittorrent exits, the demo says so and starts it again with its torrents and settings.

Ctrl-C stops Home Assistant, qBittorrent and the simulator.
"""


def clients_guide(stack: Stack) -> str:
    """The guide's paragraph about several qBittorrent clients (SPEC §12); empty with one."""
    if len(stack.clients) == 1:
        return ""
    first, more = stack.clients[0], stack.clients[1:]

    def build(client: Client) -> str:
        return "5.x" if client.spec.flavour == "5" else "4.5.2"

    def titles(client: Client, role: str) -> str:
        names = [t.name.removesuffix(".m4b").split(" - ", 1)[-1] for t in client.torrents.values()]
        roles = [t.role for t in client.torrents.values()]
        return ", ".join(n for n, r in zip(names, roles, strict=True) if r == role) or "none"

    seedboxes = "; ".join(
        f"{c.name!r} (qBittorrent {build(c)}) has a paid MAM download ({titles(c, 'freeze')}) "
        f"and a seed ({titles(c, 'seed')})"
        for c in more
    )
    text = (
        f"This account has {len(stack.clients)} qBittorrent clients. {first.name!r} (qBittorrent "
        f"{build(first)}, the torrents above) came with the setup form (its Name field); "
        f"{seedboxes}, added through the entry's 'Add qBittorrent client' (a config subentry: "
        "reconfigure or delete it there). An emergency acts on every client at once: the paid "
        "downloads of all of them are frozen, their seeds force-started and their limits "
        "raised, and each is restored exactly afterwards. Each client is a device under the "
        "account (Settings > Devices & services > MAM Guard) with its own Seeding allocation, "
        "Stalled MAM torrents, Frozen torrents, Force-started torrents and 'qBittorrent "
        "connected'; the account's sensors of the same names are the totals, and get_status "
        "lists each client under emergency.clients. When one client cannot be reached, the "
        "others are frozen all the same and the protection sensor names the one that is not "
        "protected (scripts/e2e shows it by stopping the first qBittorrent during an emergency)."
    )
    return "\n" + textwrap.fill(text, 98) + "\n"


def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    """Command line of the launcher (scripts/develop passes its arguments through)."""
    parser = argparse.ArgumentParser(
        prog="scripts/develop",
        description="A local Home Assistant with MAM Guard, a real qBittorrent and the MAM "
        "simulator, on 127.0.0.1 only.",
    )
    parser.add_argument("--dir", type=Path, default=REPO / ".demo" / "develop")
    parser.add_argument("--port", type=int, default=8123, help="Home Assistant port (if free)")
    parser.add_argument("--sim-port", type=int, default=8765, help="MAM simulator port (if free)")
    parser.add_argument(
        "--qbt-port",
        type=int,
        default=8080,
        help="first qBittorrent's port (if free); the next clients take the next ports",
    )
    parser.add_argument(
        "--clients",
        type=int,
        choices=range(1, MAX_CLIENTS + 1),
        default=1,
        metavar="N",
        help=f"qBittorrent clients of the account, 1 to {MAX_CLIENTS} (default 1): 'Home', then "
        "'Seedbox' (qBittorrent 5.x when scripts/setup built it), ... each with its own demo "
        "torrents, added through the integration's flows",
    )
    parser.add_argument("--headless", action="store_true", help="free ports only, no guide")
    parser.add_argument(
        "--scenario",
        choices=("none", "emergency", "purchase"),
        default="none",
        help="emergency: the ratio drops, then recovers; purchase: with the option 'Buy upload "
        "credit' on, the ratio drops and an upload-credit purchase ends the emergency",
    )
    parser.add_argument(
        "--emergency-after",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="when the scenario's ratio drops (default 60)",
    )
    parser.add_argument(
        "--emergency-for",
        type=float,
        default=180.0,
        metavar="SECONDS",
        help="then the recovery (emergency) or the next poll (purchase) after this (default 180)",
    )
    parser.add_argument(
        "--exit-after-check",
        action="store_true",
        help="run the end-to-end checks (scripts/e2e; they drive their own scenarios at full "
        "speed), then stop everything",
    )
    parser.add_argument(
        "--screenshot",
        type=Path,
        default=REPO / ".demo" / "e2e-screenshot.png",
        help="with --exit-after-check: the normal dashboard's screenshot; the others go next to "
        "it, named <stem>-<step>.png (scripts/e2e --update-docs: docs/screenshot.png)",
    )
    parser.add_argument(
        "--results", type=Path, help="with --exit-after-check: write {passed, failed} JSON here"
    )
    return parser.parse_args(None if argv is None else list(argv))


async def supervised(stack: Stack, work: Awaitable[int]) -> int:
    """Run ``work`` while the supervisor watches the children; its HaError ends the work."""
    work_task = asyncio.ensure_future(work)
    watch_task = asyncio.create_task(stack.supervise())
    try:
        await asyncio.wait({work_task, watch_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (work_task, watch_task):
            task.cancel()
        await asyncio.gather(work_task, watch_task, return_exceptions=True)
    failure = watch_task.exception() if watch_task.done() and not watch_task.cancelled() else None
    if failure is not None:
        raise failure
    return work_task.result()


async def serve(stack: Stack, args: argparse.Namespace) -> int:
    """The interactive demo: the scenario if asked, then wait for Ctrl-C."""
    if not args.headless:
        print(guide(stack, args), flush=True)
    if args.scenario == "emergency":
        await emergency_scenario(stack, args.emergency_after, args.emergency_for)
    elif args.scenario == "purchase":
        await purchase_scenario(stack, args.emergency_after, args.emergency_for)
    await asyncio.Event().wait()  # until Ctrl-C / SIGTERM cancels us
    return 0


async def run(args: argparse.Namespace) -> int:
    """Start, then either check and stop, or serve until interrupted."""
    started = float(os.environ.get("DEMO_T0") or time.time())
    fixed = not args.headless
    ports = [pick_port(args.port, fixed=fixed), pick_port(args.sim_port, fixed=fixed)]
    for offset in range(args.clients):  # 8080, 8081, ... when free
        port = pick_port(args.qbt_port + offset, fixed=fixed)
        while port in ports:
            port = pick_port(port, fixed=False)
        ports.append(port)
    stack = Stack(
        args.dir.resolve(),
        ha_port=ports[0],
        sim_port=ports[1],
        qbt_ports=ports[2:],
        clients=demo_clients(args.clients),
    )
    try:
        await stack.start()
        log(f"ready in {time.time() - started:.1f} s: {stack.ha.base}/{DASHBOARD_PATH}")
        if args.exit_after_check:
            from scripts.demo.checks import run_checks  # noqa: PLC0415 - only the e2e needs it

            return await supervised(stack, run_checks(stack, args.screenshot, args.results))
        return await supervised(stack, serve(stack, args))
    finally:
        log("stopping Home Assistant, qBittorrent and the MAM simulator")
        await stack.stop()
        log("stopped")


async def _main(argv: Iterable[str] | None = None) -> int:
    args = parse_args(argv)
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        log(f"got {signal.Signals(signum).name}")
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)  # a second Ctrl-C must not interrupt the cleanup
            loop.add_signal_handler(sig, lambda: log("still stopping, please wait"))
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        return await run(args)
    except asyncio.CancelledError:
        return 130
    except HaError as err:
        log(f"failed: {err}")
        return 1


def main() -> None:
    """Entry point of ``python -m scripts.demo``."""
    sys.exit(asyncio.run(_main()))


if __name__ == "__main__":
    main()
