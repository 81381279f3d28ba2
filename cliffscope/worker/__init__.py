"""The worker process: the only part of cliffscope that imports torch.

Start it with `python -m cliffscope.worker RUN_DIR` (or let the CLI/dashboard launch it
detached). It owns one run directory, writes only there, and survives the session that started it.
"""
