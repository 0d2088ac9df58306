"""Bonus points in Home Assistant (SPEC §10): automatic and manual purchases against the MAM
simulator over real HTTP (purchases debit points and move VIP and upload as on MAM), the ledger,
the events, the sensors, dry runs, rejections and a lost answer across a restart."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.mam_guard.const import (
    CONF_MAM_ID,
    CONF_PURCHASE_DRY_RUN,
    CONF_RULES_PAGES,
    CONF_UPLOAD_CREDIT,
    CONF_VIP_AUTO_RENEW,
    DOMAIN,
    EVENT_PURCHASE,
)
from mam_simulator import MamSimulator
from tests.support.entries import make_entry
from tests.support.qbt_daemon import QbtDaemon
from tests.test_ratio_emergency import poll_account, setup

GIB = 1024**3


def entry_with(mam_sim: MamSimulator, qbittorrent: QbtDaemon, **options: Any) -> MockConfigEntry:
    return make_entry(mam_sim, qbittorrent, **{CONF_RULES_PAGES: [], **options})


def sensor(hass: HomeAssistant, entity_registry: er.EntityRegistry, key: str) -> Any:
    entity_id = entity_registry.async_get_entity_id("sensor", DOMAIN, f"100001_{key}")
    assert entity_id is not None
    return hass.states.get(entity_id)


async def ledger(entry: MockConfigEntry, hass: HomeAssistant) -> list[Any]:
    db = entry.runtime_data.rules.db
    return await hass.async_add_executor_job(db.purchases, entry.entry_id)


async def test_emergency_buys_exactly_the_upload_that_ends_it(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    qbittorrent: QbtDaemon,
    entity_registry: er.EntityRegistry,
) -> None:
    mam_sim.state.seedbonus = 40_000
    entry = entry_with(mam_sim, qbittorrent, **{CONF_UPLOAD_CREDIT: "emergency"})
    events = async_capture_events(hass, EVENT_PURCHASE)
    await setup(hass, entry)
    assert not mam_sim.purchases  # a healthy ratio buys nothing

    # Ratio 0.95: 95 GiB up, 100 GiB down. Reaching 1.01 needs 6 GiB: MAM's minimum is 50 GB.
    mam_sim.state.uploaded_bytes, mam_sim.state.downloaded_bytes = 95 * GIB, 100 * GIB
    mam_sim.state.ratio = 0.95
    await poll_account(hass, entry)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.runtime_data.emergency.active
    assert [(p["kind"], p["amount"]) for p in mam_sim.purchases] == [("upload", 50)]
    assert mam_sim.state.seedbonus == 40_000 - 50 * 500
    [event] = events
    assert event.data["kind"] == "upload"
    assert event.data["reason"] == "emergency"
    assert event.data["success"] is True
    assert event.data["dry_run"] is False
    assert event.data["amount"] == 50
    rows = await ledger(entry, hass)
    assert [(r.kind, r.reason, r.success) for r in rows] == [("upload", "emergency", True)]
    last = sensor(hass, entity_registry, "last_purchase")
    assert last.state != "unknown"
    assert last.attributes["reason"] == "emergency"

    await poll_account(hass, entry)  # the next poll sees ratio 1.45 and ends the emergency
    await hass.async_block_till_done(wait_background_tasks=True)
    assert not entry.runtime_data.emergency.active
    assert len(mam_sim.purchases) == 1  # and nothing more is bought


async def test_no_purchase_without_the_option(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon
) -> None:
    mam_sim.state.seedbonus = 90_000
    entry = entry_with(mam_sim, qbittorrent)
    await setup(hass, entry)
    mam_sim.state.uploaded_bytes, mam_sim.state.downloaded_bytes = 95 * GIB, 100 * GIB
    mam_sim.state.ratio = 0.95
    mam_sim.state.vip_until = (dt_util.utcnow() + timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S")
    await poll_account(hass, entry)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.runtime_data.emergency.active
    assert not mam_sim.purchases  # opt-in only: nothing is ever bought without an option


async def test_vip_renewed_once_and_manual_purchases(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    qbittorrent: QbtDaemon,
    entity_registry: er.EntityRegistry,
) -> None:
    # VIP for 85 more days costs about 15,000; then one 50 GB (25,000) fits, a second does not.
    mam_sim.state.seedbonus = 60_000
    mam_sim.state.vip_until = (dt_util.utcnow() + timedelta(days=5)).strftime("%Y-%m-%d %H:%M:%S")
    entry = entry_with(mam_sim, qbittorrent, **{CONF_VIP_AUTO_RENEW: True})
    await setup(hass, entry)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [p["kind"] for p in mam_sim.purchases] == ["vip"]  # due (5 <= 14 days): renewed
    for _ in range(2):  # not again the same day
        await poll_account(hass, entry)
        await hass.async_block_till_done(wait_background_tasks=True)
    assert len(mam_sim.purchases) == 1

    answer = await hass.services.async_call(
        DOMAIN, "buy_upload_credit", {"amount_gb": 50}, blocking=True, return_response=True
    )
    assert answer is not None
    assert answer["success"] is True
    assert answer["kind"] == "upload"
    assert answer["cost"] == 25_000
    assert len(mam_sim.purchases) == 2
    # The balance cannot pay another 50 GB: a clear error, a ledger row, nothing sent.
    with pytest.raises(HomeAssistantError, match="Nothing was bought") as caught:
        await hass.services.async_call(
            DOMAIN, "buy_upload_credit", {"amount_gb": 50}, blocking=True, return_response=True
        )
    assert caught.value.translation_key == "purchase_not_made"
    assert len(mam_sim.purchases) == 2
    rows = await ledger(entry, hass)
    assert [(r.kind, r.reason, r.success) for r in rows][:2] == [
        ("upload", "manual", False),
        ("upload", "manual", True),
    ]
    # The button buys VIP like the action (VIP is full now: MAM's 7-day minimum refuses it).
    button = entity_registry.async_get_entity_id("button", DOMAIN, "100001_buy_vip")
    assert button is not None
    with pytest.raises(HomeAssistantError):
        await hass.services.async_call("button", "press", {"entity_id": button}, blocking=True)
    assert len(mam_sim.purchases) == 2


async def test_dry_run_sends_nothing(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon
) -> None:
    mam_sim.state.seedbonus = 40_000
    entry = entry_with(
        mam_sim, qbittorrent, **{CONF_UPLOAD_CREDIT: "emergency", CONF_PURCHASE_DRY_RUN: True}
    )
    events = async_capture_events(hass, EVENT_PURCHASE)
    await setup(hass, entry)
    answer = await hass.services.async_call(
        DOMAIN, "buy_upload_credit", {"amount_gb": 60}, blocking=True, return_response=True
    )
    assert answer is not None
    assert answer["dry_run"] is True
    assert answer["success"] is True
    assert answer["points_after"] == 40_000 - 60 * 500  # projected from the price
    assert not mam_sim.purchases
    assert mam_sim.state.seedbonus == 40_000
    assert [e.data["dry_run"] for e in events] == [True]
    rows = await ledger(entry, hass)
    assert [(r.dry_run, r.success) for r in rows] == [(True, True)]


async def test_a_lost_answer_is_settled_after_a_restart_without_a_second_request(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    qbittorrent: QbtDaemon,
    hass_storage: dict[str, Any],
) -> None:
    mam_sim.state.seedbonus = 40_000
    entry = entry_with(mam_sim, qbittorrent)
    events = async_capture_events(hass, EVENT_PURCHASE)
    await setup(hass, entry)
    # MAM applies the purchase, then the connection drops: the answer is lost.
    mam_sim.state.purchase_fault = "drop_after_apply"
    answer = await hass.services.async_call(
        DOMAIN, "buy_upload_credit", {"amount_gb": 50}, blocking=True, return_response=True
    )
    assert len(mam_sim.purchases) == 1
    assert answer is not None
    # The lost answer also carried MAM's rotated cookie, so the account cannot be re-read now:
    # the purchase is pending (not an error, not resent), its intent on disk.
    assert answer["success"] is False
    assert "never sent again" in answer["error"]
    assert entry.runtime_data.economy.executor.pending is not None
    assert hass_storage[f"{DOMAIN}.{entry.entry_id}"]["data"]["purchases"]["intent"]
    assert not events
    # The user gives a new session (reauth); the restart settles the intent from the account.
    mam_sim.state.purchase_fault = None
    hass.config_entries.async_update_entry(
        entry,
        data={**entry.data, CONF_MAM_ID: mam_sim.add_cookie()},  # what reauth stores
    )
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.runtime_data.economy.executor.pending is None
    assert len(mam_sim.purchases) == 1  # never sent twice
    assert [(e.data["success"], e.data["amount"]) for e in events] == [(True, 50)]


async def test_vip_points_short_repair_and_forecast(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    qbittorrent: QbtDaemon,
    entity_registry: er.EntityRegistry,
    issue_registry: ir.IssueRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    mam_sim.state.seedbonus = 100
    mam_sim.state.vip_until = (dt_util.utcnow() + timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S")
    mam_sim.state.uploaded_bytes, mam_sim.state.downloaded_bytes = 120 * GIB, 100 * GIB
    entry = entry_with(mam_sim, qbittorrent, **{CONF_VIP_AUTO_RENEW: True})
    await setup(hass, entry)
    await hass.async_block_till_done(wait_background_tasks=True)
    issue = issue_registry.async_get_issue(DOMAIN, f"vip_points_short_{entry.entry_id}")
    assert issue is not None
    assert not mam_sim.purchases
    assert sensor(hass, entity_registry, "emergency_forecast").state == "unknown"

    # Two hours later 1 GiB more up and 3 GiB more down: the ratio falls towards 1.00.
    freezer.tick(timedelta(hours=2))
    mam_sim.state.uploaded_bytes, mam_sim.state.downloaded_bytes = 121 * GIB, 103 * GIB
    await poll_account(hass, entry)
    await hass.async_block_till_done(wait_background_tasks=True)
    forecast = dt_util.parse_datetime(sensor(hass, entity_registry, "emergency_forecast").state)
    assert forecast is not None
    # 121 + x/2 = 103 + 3x/2 per hour -> x = 18 hours from now.
    assert abs(forecast - (dt_util.utcnow() + timedelta(hours=18))) < timedelta(minutes=5)
