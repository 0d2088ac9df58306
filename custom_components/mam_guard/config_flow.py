"""Config flow of mam_guard: user, reauth, reconfigure, options (SPEC §1), clients (§12)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import time
import ipaddress
import re
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryData,
    ConfigSubentryFlow,
    OptionsFlowWithReload,
    SubentryFlowResult,
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
    CONF_FREELEECH_LOOKUP,
    CONF_MAM_BASE_URL,
    CONF_MAM_ID,
    CONF_MAX_UPLOAD_GB_PER_DAY,
    CONF_POINTS_CEILING,
    CONF_POINTS_RESERVE,
    CONF_PURCHASE_DRY_RUN,
    CONF_QBT_NAME,
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
    CONF_UPLOAD_CREDIT,
    CONF_VIP_AUTO_RENEW,
    CONF_VIP_CRITICAL_DAYS,
    CONF_VIP_RENEW_DAYS,
    CONF_VIP_WARNING_DAYS,
    CONFIG_ENTRY_MINOR_VERSION,
    CONFIG_ENTRY_VERSION,
    DEFAULT_MAM_BASE_URL,
    DEFAULT_OPTIONS,
    DEFAULT_QBT_NAME,
    DEFAULT_QBT_URL,
    DOMAIN,
    LOGGER,
    SUBENTRY_QBITTORRENT,
    UPLOAD_CREDIT_MODES,
    USER_AGENT,
)
from .data import MamGuardConfigEntry, entry_options
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

    Two clients on one qBittorrent would share its tags and preferences and could undo each
    other's emergency actions, so a second subentry on the same Web UI is refused; it is also a
    qBittorrent subentry's unique_id.
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


def _used_qbt_identities(hass: HomeAssistant, skip_subentry_id: str | None) -> set[str]:
    """The qBittorrent Web UIs of every mam_guard entry, but ``skip_subentry_id``'s."""
    used: set[str] = set()
    for entry in hass.config_entries.async_entries(DOMAIN, include_ignore=False):
        # A version 1 entry that was never set up since the update (a disabled one is not
        # migrated) still holds its qBittorrent in its data.
        urls = [entry.data.get(CONF_QBT_URL, "")]
        urls += [
            subentry.data.get(CONF_QBT_URL, "")
            for subentry in entry.get_subentries_of_type(SUBENTRY_QBITTORRENT)
            if subentry.subentry_id != skip_subentry_id
        ]
        used.update(qbt_identity(url) for url in urls if url)
    return used


def _qbt_url_errors(
    hass: HomeAssistant, url: str, errors: dict[str, str], skip_subentry_id: str | None
) -> None:
    """Refuse credentials in the URL and a qBittorrent mam_guard already guards.

    Two clients on one Web UI (of one account or of two) would share its tags and preferences
    and could undo each other's emergency actions. A form error rather than an abort: the user
    can fix the URL without losing what they typed.
    """
    if url_has_credentials(url):
        errors[CONF_QBT_URL] = "qbt_url_credentials"
    elif qbt_identity(url) in _used_qbt_identities(hass, skip_subentry_id):
        errors[CONF_QBT_URL] = "qbt_already_used"


