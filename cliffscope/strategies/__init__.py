"""Token-selection strategies: which image tokens stay from a layer on, and what that saves.

A strategy is one object used by every engine that removes image tokens (the truncation hooks,
the shared sweep, the prune kind): `DropAll` (the paper's truncation) and `FastV` (keep the
tokens the last prompt position attends to most) are the first two. Importing this package
imports no torch; selection code imports it when it runs. New strategies register with
`registry.register_strategy` (see docs/extending.md).
"""
