"""Sample lines -> `result.json`: numpy only (no torch), so readers can re-aggregate anywhere.

`cliff` (cliff detection on a flow curve), `analysis` (the analysis result), `sweep` (the
sweep result); their intervals all come from `cliffscope.metrics.bootstrap`.
"""
