"""The qBittorrent subentry flow (SPEC §12): add and reconfigure a client, with real qBittorrent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from unittest.mock import AsyncMock, patch

from homeassistant.config_entries import SOURCE_USER, ConfigSubentry, SubentryFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.mam_guard.config_flow import (
    MamGuardConfigFlow,
    QbittorrentSubentryFlow,
    qbt_identity,
)
from custom_components.mam_guard.const import (
    CONF_MAM_BASE_URL,
    CONF_MAM_ID,
    CONF_QBT_NAME,
    CONF_QBT_PASSWORD,
    CONF_QBT_URL,
    CONF_QBT_USERNAME,
    CONF_QBT_VERIFY_SSL,
    DEFAULT_OPTIONS,
    DOMAIN,
    SUBENTRY_QBITTORRENT,
)
from custom_components.mam_guard.lib.qbt import QbtAuthError
from tests.support.entries import qbt_subentry
from tests.support.qbt_daemon import QbtDaemon, free_port

pytestmark = pytest.mark.usefixtures("mock_setup_entry")

VALIDATE_QBT = "custom_components.mam_guard.config_flow.validate_qbt"
ELSEWHERE = "http://192.0.2.10:8080"  # TEST-NET: a client of the entry nobody contacts here


def _qbt(url: str, username: str = "admin", password: str = "stored-secret") -> dict[str, Any]:
    return {
        CONF_QBT_URL: url,
        CONF_QBT_USERNAME: username,
        CONF_QBT_PASSWORD: password,
        CONF_QBT_VERIFY_SSL: True,
    }


def _daemon(qbt: QbtDaemon, url: str | None = None) -> dict[str, Any]:
    return _qbt(url or qbt.url, qbt.username, qbt.password)


def _account(
    hass: HomeAssistant, uid: str, *clients: tuple[str, dict[str, Any]]
) -> MockConfigEntry:
    """A version 2 entry (MAM side only) with these (title, data) qBittorrent subentries."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"MAM {uid}",
        unique_id=uid,
        version=2,
        data={CONF_MAM_ID: "cookie", CONF_MAM_BASE_URL: "http://127.0.0.1:1"},
        options=DEFAULT_OPTIONS,
        subentries_data=[qbt_subentry(data, title) for title, data in clients],
    )
    entry.add_to_hass(hass)
    return entry


def _form(qbt: Mapping[str, Any], name: str) -> dict[str, Any]:
    return {CONF_QBT_NAME: name, **qbt}


def _saved(entry: MockConfigEntry) -> dict[str, tuple[str, str | None, dict[str, Any]]]:
    """The entry's subentries as plain values (to compare before and after a flow)."""
    return {
        subentry_id: (subentry.title, subentry.unique_id, dict(subentry.data))
        for subentry_id, subentry in entry.subentries.items()
    }


def _suggested(result: SubentryFlowResult) -> dict[str, Any]:
    return {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
        if key.description
    }


async def _start_add(hass: HomeAssistant, entry: MockConfigEntry) -> SubentryFlowResult:
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_QBITTORRENT), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}
    return result


async def _configure(hass: HomeAssistant, flow_id: str, form: dict[str, Any]) -> SubentryFlowResult:
    return await hass.config_entries.subentries.async_configure(flow_id, form)


def _only_new(entry: MockConfigEntry, before: Mapping[str, Any]) -> ConfigSubentry:
    [new] = [sub for sub_id, sub in entry.subentries.items() if sub_id not in before]
    return new


async def test_the_entry_offers_qbittorrent_subentries(hass: HomeAssistant) -> None:
    entry = _account(hass, "100001", ("qBittorrent", _qbt(ELSEWHERE)))
    assert entry.supported_subentry_types == {SUBENTRY_QBITTORRENT: {"supports_reconfigure": True}}


