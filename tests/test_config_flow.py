"""Config flow (user, reauth, reconfigure, options) with the MAM simulator and real qBittorrent.

The qBittorrent subentry flow (SPEC §12) is tested in test_subentry_flow.py.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import AsyncMock, patch

from homeassistant.config_entries import SOURCE_IGNORE, SOURCE_USER, ConfigFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.helpers import selector
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.mam_guard.config_flow import (
    OPTION_FIELDS,
    OPTION_SECTIONS,
    RULES_PAGE_KEYS,
    InvalidBaseUrl,
    _check_base_url,
    qbt_identity,
)
from custom_components.mam_guard.const import (
    CONF_EMERGENCY_ACTIVE_UPLOADS,
    CONF_ENFORCEMENT,
    CONF_EXEMPT_TAGS,
    CONF_FREELEECH_LOOKUP,
    CONF_MAM_BASE_URL,
    CONF_MAM_ID,
    CONF_MAX_UPLOAD_GB_PER_DAY,
    CONF_POINTS_CEILING,
    CONF_POINTS_RESERVE,
    CONF_PURCHASE_DRY_RUN,
    CONF_QBT_NAME,
    CONF_QBT_PASSWORD,
    CONF_QBT_URL,
    CONF_QBT_USERNAME,
    CONF_QBT_VERIFY_SSL,
    CONF_RATIO_THRESHOLD,
    CONF_RELEASE_MARGIN,
    CONF_RENEWAL_THRESHOLD,
    CONF_RULES_PAGES,
    CONF_RULES_REFRESH_TIME,
    CONF_UNLIMITED_UPLOAD_RATE,
    CONF_UPLOAD_CREDIT,
    CONF_VIP_AUTO_RENEW,
    CONF_VIP_CRITICAL_DAYS,
    CONF_VIP_RENEW_DAYS,
    CONF_VIP_WARNING_DAYS,
    DEFAULT_OPTIONS,
    DOMAIN,
    SUBENTRY_QBITTORRENT,
)
from custom_components.mam_guard.lib.pages import RULES_PAGES
from mam_simulator import MamSimulator
from tests.support.entries import make_entry, make_legacy_entry
from tests.support.mam_sim import TEST_COOKIE
from tests.support.qbt_daemon import QbtDaemon, free_port

pytestmark = pytest.mark.usefixtures("mock_setup_entry")


def _user_input(sim: MamSimulator, qbt: QbtDaemon, **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        CONF_MAM_ID: TEST_COOKIE,
        CONF_QBT_URL: qbt.url,
        CONF_QBT_USERNAME: qbt.username,
        CONF_QBT_PASSWORD: qbt.password,
        CONF_QBT_VERIFY_SSL: True,
    }
    base_url = overrides.pop(CONF_MAM_BASE_URL, sim.base_url)
    data.update(overrides)
    data["advanced"] = {CONF_MAM_BASE_URL: base_url}
    return data


async def _start_user_flow(hass: HomeAssistant) -> str:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert "advanced" in result["data_schema"].schema
    return result["flow_id"]


async def test_user_flow_creates_entry_with_rotated_cookie(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon, mock_setup_entry: AsyncMock
) -> None:
    flow_id = await _start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _user_input(mam_sim, qbittorrent, **{CONF_MAM_ID: f"mam_id={TEST_COOKIE};"})
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "MAM FixtureUser"
    assert result["result"].unique_id == "100001"
    stored = result["data"][CONF_MAM_ID]
    # MAM rotated the cookie on the validation request: the entry keeps the new, valid one.
    assert stored != TEST_COOKIE
    assert stored in mam_sim.valid_cookies
    assert TEST_COOKIE not in mam_sim.valid_cookies
    assert result["data"] == {CONF_MAM_ID: stored, CONF_MAM_BASE_URL: mam_sim.base_url}
    assert result["options"] == DEFAULT_OPTIONS
    assert mam_sim.requests["jsonLoad.php"] == 1
    assert len(mock_setup_entry.mock_calls) == 1
    # SPEC §12: the entry is version 2 and its qBittorrent is its one subentry.
    entry = result["result"]
    assert (entry.version, entry.minor_version) == (2, 1)
    [subentry] = entry.subentries.values()
    assert subentry.subentry_type == SUBENTRY_QBITTORRENT
    assert subentry.title == "qBittorrent"  # the name field's default
    assert subentry.unique_id == qbt_identity(qbittorrent.url)
    assert subentry.unique_id.startswith("http://loopback:")
    assert dict(subentry.data) == {
        CONF_QBT_URL: qbittorrent.url,
        CONF_QBT_USERNAME: qbittorrent.username,
        CONF_QBT_PASSWORD: qbittorrent.password,
        CONF_QBT_VERIFY_SSL: True,
    }


async def test_user_flow_names_the_first_qbittorrent(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon
) -> None:
    flow_id = await _start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _user_input(mam_sim, qbittorrent, **{CONF_QBT_NAME: "  Seedbox "})
    )
    [subentry] = result["result"].subentries.values()
    assert subentry.title == "Seedbox"


async def test_user_flow_blank_name_is_the_default(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon
) -> None:
    flow_id = await _start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _user_input(mam_sim, qbittorrent, **{CONF_QBT_NAME: " "})
    )
    [subentry] = result["result"].subentries.values()
    assert subentry.title == "qBittorrent"


async def test_user_flow_shows_what_was_typed_but_no_secret(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon
) -> None:
    """After an error the form keeps the typed values (base URL too), never the secrets."""
    flow_id = await _start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        _user_input(mam_sim, qbittorrent, **{CONF_QBT_NAME: "NAS", CONF_QBT_PASSWORD: "typo"}),
    )
    assert result["errors"] == {"base": "qbt_invalid_auth"}
    suggested = {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
        if key.description
    }
    assert suggested == {
        CONF_QBT_NAME: "NAS",
        CONF_QBT_URL: qbittorrent.url,
        CONF_QBT_USERNAME: qbittorrent.username,
        CONF_QBT_VERIFY_SSL: True,
    }
    advanced = result["data_schema"].schema["advanced"].schema.schema
    assert [key.description for key in advanced] == [{"suggested_value": mam_sim.base_url}]


async def test_user_flow_base_url_sits_in_collapsed_section(hass: HomeAssistant) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert CONF_MAM_BASE_URL not in result["data_schema"].schema
    advanced = result["data_schema"].schema["advanced"]
    assert advanced.options == {"collapsed": True}
    assert CONF_MAM_BASE_URL in advanced.schema.schema


async def test_user_flow_errors_and_recovery(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon
) -> None:
    flow_id = await _start_user_flow(hass)
    steps: list[tuple[dict[str, object], dict[str, str]]] = [
        ({CONF_MAM_ID: "wrong-cookie"}, {"base": "invalid_auth"}),
        ({CONF_MAM_ID: "mam_id="}, {CONF_MAM_ID: "invalid_auth"}),
        ({CONF_MAM_BASE_URL: "http://mam.example.org"}, {CONF_MAM_BASE_URL: "invalid_base_url"}),
        ({CONF_MAM_BASE_URL: f"http://127.0.0.1:{free_port()}"}, {"base": "cannot_connect"}),
        ({CONF_QBT_PASSWORD: "not the password"}, {"base": "qbt_invalid_auth"}),
        ({CONF_QBT_URL: f"http://127.0.0.1:{free_port()}"}, {"base": "qbt_cannot_connect"}),
    ]
    for overrides, errors in steps:
        result = await hass.config_entries.flow.async_configure(
            flow_id, _user_input(mam_sim, qbittorrent, **overrides)
        )
        assert result["type"] is FlowResultType.FORM, overrides
        assert result["errors"] == errors, overrides
    # The simulator invalidated TEST_COOKIE when it rotated it (as MAM does): the flow must have
    # kept the newest value itself, or the user's only cookie would now be burnt.
    assert TEST_COOKIE not in mam_sim.valid_cookies
    result = await hass.config_entries.flow.async_configure(
        flow_id, _user_input(mam_sim, qbittorrent)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_MAM_ID] in mam_sim.valid_cookies


async def test_user_flow_rate_limited_is_cannot_connect(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon
) -> None:
    mam_sim.fail_next(429)
    flow_id = await _start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _user_input(mam_sim, qbittorrent)
    )
    assert result["errors"] == {"base": "cannot_connect"}


@pytest.mark.parametrize("target", ["validate_mam", "validate_qbt"])
async def test_user_flow_unexpected_error_is_unknown(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon, target: str
) -> None:
    flow_id = await _start_user_flow(hass)
    with patch(
        f"custom_components.mam_guard.config_flow.{target}", side_effect=RuntimeError("boom")
    ):
        result = await hass.config_entries.flow.async_configure(
            flow_id, _user_input(mam_sim, qbittorrent)
        )
    assert result["errors"] == {"base": "unknown"}
    mam_sim.add_cookie(TEST_COOKIE)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _user_input(mam_sim, qbittorrent)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_user_flow_aborts_for_configured_account(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon
) -> None:
    MockConfigEntry(domain=DOMAIN, unique_id="100001", data={}).add_to_hass(hass)
    flow_id = await _start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _user_input(mam_sim, qbittorrent)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.myanonamouse.net/", "https://www.myanonamouse.net"),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("http://[::1]:8765/", "http://[::1]:8765"),
        ("http://localhost:8765", "http://localhost:8765"),
    ],
)
def test_check_base_url_accepts(url: str, expected: str) -> None:
    assert _check_base_url(url) == expected


@pytest.mark.parametrize(
    "url", ["http://www.myanonamouse.net", "ftp://127.0.0.1", "not a url", "https://"]
)
def test_check_base_url_rejects(url: str) -> None:
    with pytest.raises(InvalidBaseUrl):
        _check_base_url(url)


@pytest.mark.parametrize(
    ("url", "identity"),
    [
        ("http://localhost", "http://loopback:80"),
        ("http://127.0.0.2:8080/api", "http://loopback:8080"),
        ("https://QBT.example.org./", "https://qbt.example.org:443"),
        ("http://10.0.0.5:8080", "http://10.0.0.5:8080"),
        ("http://qbt.example.org:99999", "http://qbt.example.org:0"),  # no valid port
    ],
)
def test_qbt_identity(url: str, identity: str) -> None:
    assert qbt_identity(url) == identity


def _entry(sim: MamSimulator, qbt: QbtDaemon) -> MockConfigEntry:
    return make_entry(sim, qbt, data={CONF_MAM_ID: "old-cookie"})


async def test_reauth_with_new_cookie(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon
) -> None:
    entry = _entry(mam_sim, qbittorrent)
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_MAM_ID: "bad"})
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_MAM_ID: TEST_COOKIE}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_MAM_ID] in mam_sim.valid_cookies
    assert entry.data[CONF_MAM_BASE_URL] == mam_sim.base_url
    [subentry] = entry.subentries.values()
    assert subentry.data[CONF_QBT_URL] == qbittorrent.url  # the qBittorrent is untouched


async def test_reauth_with_other_account_aborts(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon
) -> None:
    entry = _entry(mam_sim, qbittorrent)
    entry.add_to_hass(hass)
    mam_sim.state.uid = 555
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_MAM_ID: TEST_COOKIE}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_account"
    assert entry.data[CONF_MAM_ID] == "old-cookie"


async def test_reconfigure_replaces_the_cookie_only(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon
) -> None:
    """SPEC §12: the entry's reconfigure is the MAM side; qBittorrent lives in subentries."""
    entry = _entry(mam_sim, qbittorrent)
    entry.add_to_hass(hass)
    subentries = dict(entry.subentries)
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    assert list(result["data_schema"].schema) == [CONF_MAM_ID]
    assert result["description_placeholders"] == {"title": "MAM FixtureUser"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_MAM_ID: "bad-cookie"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    assert entry.data[CONF_MAM_ID] == "old-cookie"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_MAM_ID: f"mam_id={TEST_COOKIE}"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_MAM_ID] in mam_sim.valid_cookies
    assert set(entry.data) == {CONF_MAM_ID, CONF_MAM_BASE_URL}
    assert entry.subentries == subentries


