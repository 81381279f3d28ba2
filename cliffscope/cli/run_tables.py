"""A run kind's per-layer numbers as a terminal table, for `cliffscope runs show`.

The rows come from the kind (`RunKind.layer_table`, built on `report.tables`, the same rows
the Markdown, CSV and JSON exports use), so the terminal can never disagree with a report.
"""

from __future__ import annotations

from rich.table import Table

from cliffscope.kinds.base import LayerTable


def render(layer_table: LayerTable) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name in layer_table.columns:
        table.add_column(name, justify="right")
    for row in layer_table.rows:
        table.add_row(*row)
    return table
