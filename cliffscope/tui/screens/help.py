"""The help screen: every key active on the screen below it, generated from its bindings
(so it cannot drift from what the keys do), plus that screen's own short guide."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

GENERAL = (
    "Everything works from the keyboard. ctrl+p opens the command palette (open any run by "
    "name, start an analysis or a sweep, compare, export). Runs are directories on disk: "
    "workers keep running when you quit, and reopening the dashboard finds them."
)


def graphics_text(app: object) -> Text:
    """How pictures are drawn now and why, and how to change it."""
    from cliffscope.tui.graphics import ENV, Graphics

    mode = getattr(app, "graphics", None) or Graphics()
    text = Text("Pictures are drawn with ")
    text.append(mode.label, style="bold")
    text.append(f" ({mode.reason}). g in a run's view switches Kitty graphics / Sixel / ")
    text.append(f"half-blocks; {ENV}=auto|kitty|sixel|halfblock chooses at start.")
    return text


def _declared_by_us(node: object, binding: Binding) -> bool:
    """True if a cliffscope class declared this binding (not Textual's DataTable etc.), in
    its BINDINGS or on the instance (the run view binds its tabs and panes' keys so)."""
    for cls in type(node).__mro__:
        for item in cls.__dict__.get("BINDINGS", []):
            action = item.action if isinstance(item, Binding) else item[1]
            if action == binding.action:
                return cls.__module__.startswith("cliffscope")
    return type(node).__module__.startswith("cliffscope")


def bindings_table(screen: Screen) -> Table:
    """Active keys in three groups: this screen (and its panes), everywhere, lists/fields."""
    groups: dict[str, list[tuple[str, str]]] = {
        "this screen": [],
        "everywhere": [],
        "in lists and fields": [],
    }
    seen: set[tuple[str, str]] = set()
    for active in screen.active_bindings.values():
        binding: Binding = active.binding
        key = binding.key_display or screen.app.get_key_display(binding)
        if "command_palette" in binding.action:
            continue  # described below in words
        if not binding.description or (key, binding.description) in seen:
            continue
        seen.add((key, binding.description))
        node = active.node
        if node is screen.app or binding.action.startswith("app."):
            group = "everywhere"
        elif _declared_by_us(node, binding):
            group = "this screen"
        else:
            group = "in lists and fields"
        groups[group].append((key, binding.description))
    groups["everywhere"].append(("ctrl+p", "Command palette: open runs, start runs, compare…"))
    table = Table(box=None, padding=(0, 2), show_header=False)
    table.add_column("key", style="bold cyan", no_wrap=True)
    table.add_column("does")
    for title, rows in groups.items():
        if rows:
            table.add_row(Text(title, style="bold underline"), "")
            for key, description in rows:
                table.add_row(key, description)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close", show=False),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def __init__(self, below: Screen) -> None:
        super().__init__()
        self.below = below

    def compose(self) -> ComposeResult:
        guide = getattr(self.below, "HELP", "") or ""
        with VerticalScroll(classes="dialog"):
            yield Static(
                f"Help — {type(self.below).__name__.removesuffix('Screen')}", classes="dialog-title"
            )
            if guide:
                yield Static(Text(guide.strip()))
            yield Static(bindings_table(self.below))
            yield Static(graphics_text(self.app))
            yield Static(Text(GENERAL, style="dim"))