async def test_reconfigure_needs_a_cookie(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon
) -> None:
    entry = _entry(mam_sim, qbittorrent)
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    with pytest.raises(InvalidData):
        await hass.config_entries.flow.async_configure(result["flow_id"], {})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_MAM_ID: " "})
    assert result["errors"] == {CONF_MAM_ID: "invalid_auth"}
    assert mam_sim.requests["jsonLoad.php"] == 0


async def test_reconfigure_cookie_of_other_account_aborts(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon
) -> None:
    entry = _entry(mam_sim, qbittorrent)
    entry.add_to_hass(hass)
    mam_sim.state.uid = "777"
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_MAM_ID: TEST_COOKIE}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_account"
    assert entry.data[CONF_MAM_ID] == "old-cookie"


def _form(result: ConfigFlowResult) -> dict[str, dict[str, object]]:
    """The options form's sections and their prefilled values, in order."""
    return {
        str(marker): {str(key): key.default() for key in value.schema.schema}
        for marker, value in result["data_schema"].schema.items()
    }


def _selectors(result: ConfigFlowResult) -> dict[str, selector.Selector[Any]]:
    return {
        str(key): validator
        for value in result["data_schema"].schema.values()
        for key, validator in value.schema.schema.items()
    }


DEFAULT_FORM = {
    "emergency": {
        CONF_RATIO_THRESHOLD: 1.0,
        CONF_RELEASE_MARGIN: 0.0,
        CONF_ENFORCEMENT: True,
        CONF_EXEMPT_TAGS: ["freeleech", "fl", "vip", "vip_critical"],
        CONF_FREELEECH_LOOKUP: True,  # SPEC §11: on by default
        CONF_EMERGENCY_ACTIVE_UPLOADS: 50,
        CONF_UNLIMITED_UPLOAD_RATE: True,
    },
    "vip_points": {
        CONF_VIP_WARNING_DAYS: 14,
        CONF_VIP_CRITICAL_DAYS: 7,
        CONF_RENEWAL_THRESHOLD: 5000,
    },
    "rules": {
        CONF_RULES_PAGES: [
            "rules",
            "faq",
            "forum_18",
            "forum_78",
            "guides",
            "update_notes",
            "api_list",
        ],
        CONF_RULES_REFRESH_TIME: "12:00",
    },
    "purchases": {  # SPEC §10: all off by default
        CONF_VIP_AUTO_RENEW: False,
        CONF_VIP_RENEW_DAYS: 14,
        CONF_UPLOAD_CREDIT: "off",
        CONF_POINTS_RESERVE: 0,
        CONF_POINTS_CEILING: 70000,
        CONF_MAX_UPLOAD_GB_PER_DAY: 200,
        CONF_PURCHASE_DRY_RUN: False,
    },
}


