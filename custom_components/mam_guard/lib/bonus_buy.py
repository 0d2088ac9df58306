"""MAM's purchase API, ``json/bonusBuy.php`` (SPEC §10; research/mam.md §1.3, mam-economy.md §2).

What the client needs to buy VIP and upload credit and nothing else: the request paths, the
host rule, the answer's shapes, the typed failures and the transport guard that keeps aiohttp
from sending a purchase twice. MAM rule 1.7 allows automating documented API functions only;
``gift`` and ``sendWedge`` may never be automated and are deliberately not implemented.

Requests (GET, ``mam_id`` cookie, **www host only**: ``t.`` answers 404 for every spendtype):

* VIP: ``json/bonusBuy.php/?spendtype=VIP&duration=max&_=<epoch ms>``. ``duration=max`` fills
  VIP to the ~90-day cap; ``amount=`` on VIP answers HTTP 404, so it is never sent.
* Upload credit: ``json/bonusBuy.php/?spendtype=upload&amount=<int >= 50>&_=<epoch ms>``.

Answers are HTTP 200 either way. Success (captured against live MAM, upload)::

    {"success":true,"type":"upload","amount":50,"seedbonus":26512.091,"uploaded":9094496082151,
     "downloaded":96557899,"uploadFancy":"8.271 TiB","downloadFancy":"92.08 MiB","ratio":94186.97}

``seedbonus`` is a float here (jsonLoad gives an int). The VIP success body was never captured;
it presumably has the same envelope with ``"type":"VIP"``, so every field but ``success`` is
optional. A rejection is ``{"success": false, "error": "<text>"}``, e.g. ``"Not enough bonus,
s1"``, ``"Automated spenders are limited to buying at least 50 GB of upload at a time, due to
log spam"``, ``"Min VIP is 1 week purchased for Automated methods"``.

**Never twice.** A purchase is a GET, and aiohttp re-sends an idempotent request once, silently,
when the server drops the connection before answering (``ServerDisconnectedError`` /
``ClientOSError``) — on a fresh connection too, with ``Connection: close`` too (aiohttp 3.14
retries whatever the connection's age). For a purchase MAM may already have applied, that is a
second buy. :func:`no_resend` is a per-request middleware that turns those two errors into
:class:`PurchaseConnectionLost`, which aiohttp does not retry; the client then reports
:class:`MamPurchaseUnknownError` and the executor settles the purchase from the account.
"""

from __future__ import annotations

from dataclasses import dataclass
import ipaddress
import json
import math
from typing import Final, Literal
from urllib.parse import urlsplit

import aiohttp

from .errors import MamAuthError, MamConnectionError, MamError, MamPayloadError

PurchaseKind = Literal["vip", "upload"]

PURCHASE_PATH: Final = "json/bonusBuy.php/"
PURCHASE_HOST: Final = "www.myanonamouse.net"
MIN_UPLOAD_GB: Final = 50
# Purchase answers are ~300 bytes; anything near this is not MAM's answer.
MAX_PURCHASE_BYTES: Final = 64 * 1024
# How much of MAM's rejection text is kept (it is shown to the user and stored in the ledger).
MAX_ERROR_CHARS: Final = 300


class MamPurchaseRejectedError(MamError):
    """MAM answered and refused the purchase (HTTP 200, ``success: false``): nothing was bought.

    ``error`` is MAM's own text (cookie values cut out), e.g. ``"Not enough bonus, s1"``.
    """

    def __init__(self, error: str) -> None:
        self.error = error
        super().__init__(f"MyAnonamouse refused the purchase: {error}")


class MamPurchaseUnknownError(MamConnectionError):
    """The purchase request may have reached MAM, but its answer was lost or unreadable.

    Raised for a timeout after sending, a dropped connection, a 5xx or an answer that is not
    MAM's purchase JSON. MAM may have applied the purchase: never send it again blindly, settle
    it by reading the account (points dropped, VIP date or upload moved).
    """


class MamPurchaseNotAllowedError(MamError):
    """The purchase was refused locally before anything was sent (wrong host, bad amount)."""


class PurchaseConnectionLost(aiohttp.ClientConnectionError):
    """The connection broke after a purchase request may have been sent (never retried)."""


@dataclass(frozen=True, slots=True)
class PurchaseReceipt:
    """MAM's answer to a successful purchase; the fields MAM may omit are None."""

    kind: PurchaseKind
    amount: float | None  # MAM's echo: GB for upload (presumably weeks for VIP)
    seedbonus: float | None  # the balance after the purchase (a float: 26512.091)
    uploaded_bytes: int | None = None
    downloaded_bytes: int | None = None
    ratio: float | None = None


