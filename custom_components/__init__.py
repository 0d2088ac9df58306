"""Custom components package (lets tests import custom_components.mam_guard)."""