async def _options_form(hass: HomeAssistant, options: dict[str, Any]) -> ConfigFlowResult:
    entry = MockConfigEntry(domain=DOMAIN, unique_id="1", data={}, options=options)
    entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    return result


async def test_options_form_is_in_sections_prefilled_from_flat_options(
    hass: HomeAssistant,
) -> None:
    """An entry without options (or an older one) shows the SPEC defaults, section by section."""
    result = await _options_form(hass, {})
    assert _form(result) == DEFAULT_FORM
    shown = [key for keys in OPTION_SECTIONS.values() for key in keys]
    assert sorted(shown) == sorted(OPTION_FIELDS)  # each field in one section
    assert set(OPTION_FIELDS) <= set(DEFAULT_OPTIONS)
    assert all(
        value.options == {"collapsed": False} for value in result["data_schema"].schema.values()
    )
    fields = _selectors(result)
    for key in (CONF_RATIO_THRESHOLD, CONF_RELEASE_MARGIN):
        assert fields[key].config["step"] == 0.01
        assert fields[key].config["mode"] == "box"
    pages = fields[CONF_RULES_PAGES].config
    assert pages["translation_key"] == "rules_page"
    assert pages["options"] == list(RULES_PAGE_KEYS.values())
    assert list(RULES_PAGE_KEYS) == list(RULES_PAGES)  # every page has its label, in order
    assert isinstance(fields[CONF_RULES_REFRESH_TIME], selector.TextSelector)
    assert fields[CONF_RULES_REFRESH_TIME].config["type"] == "time"  # hours and minutes only
    assert fields[CONF_VIP_WARNING_DAYS].config["unit_of_measurement"] == "days"