async def no_resend(
    req: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """Per-request aiohttp middleware: a connection lost after sending is never re-sent.

    aiohttp retries only ``ClientOSError`` and ``ServerDisconnectedError`` raised by this
    handler; re-raised as :class:`PurchaseConnectionLost` they end the request instead. A
    failure to connect (``ClientConnectorError``, nothing sent) passes through unchanged:
    aiohttp does not retry that either.
    """
    try:
        return await handler(req)
    except aiohttp.ClientConnectorError:
        raise
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as err:
        # No chaining: aiohttp's text may quote raw headers (the client scrubs ours).
        raise PurchaseConnectionLost(f"{type(err).__name__}: {err}") from None


def check_purchase_host(base_url: str) -> None:
    """Refuse purchases to anything but ``https://www.myanonamouse.net`` (or a loopback simulator).

    MAM answers 404 on ``t.`` and other hosts; a loopback base URL (``http://127.0.0.1:<port>``,
    ``localhost``) is the simulator of the tests and the demo.
    """
    parts = urlsplit(base_url)
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.scheme == "https" and host == PURCHASE_HOST:
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if parts.scheme in ("http", "https") and loopback:
        return
    raise MamPurchaseNotAllowedError(
        f"Purchases are sent to {PURCHASE_HOST} only, not to {host or base_url!r}"
    )


def check_upload_amount(amount_gb: int) -> None:
    """MAM's rule for automated upload purchases: a whole number of GB, at least 50."""
    if isinstance(amount_gb, bool) or not isinstance(amount_gb, int):
        raise MamPurchaseNotAllowedError(
            f"Upload credit is bought in whole GB, not {type(amount_gb).__name__}"
        )
    if amount_gb < MIN_UPLOAD_GB:
        raise MamPurchaseNotAllowedError(
            f"Automated upload purchases must be at least {MIN_UPLOAD_GB} GB, not {amount_gb}"
        )


def purchase_path(kind: PurchaseKind, amount_gb: int | None, stamp_ms: int) -> str:
    """The request path (relative to the base URL), cache-buster included."""
    if kind == "vip":
        return f"{PURCHASE_PATH}?spendtype=VIP&duration=max&_={stamp_ms}"
    if amount_gb is None:
        raise MamPurchaseNotAllowedError("An upload purchase needs an amount")
    check_upload_amount(amount_gb)
    return f"{PURCHASE_PATH}?spendtype=upload&amount={amount_gb}&_={stamp_ms}"


def parse_purchase_body(body: str, kind: PurchaseKind) -> PurchaseReceipt:
    """Decode a 200 bonusBuy answer; raises only :class:`MamError` subclasses.

    :class:`MamPurchaseRejectedError` for ``success: false``; :class:`MamAuthError` for MAM's
    plain-text "Error, you are not signed in"; :class:`MamPayloadError` for anything else (the
    caller treats it as "outcome unknown": MAM may have applied it). The rejection text is
    returned raw: the client scrubs cookie values out of it.
    """
    try:
        data = json.loads(body)
    except ValueError, RecursionError:
        if body.lstrip().startswith("Error"):
            raise MamAuthError(
                f"MyAnonamouse refused the session: {' '.join(body.split())[:120]}"
            ) from None
        raise MamPayloadError("MyAnonamouse did not answer the purchase with JSON") from None
    if not isinstance(data, dict):
        raise MamPayloadError(f"The purchase answer is a {type(data).__name__}, not an object")
    success = data.get("success")
    if success is True or success == 1 or success in ("true", "1"):
        return PurchaseReceipt(
            kind=kind,
            amount=_float(data.get("amount")),
            seedbonus=_float(data.get("seedbonus")),
            uploaded_bytes=_int(data.get("uploaded")),
            downloaded_bytes=_int(data.get("downloaded")),
            ratio=_float(data.get("ratio")),
        )
    if success is False or success == 0 or success in ("false", "0"):
        error = data.get("error")
        text = " ".join(error.split()) if isinstance(error, str) else ""
        raise MamPurchaseRejectedError(text[:MAX_ERROR_CHARS] or "no reason given")
    raise MamPayloadError("The purchase answer has no success flag")


def _float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.replace(",", ""))
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def _int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    number = _float(value)
    return int(number) if number is not None else None
