"""Typed runtime data of a config entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry

from .const import DEFAULT_OPTIONS

if TYPE_CHECKING:
    from .coordinator import MamAccountCoordinator, QbtCoordinator
    from .economy import EconomyManager
    from .emergency import EmergencyManager
    from .freeleech import FreeleechManager
    from .lib.mam import MamClient
    from .lib.qbt import QbtAdapter
    from .rules import RulesCoordinator
    from .store import MamGuardStore


@dataclass(slots=True)
class QbtClient:
    """One qBittorrent client (a ``qbittorrent`` subentry): its session, adapter, heartbeat."""

    key: str  # the subentry id
    name: str  # the subentry title
    adapter: QbtAdapter
    coordinator: QbtCoordinator


@dataclass(slots=True)
class MamGuardData:
    """Everything one entry runs: clients, coordinators, the emergency manager, its storage."""

    client: MamClient
    store: MamGuardStore
    account: MamAccountCoordinator
    qbt_clients: dict[str, QbtClient]
    emergency: EmergencyManager
    rules: RulesCoordinator
    economy: EconomyManager
    freeleech: FreeleechManager
    account_device_id: str = ""  # the account's device: each client's device is under it


type MamGuardConfigEntry = ConfigEntry[MamGuardData]


def entry_options(entry: ConfigEntry) -> dict[str, Any]:
    """The entry's options over the SPEC defaults (older entries may lack newer options)."""
    return {**DEFAULT_OPTIONS, **entry.options}