@pytest.mark.parametrize(
    ("stored", "shown"),
    [("06:30:00", "06:30"), ("6:05", "06:05"), ("23:59:59", "23:59"), ("garbage", "12:00")],
)
async def test_options_form_shows_the_refresh_time_without_seconds(
    hass: HomeAssistant, stored: str, shown: str
) -> None:
    result = await _options_form(
        hass, {**DEFAULT_OPTIONS, CONF_RULES_REFRESH_TIME: stored, CONF_RULES_PAGES: ["f/b/78"]}
    )
    assert _form(result)["rules"] == {
        CONF_RULES_PAGES: ["forum_78"],
        CONF_RULES_REFRESH_TIME: shown,
    }


async def test_options_flow_stores_flat_options(hass: HomeAssistant) -> None:
    """The sections are flattened; values keep the SPEC §1 types; other options are kept."""
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id="1", data={}, options={**DEFAULT_OPTIONS, "future_option": 7}
    )
    entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    user_input = {
        "emergency": {
            CONF_RATIO_THRESHOLD: 1.204,
            CONF_RELEASE_MARGIN: 0.05,
            CONF_ENFORCEMENT: False,
            CONF_EXEMPT_TAGS: [" freeleech", "vip", "", "vip"],
            CONF_FREELEECH_LOOKUP: False,
            CONF_EMERGENCY_ACTIVE_UPLOADS: 80.0,
            CONF_UNLIMITED_UPLOAD_RATE: False,
        },
        "vip_points": {
            CONF_VIP_WARNING_DAYS: 20.0,
            CONF_VIP_CRITICAL_DAYS: 5.0,
            CONF_RENEWAL_THRESHOLD: 6000.0,
        },
        "rules": {
            CONF_RULES_PAGES: ["update_notes", "rules", "forum_18"],
            CONF_RULES_REFRESH_TIME: "06:30",
        },
        "purchases": {
            CONF_VIP_AUTO_RENEW: True,
            CONF_VIP_RENEW_DAYS: 10.0,
            CONF_UPLOAD_CREDIT: "emergency",
            CONF_POINTS_RESERVE: 2000.0,
            CONF_POINTS_CEILING: 95000.0,
            CONF_MAX_UPLOAD_GB_PER_DAY: 100.0,
            CONF_PURCHASE_DRY_RUN: True,
        },
    }
    result = await hass.config_entries.options.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {
        CONF_RATIO_THRESHOLD: 1.2,
        CONF_RELEASE_MARGIN: 0.05,
        CONF_ENFORCEMENT: False,
        CONF_EXEMPT_TAGS: ["freeleech", "vip"],
        CONF_FREELEECH_LOOKUP: False,
        CONF_EMERGENCY_ACTIVE_UPLOADS: 80,
        CONF_UNLIMITED_UPLOAD_RATE: False,
        CONF_VIP_WARNING_DAYS: 20,
        CONF_VIP_CRITICAL_DAYS: 5,
        CONF_RENEWAL_THRESHOLD: 6000,
        CONF_RULES_PAGES: ["rules.php", "f/b/18", "updateNotes.php"],  # paths, in RULES_PAGES order
        CONF_RULES_REFRESH_TIME: "06:30:00",
        CONF_VIP_AUTO_RENEW: True,
        CONF_VIP_RENEW_DAYS: 10,
        CONF_UPLOAD_CREDIT: "emergency",
        CONF_POINTS_RESERVE: 2000,
        CONF_POINTS_CEILING: 95000,
        CONF_MAX_UPLOAD_GB_PER_DAY: 100,
        CONF_PURCHASE_DRY_RUN: True,
        "future_option": 7,
    }
    assert isinstance(entry.options[CONF_RATIO_THRESHOLD], float)
    assert all(
        isinstance(entry.options[key], int)
        for key in (CONF_EMERGENCY_ACTIVE_UPLOADS, CONF_VIP_WARNING_DAYS, CONF_RENEWAL_THRESHOLD)
    )
    # Saved again unchanged, the form gives back exactly what it showed.
    result = await hass.config_entries.options.async_init(entry.entry_id)
    shown = _form(result)
    assert shown["rules"] == {
        CONF_RULES_PAGES: ["rules", "forum_18", "update_notes"],
        CONF_RULES_REFRESH_TIME: "06:30",
    }
    before = dict(entry.options)
    result = await hass.config_entries.options.async_configure(result["flow_id"], shown)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == before


