"""Bindings shared by every screen, listed first so the footer shows them even at 80 columns."""

from __future__ import annotations

from textual.binding import Binding

HELP = Binding("question_mark", "app.help", "Help", key_display="?")
QUIT = Binding("q", "app.quit", "Quit")
BACK = Binding("escape", "app.pop_screen", "Back")
