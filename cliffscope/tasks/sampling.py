"""Choosing which samples a run uses, reproducibly, and fingerprinting that choice.

`select_ids` ranks every id by `sha256(f"{seed}:{id}")` and keeps the first `limit`. Because
an id's rank depends only on the seed and the id itself (not on numpy's RNG algorithm, not on
the pool's order), the same `--limit N --seed S` picks the same ids on any machine and any
library version, and:

- a larger limit extends a smaller one (limit 10 is a prefix of limit 100, same seed);
- reordering the pool (e.g. Parquet shards listed in another order) changes nothing;
- adding rows to the pool only lets new ids in where they outrank old ones; the old ids keep
  their relative order.

`limit=None` means every id, in dataset order (no shuffling at all).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from cliffscope.errors import ValidationError


def _rank(seed: int, sample_id: str) -> bytes:
    return hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()


def select_ids(all_ids: Sequence[str], limit: int | None, seed: int = 0) -> list[str]:
    """The ids a run with `--limit limit --seed seed` uses, in the order it uses them."""
    if limit is None:
        return list(all_ids)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError(f"limit must be a positive integer, got {limit!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValidationError(f"seed must be an integer, got {seed!r}")
    ranked = sorted(all_ids, key=lambda i: _rank(seed, i))
    return ranked[:limit]


def ids_hash(ids: Sequence[str]) -> str:
    """`sha256:<16 hex>` over the ids in order; equal hashes mean the same samples, same order."""
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()
    return f"sha256:{digest[:16]}"
