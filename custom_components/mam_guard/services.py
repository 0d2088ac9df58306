"""Actions of mam_guard (SPEC §3), registered once in ``async_setup`` (IQS action-setup)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
import math
from typing import Any

from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import config_validation as cv, service
from homeassistant.helpers.selector import ConfigEntrySelector
from homeassistant.util import dt as dt_util
import probatio as vol

from .const import (
    ATTR_AMOUNT_GB,
    ATTR_CONFIG_ENTRY_ID,
    ATTR_HOLD_OFF,
    ATTR_IS_PAID,
    ATTR_IS_VIP_CRITICAL,
    ATTR_SIZE_BYTES,
    CONF_RATIO_THRESHOLD,
    CONF_RENEWAL_THRESHOLD,
    CONF_VIP_CRITICAL_DAYS,
    CONF_VIP_WARNING_DAYS,
    DEFAULT_HOLD_OFF,
    DOMAIN,
    MIN_UPLOAD_GB,
    SERVICE_BUY_UPLOAD_CREDIT,
    SERVICE_BUY_VIP,
    SERVICE_CHECK_DOWNLOAD,
    SERVICE_GET_STATUS,
    SERVICE_REFRESH_RULES,
    SERVICE_RELEASE_FREEZE,
    SERVICE_TRIGGER_FREEZE,
)
from .data import MamGuardConfigEntry, entry_options
from .lib.emergency import PHASE_IDLE
from .lib.purchase_executor import PurchaseOutcome
from .lib.status import download_allowed, ratio_buffer, ratio_status, vip_days_left, vip_status

ENTRY_FIELD: dict[vol.Marker, Any] = {
    vol.Optional(ATTR_CONFIG_ENTRY_ID): ConfigEntrySelector({"integration": DOMAIN})
}
SCHEMA_ENTRY_ONLY = vol.Schema(ENTRY_FIELD)
SCHEMA_RELEASE = vol.Schema(
    {
        **ENTRY_FIELD,
        vol.Optional(ATTR_HOLD_OFF, default=DEFAULT_HOLD_OFF): vol.All(
            cv.time_period, cv.positive_timedelta
        ),
    }
)
SCHEMA_CHECK_DOWNLOAD = vol.Schema(
    {
        **ENTRY_FIELD,
        vol.Required(ATTR_IS_PAID): cv.boolean,
        vol.Optional(ATTR_IS_VIP_CRITICAL, default=False): cv.boolean,
        vol.Optional(ATTR_SIZE_BYTES): vol.All(vol.Coerce(int), vol.Range(min=0)),
    }
)

SCHEMA_BUY_UPLOAD = vol.Schema(
    {
        **ENTRY_FIELD,
        vol.Required(ATTR_AMOUNT_GB): vol.All(vol.Coerce(int), vol.Range(min=MIN_UPLOAD_GB)),
    }
)


type ServiceHandler = Callable[[ServiceCall], Coroutine[Any, Any, ServiceResponse]]


def _entry(call: ServiceCall) -> MamGuardConfigEntry:
    """The targeted entry, or the only loaded one (HA raises translated errors otherwise)."""
    entry: MamGuardConfigEntry = service.async_get_config_entry(
        call.hass, DOMAIN, call.data.get(ATTR_CONFIG_ENTRY_ID)
    )
    return entry


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


async def async_trigger(entry: MamGuardConfigEntry) -> None:
    """``trigger_freeze`` (action and button): raise when the freeze is not really in place.

    The emergency stays declared either way (and its actions are retried every minute); the
    caller is told that downloads are not frozen yet instead of believing they are. With
    enforcement off nothing is applied on purpose: that is not an error.
    """
    emergency = entry.runtime_data.emergency
    try:
        await emergency.async_trigger_manual()
    except Exception as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="emergency_action_failed",
            translation_placeholders={"error": type(err).__name__},
        ) from err
    if emergency.protection in ("pending", "unreachable"):
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="freeze_not_applied",
            translation_placeholders={"reason": emergency.reason},
        )


async def async_release(entry: MamGuardConfigEntry, hold_off: timedelta) -> None:
    """``release_freeze`` (action and button): raise when qBittorrent could not be given back."""
    emergency = entry.runtime_data.emergency
    try:
        await emergency.async_release_manual(hold_off)
    except Exception as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="emergency_action_failed",
            translation_placeholders={"error": type(err).__name__},
        ) from err
    if not emergency.active and any(
        c.record.phase != PHASE_IDLE for c in emergency.clients.values()
    ):
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="release_not_applied",
            translation_placeholders={
                "pending": ", ".join(emergency.pending_actions()) or "release"
            },
        )


async def async_buy_vip(entry: MamGuardConfigEntry) -> dict[str, Any]:
    """``buy_vip`` (action and button): the SPEC §10 response; an error when nothing was bought."""
    outcome = await entry.runtime_data.economy.async_buy_vip()
    return _purchase_response(outcome)


def _purchase_response(outcome: PurchaseOutcome) -> dict[str, Any]:
    """The response; a purchase that did not happen is an error the caller must see.

    A lost answer (``pending``) is not an error: MAM may have applied it, and the next poll
    settles it from the account (the ``mam_guard_purchase`` event says how it ended).
    """
    if outcome.status in ("rejected", "failed", "refused"):
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="purchase_not_made",
            translation_placeholders={"kind": outcome.kind, "error": outcome.error or "unknown"},
        )
    return outcome.response()


async def _buy_vip(call: ServiceCall) -> ServiceResponse:
    return await async_buy_vip(_entry(call))


async def _buy_upload_credit(call: ServiceCall) -> ServiceResponse:
    outcome = await _entry(call).runtime_data.economy.async_buy_upload(call.data[ATTR_AMOUNT_GB])
    return _purchase_response(outcome)


async def _release_freeze(call: ServiceCall) -> None:
    await async_release(_entry(call), call.data[ATTR_HOLD_OFF])


async def _trigger_freeze(call: ServiceCall) -> None:
    await async_trigger(_entry(call))


async def _check_download(call: ServiceCall) -> ServiceResponse:
    entry = _entry(call)
    data = entry.runtime_data.account.data
    account = (
        data.account
        if data is not None and entry.runtime_data.account.last_update_success
        else None
    )
    allowed, reason = download_allowed(
        emergency=entry.runtime_data.emergency.active,
        is_paid=call.data[ATTR_IS_PAID],
        is_vip_critical=call.data[ATTR_IS_VIP_CRITICAL],
        # Unknown account data never refuses: only what MAM last said does.
        unsatisfied=account.unsatisfied if account else None,
        unsatisfied_limit=account.unsatisfied_limit if account else None,
        size_bytes=call.data.get(ATTR_SIZE_BYTES),
        buffer_bytes=ratio_buffer(
            account.uploaded_bytes,
            account.downloaded_bytes,
            float(entry_options(entry)[CONF_RATIO_THRESHOLD]),
        )
        if account
        else None,
    )
    return {"allowed": allowed, "reason": reason}


async def _refresh_rules(call: ServiceCall) -> None:
    await _entry(call).runtime_data.rules.async_refresh_now()


def status_response(entry: MamGuardConfigEntry) -> dict[str, Any]:
    """The seed design's four JSON documents (vip, compliance, rules, events) in one response."""
    data = entry.runtime_data
    options = entry_options(entry)
    account_data = data.account.data
    account = account_data.account if account_data else None
    now = dt_util.utcnow()
    days = vip_days_left(account.vip_until, now) if account else None
    points = account.seedbonus if account else None
    ratio = account.ratio if account else None
    clients = {
        key: qbt.coordinator.data if qbt.coordinator.last_update_success else None
        for key, qbt in data.qbt_clients.items()
    }
    # Totals only when every client answered: a partial total would lie.
    complete = bool(clients) and all(value is not None for value in clients.values())
    qbt = [value for value in clients.values() if value is not None] if complete else None
    vip = {
        "vip_active": days is not None and days > 0,
        "days_until_expiry": math.floor(days) if days is not None else None,
        "total_points": points,
        "points_per_day": account_data.points_per_day if account_data else None,
        "renewal_threshold": options[CONF_RENEWAL_THRESHOLD],
        "status": vip_status(
            days,
            points or 0,
            warning_days=options[CONF_VIP_WARNING_DAYS],
            critical_days=options[CONF_VIP_CRITICAL_DAYS],
            renewal_threshold=options[CONF_RENEWAL_THRESHOLD],
        )
        if account
        else None,
        "last_updated": _iso(account_data.fetched_at) if account_data else None,
    }
    compliance = {
        "global_ratio": ratio,
        "emergency_active": data.emergency.active,
        "download_frozen": data.emergency.protection == "protected",
        "seeding_allocation": sum(q.max_active_uploads for q in qbt) if qbt else None,
        "stalled_torrents": sum(q.stalled_mam for q in qbt) if qbt else None,
        "status": ratio_status(
            data.emergency.current_ratio(),
            emergency=data.emergency.active,
            threshold=options[CONF_RATIO_THRESHOLD],
        ),
        "last_updated": _iso(account_data.fetched_at) if account_data else None,
    }
    rules, events = data.rules.status_documents(now)
    emergency = data.emergency.status_document()
    for key, value in clients.items():  # SPEC §12: what each qBittorrent client reads
        emergency["clients"][key]["qbittorrent"] = {
            "connected": value is not None,
            "seeding_allocation": value.max_active_uploads if value else None,
            "stalled_torrents": value.stalled_mam if value else None,
            "paid_downloads": value.paid_downloads if value else None,
        }
    return {
        "vip": vip,
        "compliance": compliance,
        "rules": rules,
        "events": events,
        # Beyond the seed's four documents: what is really in place, and which torrents.
        "emergency": emergency,
        # SPEC §11: the lookups, and the downloads that cost ratio now.
        "freeleech": {
            **data.freeleech.status(),
            "paid_downloads": sum(q.paid_downloads for q in qbt) if qbt else None,
        },
    }


