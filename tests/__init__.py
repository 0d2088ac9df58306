"""Tests for mam_guard."""
