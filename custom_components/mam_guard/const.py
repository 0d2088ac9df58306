"""Constants of mam_guard: one home for every name the integration and its users rely on."""

from __future__ import annotations

from datetime import timedelta
import logging
from typing import Final

from .lib.pages import RULES_PAGES

DOMAIN: Final = "mam_guard"
LOGGER = logging.getLogger(__package__)
VERSION: Final = "0.1.0"
USER_AGENT: Final = f"mam_guard/{VERSION} (Home Assistant custom integration)"

# Config entry data (SPEC §1). Version 2 (SPEC §12): the entry holds the MAM side only and each
# qBittorrent is a subentry; a major bump, so an older MAM Guard refuses a migrated entry.
CONFIG_ENTRY_VERSION: Final = 2
CONFIG_ENTRY_MINOR_VERSION: Final = 1
CONF_MAM_ID: Final = "mam_id"
CONF_MAM_BASE_URL: Final = "mam_base_url"
DEFAULT_MAM_BASE_URL: Final = "https://www.myanonamouse.net"

# qBittorrent clients (SPEC §12): config subentries of this type, with these data keys; the
# name the user gives (form field CONF_QBT_NAME) is the subentry's title, unique_id its identity
# (config_flow.qbt_identity). Version 1 entries kept the same keys in their own data.
SUBENTRY_QBITTORRENT: Final = "qbittorrent"
CONF_QBT_NAME: Final = "name"
DEFAULT_QBT_NAME: Final = "qBittorrent"
DEFAULT_QBT_URL: Final = "http://127.0.0.1:8080"
CONF_QBT_URL: Final = "qbt_url"
CONF_QBT_USERNAME: Final = "qbt_username"
CONF_QBT_PASSWORD: Final = "qbt_password"  # noqa: S105 - a key name, not a secret
CONF_QBT_VERIFY_SSL: Final = "qbt_verify_ssl"
QBT_DATA_KEYS: Final = (CONF_QBT_URL, CONF_QBT_USERNAME, CONF_QBT_PASSWORD, CONF_QBT_VERIFY_SSL)

# Options (SPEC §1) and their defaults.
CONF_RATIO_THRESHOLD: Final = "ratio_threshold"
CONF_RELEASE_MARGIN: Final = "release_margin"
CONF_ENFORCEMENT: Final = "enforcement"
CONF_EXEMPT_TAGS: Final = "exempt_tags"
CONF_EMERGENCY_ACTIVE_UPLOADS: Final = "emergency_active_uploads"
CONF_UNLIMITED_UPLOAD_RATE: Final = "unlimited_upload_rate"
CONF_FREELEECH_LOOKUP: Final = "freeleech_lookup"
CONF_VIP_WARNING_DAYS: Final = "vip_warning_days"
CONF_VIP_CRITICAL_DAYS: Final = "vip_critical_days"
CONF_RENEWAL_THRESHOLD: Final = "renewal_threshold"
CONF_RULES_PAGES: Final = "rules_pages"
CONF_RULES_REFRESH_TIME: Final = "rules_refresh_time"
# Automatic purchases with bonus points (SPEC §10; all opt-in).
CONF_VIP_AUTO_RENEW: Final = "vip_auto_renew"
CONF_VIP_RENEW_DAYS: Final = "vip_renew_days"
CONF_UPLOAD_CREDIT: Final = "upload_credit"
CONF_POINTS_RESERVE: Final = "points_reserve"
CONF_POINTS_CEILING: Final = "points_ceiling"
CONF_MAX_UPLOAD_GB_PER_DAY: Final = "max_upload_gb_per_day"
CONF_PURCHASE_DRY_RUN: Final = "purchase_dry_run"
UPLOAD_CREDIT_OFF: Final = "off"
UPLOAD_CREDIT_EMERGENCY: Final = "emergency"
UPLOAD_CREDIT_SURPLUS: Final = "emergency_and_surplus"
UPLOAD_CREDIT_MODES: Final = (UPLOAD_CREDIT_OFF, UPLOAD_CREDIT_EMERGENCY, UPLOAD_CREDIT_SURPLUS)

DEFAULT_OPTIONS: Final[dict[str, object]] = {
    CONF_RATIO_THRESHOLD: 1.0,
    CONF_RELEASE_MARGIN: 0.0,
    CONF_ENFORCEMENT: True,
    CONF_EXEMPT_TAGS: ["freeleech", "fl", "vip", "vip_critical"],
    CONF_EMERGENCY_ACTIVE_UPLOADS: 50,
    CONF_UNLIMITED_UPLOAD_RATE: True,
    CONF_FREELEECH_LOOKUP: True,
    CONF_VIP_WARNING_DAYS: 14,
    CONF_VIP_CRITICAL_DAYS: 7,
    CONF_RENEWAL_THRESHOLD: 5000,
    CONF_RULES_PAGES: list(RULES_PAGES),
    CONF_RULES_REFRESH_TIME: "12:00:00",
    CONF_VIP_AUTO_RENEW: False,
    CONF_VIP_RENEW_DAYS: 14,
    CONF_UPLOAD_CREDIT: UPLOAD_CREDIT_OFF,
    CONF_POINTS_RESERVE: 0,
    # SPEC says 90,000, but then surplus never buys: 50 GB (MAM's minimum) costs 25,000 points
    # and the balance is capped at 99,999, so the ceiling must be at most 74,999.
    CONF_POINTS_CEILING: 70000,
    CONF_MAX_UPLOAD_GB_PER_DAY: 200,
    CONF_PURCHASE_DRY_RUN: False,
}


