"""Binary sensors: the ratio emergency and the three kinds of site event (SPEC §2)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from homeassistant.components.binary_sensor import BinarySensorEntity, BinarySensorEntityDescription
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.util import dt as dt_util

from .coordinator import QbtCoordinator
from .data import MamGuardConfigEntry
from .entity import EmergencyEntity, MamGuardCoordinatorEntity
from .rules import RulesCoordinator, SiteEventState

PARALLEL_UPDATES = 0

EMERGENCY_FREEZE = BinarySensorEntityDescription(
    key="emergency_freeze",
    translation_key="emergency_freeze",
    device_class=BinarySensorDeviceClass.PROBLEM,
)
QBITTORRENT_CONNECTED = BinarySensorEntityDescription(
    key="qbittorrent_connected",
    translation_key="qbittorrent_connected",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
)
EVENT_SENSORS = tuple(
    BinarySensorEntityDescription(key=f"{kind}_event", translation_key=f"{kind}_event")
    for kind in ("freeleech", "bonus", "multiplier")
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: MamGuardConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The emergency and the three site-event sensors."""
    entities: list[BinarySensorEntity] = [EmergencyFreezeSensor(entry, EMERGENCY_FREEZE)]
    entities.extend(
        SiteEventSensor(entry.runtime_data.rules, entry, description)
        for description in EVENT_SENSORS
    )
    async_add_entities(entities)
    for key, qbt in entry.runtime_data.qbt_clients.items():
        async_add_entities(
            [QbtConnectedSensor(qbt.coordinator, entry, QBITTORRENT_CONNECTED, (key, qbt.name))],
            config_subentry_id=key,
        )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class EmergencyFreezeSensor(EmergencyEntity, BinarySensorEntity):
    """On while a ratio emergency is declared (also while its qBittorrent actions are pending)."""

    @property
    def is_on(self) -> bool:
        """Declared emergency."""
        return self.entry.runtime_data.emergency.active

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """When, why, and what is still to do; a past emergency's values are not shown."""
        status = self.entry.runtime_data.emergency.status_document()
        return {
            key: status[key]
            for key in ("since", "trigger_ratio", "manual", "hold_off_until", "pending_actions")
        }


class QbtConnectedSensor(MamGuardCoordinatorEntity[QbtCoordinator], BinarySensorEntity):
    """On while the client's last heartbeat reached its qBittorrent (always available)."""

    @property
    def available(self) -> bool:
        """Whether qBittorrent answers is what this sensor says."""
        return True

    @property
    def is_on(self) -> bool:
        """The last heartbeat succeeded."""
        return self.coordinator.last_update_success and self.coordinator.data is not None


class SiteEventSensor(MamGuardCoordinatorEntity[RulesCoordinator], BinarySensorEntity):
    """On while MAM announces such an event, from its start to its end date.

    An announced event with a start still ahead (an upcoming event) keeps the sensor off and
    shows its ``start_date`` (with its description, end and source); the sensor turns on at that
    start and off at the end date by itself (timers), without waiting for the next refresh.
    """

    _timer: CALLBACK_TYPE | None = None

    def __init__(
        self,
        coordinator: RulesCoordinator,
        entry: MamGuardConfigEntry,
        description: BinarySensorEntityDescription,
    ) -> None:
        """Which event type this sensor shows."""
        super().__init__(coordinator, entry, description)
        self._event_type = description.key.removesuffix("_event")

    @property
    def available(self) -> bool:
        """Cached events stay shown while a refresh fails (SPEC §5)."""
        return True

    def _current(self) -> SiteEventState | None:
        for event in self.coordinator.active_events(dt_util.utcnow()):
            if event.event_type == self._event_type:
                return event
        return None

    def _next(self) -> SiteEventState | None:
        for event in self.coordinator.upcoming_events(dt_util.utcnow()):
            if event.event_type == self._event_type:
                return event
        return None

    @property
    def is_on(self) -> bool:
        """An announced event of this type has started and not ended."""
        return self._current() is not None

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The announcement behind it: the running event's, else the next upcoming one's."""
        event = self._current() or self._next()
        return {
            "description": event.description if event else None,
            "start_date": _iso(event.start) if event else None,
            "end_date": _iso(event.end) if event else None,
            "source_url": event.source_url if event else None,
        }

    async def async_added_to_hass(self) -> None:
        """Arm the timer for the initial state."""
        await super().async_added_to_hass()
        self.async_on_remove(self._cancel_timer)
        self._arm_timer()

    @callback
    def _handle_coordinator_update(self) -> None:
        self._arm_timer()
        super()._handle_coordinator_update()

    @callback
    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer()
            self._timer = None

    @callback
    def _arm_timer(self) -> None:
        """At the running event's end, else at the next upcoming event's start."""
        self._cancel_timer()
        current = self._current()
        upcoming = self._next()
        when = current.end if current is not None else (upcoming.start if upcoming else None)
        if when is not None:
            self._timer = async_track_point_in_utc_time(self.hass, self._changed, when)

    @callback
    def _changed(self, _now: datetime) -> None:
        self._timer = None
        self._arm_timer()  # another event of the same type may follow
        self.async_write_ha_state()
