"""Sensors: account, VIP, ratio status, qBittorrent and emergency counters, rules (SPEC §2)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
import math
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfInformation, UnitOfTime
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType
from homeassistant.util import dt as dt_util

from .const import (
    CONF_RATIO_THRESHOLD,
    CONF_RELEASE_MARGIN,
    CONF_RENEWAL_THRESHOLD,
    CONF_VIP_CRITICAL_DAYS,
    CONF_VIP_WARNING_DAYS,
    PROTECTION_STATES,
    RATIO_STATES,
    VIP_STATES,
)
from .coordinator import AccountData, MamAccountCoordinator, QbtCoordinator, QbtData
from .data import MamGuardConfigEntry, entry_options
from .economy import EconomyManager
from .entity import EmergencyEntity, MamGuardCoordinatorEntity, MamGuardEntity
from .lib.status import ratio_buffer, ratio_status, upload_needed, vip_days_left, vip_status
from .rules import RulesCoordinator, RulesData

PARALLEL_UPDATES = 0  # read-only: coordinators do the fetching

type SensorValue = StateType | datetime


def _finite(value: float) -> float | None:
    """A threshold of 0 makes the buffer infinite: shown as unknown, not as "inf"."""
    return value if math.isfinite(value) else None


def _vip_days(data: AccountData) -> float | None:
    return vip_days_left(data.account.vip_until, dt_util.utcnow())


def _vip_status(data: AccountData, options: Mapping[str, Any]) -> str:
    return vip_status(
        _vip_days(data),
        data.account.seedbonus,
        warning_days=options[CONF_VIP_WARNING_DAYS],
        critical_days=options[CONF_VIP_CRITICAL_DAYS],
        renewal_threshold=options[CONF_RENEWAL_THRESHOLD],
    )


@dataclass(frozen=True, kw_only=True)
class AccountSensorDescription(SensorEntityDescription):
    """A sensor computed from the last account poll (and the options)."""

    value_fn: Callable[[AccountData, Mapping[str, Any]], SensorValue]
    attr_fn: Callable[[AccountData], dict[str, Any]] | None = None


ACCOUNT_SENSORS: tuple[AccountSensorDescription, ...] = (
    AccountSensorDescription(
        key="ratio",
        translation_key="ratio",
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        value_fn=lambda d, _: d.account.ratio,
        attr_fn=lambda d: {"infinite": d.account.ratio_infinite},
    ),
    AccountSensorDescription(
        key="uploaded",
        translation_key="uploaded",
        device_class=SensorDeviceClass.DATA_SIZE,
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIBIBYTES,
        suggested_display_precision=2,
        value_fn=lambda d, _: d.account.uploaded_bytes,
    ),
    AccountSensorDescription(
        key="downloaded",
        translation_key="downloaded",
        device_class=SensorDeviceClass.DATA_SIZE,
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIBIBYTES,
        suggested_display_precision=2,
        value_fn=lambda d, _: d.account.downloaded_bytes,
    ),
    AccountSensorDescription(
        key="bonus_points",
        translation_key="bonus_points",
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=lambda d, _: d.account.seedbonus,
    ),
    AccountSensorDescription(
        key="wedges",
        translation_key="wedges",
        entity_registry_enabled_default=False,  # rarely watched; enable it when you use wedges
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda d, _: d.account.wedges,
    ),
    AccountSensorDescription(
        key="user_class",
        translation_key="user_class",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda d, _: d.account.classname,
    ),
    AccountSensorDescription(
        key="unsatisfied",
        translation_key="unsatisfied",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda d, _: d.account.unsatisfied,
        attr_fn=lambda d: {"limit": d.account.unsatisfied_limit},
    ),
    AccountSensorDescription(
        key="vip_expiry",
        translation_key="vip_expiry",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda d, _: d.account.vip_until,
    ),
    AccountSensorDescription(
        key="vip_days_left",
        translation_key="vip_days_left",
        device_class=SensorDeviceClass.DURATION,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfTime.DAYS,
        suggested_display_precision=1,
        value_fn=lambda d, _: _vip_days(d),
    ),
    AccountSensorDescription(
        key="vip_status",
        translation_key="vip_status",
        device_class=SensorDeviceClass.ENUM,
        options=VIP_STATES,
        value_fn=_vip_status,
    ),
    AccountSensorDescription(
        key="ratio_buffer",
        translation_key="ratio_buffer",
        device_class=SensorDeviceClass.DATA_SIZE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIBIBYTES,
        suggested_display_precision=2,
        value_fn=lambda d, o: _finite(
            ratio_buffer(
                d.account.uploaded_bytes,
                d.account.downloaded_bytes,
                float(o[CONF_RATIO_THRESHOLD]),
            )
        ),
    ),
    AccountSensorDescription(
        key="upload_needed",
        translation_key="upload_needed",
        device_class=SensorDeviceClass.DATA_SIZE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIBIBYTES,
        suggested_display_precision=2,
        value_fn=lambda d, o: upload_needed(
            d.account.uploaded_bytes,
            d.account.downloaded_bytes,
            float(o[CONF_RATIO_THRESHOLD]) + float(o[CONF_RELEASE_MARGIN]),
        ),
    ),
    AccountSensorDescription(
        key="points_per_day",
        translation_key="points_per_day",
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=lambda d, _: d.points_per_day,
    ),
)

RATIO_STATUS = SensorEntityDescription(
    key="ratio_status",
    translation_key="ratio_status",
    device_class=SensorDeviceClass.ENUM,
    options=RATIO_STATES,
)


@dataclass(frozen=True, kw_only=True)
class QbtSensorDescription(SensorEntityDescription):
    """A sensor read from qBittorrent (per client, and the account's total over its clients)."""

    value_fn: Callable[[QbtData], int]
    per_client: bool = True


QBT_SENSORS: tuple[QbtSensorDescription, ...] = (
    QbtSensorDescription(
        key="seeding_allocation",
        translation_key="seeding_allocation",
        entity_category=EntityCategory.DIAGNOSTIC,  # a qBittorrent setting, not the account
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda d: d.max_active_uploads,
    ),
    QbtSensorDescription(
        key="stalled_torrents",
        translation_key="stalled_torrents",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda d: d.stalled_mam,
    ),
    QbtSensorDescription(  # SPEC §11: known paid + unknown, whatever the exempt tags say
        key="paid_downloads",
        translation_key="paid_downloads",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda d: d.paid_downloads,
        per_client=False,
    ),
)


@dataclass(frozen=True, kw_only=True)
class EmergencySensorDescription(SensorEntityDescription):
    """A counter of what mam_guard itself did in qBittorrent, with the torrents' names."""

    list_key: str  # "frozen" / "forced" in EmergencyManager.torrent_lists()


EMERGENCY_SENSORS: tuple[EmergencySensorDescription, ...] = (
    EmergencySensorDescription(
        key="frozen_torrents",
        translation_key="frozen_torrents",
        state_class=SensorStateClass.MEASUREMENT,
        list_key="frozen",
    ),
    EmergencySensorDescription(
        key="forced_torrents",
        translation_key="forced_torrents",
        state_class=SensorStateClass.MEASUREMENT,
        list_key="forced",
    ),
)

PROTECTION = SensorEntityDescription(
    key="protection",
    translation_key="protection",
    device_class=SensorDeviceClass.ENUM,
    options=list(PROTECTION_STATES),
)


@dataclass(frozen=True, kw_only=True)
class RulesSensorDescription(SensorEntityDescription):
    """A sensor about the stored rule versions."""

    value_fn: Callable[[RulesData], SensorValue]
    attr_fn: Callable[[RulesData], dict[str, Any]] | None = None


RULES_SENSORS: tuple[RulesSensorDescription, ...] = (
    RulesSensorDescription(
        key="rules_version",
        translation_key="rules_version",
        value_fn=lambda d: d.version,
        attr_fn=lambda d: {
            "effective_date": d.effective_date,
            "changed_pages": list(d.changed_pages),
        },
    ),
    RulesSensorDescription(
        key="rules_checked",
        translation_key="rules_checked",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda d: d.checked,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: MamGuardConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Create every sensor of the account's device."""
    data = entry.runtime_data
    entities: list[SensorEntity] = [AccountSensor(data.account, entry, d) for d in ACCOUNT_SENSORS]
    entities.append(RatioStatusSensor(data.account, entry, RATIO_STATUS))
    entities.extend(QbtTotalSensor(entry, d) for d in QBT_SENSORS)
    entities.extend(EmergencySensor(entry, d) for d in EMERGENCY_SENSORS)
    entities.append(ProtectionSensor(entry, PROTECTION))
    entities.extend(EconomySensor(entry, d) for d in ECONOMY_SENSORS)
    entities.extend(RulesSensor(data.rules, entry, d) for d in RULES_SENSORS)
    async_add_entities(entities)
    for key, qbt in data.qbt_clients.items():  # each client's device, in its subentry
        client = (key, qbt.name)
        client_entities: list[SensorEntity] = [
            QbtSensor(qbt.coordinator, entry, d, client) for d in QBT_SENSORS if d.per_client
        ]
        client_entities.extend(EmergencySensor(entry, d, client) for d in EMERGENCY_SENSORS)
        async_add_entities(client_entities, config_subentry_id=key)


class AccountSensor(MamGuardCoordinatorEntity[MamAccountCoordinator], SensorEntity):
    """A value of the MAM account."""

    entity_description: AccountSensorDescription

    @property
    def native_value(self) -> SensorValue:
        """Computed from the last poll."""
        return self.entity_description.value_fn(self.coordinator.data, entry_options(self.entry))

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Small attributes only (SPEC §2: nothing large in recorded attributes)."""
        if self.entity_description.attr_fn is None:
            return None
        return self.entity_description.attr_fn(self.coordinator.data)


class RatioStatusSensor(MamGuardCoordinatorEntity[MamAccountCoordinator], SensorEntity):
    """normal / warning / emergency: follows both the ratio and the emergency manager."""

    async def async_added_to_hass(self) -> None:
        """Also follow emergency changes (a manual freeze changes the status without a poll)."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.entry.runtime_data.emergency.async_add_listener(self._handle_coordinator_update)
        )

    @property
    def available(self) -> bool:
        """An emergency is shown even while MAM cannot be polled."""
        return super().available or self.entry.runtime_data.emergency.active

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The threshold option in force, so dashboards can draw the real line."""
        options = entry_options(self.entry)
        return {
            "threshold": float(options[CONF_RATIO_THRESHOLD]),
            "release_above": float(options[CONF_RATIO_THRESHOLD])
            + float(options[CONF_RELEASE_MARGIN]),
        }

    @property
    def native_value(self) -> str | None:
        """SPEC §2 ratio status."""
        emergency = self.entry.runtime_data.emergency
        return ratio_status(
            emergency.current_ratio(),
            emergency=emergency.active,
            threshold=entry_options(self.entry)[CONF_RATIO_THRESHOLD],
        )


class QbtSensor(MamGuardCoordinatorEntity[QbtCoordinator], SensorEntity):
    """A value read from one qBittorrent (unavailable while it is unreachable)."""

    entity_description: QbtSensorDescription

    @property
    def native_value(self) -> StateType:
        """From the last qBittorrent poll."""
        return self.entity_description.value_fn(self.coordinator.data)


class QbtTotalSensor(MamGuardEntity, SensorEntity):
    """The account's total over its qBittorrent clients.

    Unavailable while any client's data is missing (unreachable, or no client at all): a
    partial total would read like a real one and lie.
    """

    entity_description: QbtSensorDescription
    _attr_should_poll = False

    def _coordinators(self) -> list[QbtCoordinator]:
        return [c.coordinator for c in self.entry.runtime_data.qbt_clients.values()]

    async def async_added_to_hass(self) -> None:
        """Follow every client's heartbeat."""
        await super().async_added_to_hass()
        for coordinator in self._coordinators():
            self.async_on_remove(coordinator.async_add_listener(self.async_write_ha_state))

    async def async_update(self) -> None:
        """``homeassistant.update_entity``: every client's heartbeat now, as on a client sensor."""
        await asyncio.gather(*(c.async_request_refresh() for c in self._coordinators()))

    @property
    def available(self) -> bool:
        """Every client answered its last heartbeat."""
        coordinators = self._coordinators()
        return bool(coordinators) and all(
            c.last_update_success and c.data is not None for c in coordinators
        )

    @property
    def native_value(self) -> StateType:
        """The sum over the clients."""
        if not self.available:
            return None
        return sum(self.entity_description.value_fn(c.data) for c in self._coordinators())


class EmergencySensor(EmergencyEntity, SensorEntity):
    """Torrents frozen / force-started by mam_guard now; their names in attributes."""

    entity_description: EmergencySensorDescription
    # Names change with every emergency and say nothing over time: not for the recorder.
    _unrecorded_attributes = frozenset({"torrents", "more", "reasons"})

    @property
    def native_value(self) -> StateType:
        """From the persisted emergency records (the account's: the total over its clients)."""
        return self.entry.runtime_data.emergency.count(
            self.entity_description.list_key, self.client_key
        )

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Up to LIST_ATTRIBUTE_LIMIT names, and how many more."""
        lists = self.entry.runtime_data.emergency.torrent_lists(self.client_key)
        result: dict[str, Any] = lists[self.entity_description.list_key]
        return result


class ProtectionSensor(EmergencyEntity, SensorEntity):
    """Is the account really protected right now (SPEC §2 ``protection``)."""

    @property
    def native_value(self) -> str:
        """idle / protected / pending / unreachable / not_enforcing."""
        return self.entry.runtime_data.emergency.protection

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Why, in one sentence, and what is still to do."""
        emergency = self.entry.runtime_data.emergency
        return {"reason": emergency.reason, "pending_actions": emergency.pending_actions()}


class RulesSensor(MamGuardCoordinatorEntity[RulesCoordinator], SensorEntity):
    """Rule version and last successful refresh (kept from the last success on failures)."""

    entity_description: RulesSensorDescription

    @property
    def available(self) -> bool:
        """A failed refresh keeps the cached rules (SPEC §5)."""
        return True

    @property
    def native_value(self) -> SensorValue:
        """From the rules store."""
        return self.entity_description.value_fn(self.coordinator.data)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Version metadata (small)."""
        if self.entity_description.attr_fn is None:
            return None
        return self.entity_description.attr_fn(self.coordinator.data)


@dataclass(frozen=True, kw_only=True)
class EconomySensorDescription(SensorEntityDescription):
    """A sensor of the points economy (SPEC §10): the forecast and the last purchase."""

    value_fn: Callable[[EconomyManager], SensorValue]
    attr_fn: Callable[[EconomyManager], dict[str, Any] | None] = lambda _: None


def _last_purchase_attributes(economy: EconomyManager) -> dict[str, Any] | None:
    row = economy.last_purchase
    if row is None:
        return None
    return {
        "kind": row.kind,
        "amount": row.amount,
        "cost": row.cost,
        "reason": row.reason,
        "success": row.success,
        "dry_run": row.dry_run,
    }


ECONOMY_SENSORS: tuple[EconomySensorDescription, ...] = (
    EconomySensorDescription(
        key="emergency_forecast",
        translation_key="emergency_forecast",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda economy: economy.forecast(),
    ),
    EconomySensorDescription(
        key="last_purchase",
        translation_key="last_purchase",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda economy: (
            economy.last_purchase.created_at if economy.last_purchase else None
        ),
        attr_fn=_last_purchase_attributes,
    ),
)


class EconomySensor(MamGuardEntity, SensorEntity):
    """Follows the economy manager (updated after every poll and every purchase)."""

    entity_description: EconomySensorDescription
    _attr_should_poll = False

    async def async_added_to_hass(self) -> None:
        """Subscribe to the manager (IQS entity-event-setup)."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.entry.runtime_data.economy.async_add_listener(self.async_write_ha_state)
        )

    @property
    def native_value(self) -> SensorValue:
        """From the manager."""
        return self.entity_description.value_fn(self.entry.runtime_data.economy)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """The last purchase's details (small)."""
        return self.entity_description.attr_fn(self.entry.runtime_data.economy)
