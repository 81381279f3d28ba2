"""Run kinds as plugins: each kind is one declaration (`base.RunKind`) in one module.

`registry.get_kind(name)` gives the declaration; `analysis` and `sweep` are the built-in
kinds. Importing this package imports no torch, click or textual.
"""
