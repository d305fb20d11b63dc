"""Stages of `studio demo`, one module per area."""
