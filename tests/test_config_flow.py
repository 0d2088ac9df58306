"""Config flow (user, reauth, reconfigure, options) with the MAM simulator and real qBittorrent."""

from __future__ import annotations

from unittest.mock import AsyncMock, patch

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.mam_guard.config_flow import InvalidBaseUrl, _check_base_url
from custom_components.mam_guard.const import (
    CONF_EMERGENCY_ACTIVE_UPLOADS,
    CONF_ENFORCEMENT,
    CONF_EXEMPT_TAGS,
    CONF_MAM_BASE_URL,
    CONF_MAM_ID,
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
    CONF_VIP_CRITICAL_DAYS,
    CONF_VIP_WARNING_DAYS,
    DEFAULT_OPTIONS,
    DOMAIN,
)
from mam_simulator import MamSimulator
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
    assert result["data"][CONF_MAM_BASE_URL] == mam_sim.base_url
    assert result["options"] == DEFAULT_OPTIONS
    assert mam_sim.requests["jsonLoad.php"] == 1
    assert len(mock_setup_entry.mock_calls) == 1


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


def _entry(sim: MamSimulator, qbt: QbtDaemon) -> MockConfigEntry:
    data = _user_input(sim, qbt, **{CONF_MAM_ID: "old-cookie"})
    data[CONF_MAM_BASE_URL] = data.pop("advanced")[CONF_MAM_BASE_URL]  # type: ignore[index]
    return MockConfigEntry(
        domain=DOMAIN,
        title="MAM FixtureUser",
        unique_id="100001",
        data=data,
        options=DEFAULT_OPTIONS,
    )


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
    assert entry.data[CONF_QBT_URL] == qbittorrent.url


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


async def test_reconfigure_qbittorrent_keeps_password(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon
) -> None:
    entry = _entry(mam_sim, qbittorrent)
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    wrong = f"http://127.0.0.1:{free_port()}"
    form = {CONF_QBT_URL: wrong, CONF_QBT_USERNAME: qbittorrent.username, CONF_QBT_PASSWORD: ""}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert result["errors"] == {"base": "qbt_cannot_connect"}
    form[CONF_QBT_URL] = qbittorrent.url + "/"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_QBT_URL] == qbittorrent.url + "/"
    assert entry.data[CONF_QBT_PASSWORD] == qbittorrent.password  # empty field kept the stored one
    assert entry.data[CONF_MAM_ID] == "old-cookie"  # no new cookie given: untouched
    assert mam_sim.requests["jsonLoad.php"] == 0


async def test_reconfigure_new_user_needs_password_and_new_cookie_is_checked(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon
) -> None:
    entry = _entry(mam_sim, qbittorrent)
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    form = {CONF_QBT_URL: qbittorrent.url, CONF_QBT_USERNAME: "someone-else", CONF_QBT_PASSWORD: ""}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert result["errors"] == {
        "base": "qbt_invalid_auth"
    }  # another user: no stored password reused
    form = {
        CONF_QBT_URL: qbittorrent.url,
        CONF_QBT_USERNAME: qbittorrent.username,
        CONF_QBT_PASSWORD: qbittorrent.password,
        CONF_MAM_ID: "bad-cookie",
    }
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert result["errors"] == {"base": "invalid_auth"}
    form[CONF_MAM_ID] = TEST_COOKIE
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_MAM_ID] in mam_sim.valid_cookies


async def test_reconfigure_cookie_of_other_account_aborts(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon
) -> None:
    entry = _entry(mam_sim, qbittorrent)
    entry.add_to_hass(hass)
    mam_sim.state.uid = "777"
    result = await entry.start_reconfigure_flow(hass)
    form = {
        CONF_QBT_URL: qbittorrent.url,
        CONF_QBT_USERNAME: qbittorrent.username,
        CONF_MAM_ID: TEST_COOKIE,
    }
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_account"


async def test_options_flow(hass: HomeAssistant) -> None:
    entry = MockConfigEntry(domain=DOMAIN, unique_id="1", data={}, options={})
    entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    defaults = {key.schema: key.default() for key in result["data_schema"].schema}
    assert defaults == DEFAULT_OPTIONS
    user_input = {
        CONF_RATIO_THRESHOLD: 1.2,
        CONF_RELEASE_MARGIN: 0.05,
        CONF_ENFORCEMENT: False,
        CONF_EXEMPT_TAGS: [" freeleech", "vip", "", "vip"],
        CONF_EMERGENCY_ACTIVE_UPLOADS: 80.0,
        CONF_UNLIMITED_UPLOAD_RATE: False,
        CONF_VIP_WARNING_DAYS: 20.0,
        CONF_VIP_CRITICAL_DAYS: 5.0,
        CONF_RENEWAL_THRESHOLD: 6000.0,
        CONF_RULES_PAGES: ["rules.php"],
        CONF_RULES_REFRESH_TIME: "06:30:00",
    }
    result = await hass.config_entries.options.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_EXEMPT_TAGS] == ["freeleech", "vip"]
    assert entry.options[CONF_EMERGENCY_ACTIVE_UPLOADS] == 80
    assert isinstance(entry.options[CONF_RENEWAL_THRESHOLD], int)
    assert entry.options[CONF_RULES_PAGES] == ["rules.php"]
    assert entry.options[CONF_RULES_REFRESH_TIME] == "06:30:00"


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


async def test_reconfigure_keeps_the_newest_cookie_across_retries(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon
) -> None:
    entry = _entry(mam_sim, qbittorrent)
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    form = {
        CONF_QBT_URL: qbittorrent.url,
        CONF_QBT_USERNAME: qbittorrent.username,
        CONF_QBT_PASSWORD: "typo",
        CONF_MAM_ID: TEST_COOKIE,
    }
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert result["errors"] == {"base": "qbt_invalid_auth"}
    form[CONF_QBT_PASSWORD] = qbittorrent.password
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_MAM_ID] in mam_sim.valid_cookies
    assert mam_sim.requests["jsonLoad.php"] == 1


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


async def test_reconfigure_refuses_credentials_in_the_url(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon
) -> None:
    entry = _entry(mam_sim, qbittorrent)
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    form = {
        CONF_QBT_URL: qbittorrent.url.replace("http://", "http://u:p@"),
        CONF_QBT_USERNAME: qbittorrent.username,
    }
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert result["errors"] == {CONF_QBT_URL: "qbt_url_credentials"}


@pytest.mark.parametrize(
    "variant",
    ["{url}", "{url}/", "{url}/api/v2", "{localhost}", "HTTP://{host}"],
)
async def test_second_account_on_the_same_qbittorrent_is_refused(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon, variant: str
) -> None:
    """Item 9: two accounts on one qBittorrent would share tags and preferences: refuse."""
    first = _entry(mam_sim, qbittorrent)
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


async def test_reconfigure_onto_another_entrys_qbittorrent_is_refused(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon
) -> None:
    other = _entry(mam_sim, qbittorrent)
    other.add_to_hass(hass)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="MAM Other",
        unique_id="200002",
        data={**other.data, CONF_QBT_URL: "http://127.0.0.1:1"},
        options=DEFAULT_OPTIONS,
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    form = {CONF_QBT_URL: qbittorrent.url, CONF_QBT_USERNAME: qbittorrent.username}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert result["errors"] == {CONF_QBT_URL: "qbt_already_used"}
    # Its own URL again is fine (the check skips the entry being reconfigured).
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_QBT_URL: "http://127.0.0.1:1", CONF_QBT_USERNAME: ""}
    )
    assert result["errors"] == {"base": "qbt_cannot_connect"}
