"""MamAccount.from_json against every jsonLoad shape in research/mam.md, plus fuzzing."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
import json
from typing import Any

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.mam_guard.lib.errors import MamAuthError, MamError, MamPayloadError
from custom_components.mam_guard.lib.mam import parse_account_body
from custom_components.mam_guard.lib.models import MamAccount, SnatchBlock

# The late-2026 shape (Miista/packrat fixture, abridged in mam.md §1.2).
NESTED: dict[str, Any] = {
    "classname": "VIP",
    "downloaded": "1.00 GiB",
    "downloaded_bytes": 1073741824,
    "ratio": 1.5,
    "seedbonus": 1000,
    "snatch_summary": {
        "connectable": "yes",
        "created": 1700000000,
        "created_at": "2025-01-01 00:00:00",
        "sSat": {"name": "Seeding - Satisfied", "count": 331, "size": 13328988136},
        "unsat": {"name": "Unsatisfied", "count": 42, "limit": 50, "size": 123456789},
        "leeching": {"name": "Leeching", "count": 1, "size": None},
        "duplicates": {"count": 0},
        "reseed": {"count": 3, "inactive": 1},
        "v6_connectable": None,
    },
    "uid": 100001,
    "uploaded": "10.00 GiB",
    "uploaded_bytes": 10737418240,
    "username": "FixtureUser",
    "vip_until": "2027-01-01 00:00:00",
    "wedges": 10,
}

# The older shape (tracker-tracker docs): blocks at top level with "red", ratio 26.7.
TOP_LEVEL: dict[str, Any] = {
    "classname": "Power User",
    "connectable": "no",
    "country_code": "nl",
    "created": 1700000000,
    "downloaded": "5.125 TiB",
    "downloaded_bytes": 5634997092352,
    "inactHnr": {"name": "Not Seeding - H&R", "count": 0, "red": False, "size": None},
    "ratio": 26.7,
    "seedHnr": {
        "name": "Seeding - pre-H&R - Not Yet Satisfied",
        "count": 2,
        "red": True,
        "size": 10,
    },
    "seedbonus": 99999,
    "uid": "4242",
    "unsat": {"name": "Unsatisfied", "count": 7, "red": False, "limit": 100, "size": None},
    "uploaded": "136.83 TiB",
    "uploaded_bytes": 150446278115901,
    "username": "Old",
    "vip_until": "2026-06-10 06:44:38",
    "wedges": 3,
}

# windlass's capture without parameters: a VIP with nothing downloaded.
BARE_INFINITE: dict[str, Any] = {
    "classname": "VIP",
    "downloaded": "0.00 KiB",
    "downloaded_bytes": 0,
    "ratio": "∞",
    "seedbonus": 5,
    "uid": 7,
    "uploaded": "3.00 GiB",
    "uploaded_bytes": 3221225472,
    "username": "Fresh",
    "wedges": 0,
}


def payload(base: dict[str, Any] = NESTED, **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(base)
    data.update(changes)
    return data


def test_nested_shape() -> None:
    account = MamAccount.from_json(payload())
    assert account.uid == 100001
    assert account.username == "FixtureUser"
    assert account.classname == "VIP"
    assert account.ratio == 1.5
    assert account.ratio_infinite is False
    assert account.uploaded_bytes == 10737418240
    assert account.downloaded_bytes == 1073741824
    assert account.seedbonus == 1000.0
    assert account.wedges == 10
    assert account.vip_until == datetime(2027, 1, 1, tzinfo=UTC)
    assert account.unsatisfied == 42
    assert account.unsatisfied_limit == 50
    assert account.connectable == "yes"
    assert account.snatch == {
        "sSat": SnatchBlock(331, 13328988136),
        "unsat": SnatchBlock(42, 123456789, 50),
        "leeching": SnatchBlock(1),
        "duplicates": SnatchBlock(0),
        "reseed": SnatchBlock(3),
    }


def test_top_level_shape() -> None:
    account = MamAccount.from_json(payload(TOP_LEVEL))
    assert account.uid == 4242
    assert account.ratio == pytest.approx(26.7)
    assert account.unsatisfied == 7
    assert account.unsatisfied_limit == 100
    assert account.connectable == "no"
    assert account.snatch["seedHnr"] == SnatchBlock(2, 10)
    assert set(account.snatch) == {"inactHnr", "seedHnr", "unsat"}
    assert account.vip_until == datetime(2026, 6, 10, 6, 44, 38, tzinfo=UTC)


def test_nested_blocks_win_over_top_level() -> None:
    data = payload(unsat={"count": 1, "limit": 20}, connectable="no", sSat={"count": 5})
    account = MamAccount.from_json(data)
    assert account.unsatisfied == 42
    assert account.unsatisfied_limit == 50
    assert account.connectable == "yes"
    assert account.snatch["sSat"].count == 331


def test_infinite_ratio_bare_payload() -> None:
    account = MamAccount.from_json(payload(BARE_INFINITE))
    assert account.ratio is None
    assert account.ratio_infinite is True
    assert account.downloaded_bytes == 0
    assert account.vip_until is None
    assert account.unsatisfied is None
    assert account.unsatisfied_limit is None
    assert account.snatch == {}
    assert account.connectable is None


@pytest.mark.parametrize(
    ("raw", "ratio", "infinite"),
    [
        (2, 2.0, False),
        (0.25, 0.25, False),
        ("1.5", 1.5, False),
        (" 3 ", 3.0, False),
        ("1,234.5", 1234.5, False),
        ("12,345,678", 12345678.0, False),
        ("∞", None, True),
        ("inf", None, True),
        ("Inf", None, True),
        ("Infinity", None, True),
        (float("inf"), None, True),
        (None, None, False),
    ],
)
def test_ratio_forms(raw: object, ratio: float | None, infinite: bool) -> None:
    account = MamAccount.from_json(payload(ratio=raw))
    assert account.ratio == ratio
    assert account.ratio_infinite is infinite


def test_ratio_absent_is_unknown() -> None:
    data = payload()
    del data["ratio"]
    account = MamAccount.from_json(data)
    assert account.ratio is None
    assert account.ratio_infinite is False


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "abc",
        "1.2.3",
        "1,23",
        "nan",
        "NaN",
        "-inf",
        "1e3",
        "1_000",
        True,
        [1],
        {"v": 1},
        float("nan"),
    ],
)
def test_ratio_garbage_is_payload_error(raw: object) -> None:
    with pytest.raises(MamPayloadError, match="ratio"):
        MamAccount.from_json(payload(ratio=raw))


@pytest.mark.parametrize(
    ("raw", "uid"), [(100001, 100001), ("100001", 100001), (" 5 ", 5), (12.0, 12)]
)
def test_uid_number_or_string(raw: object, uid: int) -> None:
    assert MamAccount.from_json(payload(uid=raw)).uid == uid


@pytest.mark.parametrize("raw", [None, "", "abc", "1.5", 1.5, True, [], {}])
def test_uid_garbage_is_payload_error(raw: object) -> None:
    with pytest.raises(MamPayloadError, match="uid"):
        MamAccount.from_json(payload(uid=raw))


def test_uid_missing_is_payload_error() -> None:
    data = payload()
    del data["uid"]
    with pytest.raises(MamPayloadError, match="uid"):
        MamAccount.from_json(data)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2027-01-01 00:00:00", datetime(2027, 1, 1, tzinfo=UTC)),
        ("2026-06-10 06:44:38", datetime(2026, 6, 10, 6, 44, 38, tzinfo=UTC)),
        (None, None),
        ("", None),
        ("0000-00-00 00:00:00", None),
        ("next tuesday", None),
        ("2027-13-01 00:00:00", None),
        (1700000000, None),
    ],
)
def test_vip_until_forms(raw: object, expected: datetime | None) -> None:
    account = MamAccount.from_json(payload(vip_until=raw))
    assert account.vip_until == expected
    if account.vip_until is not None:
        assert account.vip_until.utcoffset() is not None


def test_vip_until_absent() -> None:
    data = payload()
    del data["vip_until"]
    assert MamAccount.from_json(data).vip_until is None


@pytest.mark.parametrize("username", [None, ""])
def test_missing_username_is_auth_error(username: object) -> None:
    with pytest.raises(MamAuthError):
        MamAccount.from_json(payload(username=username))
    data = payload()
    del data["username"]
    with pytest.raises(MamAuthError):
        MamAccount.from_json(data)


def test_error_object_without_username_is_auth_error() -> None:
    with pytest.raises(MamAuthError):
        MamAccount.from_json({"error": "Nothing returned, out of 0"})


@pytest.mark.parametrize("data", [None, [], "text", 3, [NESTED]])
def test_not_an_object_is_payload_error(data: object) -> None:
    with pytest.raises(MamPayloadError):
        MamAccount.from_json(data)


@pytest.mark.parametrize(
    ("human", "size"),
    [
        ("10.00 GiB", 10 * 1024**3),
        ("5.125 TiB", int(5.125 * 1024**4)),
        ("0.00 KiB", 0),
        ("1,023.5 MiB", int(1023.5 * 1024**2)),
        ("512 B", 512),
        ("2 GB", 2 * 10**9),
    ],
)
def test_sizes_from_human_strings(human: str, size: int) -> None:
    data = payload(uploaded=human, downloaded=human)
    del data["uploaded_bytes"], data["downloaded_bytes"]
    account = MamAccount.from_json(data)
    assert account.uploaded_bytes == size
    assert account.downloaded_bytes == size


def test_bytes_fields_win_over_human_strings() -> None:
    account = MamAccount.from_json(payload(uploaded="1.00 KiB", uploaded_bytes="2048"))
    assert account.uploaded_bytes == 2048


@pytest.mark.parametrize("human", [None, "", "lots", "10 parsecs", "1e3 GiB"])
def test_unusable_sizes_are_payload_errors(human: object) -> None:
    data = payload(uploaded=human)
    del data["uploaded_bytes"]
    with pytest.raises(MamPayloadError, match="uploaded"):
        MamAccount.from_json(data)


@pytest.mark.parametrize(
    ("raw", "value"), [(1000, 1000.0), ("99,999", 99999.0), ("12.5", 12.5), (3.25, 3.25)]
)
def test_seedbonus_number_or_string(raw: object, value: float) -> None:
    assert MamAccount.from_json(payload(seedbonus=raw)).seedbonus == value


@pytest.mark.parametrize("raw", [None, "many", True])
def test_seedbonus_garbage_is_payload_error(raw: object) -> None:
    with pytest.raises(MamPayloadError, match="seedbonus"):
        MamAccount.from_json(payload(seedbonus=raw))


@pytest.mark.parametrize(("raw", "value"), [(10, 10), ("7", 7), (None, 0), ("x", 0)])
def test_wedges_lenient(raw: object, value: int) -> None:
    assert MamAccount.from_json(payload(wedges=raw)).wedges == value


@pytest.mark.parametrize("raw", [-1, -1.0, "-1", " -1 ", "-0.5", "-1,000", -(10**30)])
@pytest.mark.parametrize(
    "name", ["ratio", "uploaded_bytes", "downloaded_bytes", "seedbonus", "uid"]
)
def test_negative_required_numbers_are_payload_errors(name: str, raw: object) -> None:
    """A JSON number -1 and the string "-1" fail alike: a negative ratio is no emergency."""
    with pytest.raises(MamPayloadError, match=name):
        MamAccount.from_json(payload(NESTED, **{name: raw}))


@pytest.mark.parametrize("raw", [-0.0, "-0", "-0.0"])
def test_negative_zero_is_zero(raw: object) -> None:
    account = MamAccount.from_json(payload(ratio=raw, seedbonus=raw, uploaded_bytes=raw))
    assert (account.ratio, account.seedbonus, account.uploaded_bytes) == (0.0, 0.0, 0)
    assert str(account.ratio) == "0.0"  # not "-0.0"


@pytest.mark.parametrize("raw", [-1, -1.0, "-1", "-3"])
def test_negative_wedges_are_zero(raw: object) -> None:
    assert MamAccount.from_json(payload(wedges=raw)).wedges == 0


@pytest.mark.parametrize("raw", [-1, -1.0, "-1", "-42"])
def test_negative_snatch_values_never_come_through(raw: object) -> None:
    summary = payload()["snatch_summary"] | {
        "unsat": {"count": 42, "limit": raw, "size": raw},
        "sSat": {"count": raw, "size": 10},
    }
    account = MamAccount.from_json(payload(snatch_summary=summary))
    assert account.unsatisfied == 42
    assert account.unsatisfied_limit is None
    assert account.snatch["unsat"] == SnatchBlock(42, None, None)
    assert "sSat" not in account.snatch  # a block without a usable count is skipped
    negative = payload()["snatch_summary"] | {"unsat": {"count": raw, "limit": 50}}
    account = MamAccount.from_json(payload(snatch_summary=negative))
    assert account.unsatisfied is None
    assert account.unsatisfied_limit is None


def _assert_no_negative(account: MamAccount) -> None:
    numbers: list[float | int | None] = [
        account.uid,
        account.ratio,
        account.uploaded_bytes,
        account.downloaded_bytes,
        account.seedbonus,
        account.wedges,
        account.unsatisfied,
        account.unsatisfied_limit,
    ]
    for block in account.snatch.values():
        numbers += [block.count, block.size, block.limit]
    assert all(number is None or number >= 0 for number in numbers), account


def test_classname_missing_is_empty() -> None:
    data = payload()
    del data["classname"]
    assert MamAccount.from_json(data).classname == ""


def test_bad_snatch_blocks_are_skipped() -> None:
    summary = payload()["snatch_summary"] | {
        "unsat": {"count": "lots", "limit": 50},
        "sSat": {"count": "12"},
    }
    account = MamAccount.from_json(payload(snatch_summary=summary))
    assert account.unsatisfied is None
    assert account.snatch["sSat"] == SnatchBlock(12, None, None)


def test_equality_and_hash_for_coordinator() -> None:
    first, second = MamAccount.from_json(payload()), MamAccount.from_json(payload())
    assert first == second
    assert hash(first) == hash(second)
    changed = payload()
    changed["snatch_summary"]["sSat"]["count"] = 332
    assert MamAccount.from_json(changed) != first
    assert MamAccount.from_json(payload(ratio=1.51)) != first


# -- property tests ----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(
    sorted(NESTED) + sorted(TOP_LEVEL) + ["count", "limit", "size"]
) | st.text(max_size=8)


@given(json_values)
@settings(max_examples=300)
def test_any_json_value_raises_only_mam_errors(data: object) -> None:
    try:
        account = MamAccount.from_json(data)
    except MamError:
        return
    assert isinstance(account, MamAccount)


@given(
    st.dictionaries(field_names, json_values, max_size=6),
    st.dictionaries(field_names, json_values, max_size=4),
)
@settings(max_examples=300)
def test_valid_payload_with_arbitrary_fields_raises_only_mam_errors(
    top: dict[str, Any], nested: dict[str, Any]
) -> None:
    data = payload() | top
    if isinstance(data.get("snatch_summary"), dict):
        data["snatch_summary"] = data["snatch_summary"] | nested
    try:
        account = MamAccount.from_json(data)
    except MamError:
        return
    assert account.username == data["username"]
    assert account.vip_until is None or account.vip_until.tzinfo is UTC
    _assert_no_negative(account)


_numbers = st.integers(-(10**6), 10**6) | st.floats(-1e6, 1e6) | st.integers().map(str)
_blocks = st.fixed_dictionaries({"count": _numbers}, optional={"size": _numbers, "limit": _numbers})


@given(
    st.fixed_dictionaries(
        {},
        optional=dict.fromkeys(
            ("uid", "ratio", "uploaded_bytes", "downloaded_bytes", "seedbonus", "wedges"), _numbers
        ),
    ),
    st.dictionaries(st.sampled_from(["unsat", "sSat", "leeching", "seedHnr"]), _blocks),
)
@settings(max_examples=300)
def test_any_numbers_parse_to_non_negative_values_or_payload_errors(
    numbers: dict[str, Any], blocks: dict[str, Any]
) -> None:
    data = payload(**numbers)
    data["snatch_summary"] = data["snatch_summary"] | blocks
    try:
        account = MamAccount.from_json(data)
    except MamPayloadError:
        return
    _assert_no_negative(account)


@given(st.text() | json_values.map(json.dumps))
@settings(max_examples=300)
def test_any_body_text_raises_only_mam_errors(body: str) -> None:
    try:
        account = parse_account_body(body)
    except MamError:
        return
    assert isinstance(account, MamAccount)


def test_body_parsing_maps_plain_text() -> None:
    with pytest.raises(MamAuthError, match="not signed in"):
        parse_account_body("Error, you are not signed in <br />Invalid/missing cookie")
    with pytest.raises(MamPayloadError):
        parse_account_body("<html>maintenance</html>")
    with pytest.raises(MamPayloadError):
        parse_account_body("[" * 100_000)
    assert parse_account_body(json.dumps(NESTED)).uid == 100001
