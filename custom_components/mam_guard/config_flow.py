"""Config flow of mam_guard: user, reauth, reconfigure and options (SPEC §1)."""

from __future__ import annotations

from collections.abc import Mapping
import ipaddress
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers import selector
from homeassistant.helpers.aiohttp_client import async_create_clientsession
import probatio as vol

from .const import (
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
    DEFAULT_MAM_BASE_URL,
    DEFAULT_OPTIONS,
    DOMAIN,
    LOGGER,
    USER_AGENT,
)
from .lib.errors import MamAuthError, MamError
from .lib.mam import MamClient, normalize_mam_id
from .lib.models import MamAccount
from .lib.pages import RULES_PAGES
from .lib.qbt import QbtAdapter, QbtAuthError, QbtError, url_has_credentials

PASSWORD = selector.TextSelector(
    selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD)
)
URL = selector.TextSelector(selector.TextSelectorConfig(type=selector.TextSelectorType.URL))
SECTION_ADVANCED = "advanced"


class InvalidBaseUrl(ValueError):
    """The MAM base URL is not https (plain http is allowed only for loopback hosts)."""


def _check_base_url(url: str) -> str:
    """Return the base URL without a trailing slash; http:// only for loopback (the simulator)."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return url.strip().rstrip("/")
    if parts.scheme == "http" and host:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if loopback:
            return url.strip().rstrip("/")
    raise InvalidBaseUrl(url)


def qbt_identity(url: str) -> str:
    """What makes two qBittorrent URLs the same Web UI (scheme, host, port; loopback folded).

    Two accounts on one qBittorrent would share its tags and preferences and could undo each
    other's emergency actions, so a second entry on the same Web UI is refused.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".").lower()
    try:
        if host == "localhost" or ipaddress.ip_address(host).is_loopback:
            host = "loopback"
    except ValueError:
        pass
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        port = 0
    return f"{scheme}://{host}:{port}"


async def validate_mam(hass: HomeAssistant, mam_id: str, base_url: str) -> tuple[MamAccount, str]:
    """Fetch the account once; return it and the cookie to store (MAM rotates it on every call)."""
    session = async_create_clientsession(
        hass, auto_cleanup=False, cookie_jar=aiohttp.DummyCookieJar()
    )
    try:
        client = MamClient(
            session, normalize_mam_id(mam_id), base_url=base_url, user_agent=USER_AGENT
        )
        account = await client.async_get_account()
        return account, client.mam_id
    finally:
        session.detach()


async def validate_qbt(hass: HomeAssistant, data: Mapping[str, Any]) -> None:
    """Log in to qBittorrent once with the given settings."""
    session = async_create_clientsession(
        hass,
        verify_ssl=data.get(CONF_QBT_VERIFY_SSL, True),
        auto_cleanup=False,
        cookie_jar=aiohttp.CookieJar(unsafe=True),  # keeps the SID cookie for IP hosts
    )
    try:
        adapter = QbtAdapter(
            session,
            data[CONF_QBT_URL],
            data.get(CONF_QBT_USERNAME) or None,
            data.get(CONF_QBT_PASSWORD) or None,
            verify_ssl=data.get(CONF_QBT_VERIFY_SSL, True),
        )
        await adapter.connect()
        await adapter.close()
    finally:
        session.detach()


async def _mam_errors(
    hass: HomeAssistant,
    mam_id: str,
    base_url: str,
    errors: dict[str, str],
    checked: dict[str, tuple[MamAccount, str]],
) -> tuple[MamAccount, str] | None:
    """Validate MAM, filling ``errors`` with the SPEC's keys; None when it failed.

    MAM invalidates a cookie when it rotates it, so the pasted value is dead after one good check.
    ``checked`` (kept by the flow across its retries) maps a pasted value to the account and the
    newest cookie: a form sent again after a qBittorrent typo reuses them instead of burning the
    user's only session with a second request.
    """
    try:
        key = f"{_check_base_url(base_url)} {normalize_mam_id(mam_id)}"
        if key not in checked:
            checked[key] = await validate_mam(hass, mam_id, _check_base_url(base_url))
        return checked[key]
    except InvalidBaseUrl:
        errors[CONF_MAM_BASE_URL] = "invalid_base_url"
    except ValueError:
        errors[CONF_MAM_ID] = "invalid_auth"  # empty after stripping "mam_id="
    except MamAuthError:
        errors["base"] = "invalid_auth"
    except MamError:
        errors["base"] = "cannot_connect"
    except Exception:
        LOGGER.exception("Unexpected error while checking the MAM session")
        errors["base"] = "unknown"
    return None


