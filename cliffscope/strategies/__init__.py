"""Token-selection strategies: which image tokens stay from a layer on, and what that saves.

A strategy is one object used by every engine that removes image tokens (the truncation hooks,
the shared sweep, the prune engine): `all` (the paper's truncation), `fastv`, `random`, `cls`,
`pool` and `pyramid`, one module each, registered by name in `registry.py`. Importing this
package imports no torch; selection code imports it when it runs. New strategies register with
`registry.register_strategy` (see docs/strategies.md).
"""
