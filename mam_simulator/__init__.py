"""Fake MyAnonamouse server for mam_guard's tests and local demo (never part of the integration)."""

from .app import NOT_SIGNED_IN, ForcedResponse, MamSimulator, SimState, SimTorrent, human_size

__all__ = [
    "NOT_SIGNED_IN",
    "ForcedResponse",
    "MamSimulator",
    "SimState",
    "SimTorrent",
    "human_size",
]