async def test_add_a_client_logs_in_and_saves_it(
    hass: HomeAssistant, qbittorrent_any: QbtDaemon
) -> None:
    entry = _account(hass, "100001", ("Seedbox", _qbt(ELSEWHERE)))
    before = _saved(entry)
    result = await _start_add(hass, entry)
    assert list(map(str, result["data_schema"].schema)) == [
        CONF_QBT_NAME,
        CONF_QBT_URL,
        CONF_QBT_USERNAME,
        CONF_QBT_PASSWORD,
        CONF_QBT_VERIFY_SSL,
    ]
    assert _suggested(result) == {}
    result = await _configure(hass, result["flow_id"], _form(_daemon(qbittorrent_any), " NAS "))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "NAS"
    new = _only_new(entry, before)
    assert new.subentry_type == SUBENTRY_QBITTORRENT
    assert new.title == "NAS"
    assert new.unique_id == qbt_identity(qbittorrent_any.url)
    assert dict(new.data) == _daemon(qbittorrent_any)  # exactly these four keys
    assert {k: v for k, v in _saved(entry).items() if k in before} == before


async def test_add_with_the_default_name(hass: HomeAssistant, qbittorrent: QbtDaemon) -> None:
    entry = _account(hass, "100001", ("Seedbox", _qbt(ELSEWHERE)))
    result = await _start_add(hass, entry)
    result = await _configure(hass, result["flow_id"], _daemon(qbittorrent))
    assert result["title"] == "qBittorrent"
    assert {sub.title for sub in entry.subentries.values()} == {"Seedbox", "qBittorrent"}


async def test_wrong_password_then_recovery(hass: HomeAssistant, qbittorrent: QbtDaemon) -> None:
    entry = _account(hass, "100001", ("Seedbox", _qbt(ELSEWHERE)))
    before = _saved(entry)
    result = await _start_add(hass, entry)
    form = _form(_daemon(qbittorrent), "NAS") | {CONF_QBT_PASSWORD: "not the password"}
    result = await _configure(hass, result["flow_id"], form)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "qbt_invalid_auth"}
    assert _saved(entry) == before
    # The form keeps what was typed, but never the password.
    assert _suggested(result) == {
        CONF_QBT_NAME: "NAS",
        CONF_QBT_URL: qbittorrent.url,
        CONF_QBT_USERNAME: qbittorrent.username,
        CONF_QBT_VERIFY_SSL: True,
    }
    result = await _configure(hass, result["flow_id"], _form(_daemon(qbittorrent), "NAS"))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert _only_new(entry, before).data[CONF_QBT_PASSWORD] == qbittorrent.password


async def test_unreachable_qbittorrent_is_cannot_connect(
    hass: HomeAssistant, socket_enabled: None
) -> None:
    entry = _account(hass, "100001", ("Seedbox", _qbt(ELSEWHERE)))
    before = _saved(entry)
    result = await _start_add(hass, entry)
    result = await _configure(
        hass, result["flow_id"], _form(_qbt(f"http://127.0.0.1:{free_port()}"), "Gone")
    )
    assert result["errors"] == {"base": "qbt_cannot_connect"}
    assert _saved(entry) == before


async def test_unexpected_error_is_unknown(hass: HomeAssistant) -> None:
    entry = _account(hass, "100001", ("Seedbox", _qbt(ELSEWHERE)))
    result = await _start_add(hass, entry)
    with patch(VALIDATE_QBT, side_effect=RuntimeError("boom")):
        result = await _configure(hass, result["flow_id"], _form(_qbt("http://10.0.0.5"), "X"))
    assert result["errors"] == {"base": "unknown"}
    assert len(entry.subentries) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://admin:secret@127.0.0.1:8080",
        "http://admin@127.0.0.1:8080",
        "https://:secret@qbt.example.org/",
    ],
)
async def test_credentials_in_the_url_are_refused(hass: HomeAssistant, url: str) -> None:
    """Item 14b: refused before any login, so they are never sent, stored or logged."""
    entry = _account(hass, "100001", ("Seedbox", _qbt(ELSEWHERE)))
    result = await _start_add(hass, entry)
    with patch(VALIDATE_QBT) as validate:
        result = await _configure(hass, result["flow_id"], _form(_qbt(url), "X"))
    assert result["errors"] == {CONF_QBT_URL: "qbt_url_credentials"}
    validate.assert_not_called()
    assert len(entry.subentries) == 1