async def _qbt_errors(hass: HomeAssistant, data: Mapping[str, Any], errors: dict[str, str]) -> None:
    """Validate qBittorrent, filling ``errors`` with the SPEC's keys."""
    try:
        await validate_qbt(hass, data)
    except QbtAuthError:
        errors["base"] = "qbt_invalid_auth"
    except QbtError:
        errors["base"] = "qbt_cannot_connect"
    except Exception:
        LOGGER.exception("Unexpected error while checking qBittorrent")
        errors["base"] = "unknown"


def _qbt_schema(defaults: Mapping[str, Any]) -> dict[vol.Marker, Any]:
    return {
        vol.Required(
            CONF_QBT_URL, default=defaults.get(CONF_QBT_URL, "http://127.0.0.1:8080")
        ): URL,
        vol.Optional(CONF_QBT_USERNAME, default=defaults.get(CONF_QBT_USERNAME, "")): str,
        vol.Optional(CONF_QBT_PASSWORD, default=""): PASSWORD,
        vol.Optional(CONF_QBT_VERIFY_SSL, default=defaults.get(CONF_QBT_VERIFY_SSL, True)): bool,
    }


class MamGuardConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up one MAM account (unique_id = MAM uid) with its qBittorrent."""

    VERSION = 1
    MINOR_VERSION = 1

    def __init__(self) -> None:
        """Start with no checked cookie (see :func:`_mam_errors`)."""
        self._checked: dict[str, tuple[MamAccount, str]] = {}

    def _qbt_url_errors(self, url: str, errors: dict[str, str], own_entry_id: str | None) -> None:
        """Refuse credentials in the URL and a qBittorrent another entry already guards."""
        if url_has_credentials(url):
            errors[CONF_QBT_URL] = "qbt_url_credentials"
            return
        identity = qbt_identity(url)
        for entry in self._async_current_entries(include_ignore=False):
            if entry.entry_id != own_entry_id and (
                qbt_identity(entry.data.get(CONF_QBT_URL, "")) == identity
            ):
                errors[CONF_QBT_URL] = "qbt_already_used"
                return

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the MAM session cookie and the qBittorrent Web UI; test both."""
        errors: dict[str, str] = {}
        if user_input is not None:
            advanced = user_input.pop(SECTION_ADVANCED, {})
            base_url = advanced.get(CONF_MAM_BASE_URL, DEFAULT_MAM_BASE_URL)
            self._qbt_url_errors(user_input[CONF_QBT_URL], errors, None)
            checked = (
                None
                if errors
                else await _mam_errors(
                    self.hass, user_input[CONF_MAM_ID], base_url, errors, self._checked
                )
            )
            if checked is not None:
                account, mam_id = checked
                await self.async_set_unique_id(str(account.uid))
                self._abort_if_unique_id_configured()
                await _qbt_errors(self.hass, user_input, errors)
                if not errors:
                    return self.async_create_entry(
                        title=f"MAM {account.username}",
                        data={
                            **user_input,
                            CONF_MAM_ID: mam_id,
                            CONF_MAM_BASE_URL: _check_base_url(base_url),
                        },
                        options=dict(DEFAULT_OPTIONS),
                    )
        defaults = user_input or {}
        # The base URL only matters for a local simulator: a collapsed section keeps it out of the
        # way (what HA 2026 recommends instead of the deprecated "advanced mode" switch).
        advanced_schema = vol.Schema(
            {vol.Required(CONF_MAM_BASE_URL, default=DEFAULT_MAM_BASE_URL): URL}
        )
        schema: dict[vol.Marker, Any] = {
            vol.Required(CONF_MAM_ID): PASSWORD,
            **_qbt_schema(defaults),
            vol.Required(SECTION_ADVANCED): section(advanced_schema, {"collapsed": True}),
        }
        return self.async_show_form(step_id="user", data_schema=vol.Schema(schema), errors=errors)

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """MAM rejected the session cookie: ask for a new one."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Take a new mam_id for the same account."""
        errors: dict[str, str] = {}
        entry = self._get_reauth_entry()
        if user_input is not None:
            checked = await _mam_errors(
                self.hass,
                user_input[CONF_MAM_ID],
                entry.data[CONF_MAM_BASE_URL],
                errors,
                self._checked,
            )
            if checked is not None:
                account, mam_id = checked
                await self.async_set_unique_id(str(account.uid))
                self._abort_if_unique_id_mismatch(reason="wrong_account")
                return self.async_update_reload_and_abort(entry, data_updates={CONF_MAM_ID: mam_id})
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=vol.Schema({vol.Required(CONF_MAM_ID): PASSWORD}),
            errors=errors,
            description_placeholders={"title": entry.title},
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the qBittorrent settings and, optionally, the MAM session cookie."""
        errors: dict[str, str] = {}
        entry = self._get_reconfigure_entry()
        if user_input is not None:
            updates = {k: v for k, v in user_input.items() if k != CONF_MAM_ID}
            if not updates.get(CONF_QBT_PASSWORD) and user_input.get(
                CONF_QBT_USERNAME
            ) == entry.data.get(CONF_QBT_USERNAME):
                # An empty password field means "keep the stored one" (secrets are never prefilled).
                updates[CONF_QBT_PASSWORD] = entry.data.get(CONF_QBT_PASSWORD, "")
            self._qbt_url_errors(updates[CONF_QBT_URL], errors, entry.entry_id)
            if not errors and (new_mam_id := user_input.get(CONF_MAM_ID, "").strip()):
                checked = await _mam_errors(
                    self.hass, new_mam_id, entry.data[CONF_MAM_BASE_URL], errors, self._checked
                )
                if checked is not None:
                    account, updates[CONF_MAM_ID] = checked
                    await self.async_set_unique_id(str(account.uid))
                    self._abort_if_unique_id_mismatch(reason="wrong_account")
            if not errors:
                await _qbt_errors(self.hass, {**entry.data, **updates}, errors)
            if not errors:
                return self.async_update_reload_and_abort(entry, data_updates=updates)
        schema = {
            **_qbt_schema(user_input or entry.data),
            vol.Optional(CONF_MAM_ID, default=""): PASSWORD,
        }
        return self.async_show_form(
            step_id="reconfigure", data_schema=vol.Schema(schema), errors=errors
        )

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> MamGuardOptionsFlow:
        """Options live in their own flow; saving them reloads the entry."""
        return MamGuardOptionsFlow()


def _number(
    minimum: float, maximum: float, step: float, unit: str | None = None
) -> selector.NumberSelector:
    config = selector.NumberSelectorConfig(
        min=minimum, max=maximum, step=step, mode=selector.NumberSelectorMode.BOX
    )
    if unit is not None:
        config["unit_of_measurement"] = unit
    return selector.NumberSelector(config)


class MamGuardOptionsFlow(OptionsFlowWithReload):
    """Thresholds, enforcement and the daily rules refresh (SPEC §1 options)."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form with every option, prefilled with the current values."""
        if user_input is not None:
            user_input[CONF_EXEMPT_TAGS] = sorted(
                {tag.strip() for tag in user_input[CONF_EXEMPT_TAGS] if tag.strip()}
            )
            for key in (
                CONF_EMERGENCY_ACTIVE_UPLOADS,
                CONF_VIP_WARNING_DAYS,
                CONF_VIP_CRITICAL_DAYS,
                CONF_RENEWAL_THRESHOLD,
            ):
                user_input[key] = int(user_input[key])
            return self.async_create_entry(data=user_input)
        current = {**DEFAULT_OPTIONS, **self.config_entry.options}
        schema = vol.Schema(
            {
                vol.Required(CONF_RATIO_THRESHOLD, default=current[CONF_RATIO_THRESHOLD]): _number(
                    0, 100, 0.01
                ),
                vol.Required(CONF_RELEASE_MARGIN, default=current[CONF_RELEASE_MARGIN]): _number(
                    0, 10, 0.01
                ),
                vol.Required(CONF_ENFORCEMENT, default=current[CONF_ENFORCEMENT]): bool,
                vol.Required(
                    CONF_EXEMPT_TAGS, default=current[CONF_EXEMPT_TAGS]
                ): selector.SelectSelector(
                    selector.SelectSelectorConfig(
                        options=list(DEFAULT_OPTIONS[CONF_EXEMPT_TAGS]),  # type: ignore[call-overload]
                        multiple=True,
                        custom_value=True,
                    )
                ),
                vol.Required(
                    CONF_EMERGENCY_ACTIVE_UPLOADS, default=current[CONF_EMERGENCY_ACTIVE_UPLOADS]
                ): _number(1, 10000, 1),
                vol.Required(
                    CONF_UNLIMITED_UPLOAD_RATE, default=current[CONF_UNLIMITED_UPLOAD_RATE]
                ): bool,
                vol.Required(
                    CONF_VIP_WARNING_DAYS, default=current[CONF_VIP_WARNING_DAYS]
                ): _number(0, 365, 1, "d"),
                vol.Required(
                    CONF_VIP_CRITICAL_DAYS, default=current[CONF_VIP_CRITICAL_DAYS]
                ): _number(0, 365, 1, "d"),
                vol.Required(
                    CONF_RENEWAL_THRESHOLD, default=current[CONF_RENEWAL_THRESHOLD]
                ): _number(0, 1_000_000, 1),
                vol.Required(
                    CONF_RULES_PAGES, default=current[CONF_RULES_PAGES]
                ): selector.SelectSelector(
                    selector.SelectSelectorConfig(
                        options=list(RULES_PAGES),
                        multiple=True,
                        mode=selector.SelectSelectorMode.LIST,
                    )
                ),
                vol.Required(
                    CONF_RULES_REFRESH_TIME, default=current[CONF_RULES_REFRESH_TIME]
                ): selector.TimeSelector(),
            }
        )
        return self.async_show_form(step_id="init", data_schema=schema)
