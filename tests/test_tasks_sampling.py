"""Subset selection must be reproducible forever: recorded runs are resumed by these ids."""

from __future__ import annotations

import random
import re

import pytest

from cliffscope.errors import ValidationError
from cliffscope.tasks.sampling import ids_hash, select_ids

POOL = [f"q{i}" for i in range(500)]


def test_same_seed_same_ids_different_seed_different_ids():
    assert select_ids(POOL, 20, seed=1) == select_ids(list(POOL), 20, seed=1)
    assert select_ids(POOL, 20, seed=1) != select_ids(POOL, 20, seed=2)


def test_pinned_values_guard_against_algorithm_changes():
    # If these change, every recorded run's subset and hash silently mean something else.
    assert select_ids(["a", "b", "c", "d", "e"], 3, seed=0) == ["d", "a", "c"]
    assert ids_hash(["a", "b"]) == "sha256:7e18f737311b2dc3"


def test_larger_limit_extends_smaller_one():
    small, large = select_ids(POOL, 10, seed=7), select_ids(POOL, 100, seed=7)
    assert large[:10] == small


def test_pool_order_does_not_matter():
    shuffled = list(POOL)
    random.Random(3).shuffle(shuffled)
    assert select_ids(shuffled, 25, seed=4) == select_ids(POOL, 25, seed=4)


def test_growing_the_pool_keeps_old_ids_in_relative_order():
    before = select_ids(POOL, 500, seed=9)
    after = select_ids(POOL + [f"new{i}" for i in range(50)], 550, seed=9)
    assert [i for i in after if not i.startswith("new")] == before


def test_no_limit_means_all_in_dataset_order_and_oversized_limit_means_all():
    assert select_ids(POOL, None, seed=3) == POOL
    picked = select_ids(POOL[:5], 50, seed=3)
    assert sorted(picked) == sorted(POOL[:5]) and len(picked) == 5


@pytest.mark.parametrize("limit", [0, -1, 2.5, True])
def test_bad_limits_are_errors(limit):
    with pytest.raises(ValidationError):
        select_ids(POOL, limit, seed=0)


def test_ids_hash_format_and_order_sensitivity():
    h = ids_hash(["a", "b"])
    assert re.fullmatch(r"sha256:[0-9a-f]{16}", h)
    assert h == ids_hash(["a", "b"])
    assert h != ids_hash(["b", "a"])
    assert h != ids_hash(["a", "b", "c"])