VARIANTS = [
    "{url}",
    "{url}/",
    "{url}/api/v2",
    "{url}/api/v2/",
    "{localhost}",
    "HTTP://{host}",
    "http://LocalHost:{port}",
    "http://[::1]:{port}",
]


def _variant(variant: str, qbt: QbtDaemon) -> str:
    host = qbt.url.removeprefix("http://")
    return variant.format(
        url=qbt.url,
        localhost=qbt.url.replace("127.0.0.1", "localhost"),
        host=host,
        port=host.rpartition(":")[2],
    )


@pytest.mark.parametrize("owner", ["this_entry", "other_entry", "version1_entry"])
@pytest.mark.parametrize("variant", VARIANTS)
async def test_a_qbittorrent_already_guarded_is_refused(
    hass: HomeAssistant, qbittorrent: QbtDaemon, owner: str, variant: str
) -> None:
    """Item 9, per client: one Web UI belongs to one subentry of one account."""
    mine = ("Seedbox", _qbt(ELSEWHERE))
    guarded = ("Local", _daemon(qbittorrent))
    if owner == "this_entry":
        entry = _account(hass, "100001", mine, guarded)
    else:
        entry = _account(hass, "100001", mine)
    if owner == "other_entry":
        _account(hass, "100002", guarded)
    if owner == "version1_entry":  # not migrated yet (a disabled entry is not set up)
        MockConfigEntry(
            domain=DOMAIN, unique_id="100003", version=1, data=_daemon(qbittorrent)
        ).add_to_hass(hass)
    before = _saved(entry)
    result = await _start_add(hass, entry)
    with patch(VALIDATE_QBT) as validate:
        result = await _configure(
            hass,
            result["flow_id"],
            _form(_daemon(qbittorrent, _variant(variant, qbittorrent)), "X"),
        )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_QBT_URL: "qbt_already_used"}
    validate.assert_not_called()
    assert _saved(entry) == before


@pytest.mark.parametrize(
    ("guarded", "added"),
    [
        ("https://qbt.example.org", "https://QBT.Example.org./"),
        ("https://qbt.example.org", "https://qbt.example.org:443/qbittorrent"),
        ("http://10.0.0.5", "http://10.0.0.5:80"),
    ],
)
async def test_the_same_remote_qbittorrent_is_refused(
    hass: HomeAssistant, guarded: str, added: str
) -> None:
    entry = _account(hass, "100001", ("Remote", _qbt(guarded)))
    result = await _start_add(hass, entry)
    result = await _configure(hass, result["flow_id"], _form(_qbt(added), "Again"))
    assert result["errors"] == {CONF_QBT_URL: "qbt_already_used"}


