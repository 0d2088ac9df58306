"""Acting on several qBittorrent clients of one account at once (SPEC §12; no HA imports).

An account's ratio is global, so one emergency covers every client the account uses, each with
its own :class:`~.emergency.EmergencyExecutor` (adapter, record, preference snapshot). Those
executors must not wait for each other: a client that is down, slow or failing would otherwise
hold back the freeze of every client after it — for up to the adapter's timeout per request
while the account keeps losing ratio on the others. :func:`run_each` runs one job per client
concurrently and reports each job's own outcome, so each client fails alone.

Give each client's adapter its own HTTP session: qBittorrent (4.5.2 and 5.1 alike) names its
session cookie ``SID`` whatever the port, and a cookie jar does not tell ports apart, so two
clients on one host sharing a session would log each other out (403, then a new login) whenever
they take turns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

__all__ = ["run_each"]


async def run_each[K](
    jobs: Mapping[K, Callable[[], Awaitable[None]]],
) -> dict[K, BaseException | None]:
    """Run every job concurrently; return each one's outcome by its key, in the jobs' order.

    Each job is called inside its own task (so even one that raises before its first ``await``
    fails alone), and this returns once all have finished: ``None`` for a job that completed,
    the exception for one that raised (a ``CancelledError`` too, when something else cancelled
    that job). A failing or slow job neither cancels nor delays the others; what it raised is
    reported, never re-raised (the caller logs it or counts it against that client).

    Cancelling the caller cancels every job still running, waits for them to unwind, and then
    raises ``CancelledError`` (also when a job swallowed its cancellation).
    """
    keys = list(jobs)
    outcomes = await asyncio.gather(*(_call(jobs[key]) for key in keys), return_exceptions=True)
    return {
        key: outcome if isinstance(outcome, BaseException) else None
        for key, outcome in zip(keys, outcomes, strict=True)
    }


async def _call(job: Callable[[], Awaitable[None]]) -> None:
    await job()