async def test_options_flow_with_no_rules_pages_turns_the_refresh_off(hass: HomeAssistant) -> None:
    result = await _options_form(hass, dict(DEFAULT_OPTIONS))
    form = _form(result)
    form["rules"][CONF_RULES_PAGES] = []
    result = await hass.config_entries.options.async_configure(result["flow_id"], form)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_RULES_PAGES] == []


@pytest.mark.parametrize("value", ["25:00", "noon", "12", "12:5", ""])
async def test_options_flow_refuses_a_bad_refresh_time(hass: HomeAssistant, value: str) -> None:
    result = await _options_form(hass, dict(DEFAULT_OPTIONS))
    form = _form(result)
    form["emergency"][CONF_RATIO_THRESHOLD] = 0.9
    form["rules"][CONF_RULES_REFRESH_TIME] = value
    result = await hass.config_entries.options.async_configure(result["flow_id"], form)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_rules_refresh_time"}
    shown = _form(result)  # the form keeps what was typed
    assert shown["emergency"][CONF_RATIO_THRESHOLD] == 0.9
    assert shown["rules"][CONF_RULES_REFRESH_TIME] == value
    shown["rules"][CONF_RULES_REFRESH_TIME] = "7:45"
    result = await hass.config_entries.options.async_configure(result["flow_id"], shown)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_RULES_REFRESH_TIME] == "07:45:00"
    assert result["data"][CONF_RATIO_THRESHOLD] == 0.9