async def _get_status(call: ServiceCall) -> ServiceResponse:
    return status_response(_entry(call))


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register every action of the domain."""
    handlers: list[tuple[str, ServiceHandler, vol.Schema, SupportsResponse]] = [
        (SERVICE_RELEASE_FREEZE, _release_freeze, SCHEMA_RELEASE, SupportsResponse.NONE),
        (SERVICE_TRIGGER_FREEZE, _trigger_freeze, SCHEMA_ENTRY_ONLY, SupportsResponse.NONE),
        (SERVICE_CHECK_DOWNLOAD, _check_download, SCHEMA_CHECK_DOWNLOAD, SupportsResponse.ONLY),
        (SERVICE_GET_STATUS, _get_status, SCHEMA_ENTRY_ONLY, SupportsResponse.ONLY),
        (SERVICE_REFRESH_RULES, _refresh_rules, SCHEMA_ENTRY_ONLY, SupportsResponse.NONE),
        (SERVICE_BUY_VIP, _buy_vip, SCHEMA_ENTRY_ONLY, SupportsResponse.OPTIONAL),
        (
            SERVICE_BUY_UPLOAD_CREDIT,
            _buy_upload_credit,
            SCHEMA_BUY_UPLOAD,
            SupportsResponse.OPTIONAL,
        ),
    ]
    for name, handler, schema, supports_response in handlers:
        hass.services.async_register(
            DOMAIN, name, handler, schema=schema, supports_response=supports_response
        )
