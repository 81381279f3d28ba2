"""Screens of the dashboard; each composes widgets and routes messages, nothing more."""
