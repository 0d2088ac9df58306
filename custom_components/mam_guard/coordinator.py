"""Coordinators: the MAM account (every 5 minutes) and qBittorrent (every minute)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, override

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .const import (
    ACCOUNT_UPDATE_INTERVAL,
    DOMAIN,
    LOGGER,
    QBT_LOADING_RECHECK,
    QBT_UPDATE_INTERVAL,
)
from .freeleech import downloading_mam
from .lib.errors import MamAuthError, MamConnectionError, MamRateLimitedError
from .lib.mam import MamClient
from .lib.models import MamAccount
from .lib.points import EarningHistory
from .lib.qbt import QbtAdapter, QbtAuthError, QbtError, QbtSnapshot
from .store import MamGuardStore

if TYPE_CHECKING:
    from .data import MamGuardConfigEntry
    from .emergency import EmergencyManager
    from .freeleech import FreeleechManager


@dataclass(frozen=True, slots=True)
class AccountData:
    """One successful poll of ``jsonLoad.php?snatch_summary``."""

    account: MamAccount
    points_per_day: float | None
    # Not compared: with always_update=False, listeners run only when the account changed.
    fetched_at: datetime = field(compare=False)


class MamAccountCoordinator(DataUpdateCoordinator[AccountData]):
    """Polls the MAM account: one request every 5 minutes, nothing more (SPEC §4, §7)."""

    config_entry: MamGuardConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: MamGuardConfigEntry,
        client: MamClient,
        store: MamGuardStore,
    ) -> None:
        """Bind the client and the store that keeps cookies and bonus history."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} account",
            update_interval=ACCOUNT_UPDATE_INTERVAL,
            always_update=False,
        )
        self.client = client
        self.store = store
        self.earnings = EarningHistory.from_dict(store.data.get("bonus_history"))

    @override
    async def _async_update_data(self) -> AccountData:
        try:
            account = await self.client.async_get_account()
        except MamAuthError as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="mam_auth_failed"
            ) from err
        except MamRateLimitedError as err:
            wait = max(60.0, (err.retry_at - dt_util.utcnow()).total_seconds())
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="mam_rate_limited",
                translation_placeholders={"until": err.retry_at.isoformat(timespec="minutes")},
                retry_after=wait,
            ) from err
        except MamConnectionError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN, translation_key="mam_cannot_connect"
            ) from err
        except Exception as err:  # MamPayloadError and anything unexpected in the payload
            raise UpdateFailed(
                translation_domain=DOMAIN, translation_key="mam_invalid_response"
            ) from err
        now = dt_util.utcnow()
        self.earnings = self.earnings.record(now.timestamp(), account.seedbonus)
        self.store.data["bonus_history"] = self.earnings.as_dict()
        await self.store.async_save()
        return AccountData(account, self.earnings.per_day(), now)


@dataclass(frozen=True, slots=True)
class QbtData:
    """What the qBittorrent-derived entities show."""

    version: str
    max_active_uploads: int
    stalled_mam: int
    mam_torrents: int
    paid_downloads: int  # SPEC §11: MAM downloads in progress that cost ratio now


class QbtCoordinator(DataUpdateCoordinator[QbtData]):
    """Every minute, per client: read its qBittorrent once, run its heartbeat, feed the sensors.

    One ``sync/maindata`` per heartbeat: the emergency plans on the same snapshot (on 4.5.2 each
    sync costs O(torrents) in the server even when nothing changed). The heartbeat runs whatever
    qBittorrent does: an emergency is declared (and its actions kept pending) even while
    qBittorrent is unreachable (SPEC §4). Everything derived here comes from the adapter's
    incremental indexes: nothing is recounted over every torrent.
    """

    config_entry: MamGuardConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: MamGuardConfigEntry,
        adapter: QbtAdapter,
        emergency: EmergencyManager,
        *,
        freeleech: FreeleechManager,
        client_key: str,
        client_name: str,
    ) -> None:
        """Bind one client's adapter (its subentry ``client_key``), the emergency and lookups."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} qBittorrent {client_name}",
            update_interval=QBT_UPDATE_INTERVAL,
            always_update=False,
        )
        self.adapter = adapter
        self.emergency = emergency
        self.freeleech = freeleech
        self.client_key = client_key
        self.client_name = client_name
        self.version: str | None = None

    @override
    async def _async_update_data(self) -> QbtData:
        snapshot: QbtSnapshot | None = None
        failure: QbtError | None = None
        try:
            if self.version is None:
                self.version = await self.adapter.connect()
            snapshot = await self.adapter.sync()
        except QbtError as err:
            failure = err
        if snapshot is not None:  # before the tick: a new download is queued for a lookup
            self.freeleech.observe(self.client_key, snapshot.incomplete_mam)
        await self.emergency.async_tick(snapshot, client=self.client_key)
        if failure is None:
            try:
                prefs = await self.adapter.get_preferences()  # after the tick: its raised limits
            except QbtError as err:
                failure = err
        if isinstance(failure, QbtAuthError):
            self.version = None
            raise UpdateFailed(
                translation_domain=DOMAIN, translation_key="qbt_auth_failed"
            ) from failure
        if failure is not None:
            self.version = None
            raise UpdateFailed(
                translation_domain=DOMAIN, translation_key="qbt_cannot_connect"
            ) from failure
        assert snapshot is not None
        assert self.version is not None
        # A torrent still loading its resume data cannot be judged yet (it may be one the user
        # added stopped); while emergency work waits for it (a freeze, or a release after
        # qBittorrent restarted) look again soon, so it is done within seconds, not a minute.
        self.update_interval = (
            QBT_LOADING_RECHECK
            if snapshot.loading_mam and self.emergency.busy(self.client_key)
            else QBT_UPDATE_INTERVAL
        )
        return QbtData(
            version=self.version,
            max_active_uploads=int(prefs.get("max_active_uploads", 0)),
            stalled_mam=snapshot.stalled_mam,
            mam_torrents=snapshot.mam_count,
            # Over the plannable index (every downloading MAM torrent is in it), not every torrent.
            paid_downloads=sum(
                map(self.freeleech.costs_ratio, downloading_mam(snapshot.plannable.values()))
            ),
        )
