"""Reports: Markdown summaries with figures, JSON/CSV data and run comparisons.

`export_runs` is the one entry point (the CLI's `cliffscope export` and the dashboard's export
action both call it). Nothing here imports torch; matplotlib and plotext load on first use.
"""

from cliffscope.report.export import ExportResult, default_out_dir, export_runs

__all__ = ["ExportResult", "default_out_dir", "export_runs"]
