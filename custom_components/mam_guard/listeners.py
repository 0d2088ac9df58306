"""Entity subscriptions for the managers that are not coordinators (emergency, economy)."""

from __future__ import annotations

from collections.abc import Callable

from homeassistant.core import CALLBACK_TYPE, callback


class ListenerMixin:
    """``async_add_listener`` as on a coordinator, and ``_notify`` to update every subscriber."""

    _listeners: list[CALLBACK_TYPE]

    def __init__(self) -> None:
        """No subscriber yet."""
        self._listeners = []

    @callback
    def async_add_listener(self, update_callback: CALLBACK_TYPE) -> Callable[[], None]:
        """Entities subscribe here; returns the unsubscribe callback."""
        self._listeners.append(update_callback)
        return lambda: self._listeners.remove(update_callback)

    @callback
    def _notify(self) -> None:
        for update_callback in list(self._listeners):
            update_callback()
