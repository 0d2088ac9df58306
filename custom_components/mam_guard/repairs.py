"""Repair flow of the ratio-emergency issue: release the freeze now, or keep it (IQS repair-issues).

The emergency issue is fixable so that it offers the one thing a user can do about it from the
repairs page; keeping the freeze simply closes the dialog and the issue stays until the release.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.repairs import RepairsFlow, RepairsFlowResult
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from .const import DEFAULT_HOLD_OFF
from .data import MamGuardConfigEntry


class EmergencyRepairFlow(RepairsFlow):
    """Menu: release now (with the default hold-off) or keep the freeze."""

    def __init__(self, entry_id: str) -> None:
        """Remember which entry's emergency this is."""
        self._entry_id = entry_id

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> RepairsFlowResult:
        """Offer the two choices, with the issue's numbers in the text."""
        issue = ir.async_get(self.hass).async_get_issue(self.handler, self.issue_id)
        return self.async_show_menu(
            step_id="init",
            menu_options=["release", "keep"],
            description_placeholders=issue.translation_placeholders if issue else None,
        )

    async def async_step_release(
        self, user_input: dict[str, Any] | None = None
    ) -> RepairsFlowResult:
        """Release the freeze now, exactly as the ``release_freeze`` action does."""
        entry: MamGuardConfigEntry | None = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None or entry.state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="not_loaded")
        await entry.runtime_data.emergency.async_release_manual(DEFAULT_HOLD_OFF)
        return self.async_create_entry(data={})

    async def async_step_keep(self, user_input: dict[str, Any] | None = None) -> RepairsFlowResult:
        """Leave the freeze in place (the issue stays while the emergency lasts)."""
        return self.async_abort(reason="kept")


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """The flow for the emergency issue of one entry."""
    return EmergencyRepairFlow(str((data or {})["entry_id"]))
