"""The MAM account as parsed from ``jsonLoad.php?snatch_summary``.

MAM's JSON is loosely typed and has changed shape over time (research/mam.md §1.2): ``ratio`` is
a number, a numeric string or ``"∞"``; ``uid`` a number or a string; the snatch blocks sit at top
level (older) or under ``snatch_summary`` (since ~2026-09). :meth:`MamAccount.from_json` accepts
all of them and turns everything else into a typed :class:`~.errors.MamError`, never a raw
exception, so one odd poll can never crash the coordinator.

Strictness policy: identity (``uid``, ``username``) and the values the guard acts on or graphs
(sizes, bonus points) are required; a *present but unparseable* value is an error rather than a
silent zero. Secondary fields (``classname``, ``wedges``, ``vip_until``, snatch blocks) degrade to
a neutral value so a new MAM quirk in them cannot stop the ratio guard.

Negative numbers: no field of the account can be negative, so a negative is an impossible value,
never a value. It is treated alike whether MAM sends the JSON number ``-1`` or the string ``"-1"``:

* required fields (``uid``, ``ratio``, ``uploaded_bytes``/``downloaded_bytes``, ``seedbonus``):
  :class:`~.errors.MamPayloadError` ("... is negative"), like any other unusable value, so a
  ratio of -1 can never declare an emergency;
* secondary fields degrade exactly as for garbage: ``wedges`` becomes 0; a snatch block whose
  ``count`` is negative is skipped (so ``unsatisfied`` is None, "unknown"), a negative ``size``
  or ``limit`` becomes None (so ``unsatisfied_limit`` is None).

``-0`` is zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
import math
import re
from typing import Self

from .errors import MamAuthError, MamPayloadError

# A plain decimal with optional thousands separators: "12", "1.5", "1,234.5". No exponents,
# underscores, "+" or "nan": float() would accept those, MAM never sends them. A leading "-" is
# read only so that "-1" is reported as negative, exactly like the JSON number -1.
_DECIMAL_RE = re.compile(r"-?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)", re.ASCII)
_INFINITE_RATIOS = frozenset({"∞", "inf", "infinity"})
# MAM's human sizes: "10.00 GiB", "5.125 TiB", "0.00 KiB".
_SIZE_RE = re.compile(
    r"((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)\s*([KMGTPE]?)(i?)B", re.IGNORECASE | re.ASCII
)
_SIZE_POWERS = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}
_VIP_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True, slots=True)
class SnatchBlock:
    """One ``{count, size?, limit?}`` counter of the snatch summary (e.g. ``sSat``, ``unsat``)."""

    count: int
    size: int | None = None
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class MamAccount:
    """One poll of the account; compared with ``==`` so unchanged polls do not update entities."""

    uid: int
    username: str
    classname: str
    ratio: float | None  # None when MAM reports ∞ (see ratio_infinite) or no ratio at all
    ratio_infinite: bool
    uploaded_bytes: int
    downloaded_bytes: int
    seedbonus: float
    wedges: int
    vip_until: datetime | None  # UTC; None when not VIP or unparseable
    unsatisfied: int | None
    unsatisfied_limit: int | None
    # Keyed by MAM's field name. A dict is unhashable, so it is left out of __hash__ (equal
    # accounts still hash equal); dataclass __eq__ still compares it.
    snatch: Mapping[str, SnatchBlock] = field(default_factory=dict, hash=False)
    connectable: str | None = None

    @classmethod
    def from_json(cls, data: object) -> Self:
        """Build an account from decoded jsonLoad JSON.

        Raises :class:`MamAuthError` when ``username`` is missing (MAM's way of saying "not signed
        in") and :class:`MamPayloadError` for anything else unusable. Nothing else escapes.
        """
        if not isinstance(data, dict):
            raise MamPayloadError(f"Account data is a {type(data).__name__}, not an object")
        username = data.get("username")
        if username is None or username == "":
            raise MamAuthError("MyAnonamouse returned no username: the session is not signed in")
        if not isinstance(username, str):
            raise MamPayloadError("Account field 'username' is not a string")

        nested = data.get("snatch_summary")
        nested = nested if isinstance(nested, dict) else {}
        snatch = _snatch_blocks(data) | _snatch_blocks(nested)  # the newer nested shape wins
        unsat = snatch.get("unsat")
        ratio, infinite = _ratio(data.get("ratio"))
        connectable = nested.get("connectable", data.get("connectable"))
        classname = data.get("classname")

        return cls(
            uid=_required_int(data.get("uid"), "uid"),
            username=username,
            classname=classname if isinstance(classname, str) else "",
            ratio=ratio,
            ratio_infinite=infinite,
            uploaded_bytes=_size(data, "uploaded"),
            downloaded_bytes=_size(data, "downloaded"),
            seedbonus=_required_number(data.get("seedbonus"), "seedbonus"),
            wedges=_lenient_count(data.get("wedges")) or 0,
            vip_until=_vip_until(data.get("vip_until")),
            unsatisfied=unsat.count if unsat else None,
            unsatisfied_limit=unsat.limit if unsat else None,
            snatch=snatch,
            connectable=connectable if isinstance(connectable, str) else None,
        )


def _number(value: object) -> float | None:
    """A finite float (sign kept) from a JSON number or a decimal string (thousands commas)."""
    if isinstance(value, bool):  # bool is an int subclass; True is not a count
        return None
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:  # a 400-digit integer
            return None
    if isinstance(value, str):
        text = value.strip()
        value = float(text.replace(",", "")) if _DECIMAL_RE.fullmatch(text) else None
    if isinstance(value, float) and math.isfinite(value):  # no NaN, no "1e999" -> inf
        return value
    return None


def _lenient_int(value: object) -> int | None:
    """An int (sign kept) from an integral number or a numeric string; None for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value  # exact, even beyond float precision
    number = _number(value)
    return int(number) if number is not None and number.is_integer() else None


def _lenient_count(value: object) -> int | None:
    """A count or size for a secondary field: None when unusable, negative included."""
    result = _lenient_int(value)
    return result if result is not None and result >= 0 else None


def _not_negative(value: float, name: str) -> None:
    if value < 0:
        raise MamPayloadError(f"Account field {name!r} is negative")


def _required_int(value: object, name: str) -> int:
    result = _lenient_int(value)
    if result is None:
        raise MamPayloadError(f"Account field {name!r} is missing or not an integer")
    _not_negative(result, name)
    return result


def _required_number(value: object, name: str) -> float:
    result = _number(value)
    if result is None:
        raise MamPayloadError(f"Account field {name!r} is missing or not a number")
    _not_negative(result, name)
    return result + 0.0  # -0.0 -> 0.0


def _ratio(value: object) -> tuple[float | None, bool]:
    """(ratio, infinite). ∞ is MAM's ratio when nothing was downloaded."""
    if value is None:
        return None, False
    if isinstance(value, float) and math.isinf(value) and value > 0:
        return None, True  # Python's json accepts the non-standard "Infinity"
    if isinstance(value, str) and value.strip().lower() in _INFINITE_RATIOS:
        return None, True
    ratio = _number(value)
    if ratio is None:
        raise MamPayloadError("Account field 'ratio' is not a number")
    _not_negative(ratio, "ratio")
    return ratio + 0.0, False  # -0.0 -> 0.0


def _size(data: Mapping[str, object], name: str) -> int:
    """Bytes from ``<name>_bytes``, else parsed from the human string ``<name>`` ("10.00 GiB")."""
    exact = data.get(f"{name}_bytes")
    if exact is not None:
        number = _number(exact)
        if number is None:
            raise MamPayloadError(f"Account field '{name}_bytes' is not a number")
        _not_negative(number, f"{name}_bytes")
        return int(number) if not isinstance(exact, int) else exact
    human = data.get(name)
    match = _SIZE_RE.fullmatch(human.strip()) if isinstance(human, str) else None
    if match is None:
        raise MamPayloadError(f"Account field {name!r} is missing or not a size")
    amount, prefix, binary = match.groups()
    base = 1024 if binary or not prefix else 1000  # MAM uses binary units; accept "GB" too
    size: float = float(amount.replace(",", "")) * base ** _SIZE_POWERS[prefix.upper()]
    if not math.isfinite(size):
        raise MamPayloadError(f"Account field {name!r} is out of range")
    return round(size)


def _vip_until(value: object) -> datetime | None:
    """MAM's ``YYYY-MM-DD HH:MM:SS`` is UTC (proved by MouseTrap #147); None when not parseable."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value.strip(), _VIP_FORMAT).replace(tzinfo=UTC)
    except ValueError:  # "", "0000-00-00 00:00:00", garbage
        return None


def _snatch_blocks(container: Mapping[str, object]) -> dict[str, SnatchBlock]:
    """Every ``{count, ...}`` object in ``container``, keyed by its field name."""
    blocks: dict[str, SnatchBlock] = {}
    for key, value in container.items():
        if not isinstance(key, str) or not isinstance(value, dict) or "count" not in value:
            continue
        count = _lenient_count(value["count"])
        if count is None:  # garbage or negative: the block is unknown
            continue
        blocks[key] = SnatchBlock(
            count=count,
            size=_lenient_count(value.get("size")),
            limit=_lenient_count(value.get("limit")),
        )
    return blocks
