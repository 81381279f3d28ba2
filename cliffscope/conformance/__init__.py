"""The conformance suite: tiny offline checkpoints of every family and the checks each must pass.

`builders` / `families` write real checkpoints through each family's own config, tokenizer and
processor classes (saved with `save_pretrained`, loaded with `from_pretrained`, as a real one);
`checks` holds the properties every adapter + engine combination must satisfy (k = L exact,
k = 0 text-only, shared = naive, capture = eager ...); `suite` runs them into the support matrix
that `cliffscope models support` prints and `tests/test_conformance.py` asserts. Everything
here imports torch; nothing in the core imports this package.
"""