def _qbt_data(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """A qBittorrent subentry's data from a form (the name is its title, not data)."""
    return {
        CONF_QBT_URL: user_input[CONF_QBT_URL],
        CONF_QBT_USERNAME: user_input.get(CONF_QBT_USERNAME, ""),
        CONF_QBT_PASSWORD: user_input.get(CONF_QBT_PASSWORD, ""),
        CONF_QBT_VERIFY_SSL: user_input.get(CONF_QBT_VERIFY_SSL, True),
    }


def _qbt_title(user_input: Mapping[str, Any]) -> str:
    return str(user_input.get(CONF_QBT_NAME, "")).strip() or DEFAULT_QBT_NAME


def _qbt_schema() -> dict[vol.Marker, Any]:
    """The qBittorrent fields; forms prefill them with suggested values (never the password)."""
    return {
        vol.Required(CONF_QBT_NAME, default=DEFAULT_QBT_NAME): str,
        vol.Required(CONF_QBT_URL, default=DEFAULT_QBT_URL): URL,
        vol.Optional(CONF_QBT_USERNAME, default=""): str,
        vol.Optional(CONF_QBT_PASSWORD, default=""): PASSWORD,
        vol.Optional(CONF_QBT_VERIFY_SSL, default=True): bool,
    }


def _shown(values: Mapping[str, Any]) -> dict[str, Any]:
    """What a form may show again: never a secret."""
    return {k: v for k, v in values.items() if k not in (CONF_MAM_ID, CONF_QBT_PASSWORD)}


class MamGuardConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up one MAM account (unique_id = MAM uid) with its first qBittorrent."""

    VERSION = CONFIG_ENTRY_VERSION
    MINOR_VERSION = CONFIG_ENTRY_MINOR_VERSION

    def __init__(self) -> None:
        """Start with no checked cookie (see :func:`_mam_errors`)."""
        self._checked: dict[str, tuple[MamAccount, str]] = {}

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls,
        config_entry: ConfigEntry,  # noqa: ARG003 - HA fixes the signature
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Each qBittorrent of the account is a subentry (SPEC §12)."""
        return {SUBENTRY_QBITTORRENT: QbittorrentSubentryFlow}

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the MAM session cookie and the first qBittorrent Web UI; test both."""
        errors: dict[str, str] = {}
        advanced: dict[str, Any] = {}
        if user_input is not None:
            advanced = user_input.get(SECTION_ADVANCED, {})
            base_url = advanced.get(CONF_MAM_BASE_URL, DEFAULT_MAM_BASE_URL)
            qbt = _qbt_data(user_input)
            _qbt_url_errors(self.hass, qbt[CONF_QBT_URL], errors, None)
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
                await _qbt_errors(self.hass, qbt, errors)
                if not errors:
                    return self.async_create_entry(
                        title=f"MAM {account.username}",
                        data={CONF_MAM_ID: mam_id, CONF_MAM_BASE_URL: _check_base_url(base_url)},
                        options=dict(DEFAULT_OPTIONS),
                        subentries=[
                            ConfigSubentryData(
                                subentry_type=SUBENTRY_QBITTORRENT,
                                title=_qbt_title(user_input),
                                data=qbt,
                                unique_id=qbt_identity(qbt[CONF_QBT_URL]),
                            )
                        ],
                    )
        # The base URL only matters for a local simulator: a collapsed section keeps it out of the
        # way (what HA 2026 recommends instead of the deprecated "advanced mode" switch).
        advanced_schema = vol.Schema(
            {vol.Required(CONF_MAM_BASE_URL, default=DEFAULT_MAM_BASE_URL): URL}
        )
        schema = vol.Schema(
            {
                vol.Required(CONF_MAM_ID): PASSWORD,
                **_qbt_schema(),
                vol.Required(SECTION_ADVANCED): section(advanced_schema, {"collapsed": True}),
            }
        )
        shown = {**_shown(user_input or {}), SECTION_ADVANCED: advanced}
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(schema, shown),
            errors=errors,
        )

    async def _async_new_cookie(
        self, step_id: str, entry: ConfigEntry, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        """Take a new mam_id for the same account (reauth and reconfigure alike)."""
        errors: dict[str, str] = {}
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
            step_id=step_id,
            data_schema=vol.Schema({vol.Required(CONF_MAM_ID): PASSWORD}),
            errors=errors,
            description_placeholders={"title": entry.title},
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """MAM rejected the session cookie: ask for a new one."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Take a new mam_id for the same account."""
        return await self._async_new_cookie("reauth_confirm", self._get_reauth_entry(), user_input)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Replace the MAM session cookie; each qBittorrent is reconfigured in its subentry."""
        return await self._async_new_cookie(
            "reconfigure", self._get_reconfigure_entry(), user_input
        )

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: MamGuardConfigEntry) -> MamGuardOptionsFlow:
        """Options live in their own flow; saving them reloads the entry."""
        return MamGuardOptionsFlow()


class QbittorrentSubentryFlow(ConfigSubentryFlow):
    """Add or change one qBittorrent of an account (SPEC §12); nothing is saved untested."""

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Add a qBittorrent: log in to it before saving."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data = _qbt_data(user_input)
            if await self._async_qbt_ok(data, errors, None):
                return self.async_create_entry(
                    title=_qbt_title(user_input),
                    data=data,
                    unique_id=qbt_identity(data[CONF_QBT_URL]),
                )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(_qbt_schema()), _shown(user_input or {})
            ),
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change a qBittorrent's name, URL or login; an empty password keeps the stored one."""
        entry = self._get_entry()
        subentry = self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data = _qbt_data(user_input)
            if not data[CONF_QBT_PASSWORD] and data[CONF_QBT_USERNAME] == subentry.data.get(
                CONF_QBT_USERNAME, ""
            ):
                # Secrets are never prefilled, so an empty field means "unchanged"; but the
                # stored password is never handed to another user name.
                data[CONF_QBT_PASSWORD] = subentry.data.get(CONF_QBT_PASSWORD, "")
            if await self._async_qbt_ok(data, errors, subentry.subentry_id):
                # No reload from here (an added subentry cannot trigger one either): the runtime
                # follows the entry's subentries itself.
                return self.async_update_and_abort(
                    entry,
                    subentry,
                    title=_qbt_title(user_input),
                    data_updates=data,
                    unique_id=qbt_identity(data[CONF_QBT_URL]),
                )
        shown = user_input or {CONF_QBT_NAME: subentry.title, **subentry.data}
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(_qbt_schema()), _shown(shown)
            ),
            errors=errors,
            description_placeholders={"name": subentry.title},
        )

    async def _async_qbt_ok(
        self, data: Mapping[str, Any], errors: dict[str, str], skip_subentry_id: str | None
    ) -> bool:
        """The same checks as the account's first qBittorrent: URL, then a real login."""
        _qbt_url_errors(self.hass, data[CONF_QBT_URL], errors, skip_subentry_id)
        if not errors:
            await _qbt_errors(self.hass, data, errors)
        return not errors


