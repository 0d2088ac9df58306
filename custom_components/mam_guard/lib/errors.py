"""Typed failures of the MyAnonamouse client.

The Home Assistant layer maps each class to one reaction (reauth flow, back-off, "unavailable",
"report a bug"), so the client must never let anything else escape. Messages are shown in logs and
the UI: they never contain the ``mam_id`` cookie value.
"""

from __future__ import annotations

from datetime import datetime


class MamError(Exception):
    """Base class of every failure the MAM client raises."""


class MamAuthError(MamError):
    """MAM no longer accepts the session: the user has to paste a new ``mam_id`` (reauth)."""


class MamRateLimitedError(MamError):
    """MAM answered 429: no request may be sent before ``retry_at`` (UTC)."""

    def __init__(self, retry_at: datetime, message: str | None = None) -> None:
        self.retry_at = retry_at
        super().__init__(message or f"MyAnonamouse rate limit: retry after {retry_at.isoformat()}")


class MamConnectionError(MamError):
    """MAM could not be reached or failed on its side (network, timeout, 5xx): retry later."""


class MamPayloadError(MamError):
    """MAM answered, but not with something we understand (not JSON, wrong shape)."""
