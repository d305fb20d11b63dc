"""Headless light node (later issue)."""
