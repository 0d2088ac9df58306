"""MAM's search API asked by info hash: is this torrent free for us? (SPEC §11).

The documented search ``tor/js/loadSearchJSONbasic.php`` (research/mam.md §1.4; MAM's doc as
transcribed in dewarr ``docs/mam-api/torrent-search.txt``) takes ``tor[hash]``, "Hexadecimal
encoded hash from a torrent". The request is a JSON POST, as MLM's ``get_torrent_info`` sends it
(research/mam-economy.md §4), with the two fields MAM's own JSON example carries so that no
default of the site can hide a torrent (``searchType`` ``all`` includes torrents without seeders,
which a stalled download may well be), and the smallest page (``perpage`` 5, a top-level field:
packrat found it ignored elsewhere)::

    {"tor": {"hash": "<40 hex, lower case>", "searchType": "all", "searchIn": "torrents"},
     "perpage": 5}

Answers (HTTP 200 either way):

* found: ``{"perpage": 5, "start": 0, "data": [{"id": 273200, "free": 0, "vip": 1, "fl_vip": 1,
  "personal_freeleech": 0, ...}], "total": 1, "found": 1}``. The flags are JSON numbers 0/1 in
  captures (packrat), strings ``"0"``/``"1"`` in others (Seshat, MAM's doc example) and booleans
  in MAM's field table; all three are accepted (and ``"true"``/``"false"``).
* not found: ``{"error": "Nothing returned, out of 0"}`` (Prowlarr also matches "..., out of
  1"): every ``error`` starting with "Nothing returned" means "not on MAM" (None).

Strictness: ``free`` is required in a row (every source has it); ``vip``, ``fl_vip`` and
``personal_freeleech`` default to false when absent or null (MAM's own doc example has no
``personal_freeleech``) — the safe side, since false means "costs ratio". A flag that is present
but not a 0/1 value, a row that is not an object, a ``data`` that is not a list, another ``error``
text, or more than one row is a :class:`~.errors.MamPayloadError`: an info hash names one torrent,
so several rows mean the hash filter was not applied and the rows describe other torrents.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import re
from typing import Final, TypeIs

from .errors import MamAuthError, MamError, MamPayloadError

SEARCH_PATH: Final = "tor/js/loadSearchJSONbasic.php"
# One row of a hash search is ~1-2 KiB; a page of 5 is far below this.
MAX_SEARCH_BYTES: Final = 256 * 1024
SEARCH_PER_PAGE: Final = 5
NOTHING_RETURNED: Final = "Nothing returned"

_INFO_HASH_RE = re.compile(r"[0-9a-f]{40}", re.ASCII | re.IGNORECASE)
_TRUE = frozenset({"1", "true"})
_FALSE = frozenset({"0", "false", ""})
_FLAG_NAMES: Final = ("free", "personal_freeleech", "vip", "fl_vip")


class InvalidInfoHashError(MamError, ValueError):
    """The info hash is not 40 hexadecimal characters (a BitTorrent v1 hash): nothing was sent."""


@dataclass(frozen=True, slots=True)
class TorrentFlags:
    """What MAM says about one torrent: its freeleech flags (and its MAM id when given).

    ``free``: freeleech for everyone (staff pick or site-wide event); ``personal_freeleech``:
    this account spent a wedge on it (MAM updates it 5-20 min late); ``vip``: a VIP torrent;
    ``fl_vip``: "freeleech and/or VIP". VIP torrents cost no ratio for VIP-class accounts only
    (see :func:`.freeleech.freeze_reason`).
    """

    free: bool
    personal_freeleech: bool
    vip: bool
    fl_vip: bool
    id: int | None = None


def normalize_info_hash(info_hash: str) -> str:
    """The hash in lower case (as qBittorrent gives it); :class:`InvalidInfoHashError` otherwise."""
    if not isinstance(info_hash, str) or not _INFO_HASH_RE.fullmatch(info_hash):
        raise InvalidInfoHashError("An info hash is 40 hexadecimal characters")
    return info_hash.lower()


def is_info_hash(value: object) -> TypeIs[str]:
    """True for a 40-hex-character string (any case)."""
    return isinstance(value, str) and _INFO_HASH_RE.fullmatch(value) is not None


def search_request(info_hash: str) -> dict[str, object]:
    """The JSON body of a search by ``info_hash`` (validated and lower-cased)."""
    return {
        "tor": {
            "hash": normalize_info_hash(info_hash),
            "searchType": "all",
            "searchIn": "torrents",
        },
        "perpage": SEARCH_PER_PAGE,
    }


def parse_search_body(body: str) -> TorrentFlags | None:
    """Decode a 200 search answer: the torrent's flags, or None for "Nothing returned".

    Raises only :class:`~.errors.MamError` subclasses: :class:`~.errors.MamAuthError` for a
    plain-text ``Error ...`` body (how MAM refuses a session), :class:`~.errors.MamPayloadError`
    for anything else unusable. Messages never quote the body beyond MAM's own ``error`` text,
    which the client scrubs.
    """
    try:
        data = json.loads(body)
    except ValueError, RecursionError:
        if body.lstrip().startswith("Error"):
            raise MamAuthError("MyAnonamouse refused the session") from None
        raise MamPayloadError("MyAnonamouse did not answer the search with JSON") from None
    if not isinstance(data, dict):
        raise MamPayloadError(f"Search answer is a {type(data).__name__}, not an object")
    error = data.get("error")
    if error is not None:
        if isinstance(error, str) and error.strip().startswith(NOTHING_RETURNED):
            return None
        text = " ".join(str(error).split())[:120]
        raise MamPayloadError(f"MyAnonamouse refused the search: {text}")
    rows = data.get("data")
    if not isinstance(rows, list):
        raise MamPayloadError("Search answer has no 'data' list")
    if not rows:
        return None
    if len(rows) > 1:
        raise MamPayloadError(
            f"A search by info hash matched {len(rows)} torrents (the hash was not applied)"
        )
    return parse_search_row(rows[0])


def parse_search_row(row: object) -> TorrentFlags:
    """One ``data`` row to :class:`TorrentFlags` (see the module docstring for strictness)."""
    if not isinstance(row, dict):
        raise MamPayloadError(f"Search row is a {type(row).__name__}, not an object")
    if row.get("free") is None:
        raise MamPayloadError("Search row has no 'free' flag")
    free, personal, vip, fl_vip = (_flag(row.get(name), name) for name in _FLAG_NAMES)
    return TorrentFlags(
        free=free, personal_freeleech=personal, vip=vip, fl_vip=fl_vip, id=_torrent_id(row)
    )


def _flag(value: object, name: str) -> bool:
    """A 0/1 flag from a bool, the numbers 0/1 or the strings "0"/"1"/"true"/"false"."""
    if value is None:  # absent or null: not granted
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise MamPayloadError(f"Search flag {name!r} is not 0 or 1")


def _torrent_id(row: dict[str, object]) -> int | None:
    """MAM's torrent id (a number or a numeric string); None when absent or odd (secondary)."""
    value = row.get("id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        number = int(value.strip())
        return number if number > 0 else None
    return None
