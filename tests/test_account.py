"""Account monitoring end to end: MAM simulator over HTTP, real qBittorrent, the 5-minute poll."""

from __future__ import annotations

from datetime import timedelta
import logging
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.mam_guard.const import (
    CONF_MAM_BASE_URL,
    CONF_MAM_ID,
    CONF_QBT_PASSWORD,
    CONF_QBT_URL,
    CONF_RULES_PAGES,
    DOMAIN,
    SERVICE_CHECK_DOWNLOAD,
    SERVICE_GET_STATUS,
)
from mam_simulator import MamSimulator
from tests.support.entries import make_entry, only_client
from tests.support.mam_sim import TEST_COOKIE
from tests.support.qbt_daemon import QbtDaemon, free_port

POLL = timedelta(minutes=5)


async def setup_entry(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Add and set up the entry; wait for the first polls."""
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


def entity_id(entity_registry: er.EntityRegistry, platform: str, key: str) -> str:
    """The entity id of ``<uid>_<key>``."""
    found = entity_registry.async_get_entity_id(platform, DOMAIN, f"100001_{key}")
    assert found is not None, key
    return found


def state_of(hass: HomeAssistant, entity_registry: er.EntityRegistry, key: str) -> Any:
    """The state object of a sensor key."""
    state = hass.states.get(entity_id(entity_registry, "sensor", key))
    assert state is not None, key
    return state


async def poll(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """Let five minutes pass: one account poll."""
    freezer.tick(POLL)
    async_fire_time_changed(hass)
    # Coordinator refreshes run as background tasks: wait for them, or the next time jump would
    # expire the timeout of a request still in flight.
    await hass.async_block_till_done(wait_background_tasks=True)


@pytest.fixture
def no_rules(mam_sim: MamSimulator, qbittorrent: QbtDaemon) -> MockConfigEntry:
    """The entry without the daily page refresh, so only jsonLoad requests reach the simulator."""
    return make_entry(mam_sim, qbittorrent, **{CONF_RULES_PAGES: []})


EXPECTED = {
    # key: (state, unit, device_class, state_class)
    "ratio": ("1.5", None, None, "measurement"),
    "uploaded": ("10.0", "GiB", "data_size", "total_increasing"),
    "downloaded": ("1.0", "GiB", "data_size", "total_increasing"),
    "bonus_points": ("1000.0", "points", None, "measurement"),
    "user_class": ("VIP", None, None, None),
    "unsatisfied": ("42", None, None, "measurement"),  # no unit: "1 torrents" reads wrong
    "vip_expiry": ("2027-01-01T00:00:00+00:00", None, "timestamp", None),
    "vip_status": ("warning", None, "enum", None),  # 1000 points < 5000 needed to renew
    "points_per_day": (STATE_UNKNOWN, "points/d", None, "measurement"),
    "ratio_status": ("normal", None, "enum", None),
    "seeding_allocation": ("3", "uploads", None, "measurement"),
    "stalled_torrents": ("0", None, None, "measurement"),
    "paid_downloads": ("0", None, None, "measurement"),
    "frozen_torrents": ("0", None, None, "measurement"),
    "forced_torrents": ("0", None, None, "measurement"),
    "protection": ("idle", None, "enum", None),
    # 10 GiB up, 1 GiB down, threshold 1.00: 9 GiB can still be downloaded; no upload needed.
    "ratio_buffer": ("9.0", "GiB", "data_size", "measurement"),
    "upload_needed": ("0.0", "GiB", "data_size", "measurement"),
}
# Entity hygiene (README's entity table): diagnostic and disabled-by-default entities.
DIAGNOSTIC = {"user_class", "seeding_allocation", "rules_checked"}
DISABLED_BY_DEFAULT = {"wedges"}


@pytest.mark.freeze_time("2026-11-24 10:00:00+00:00")
async def test_every_account_sensor(
    hass: HomeAssistant, no_rules: MockConfigEntry, entity_registry: er.EntityRegistry
) -> None:
    await setup_entry(hass, no_rules)
    for key, (value, unit, device_class, state_class) in EXPECTED.items():
        state = state_of(hass, entity_registry, key)
        assert state.state == value, key
        assert state.attributes.get("unit_of_measurement") == unit, key
        assert state.attributes.get("device_class") == device_class, key
        assert state.attributes.get("state_class") == state_class, key
    assert state_of(hass, entity_registry, "ratio").attributes["infinite"] is False
    assert state_of(hass, entity_registry, "unsatisfied").attributes["limit"] == 50
    status = state_of(hass, entity_registry, "ratio_status").attributes
    assert (status["threshold"], status["release_above"]) == (1.0, 1.0)
    days = state_of(hass, entity_registry, "vip_days_left")
    assert float(days.state) == pytest.approx(37.58, abs=0.01)
    assert days.attributes["unit_of_measurement"] == "d"
    assert days.attributes["device_class"] == "duration"
    for entry in er.async_entries_for_config_entry(entity_registry, no_rules.entry_id):
        key = entry.unique_id.removeprefix("100001_")
        if entry.config_subentry_id is not None:  # a client's entity (tests/test_clients.py)
            key = key.removeprefix(f"{entry.config_subentry_id}_")
        assert (entry.entity_category is er.EntityCategory.DIAGNOSTIC) == (key in DIAGNOSTIC), key
        assert (entry.disabled_by is not None) == (key in DISABLED_BY_DEFAULT), key
    assert hass.states.get(entity_id(entity_registry, "sensor", "wedges")) is None


async def test_infinite_ratio_and_no_vip(
    hass: HomeAssistant,
    no_rules: MockConfigEntry,
    mam_sim: MamSimulator,
    entity_registry: er.EntityRegistry,
) -> None:
    mam_sim.state.ratio = "∞"
    mam_sim.state.downloaded_bytes = 0
    mam_sim.state.vip_until = None
    mam_sim.state.vip_until_null = True
    mam_sim.state.nested = False  # the older top-level snatch blocks
    await setup_entry(hass, no_rules)
    ratio = state_of(hass, entity_registry, "ratio")
    assert ratio.state == STATE_UNKNOWN
    assert ratio.attributes["infinite"] is True
    assert state_of(hass, entity_registry, "ratio_status").state == "normal"
    assert state_of(hass, entity_registry, "vip_expiry").state == STATE_UNKNOWN
    assert state_of(hass, entity_registry, "vip_days_left").state == STATE_UNKNOWN
    assert state_of(hass, entity_registry, "vip_status").state == "inactive"
    assert state_of(hass, entity_registry, "unsatisfied").state == "42"
    emergency = hass.states.get(entity_id(entity_registry, "binary_sensor", "emergency_freeze"))
    assert emergency is not None
    assert emergency.state == "off"  # ∞ is the best ratio there is, never an emergency


@pytest.mark.parametrize(
    ("ratio", "status"), [(1.2, "normal"), (1.1, "warning"), (1.01, "warning"), (1.11, "normal")]
)
async def test_ratio_status_band(
    hass: HomeAssistant,
    no_rules: MockConfigEntry,
    mam_sim: MamSimulator,
    entity_registry: er.EntityRegistry,
    ratio: float,
    status: str,
) -> None:
    mam_sim.state.ratio = ratio
    await setup_entry(hass, no_rules)
    assert state_of(hass, entity_registry, "ratio_status").state == status


async def test_polls_every_five_minutes_and_rotated_cookie_survives_restart(
    hass: HomeAssistant,
    no_rules: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
    entity_registry: er.EntityRegistry,
) -> None:
    await setup_entry(hass, no_rules)
    assert mam_sim.requests["jsonLoad.php"] == 1
    stored = hass_storage[f"{DOMAIN}.{no_rules.entry_id}"]["data"]
    first_rotation = stored["mam_id"]
    assert first_rotation != TEST_COOKIE
    assert TEST_COOKIE not in mam_sim.valid_cookies  # MAM invalidated the configured cookie
    freezer.tick(timedelta(minutes=4))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert mam_sim.requests["jsonLoad.php"] == 1  # not before 5 minutes
    mam_sim.state.ratio = 2.25
    await poll(hass, freezer)
    assert mam_sim.requests["jsonLoad.php"] == 2
    assert state_of(hass, entity_registry, "ratio").state == "2.25"
    second_rotation = hass_storage[f"{DOMAIN}.{no_rules.entry_id}"]["data"]["mam_id"]
    assert second_rotation not in (first_rotation, TEST_COOKIE)
    assert second_rotation in mam_sim.valid_cookies

    # "Restart": unload and set up again; only the stored (rotated) cookie is valid now.
    assert await hass.config_entries.async_unload(no_rules.entry_id)
    assert await hass.config_entries.async_setup(no_rules.entry_id)
    await hass.async_block_till_done()
    assert no_rules.state is ConfigEntryState.LOADED
    assert mam_sim.requests["jsonLoad.php"] == 3
    assert state_of(hass, entity_registry, "ratio").state == "2.25"
    assert no_rules.data[CONF_MAM_ID] == TEST_COOKIE  # the entry keeps what the user gave


async def test_auth_failure_starts_reauth_and_new_cookie_recovers(
    hass: HomeAssistant,
    no_rules: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
    entity_registry: er.EntityRegistry,
) -> None:
    await setup_entry(hass, no_rules)
    mam_sim.invalidate_all_cookies()  # the user deleted the session in MAM's preferences
    await poll(hass, freezer)
    assert state_of(hass, entity_registry, "ratio").state == STATE_UNAVAILABLE
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == [SOURCE_REAUTH]
    new_cookie = mam_sim.add_cookie("brand-new-session")
    result = await hass.config_entries.flow.async_configure(
        flows[0]["flow_id"], {CONF_MAM_ID: f"mam_id={new_cookie}"}
    )
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert no_rules.state is ConfigEntryState.LOADED
    assert state_of(hass, entity_registry, "ratio").state == "1.5"


async def test_auth_failure_at_setup(
    hass: HomeAssistant, no_rules: MockConfigEntry, mam_sim: MamSimulator
) -> None:
    mam_sim.invalidate_all_cookies()
    await setup_entry(hass, no_rules)
    assert no_rules.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == [SOURCE_REAUTH]


async def test_mam_unreachable_at_setup_retries(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon
) -> None:
    entry = make_entry(
        mam_sim, qbittorrent, data={CONF_MAM_BASE_URL: f"http://127.0.0.1:{free_port()}"}
    )
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.SETUP_RETRY


async def test_rate_limit_backs_off_thirty_minutes(
    hass: HomeAssistant,
    no_rules: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
    entity_registry: er.EntityRegistry,
) -> None:
    await setup_entry(hass, no_rules)
    mam_sim.fail_next(429)
    await poll(hass, freezer)
    assert mam_sim.requests["jsonLoad.php"] == 2
    assert state_of(hass, entity_registry, "ratio").state == STATE_UNAVAILABLE
    for _ in range(5):  # 25 more minutes: no request reaches MAM
        await poll(hass, freezer)
    assert mam_sim.requests["jsonLoad.php"] == 2
    await poll(hass, freezer)  # 30 minutes after the 429: MAM is asked again
    assert mam_sim.requests["jsonLoad.php"] == 3
    assert state_of(hass, entity_registry, "ratio").state == "1.5"


async def test_points_per_day_excludes_spending_and_survives_restart(
    hass: HomeAssistant,
    no_rules: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
    entity_registry: er.EntityRegistry,
) -> None:
    mam_sim.state.seedbonus = 1000
    await setup_entry(hass, no_rules)
    for step in range(1, 25):  # two hours, +10 points every 5 minutes
        spent = 500 if step >= 12 else 0  # bought something at step 12: not "negative earnings"
        mam_sim.state.seedbonus = 1000 + 10 * step - spent
        await poll(hass, freezer)
    # 23 increases of 10 points in 2 hours (the purchase adds nothing): 230 * 12 = 2760 a day.
    assert float(state_of(hass, entity_registry, "points_per_day").state) == 2760.0
    before = float(state_of(hass, entity_registry, "points_per_day").state)
    assert await hass.config_entries.async_unload(no_rules.entry_id)
    assert await hass.config_entries.async_setup(no_rules.entry_id)
    await hass.async_block_till_done()
    after = float(state_of(hass, entity_registry, "points_per_day").state)
    assert after == pytest.approx(before, rel=0.05)  # history came back from storage


async def test_qbittorrent_down_keeps_account_entities(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    qbittorrent: QbtDaemon,
    entity_registry: er.EntityRegistry,
) -> None:
    entry = make_entry(
        mam_sim, qbittorrent, data={CONF_QBT_URL: f"http://127.0.0.1:{free_port()}"}, rules_pages=[]
    )
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    assert state_of(hass, entity_registry, "ratio").state == "1.5"
    assert state_of(hass, entity_registry, "seeding_allocation").state == STATE_UNAVAILABLE
    assert state_of(hass, entity_registry, "stalled_torrents").state == STATE_UNAVAILABLE
    assert state_of(hass, entity_registry, "frozen_torrents").state == "0"


async def test_get_status_and_check_download(
    hass: HomeAssistant, mam_sim: MamSimulator, no_rules: MockConfigEntry
) -> None:
    await setup_entry(hass, no_rules)
    status = await hass.services.async_call(
        DOMAIN, SERVICE_GET_STATUS, {}, blocking=True, return_response=True
    )
    assert set(status) == {"vip", "compliance", "rules", "events", "emergency", "freeleech"}
    emergency = status["emergency"]
    assert emergency["protection"] == "idle"  # type: ignore[index]
    assert emergency["frozen"] == {  # type: ignore[index]
        "count": 0,
        "torrents": [],
        "more": 0,
        "reasons": {},
    }
    assert emergency["spared"] == {"count": 0, "torrents": {}, "more": 0}  # type: ignore[index]
    assert status["freeleech"] == {
        "enabled": True,
        "vip_account": True,  # the simulator's account is VIP
        "queued": 0,
        "lookups_last_hour": 0,
        "paused_until": None,
        "paid_downloads": 0,
    }
    assert emergency["since"] is None  # type: ignore[index]
    vip, compliance = status["vip"], status["compliance"]
    assert set(vip) == {  # type: ignore[arg-type]
        "vip_active",
        "days_until_expiry",
        "total_points",
        "points_per_day",
        "renewal_threshold",
        "status",
        "last_updated",
    }
    assert set(compliance) == {  # type: ignore[arg-type]
        "global_ratio",
        "emergency_active",
        "download_frozen",
        "seeding_allocation",
        "stalled_torrents",
        "status",
        "last_updated",
    }
    assert vip["vip_active"] is True  # type: ignore[index]
    assert isinstance(vip["days_until_expiry"], int)  # type: ignore[index]
    assert vip["total_points"] == 1000  # type: ignore[index]
    assert vip["renewal_threshold"] == 5000  # type: ignore[index]
    assert vip["status"] == "warning"  # type: ignore[index]
    assert compliance["global_ratio"] == 1.5  # type: ignore[index]
    assert compliance["emergency_active"] is False  # type: ignore[index]
    assert compliance["download_frozen"] is False  # type: ignore[index]
    assert compliance["seeding_allocation"] == 3  # type: ignore[index]
    assert compliance["status"] == "normal"  # type: ignore[index]
    for is_paid in (True, False):
        answer = await hass.services.async_call(
            DOMAIN,
            SERVICE_CHECK_DOWNLOAD,
            {"config_entry_id": no_rules.entry_id, "is_paid": is_paid},
            blocking=True,
            return_response=True,
        )
        assert answer == {"allowed": True, "reason": "no_emergency"}

    async def check(**data: object) -> object:
        return await hass.services.async_call(
            DOMAIN, SERVICE_CHECK_DOWNLOAD, data, blocking=True, return_response=True
        )

    # 10 GiB up / 1 GiB down at threshold 1.00: 9 GiB of buffer.
    gib = 1024**3
    assert await check(is_paid=True, size_bytes=8 * gib) == {
        "allowed": True,
        "reason": "no_emergency",
    }
    assert await check(is_paid=True, size_bytes=10 * gib) == {
        "allowed": False,
        "reason": "insufficient_buffer",
    }
    assert await check(is_paid=False, size_bytes=10 * gib) == {  # freeleech costs no ratio
        "allowed": True,
        "reason": "no_emergency",
    }
    mam_sim.state.unsat_count = 50  # the limit is 50
    await no_rules.runtime_data.account.async_refresh()
    assert await check(is_paid=False) == {"allowed": False, "reason": "unsatisfied_limit"}


async def test_diagnostics_and_logs_never_show_secrets(
    hass: HomeAssistant,
    no_rules: MockConfigEntry,
    mam_sim: MamSimulator,
    freezer: FrozenDateTimeFactory,
    hass_client: ClientSessionGenerator,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await setup_entry(hass, no_rules)
    mam_sim.fail_next(403)
    await poll(hass, freezer)  # an auth error path logs too
    await poll(hass, freezer)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, no_rules)
    text = repr(diagnostics)
    secrets = {
        TEST_COOKIE,
        hass_storage[f"{DOMAIN}.{no_rules.entry_id}"]["data"]["mam_id"],
        next(iter(no_rules.subentries.values())).data[CONF_QBT_PASSWORD],
        *mam_sim.valid_cookies,
    }
    # phcc's mock storage logs every document it "writes"; HA's real Store logs only the file name.
    logs = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("pytest_homeassistant")
    )
    assert "jsonLoad.php" in logs  # the client's debug logs were captured
    for secret in secrets:
        assert secret not in text
        assert secret not in logs
    assert "FixtureUser" not in text  # usernames are redacted too
    assert diagnostics["account"]["ratio"] == 1.5
    assert diagnostics["entry"]["data"][CONF_MAM_ID] == "**REDACTED**"
    assert diagnostics["emergency"]["active"] is False
    assert diagnostics["status"]["compliance"]["global_ratio"] == 1.5


async def test_credentials_in_an_old_entrys_qbittorrent_url_are_never_used_or_shown(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    qbittorrent: QbtDaemon,
    hass_client: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Item 14b: an entry saved with ``http://user:pass@host`` (before the flow refused it)."""
    caplog.set_level(logging.DEBUG)
    url = qbittorrent.url.replace("http://", "http://admin:url-secret-41@")
    entry = make_entry(mam_sim, qbittorrent, data={CONF_QBT_URL: url}, **{CONF_RULES_PAGES: []})
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.LOADED  # the account side works
    assert not only_client(entry).coordinator.last_update_success  # the URL is refused, not used
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert "url-secret-41" not in repr(diagnostics)
    (client,) = diagnostics["qbittorrent"].values()
    assert client["data"][CONF_QBT_URL].startswith("http://***@127.0.0.1:")
    assert client["data"]["qbt_password"] == "**REDACTED**"
    assert "url-secret-41" not in caplog.text
