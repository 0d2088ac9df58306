"""Bonus points in Home Assistant: purchases, their ledger and events, and the ratio forecast.

The purchase executor (``lib.purchase_executor``) does the careful part: an intent persisted in
HA storage before every request, never sent twice, settled from the account when an answer is
lost. This manager only wires it to Home Assistant (SPEC §10):

- after every account poll: settle an open intent, then (only with an automatic option on) run
  the policies: upload credit to end an emergency, VIP renewal, surplus above the ceiling;
- the ``buy_vip`` / ``buy_upload_credit`` actions and the *Buy VIP* button (manual purchases
  follow MAM's rules and the reserve, not the automatic options; ``purchase_dry_run`` applies);
- a ``mam_guard_purchase`` event for every ledger row, the ``last_purchase`` sensor, and a repair
  issue when VIP would lapse before the points for its renewal are there;
- the 7-day uploaded/downloaded history behind ``emergency_forecast`` (one kept sample an hour:
  storage is written when a sample is added, not at every poll).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util

from .const import (
    CONF_POINTS_RESERVE,
    CONF_PURCHASE_DRY_RUN,
    CONF_RATIO_THRESHOLD,
    CONF_UPLOAD_CREDIT,
    CONF_VIP_AUTO_RENEW,
    DOMAIN,
    EVENT_PURCHASE,
    ISSUE_VIP_POINTS_SHORT,
    LOGGER,
    UPLOAD_CREDIT_OFF,
)
from .data import entry_options
from .lib.engine import Decision as EmergencyDecision, decide
from .lib.forecast import RatioHistory
from .lib.models import MamAccount
from .lib.purchase_executor import PurchaseExecutor, PurchaseOutcome, PurchaseRecord
from .lib.purchases import NoPurchase, PurchaseOptions, Skip
from .lib.rules_store import PurchaseRow
from .listeners import ListenerMixin
from .store import MamGuardStore

if TYPE_CHECKING:
    from .coordinator import MamAccountCoordinator
    from .data import MamGuardConfigEntry
    from .emergency import EmergencyManager
    from .lib.mam import MamClient
    from .rules import RulesCoordinator


class EconomyManager(ListenerMixin):
    """Purchases and the forecast of one account."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: MamGuardConfigEntry,
        *,
        client: MamClient,
        store: MamGuardStore,
        account: MamAccountCoordinator,
        emergency: EmergencyManager,
        rules: RulesCoordinator,
    ) -> None:
        """Bind everything; :meth:`async_setup` settles what a restart left open."""
        self.hass = hass
        self.entry = entry
        self.store = store
        self.account = account
        self.emergency = emergency
        self.rules = rules
        self.executor = PurchaseExecutor(
            client,
            entry_id=entry.entry_id,
            record=PurchaseRecord.from_dict(store.data.get("purchases")),
            persist=self._persist,
            write_ledger=self._write_ledger,
        )
        self.history = RatioHistory.from_dict(store.data.get("ratio_history"))
        self.last_purchase: PurchaseRow | None = None
        ListenerMixin.__init__(self)
        self._unsub_account: CALLBACK_TYPE | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def async_setup(self) -> None:
        """Load the newest ledger row and follow account polls."""
        self.last_purchase = await self._ledger(lambda db: db.last_purchase(self.entry.entry_id))
        self._unsub_account = self.account.async_add_listener(self._account_updated)

    @callback
    def async_shutdown(self) -> None:
        """Stop following the account (entry unload)."""
        if self._unsub_account is not None:
            self._unsub_account()
            self._unsub_account = None

    async def _persist(self, record: PurchaseRecord) -> None:
        self.store.data["purchases"] = record.to_dict()
        await self.store.async_save()

    async def _write_ledger(self, row: PurchaseRow) -> object:
        def write(db: Any) -> object:
            return db.add_purchase(row)

        result = await self._ledger(write)
        self.last_purchase = row
        return result

    async def _ledger(self, job: Callable[[Any], Any]) -> Any:
        """Run a ledger call in the executor; None while the rules database is unusable."""
        try:
            db = self.rules.db
        except RuntimeError:
            LOGGER.debug("The purchase ledger is unavailable (rules database unusable)")
            return None
        return await self.hass.async_add_executor_job(job, db)

    # -- after every poll -------------------------------------------------------------------------

    @callback
    def _account_updated(self) -> None:
        data = self.account.data
        if data is None or not self.account.last_update_success:
            return
        self.entry.async_create_background_task(
            self.hass,
            self.async_after_poll(data.account, data.fetched_at),
            f"{DOMAIN} purchases",
        )

    async def async_after_poll(self, account: MamAccount, read_at: datetime) -> None:
        """Record the forecast sample, settle an open intent, run the automatic policies."""
        await self._record_history(account, read_at)
        options = entry_options(self.entry)
        automatic = bool(options[CONF_VIP_AUTO_RENEW]) or (
            options[CONF_UPLOAD_CREDIT] != UPLOAD_CREDIT_OFF
        )
        if automatic or self.executor.pending is not None:
            run = await self.executor.async_run_automatic(
                account,
                PurchaseOptions.from_options(options),
                emergency_active=self._emergency_due(account),
                points_per_day=self._points_per_day(),
                read_at=read_at,
            )
            for outcome in run.outcomes:
                self._fire(outcome)
            if not run.pending:
                self._update_vip_issue(
                    [d for d in run.decisions if isinstance(d, NoPurchase) and d.kind == "vip"],
                    enabled=bool(options[CONF_VIP_AUTO_RENEW]),
                )
        self._notify()

    def _emergency_due(self, account: MamAccount) -> bool:
        """Declared, or about to be by this very poll (the emergency tick runs beside us)."""
        if self.emergency.active:
            return True
        record = self.emergency.record
        ratio = float("inf") if account.ratio_infinite else account.ratio
        return (
            decide(
                ratio,
                active=False,
                manual=False,
                hold_off_until=record.hold_off_until,
                now=dt_util.utcnow(),
                options=self.emergency.options,
            )
            is EmergencyDecision.ENTER
        )

    def _points_per_day(self) -> float | None:
        data = self.account.data
        return data.points_per_day if data is not None else None

    async def _record_history(self, account: MamAccount, read_at: datetime) -> None:
        before = len(self.history.samples)
        self.history = self.history.record(
            read_at, account.uploaded_bytes, account.downloaded_bytes
        )
        if len(self.history.samples) != before:  # a kept sample was added: persist it
            self.store.data["ratio_history"] = self.history.as_dict()
            await self.store.async_save()

    def forecast(self) -> datetime | None:
        """When the ratio reaches the threshold at the 7-day trend (None: not falling)."""
        threshold = float(entry_options(self.entry)[CONF_RATIO_THRESHOLD])
        return self.history.forecast(threshold, dt_util.utcnow())

    # -- manual purchases -----------------------------------------------------------------------

    async def async_buy_vip(self) -> PurchaseOutcome:
        """``buy_vip`` action and button: fill VIP up to MAM's cap."""
        options = entry_options(self.entry)
        outcome = await self.executor.async_buy_vip(
            reserve=float(options[CONF_POINTS_RESERVE]),
            dry_run=bool(options[CONF_PURCHASE_DRY_RUN]),
            points_per_day=self._points_per_day(),
        )
        self._fire(outcome)
        self._notify()
        return outcome

    async def async_buy_upload(self, amount_gb: int) -> PurchaseOutcome:
        """``buy_upload_credit`` action: ``amount_gb`` (≥ 50) of upload credit."""
        options = entry_options(self.entry)
        outcome = await self.executor.async_buy_upload(
            amount_gb,
            reserve=float(options[CONF_POINTS_RESERVE]),
            dry_run=bool(options[CONF_PURCHASE_DRY_RUN]),
            points_per_day=self._points_per_day(),
        )
        self._fire(outcome)
        self._notify()
        return outcome

    # -- what the user sees ---------------------------------------------------------------------

    @callback
    def _fire(self, outcome: PurchaseOutcome) -> None:
        if outcome.status == "pending":  # its row and event come when it is settled
            LOGGER.warning(
                "MyAnonamouse's answer to a %s purchase was lost; it is settled from the account"
                " at the next poll and never sent again",
                outcome.kind,
            )
            return
        self.hass.bus.async_fire(EVENT_PURCHASE, outcome.event_data(self.entry.entry_id))

    @callback
    def _update_vip_issue(self, decisions: list[NoPurchase], *, enabled: bool) -> None:
        """A repair issue while VIP would end before the points for its renewal are there."""
        issue_id = f"{ISSUE_VIP_POINTS_SHORT}_{self.entry.entry_id}"
        short = [
            d
            for d in decisions
            if enabled and d.skip is Skip.INSUFFICIENT_POINTS and d.in_time is not True
        ]
        if not short:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        decision = short[0]
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_VIP_POINTS_SHORT,
            translation_placeholders={
                "account": self.entry.title,
                "deadline": _day(decision.deadline),
                "shortfall": f"{decision.shortfall or 0:,.0f}",
                "ready": _day(decision.ready_at),
            },
        )

    def diagnostics(self) -> dict[str, Any]:
        """The open intent and the newest ledger rows' kinds and outcomes (no secrets in them)."""
        pending = self.executor.pending
        return {
            "pending": None
            if pending is None
            else {"kind": pending.kind, "reason": pending.reason},
            "last_purchase": None
            if self.last_purchase is None
            else {
                "created_at": self.last_purchase.created_at.isoformat(),
                "kind": self.last_purchase.kind,
                "amount": self.last_purchase.amount,
                "cost": self.last_purchase.cost,
                "reason": self.last_purchase.reason,
                "success": self.last_purchase.success,
                "dry_run": self.last_purchase.dry_run,
                "error": self.last_purchase.error,
            },
            "history_samples": len(self.history.samples),
        }


def _day(moment: datetime | None) -> str:
    return "unknown" if moment is None else dt_util.as_local(moment).strftime("%Y-%m-%d")