async def test_user_flow_keeps_the_newest_cookie_across_retries(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon
) -> None:
    """Item 5: a qBittorrent typo after a good MAM check must not burn the pasted cookie."""
    flow_id = await _start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _user_input(mam_sim, qbittorrent, **{CONF_QBT_PASSWORD: "typo"})
    )
    assert result["errors"] == {"base": "qbt_invalid_auth"}
    assert TEST_COOKIE not in mam_sim.valid_cookies  # MAM rotated it on the check
    result = await hass.config_entries.flow.async_configure(
        flow_id, _user_input(mam_sim, qbittorrent)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_MAM_ID] in mam_sim.valid_cookies
    assert mam_sim.requests["jsonLoad.php"] == 1  # the checked account is reused: no 2nd request


@pytest.mark.parametrize(
    "url",
    [
        "http://admin:secret@127.0.0.1:8080",
        "http://admin@127.0.0.1:8080",
        "https://:secret@qbt.example.org/",
    ],
)
async def test_user_flow_refuses_credentials_in_the_url(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon, url: str
) -> None:
    """Item 14b: credentials belong in their fields, never in a URL we store, log or show."""
    flow_id = await _start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _user_input(mam_sim, qbittorrent, **{CONF_QBT_URL: url})
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_QBT_URL: "qbt_url_credentials"}
    assert mam_sim.requests["jsonLoad.php"] == 0  # refused before anything is sent


@pytest.mark.parametrize("legacy", [False, True], ids=["subentry", "version1_data"])
@pytest.mark.parametrize(
    "variant",
    ["{url}", "{url}/", "{url}/api/v2", "{localhost}", "HTTP://{host}"],
)
async def test_second_account_on_the_same_qbittorrent_is_refused(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon, variant: str, legacy: bool
) -> None:
    """Item 9: two accounts on one qBittorrent would share tags and preferences: refuse.

    The other account's qBittorrent is a subentry, or still in the data of a version 1 entry
    not migrated yet (a disabled entry is not set up, so not migrated).
    """
    first = (make_legacy_entry if legacy else make_entry)(mam_sim, qbittorrent)
    first.add_to_hass(hass)
    mam_sim.state.uid = 200002  # another MAM account
    host = qbittorrent.url.removeprefix("http://")
    url = variant.format(
        url=qbittorrent.url, localhost=qbittorrent.url.replace("127.0.0.1", "localhost"), host=host
    )
    flow_id = await _start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _user_input(mam_sim, qbittorrent, **{CONF_QBT_URL: url})
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_QBT_URL: "qbt_already_used"}
    assert mam_sim.requests["jsonLoad.php"] == 0  # refused before anything is sent


async def test_second_account_on_another_qbittorrent_is_created(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon
) -> None:
    """Entries with no qBittorrent (an ignored one, a bare one) do not block anything."""
    make_entry(mam_sim, qbittorrent, data={CONF_QBT_URL: "http://192.0.2.7:8080"}).add_to_hass(hass)
    MockConfigEntry(domain=DOMAIN, unique_id="3", source=SOURCE_IGNORE).add_to_hass(hass)
    MockConfigEntry(domain=DOMAIN, unique_id="4", data={}, version=2).add_to_hass(hass)
    mam_sim.state.uid = 200002
    flow_id = await _start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _user_input(mam_sim, qbittorrent)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == "200002"
