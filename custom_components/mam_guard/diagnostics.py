"""Diagnostics with secrets redacted (SPEC §8)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import CONF_MAM_BASE_URL, CONF_QBT_URL, TO_REDACT
from .data import MamGuardConfigEntry
from .lib.qbt import redact_url
from .services import status_response


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: MamGuardConfigEntry
) -> dict[str, Any]:
    """Options, last account data, emergency state and rules metadata; no cookie, no credentials."""
    data = entry.runtime_data
    account = asdict(data.account.data.account) if data.account.data else None
    stored_clients = data.store.data.get("clients", {})
    clients = {
        key: {
            "title": sub.title,
            # A URL may carry credentials (user:pass@host): keep the host, never the secret.
            "data": {
                **sub.data,
                **(
                    {CONF_QBT_URL: redact_url(sub.data[CONF_QBT_URL])}
                    if CONF_QBT_URL in sub.data
                    else {}
                ),
            },
            "qbittorrent": asdict(qbt.coordinator.data)
            if key in data.qbt_clients
            and (qbt := data.qbt_clients[key]).coordinator.data is not None
            else None,
            "last_update_success": qbt.coordinator.last_update_success
            if key in data.qbt_clients
            else None,
            "emergency": data.emergency.clients[key].record.to_dict()
            if key in data.emergency.clients
            else stored_clients.get(key, {}).get("emergency"),
        }
        for key, sub in entry.subentries.items()
    }
    removed = {
        key: {
            "name": client.name,
            "url": redact_url((client.connection or {}).get(CONF_QBT_URL, "")),
            "emergency": client.record.to_dict(),
        }
        for key, client in data.emergency.clients.items()
        if client.detached
    }
    return async_redact_data(
        {
            "entry": {
                # A URL may carry credentials (user:pass@host): keep the host, never the secret.
                "data": {
                    **entry.data,
                    **{
                        key: redact_url(entry.data[key])
                        for key in (CONF_QBT_URL, CONF_MAM_BASE_URL)
                        if key in entry.data
                    },
                },
                "options": dict(entry.options),
                "title": entry.title,
            },
            "account": account,
            "account_last_update_success": data.account.last_update_success,
            "qbittorrent": clients,
            "removed_qbittorrent": removed,
            "emergency": data.emergency.record.to_dict(),
            "status": status_response(entry),
            "rules": data.rules.diagnostics(),
            "purchases": data.economy.diagnostics(),
        },
        TO_REDACT,
    )