# --- Options ------------------------------------------------------------------------------------
#
# The form groups the options in sections, but the entry stores them flat under the SPEC §1 keys
# and values (a float threshold, "HH:MM:SS", a list of page paths): each OptionField says how a
# stored value is shown in the form and how a submitted one is stored.

# Translation keys cannot hold "." or "/": the form names the rules pages with these keys
# (labels in translations/en.json, selector.rules_page) and stores their paths.
RULES_PAGE_KEYS: Final[dict[str, str]] = {
    "rules.php": "rules",
    "faq.php": "faq",
    "f/b/18": "forum_18",
    "f/b/78": "forum_78",
    "guides/": "guides",
    "updateNotes.php": "update_notes",
    "api/list.php": "api_list",
}
RULES_PAGE_SELECTOR: Final = "rules_page"  # selector.<key>.options in translations/en.json
UNIT_SELECTOR: Final = "option_unit"  # selector.<key>.unit_of_measurement
UPLOAD_CREDIT_SELECTOR: Final = "upload_credit"  # selector.<key>.options
DEFAULT_REFRESH_TIME: Final = "12:00"
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::\d{2})?")


def _same(value: Any) -> Any:
    return value


def _hours_minutes(value: str) -> str:
    """Hours and minutes ("06:30") of "6:30", "06:30" or "06:30:15"; ValueError if not a time."""
    match = _TIME.fullmatch(value.strip())
    if match is None:
        raise ValueError(value)
    return time(int(match[1]), int(match[2])).strftime("%H:%M")


def _refresh_time_to_form(value: str) -> str:
    try:
        return _hours_minutes(value)
    except ValueError:  # never written by this form; show the default rather than fail
        return DEFAULT_REFRESH_TIME


def _refresh_time_to_store(value: str) -> str:
    return f"{_hours_minutes(value)}:00"  # the form has no seconds; rules.py reads "HH:MM:SS"


def _pages_to_form(paths: list[str]) -> list[str]:
    return [RULES_PAGE_KEYS[path] for path in RULES_PAGES if path in paths]


def _pages_to_store(keys: list[str]) -> list[str]:
    return [path for path in RULES_PAGES if RULES_PAGE_KEYS[path] in keys]


def _tags_to_store(tags: list[str]) -> list[str]:
    return sorted({tag.strip() for tag in tags if tag.strip()})


def _two_decimals(value: float) -> float:
    return round(float(value), 2)


def _whole(value: float) -> int:
    return int(value)


def _number(
    minimum: float, maximum: float, step: float, unit: str | None = None
) -> selector.NumberSelector:
    config = selector.NumberSelectorConfig(
        min=minimum, max=maximum, step=step, mode=selector.NumberSelectorMode.BOX
    )
    if unit is not None:
        config["unit_of_measurement"] = unit
        config["translation_key"] = UNIT_SELECTOR
    return selector.NumberSelector(config)


@dataclass(frozen=True, slots=True)
class OptionField:
    """One option in the form: its selector, and its value from the entry and back.

    ``to_store`` raises ValueError for a value it cannot store: the form then shows the error
    ``invalid_<option key>`` (translations/en.json, options.error).
    """

    selector: Callable[[Any], Any]
    to_store: Callable[[Any], Any] = _same
    to_form: Callable[[Any], Any] = _same


