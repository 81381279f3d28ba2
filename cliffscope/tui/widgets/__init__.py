"""Widgets of the dashboard; each owns its own state and figure."""