async def test_another_port_on_the_same_host_is_another_qbittorrent(
    hass: HomeAssistant, qbittorrent: QbtDaemon
) -> None:
    entry = _account(hass, "100001", ("Other", _qbt("http://127.0.0.1:1")))
    _account(hass, "100002", ("Remote", _qbt("https://127.0.0.1")))
    result = await _start_add(hass, entry)
    result = await _configure(hass, result["flow_id"], _form(_daemon(qbittorrent), "Local"))
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_nothing_is_saved_before_the_login_succeeds(hass: HomeAssistant) -> None:
    """The login runs while the entry is still as it was; a failed one leaves it so."""
    entry = _account(hass, "100001", ("Seedbox", _qbt(ELSEWHERE)))
    before = _saved(entry)
    seen: list[dict[str, Any]] = []

    async def login(hass: HomeAssistant, data: Mapping[str, Any]) -> None:
        seen.append(_saved(entry))
        if data[CONF_QBT_PASSWORD] == "wrong":
            raise QbtAuthError("rejected")

    # Add: refused, then accepted.
    result = await _start_add(hass, entry)
    with patch(VALIDATE_QBT, AsyncMock(side_effect=login)):
        form = _form(_qbt("http://10.0.0.5:8080", password="wrong"), "NAS")
        result = await _configure(hass, result["flow_id"], form)
        assert result["errors"] == {"base": "qbt_invalid_auth"}
        assert _saved(entry) == before
        result = await _configure(hass, result["flow_id"], form | {CONF_QBT_PASSWORD: "right"})
        assert result["type"] is FlowResultType.CREATE_ENTRY
    assert seen == [before, before]
    # Reconfigure: refused, then accepted.
    added = _saved(entry)
    seen.clear()
    [subentry_id] = [sub_id for sub_id in added if sub_id not in before]
    result = await entry.start_subentry_reconfigure_flow(hass, subentry_id)
    with patch(VALIDATE_QBT, AsyncMock(side_effect=login)):
        form = _form(_qbt("http://10.0.0.6:8080", password="wrong"), "NAS 2")
        result = await _configure(hass, result["flow_id"], form)
        assert result["errors"] == {"base": "qbt_invalid_auth"}
        assert _saved(entry) == added
        result = await _configure(hass, result["flow_id"], form | {CONF_QBT_PASSWORD: "right"})
        assert result["reason"] == "reconfigure_successful"
    assert seen == [added, added]
    assert entry.subentries[subentry_id].title == "NAS 2"


# --- Reconfigure ---------------------------------------------------------------------------------


