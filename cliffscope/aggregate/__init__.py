"""Sample lines -> `result.json`: numpy only (no torch), so readers can re-aggregate anywhere.

`intervals` (bootstrap intervals of per-layer means), `cliff` (cliff detection on a flow
curve), `analysis` (the analysis result); the sweep result lives beside them.
"""
