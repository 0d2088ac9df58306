"""Entry setup/unload end to end: MAM simulator + real qBittorrent, every entity, the device."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from mam_simulator import MamSimulator


async def test_setup_creates_device_and_entities(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    mam_sim: MamSimulator,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.LOADED
    [device, client] = sorted(
        dr.async_entries_for_config_entry(device_registry, config_entry.entry_id),
        key=lambda d: d.via_device_id is not None,
    )
    (subentry_id,) = config_entry.subentries
    assert client.identifiers == {("mam_guard", f"100001_{subentry_id}")}
    assert client.via_device_id == device.id
    assert client.config_subentry_id == subentry_id
    assert device.identifiers == {("mam_guard", "100001")}
    assert device.name == "MAM FixtureUser"
    assert device.entry_type is dr.DeviceEntryType.SERVICE
    entities = er.async_entries_for_config_entry(entity_registry, config_entry.entry_id)
    states = {e.unique_id.removeprefix("100001_"): hass.states.get(e.entity_id) for e in entities}
    for key, state in sorted(states.items()):
        print(
            key,
            state.entity_id if state else None,
            state.state if state else None,
            state.attributes if state else None,
        )
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.NOT_LOADED


async def test_saving_options_reloads_a_running_entry(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    form = {  # the form's sections, prefilled
        str(name): {key.schema: key.default() for key in value.schema.schema}
        for name, value in result["data_schema"].schema.items()
    }
    form["emergency"]["ratio_threshold"] = 1.25
    form["rules"]["rules_pages"] = []
    result = await hass.config_entries.options.async_configure(result["flow_id"], form)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert config_entry.options["ratio_threshold"] == 1.25
    assert config_entry.state is ConfigEntryState.LOADED  # reloaded with the new options
    assert hass.states.get("switch.mam_fixtureuser_enforcement").state == "on"  # type: ignore[union-attr]