# Polling (SPEC §4/§5, research/mam.md §4): one jsonLoad request every 5 minutes; qBittorrent every
# minute (new MAM downloads are frozen within a minute during an emergency).
ACCOUNT_UPDATE_INTERVAL: Final = timedelta(minutes=5)
QBT_UPDATE_INTERVAL: Final = timedelta(minutes=1)
QBT_LOADING_RECHECK: Final = timedelta(seconds=10)  # new torrents still loading in an emergency
# qBittorrent shows torrent states only after its refresh interval (default 1.5 s): a freeze right
# after our own release waits this long so it does not plan on the stale, pre-release view.
QBT_SETTLE_SECONDS: Final = 3.0
RULES_MAX_AGE: Final = timedelta(hours=24)
RULES_PAGE_GAP_SECONDS: Final = 2.0
DEFAULT_HOLD_OFF: Final = timedelta(hours=1)
BREAKER_FAILURES: Final = 3

# Torrent names listed in an attribute or a response (the rest is a count): attributes stay small.
LIST_ATTRIBUTE_LIMIT: Final = 25

# Storage (HA .storage/) and SQLite.
STORAGE_VERSION: Final = 1
STORAGE_KEY_PREFIX: Final = f"{DOMAIN}."
# An emergency record whose entry was removed while qBittorrent was unreachable, by account uid.
STORAGE_ORPHAN_PREFIX: Final = f"{DOMAIN}.orphan_"
SQLITE_FILENAME: Final = f"{DOMAIN}.db"

# Bus events (SPEC §3).
EVENT_EMERGENCY_STARTED: Final = f"{DOMAIN}_emergency_started"
EVENT_EMERGENCY_ENDED: Final = f"{DOMAIN}_emergency_ended"
# Fired when an emergency that started with its actions pending has them all in place.
EVENT_EMERGENCY_APPLIED: Final = f"{DOMAIN}_emergency_applied"
EVENT_RULES_CHANGED: Final = f"{DOMAIN}_rules_changed"
EVENT_SITE_EVENT: Final = f"{DOMAIN}_site_event"
EVENT_PURCHASE: Final = f"{DOMAIN}_purchase"  # SPEC §10: a ledger row, as an event

# Services (SPEC §3).
SERVICE_RELEASE_FREEZE: Final = "release_freeze"
SERVICE_TRIGGER_FREEZE: Final = "trigger_freeze"
SERVICE_CHECK_DOWNLOAD: Final = "check_download"
SERVICE_GET_STATUS: Final = "get_status"
SERVICE_REFRESH_RULES: Final = "refresh_rules"
SERVICE_BUY_VIP: Final = "buy_vip"
SERVICE_BUY_UPLOAD_CREDIT: Final = "buy_upload_credit"
ATTR_AMOUNT_GB: Final = "amount_gb"
MIN_UPLOAD_GB: Final = 50  # MAM: automated spenders buy at least 50 GB at a time
ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
ATTR_HOLD_OFF: Final = "hold_off"
ATTR_IS_PAID: Final = "is_paid"
ATTR_IS_VIP_CRITICAL: Final = "is_vip_critical"
ATTR_SIZE_BYTES: Final = "size_bytes"

# Repair issues.
ISSUE_EMERGENCY: Final = "ratio_emergency"  # its text: everything applied
ISSUE_EMERGENCY_PENDING: Final = "ratio_emergency_pending"  # same issue, actions not in place
ISSUE_EMERGENCY_NOT_ENFORCING: Final = "ratio_emergency_not_enforcing"  # same issue, monitor only
ISSUE_QBT_UNREACHABLE: Final = "qbittorrent_unreachable"
ISSUE_BREAKER: Final = "enforcement_breaker"
ISSUE_ORPHANED_FREEZE: Final = "orphaned_freeze"
# A removed qBittorrent subentry whose emergency actions could not be undone yet.
ISSUE_CLIENT_REMOVED_FROZEN: Final = "client_removed_frozen"
ISSUE_VIP_POINTS_SHORT: Final = "vip_points_short"
# The shared rules database (one issue for all entries: the file is shared).
ISSUE_RULES_DB_CORRUPT: Final = "rules_database_corrupt"
ISSUE_RULES_DB_NEWER: Final = "rules_database_newer_schema"
ISSUE_RULES_DB_CANNOT_OPEN: Final = "rules_database_cannot_open"

# Enum states (SPEC §2/§6).
VIP_HEALTHY: Final = "healthy"
VIP_WARNING: Final = "warning"
VIP_CRITICAL: Final = "critical"
VIP_INACTIVE: Final = "inactive"
VIP_STATES: Final = [VIP_HEALTHY, VIP_WARNING, VIP_CRITICAL, VIP_INACTIVE]
RATIO_NORMAL: Final = "normal"
RATIO_WARNING: Final = "warning"
RATIO_EMERGENCY: Final = "emergency"
RATIO_STATES: Final = [RATIO_NORMAL, RATIO_WARNING, RATIO_EMERGENCY]
PROTECTION_STATES: Final = ("idle", "protected", "pending", "unreachable", "not_enforcing")

# Diagnostics redaction (SPEC §8).
TO_REDACT: Final = {
    CONF_MAM_ID,
    CONF_QBT_USERNAME,
    CONF_QBT_PASSWORD,
    "username",
    "uid",
    "unique_id",
    "title",
    "passkey",
    "tracker",
    "trackers",
}