async def test_reconfigure_is_prefilled_without_the_password_and_keeps_it(
    hass: HomeAssistant, qbittorrent: QbtDaemon
) -> None:
    entry = _account(
        hass, "100001", ("Seedbox", _qbt(ELSEWHERE)), ("qBittorrent", _daemon(qbittorrent))
    )
    subentry = next(s for s in entry.subentries.values() if s.title == "qBittorrent")
    other = _saved(entry)
    result = await entry.start_subentry_reconfigure_flow(hass, subentry.subentry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert result["description_placeholders"] == {"name": "qBittorrent"}
    assert _suggested(result) == {
        CONF_QBT_NAME: "qBittorrent",
        CONF_QBT_URL: qbittorrent.url,
        CONF_QBT_USERNAME: qbittorrent.username,
        CONF_QBT_VERIFY_SSL: True,
    }
    # Its own URL, written differently, is not "another client's": the check skips it.
    form = _form(_daemon(qbittorrent, qbittorrent.url + "/"), "Local") | {CONF_QBT_PASSWORD: ""}
    result = await _configure(hass, result["flow_id"], form)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    saved = entry.subentries[subentry.subentry_id]
    assert saved.title == "Local"
    assert saved.unique_id == qbt_identity(qbittorrent.url)
    assert dict(saved.data) == _daemon(qbittorrent, qbittorrent.url + "/")  # password kept
    assert {k: v for k, v in _saved(entry).items() if k != subentry.subentry_id} == {
        k: v for k, v in other.items() if k != subentry.subentry_id
    }


async def test_reconfigure_errors_keep_what_was_typed_and_save_nothing(
    hass: HomeAssistant, qbittorrent: QbtDaemon
) -> None:
    entry = _account(hass, "100001", ("Local", _daemon(qbittorrent)))
    [subentry_id] = entry.subentries
    before = _saved(entry)
    result = await entry.start_subentry_reconfigure_flow(hass, subentry_id)
    wrong = f"http://127.0.0.1:{free_port()}"
    form = _form(_daemon(qbittorrent, wrong), "Moved")
    result = await _configure(hass, result["flow_id"], form)
    assert result["errors"] == {"base": "qbt_cannot_connect"}
    assert _suggested(result) == {
        CONF_QBT_NAME: "Moved",
        CONF_QBT_URL: wrong,
        CONF_QBT_USERNAME: qbittorrent.username,
        CONF_QBT_VERIFY_SSL: True,
    }
    form = _form(_qbt(qbittorrent.url.replace("http://", "http://u:p@")), "Moved")
    result = await _configure(hass, result["flow_id"], form)
    assert result["errors"] == {CONF_QBT_URL: "qbt_url_credentials"}
    assert _saved(entry) == before


async def test_reconfigure_another_user_never_gets_the_stored_password(
    hass: HomeAssistant, qbittorrent: QbtDaemon
) -> None:
    entry = _account(hass, "100001", ("Local", _daemon(qbittorrent)))
    [subentry_id] = entry.subentries
    result = await entry.start_subentry_reconfigure_flow(hass, subentry_id)
    form = _form(_qbt(qbittorrent.url, "someone-else", ""), "Local")
    with patch(VALIDATE_QBT, side_effect=QbtAuthError("rejected")) as validate:
        result = await _configure(hass, result["flow_id"], form)
    assert result["errors"] == {"base": "qbt_invalid_auth"}
    assert validate.await_args.args[1][CONF_QBT_PASSWORD] == ""  # not the stored one
    # A new password for the same user replaces the stored one (the real daemon checks it).
    form = _form(_qbt(qbittorrent.url, qbittorrent.username, "not the password"), "Local")
    result = await _configure(hass, result["flow_id"], form)
    assert result["errors"] == {"base": "qbt_invalid_auth"}
    form[CONF_QBT_PASSWORD] = qbittorrent.password
    result = await _configure(hass, result["flow_id"], form)
    assert result["reason"] == "reconfigure_successful"


async def test_reconfigure_onto_another_qbittorrent(
    hass: HomeAssistant, qbittorrent: QbtDaemon
) -> None:
    """A client moved to another Web UI gets that UI's identity as its unique_id."""
    entry = _account(hass, "100001", ("Old", _qbt("http://127.0.0.1:1")))
    [subentry_id] = entry.subentries
    result = await entry.start_subentry_reconfigure_flow(hass, subentry_id)
    result = await _configure(hass, result["flow_id"], _form(_daemon(qbittorrent), "New"))
    assert result["reason"] == "reconfigure_successful"
    saved = entry.subentries[subentry_id]
    assert (saved.title, saved.unique_id) == ("New", qbt_identity(qbittorrent.url))
    assert dict(saved.data) == _daemon(qbittorrent)


@pytest.mark.parametrize("owner", ["this_entry", "other_entry"])
async def test_reconfigure_onto_a_guarded_qbittorrent_is_refused(
    hass: HomeAssistant, qbittorrent: QbtDaemon, owner: str
) -> None:
    guarded = ("Local", _daemon(qbittorrent))
    mine = ("Old", _qbt("http://127.0.0.1:1"))
    entry = _account(hass, "100001", mine, *([guarded] if owner == "this_entry" else []))
    if owner == "other_entry":
        _account(hass, "100002", guarded)
    [subentry_id] = [k for k, v in entry.subentries.items() if v.title == "Old"]
    before = _saved(entry)
    result = await entry.start_subentry_reconfigure_flow(hass, subentry_id)
    form = _form(_daemon(qbittorrent, qbittorrent.url.upper() + "/api/v2"), "Old")
    with patch(VALIDATE_QBT) as validate:
        result = await _configure(hass, result["flow_id"], form)
    assert result["errors"] == {CONF_QBT_URL: "qbt_already_used"}
    validate.assert_not_called()
    assert _saved(entry) == before


def test_the_flow_class_is_registered() -> None:
    entry = MockConfigEntry(domain=DOMAIN)
    assert MamGuardConfigFlow.async_get_supported_subentry_types(entry) == {
        SUBENTRY_QBITTORRENT: QbittorrentSubentryFlow
    }
