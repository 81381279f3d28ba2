"""Sample lines -> `result.json`: numpy only (no torch), so readers can re-aggregate anywhere.

`cliff` (cliff detection on a flow curve), `header` (the fields every result opens with), and
one module per kind (`analysis`, `sweep`, `knockout`, `prune`; the
kinds' results); their intervals all come from `cliffscope.metrics.bootstrap`.
"""