OPTION_FIELDS: Final[dict[str, OptionField]] = {
    CONF_RATIO_THRESHOLD: OptionField(_number(0, 100, 0.01), _two_decimals),
    CONF_RELEASE_MARGIN: OptionField(_number(0, 10, 0.01), _two_decimals),
    CONF_ENFORCEMENT: OptionField(selector.BooleanSelector()),
    CONF_EXEMPT_TAGS: OptionField(
        selector.SelectSelector(
            selector.SelectSelectorConfig(
                options=list(DEFAULT_OPTIONS[CONF_EXEMPT_TAGS]),  # type: ignore[call-overload]
                multiple=True,
                custom_value=True,
            )
        ),
        _tags_to_store,
    ),
    CONF_EMERGENCY_ACTIVE_UPLOADS: OptionField(_number(1, 10000, 1), _whole),
    CONF_UNLIMITED_UPLOAD_RATE: OptionField(selector.BooleanSelector()),
    CONF_FREELEECH_LOOKUP: OptionField(selector.BooleanSelector()),
    CONF_VIP_WARNING_DAYS: OptionField(_number(0, 365, 1, "days"), _whole),
    CONF_VIP_CRITICAL_DAYS: OptionField(_number(0, 365, 1, "days"), _whole),
    CONF_RENEWAL_THRESHOLD: OptionField(_number(0, 1_000_000, 1, "points"), _whole),
    CONF_RULES_PAGES: OptionField(
        selector.SelectSelector(
            selector.SelectSelectorConfig(
                options=list(RULES_PAGE_KEYS.values()),
                multiple=True,
                mode=selector.SelectSelectorMode.LIST,
                translation_key=RULES_PAGE_SELECTOR,
            )
        ),
        _pages_to_store,
        _pages_to_form,
    ),
    CONF_VIP_AUTO_RENEW: OptionField(selector.BooleanSelector()),
    CONF_VIP_RENEW_DAYS: OptionField(_number(7, 90, 1, "days"), _whole),
    CONF_UPLOAD_CREDIT: OptionField(
        selector.SelectSelector(
            selector.SelectSelectorConfig(
                options=list(UPLOAD_CREDIT_MODES), translation_key=UPLOAD_CREDIT_SELECTOR
            )
        )
    ),
    CONF_POINTS_RESERVE: OptionField(_number(0, 99_999, 1, "points"), _whole),
    CONF_POINTS_CEILING: OptionField(_number(25_000, 99_999, 1, "points"), _whole),
    CONF_MAX_UPLOAD_GB_PER_DAY: OptionField(_number(0, 10_000, 1, "gb"), _whole),
    CONF_PURCHASE_DRY_RUN: OptionField(selector.BooleanSelector()),
    # HA's TimeSelector always shows seconds in this version (no "no_second"): a native time
    # input (hours and minutes) instead.
    CONF_RULES_REFRESH_TIME: OptionField(
        selector.TextSelector(selector.TextSelectorConfig(type=selector.TextSelectorType.TIME)),
        _refresh_time_to_store,
        _refresh_time_to_form,
    ),
}

# The form's sections, in order, with their options in order; titles and texts live in
# translations/en.json (options.step.init.sections.<section>). A new section is one line here.
OPTION_SECTIONS: Final[dict[str, tuple[str, ...]]] = {
    "emergency": (
        CONF_RATIO_THRESHOLD,
        CONF_RELEASE_MARGIN,
        CONF_ENFORCEMENT,
        CONF_EXEMPT_TAGS,
        CONF_FREELEECH_LOOKUP,
        CONF_EMERGENCY_ACTIVE_UPLOADS,
        CONF_UNLIMITED_UPLOAD_RATE,
    ),
    "vip_points": (CONF_VIP_WARNING_DAYS, CONF_VIP_CRITICAL_DAYS, CONF_RENEWAL_THRESHOLD),
    "rules": (CONF_RULES_PAGES, CONF_RULES_REFRESH_TIME),
    "purchases": (
        CONF_VIP_AUTO_RENEW,
        CONF_VIP_RENEW_DAYS,
        CONF_UPLOAD_CREDIT,
        CONF_POINTS_RESERVE,
        CONF_POINTS_CEILING,
        CONF_MAX_UPLOAD_GB_PER_DAY,
        CONF_PURCHASE_DRY_RUN,
    ),
}


def options_schema(values: Mapping[str, Any]) -> vol.Schema:
    """The options form, one section per topic, prefilled with ``values`` (form values)."""
    return vol.Schema(
        {
            vol.Required(name): section(
                vol.Schema(
                    {
                        vol.Required(key, default=values[key]): OPTION_FIELDS[key].selector
                        for key in keys
                    }
                )
            )
            for name, keys in OPTION_SECTIONS.items()
        }
    )


class MamGuardOptionsFlow(OptionsFlowWithReload):
    """Thresholds, enforcement, VIP and the daily rules refresh (SPEC §1 options)."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form in sections; the options are stored flat, over the ones not in the form."""
        entry: MamGuardConfigEntry = self.config_entry
        errors: dict[str, str] = {}
        options = entry_options(entry)
        values = {key: field.to_form(options[key]) for key, field in OPTION_FIELDS.items()}
        if user_input is not None:
            submitted = {
                key: value for name in OPTION_SECTIONS for key, value in user_input[name].items()
            }
            stored: dict[str, Any] = {}
            for key, value in submitted.items():
                try:
                    stored[key] = OPTION_FIELDS[key].to_store(value)
                except ValueError:
                    errors["base"] = f"invalid_{key}"
            if not errors:
                return self.async_create_entry(data={**entry.options, **stored})
            values.update(submitted)
        return self.async_show_form(
            step_id="init", data_schema=options_schema(values), errors=errors
        )
