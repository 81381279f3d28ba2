"""The Textual dashboard: a thin shell over the run store and the worker launcher.

It reads run directories, starts and signals detached workers, and never imports torch.
Entry point: `cliffscope` (or `cliffscope tui`), see `cliffscope.cli.tui_cmd`.
"""
