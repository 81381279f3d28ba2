"""Token strategies without a model: declarations, budgets, selection rules, costs, plans.

Each property would catch a real bug: a strategy that ignores its budget or seed, a random draw
that depends on the batch (Python's salted `hash`), a pool that averages the wrong block or
drifts from a plain gather when nothing merges, a pyramid whose ratios are relative to the
previous stage instead of the original count, savings that ignore later stages, fillers that
are mistaken for real slots.
"""

from __future__ import annotations

import pytest
import torch

from cliffscope.engines.keep import KeepPlan, compose, keep_plan, pad_plan
from cliffscope.errors import CliffscopeError
from cliffscope.flops import DecoderDims, layer_flops, savings, staged_savings
from cliffscope.models.batch import ImageGrid
from cliffscope.strategies.base import SelectionInputs
from cliffscope.strategies.pool import grid_blocks, pool_block
from cliffscope.strategies.pyramid import parse_schedule
from cliffscope.strategies.random_keep import sample_seed
from cliffscope.strategies.registry import from_run_params, list_strategies, make_strategy

DIMS = DecoderDims(
    num_layers=32, hidden=4096, intermediate=11008, heads=32, kv_heads=32, head_dim=128
)


def _inputs(n_image: int = 16, rows: int = 2, start: int = 3, **kw) -> SelectionInputs:
    length = start + n_image + 4
    image = torch.zeros(rows, length, dtype=torch.bool)
    image[:, start : start + n_image] = True
    return SelectionInputs(
        layer=2, image=image, valid=torch.ones_like(image), image_counts=[n_image] * rows, **kw
    )


def test_every_strategy_is_registered_with_declared_parameters() -> None:
    assert set(list_strategies()) >= {"all", "fastv", "random", "cls", "pool", "pyramid"}
    for name, params in {
        "all": {},
        "fastv": {"budget": 0.5},
        "random": {"budget": 0.5, "seed": 7},
        "cls": {"budget": 0.25},
        "pool": {"budget": 0.25},
        "pyramid": {"schedule": "2:0.5,4:0.25"},
    }.items():
        strategy = make_strategy(name, **params)
        recorded = strategy.params()
        assert recorded["strategy"] == name
        assert {p.name for p in strategy.parameters} == set(recorded) - {"strategy"}
        again = from_run_params(recorded)  # run.toml round trip
        assert again.params() == recorded


def test_parameters_are_checked() -> None:
    with pytest.raises(CliffscopeError, match="needs budget"):
        make_strategy("fastv")
    with pytest.raises(CliffscopeError, match="no parameter seed"):
        make_strategy("fastv", budget=0.5, seed=1)
    with pytest.raises(CliffscopeError, match=r"\[0, 1\]"):
        make_strategy("random", budget=1.5)
    with pytest.raises(CliffscopeError, match="unknown token strategy"):
        make_strategy("best")
    # sweeps recorded FastV as keep_ratio only
    assert from_run_params({"keep_ratio": 0.25}).params() == {"strategy": "fastv", "budget": 0.25}
    assert from_run_params({}).name == "all"


def test_random_draw_is_per_sample_and_seeded() -> None:
    assert sample_seed(0, "s1") == sample_seed(0, "s1")
    assert sample_seed(0, "s1") != sample_seed(1, "s1") != sample_seed(0, "s2")
    strategy = make_strategy("random", budget=0.25, seed=3)
    picked = strategy.select(_inputs(keys=["a", "b"]))
    assert picked.sum(dim=1).tolist() == [4, 4]
    swapped = strategy.select(_inputs(keys=["b", "a"]))
    assert torch.equal(picked[0], swapped[1]) and torch.equal(picked[1], swapped[0])
    alone = strategy.select(_inputs(rows=1, keys=["b"]))
    assert torch.equal(alone[0], picked[1])
    other_seed = make_strategy("random", budget=0.25, seed=4).select(_inputs(keys=["a", "b"]))
    assert not torch.equal(other_seed, picked)
    with pytest.raises(CliffscopeError, match="sample id"):
        strategy.select(_inputs())


def test_sample_seed_is_a_stable_hash() -> None:
    import hashlib

    digest = hashlib.sha256(b"5\x00abc").digest()
    assert sample_seed(5, "abc") == int.from_bytes(digest[:8], "little") >> 1


def test_pool_budgets_and_blocks() -> None:
    budgets = (1.0, 0.5, 0.25, 0.111, 1 / 9, 0.125, 0.0625)
    assert [pool_block(b) for b in budgets] == [
        (1, 1),
        (1, 2),
        (2, 2),
        (3, 3),
        (3, 3),
        (2, 4),
        (4, 4),
    ]
    for bad in (0.3, 0.4, 0.0, 1.5):
        with pytest.raises(CliffscopeError, match="1/n|budget must be"):
            pool_block(bad)
    grid = ImageGrid(positions=list(range(10, 25)), rows=3, cols=5, box=(0, 0, 1, 1), label="g")
    blocks = grid_blocks(grid, 2)
    assert blocks[0] == [10, 11, 15, 16]  # top-left first
    assert blocks[2] == [14, 19]  # right edge: a cut 2x1 block
    assert blocks[-1] == [24]  # bottom-right corner alone
    assert sorted(p for b in blocks for p in b) == grid.positions
    assert make_strategy("pool", budget=0.25).kept(576) == 144
    assert make_strategy("pool", budget=0.111).kept(576) == 64
    assert make_strategy("pool", budget=0.25).kept(25) == 9
    assert make_strategy("pool", budget=0.5).kept(576) == 288
    assert grid_blocks(grid, (1, 2))[:3] == [[10, 11], [12, 13], [14]]  # horizontal pairs


def test_pool_selects_top_left_and_keeps_tokens_outside_grids() -> None:
    inputs = _inputs(n_image=17)  # 4x4 grid + one extra image token (a newline) at the end
    grid = ImageGrid(positions=list(range(3, 19)), rows=4, cols=4, box=(0, 0, 1, 1), label="g")
    inputs.grids = [[grid], [grid]]
    pool = make_strategy("pool", budget=0.25)
    selected = pool.select(inputs)
    assert selected[0].nonzero().squeeze(1).tolist() == [3, 5, 11, 13, 19]
    merges = pool.merges(inputs, selected)
    assert merges[0][5] == [5, 6, 9, 10] and 19 not in merges[0]
    inputs.grids = [[], [grid]]
    with pytest.raises(CliffscopeError, match="no image grid"):
        pool.select(inputs)


def test_pyramid_schedule_ratios_are_of_the_original_count() -> None:
    assert parse_schedule("8:0.5, 16:0.25,24:0.125") == [(8, 0.5), (16, 0.25), (24, 0.125)]
    for bad in ("8:0.5,8:0.25", "8:0.25,16:0.5", "0:0.5", "8", ""):
        with pytest.raises(CliffscopeError):
            parse_schedule(bad)
    pyramid = make_strategy("pyramid", schedule="2:0.5,4:0.25")
    assert pyramid.stage_layers(2) == [2, 4]
    with pytest.raises(CliffscopeError, match="starts at layer 2"):
        pyramid.stage_layers(3)
    assert pyramid.kept_schedule(2, 576) == [(2, 288), (4, 144)]
    inputs = _inputs(n_image=16)
    inputs.layer, inputs.attention = 4, torch.rand(inputs.image.shape)
    inputs.image[:, 3:11] = False  # the first stage left 8 of the 16
    assert pyramid.select(inputs).sum(dim=1).tolist() == [4, 4]  # 0.25 of 16, not of 8
    geometric = make_strategy("pyramid", schedule="8:0.5,16:0.25,24:0.125", budget=0.125)
    assert [round(r, 6) for _, r in geometric.stages] == [0.5, 0.25, 0.125]


def test_staged_savings_count_every_stage() -> None:
    assert staged_savings(DIMS, 576, 40, [(2, 288)]) == savings(DIMS, 576, 40, 2, 288)
    flops, kv = staged_savings(DIMS, 576, 40, [(8, 288), (16, 144), (24, 72)])
    full = 32 * layer_flops(DIMS, 616)
    expected = 8 * (layer_flops(DIMS, 616) + layer_flops(DIMS, 328))
    expected += 8 * (layer_flops(DIMS, 184) + layer_flops(DIMS, 112))
    assert flops == pytest.approx(1 - expected / full)
    assert kv == pytest.approx(8 * (288 + 432 + 504) / (32 * 616))
    pyramid = make_strategy("pyramid", schedule="8:0.5,16:0.25,24:0.125")
    assert pyramid.savings(DIMS, 576, 40, 8) == (flops, kv)


def test_plans_without_merges_gather_bit_exactly_and_merges_average() -> None:
    hidden = torch.randn(2, 8, 5)
    image = torch.zeros(2, 8, dtype=torch.bool)
    image[:, 2:6] = True
    keep = ~image
    keep[:, 2] = True
    plain = keep_plan(keep, torch.ones_like(image), image)
    assert torch.equal(plain.gather(hidden), hidden[:, plain.index[0]])
    merged = keep_plan(keep, torch.ones_like(image), image, [{2: [2, 3, 4, 5]}, {}])
    out = merged.gather(hidden)
    torch.testing.assert_close(out[0, 2], hidden[0, 2:6].mean(dim=0), atol=1e-6, rtol=0)
    assert torch.equal(out[1], plain.gather(hidden)[1])  # rows without merges: exact
    assert torch.equal(out[0, [0, 1, 3, 4]], hidden[0, [0, 1, 6, 7]])


def test_fillers_padding_and_composition() -> None:
    image = torch.zeros(2, 8, dtype=torch.bool)
    image[:, 2:6] = True
    keep = ~image
    keep[0, 2:4] = True  # row 0 keeps two image tokens, row 1 none: one filler pair
    plan = keep_plan(keep, torch.ones_like(image), image)
    assert plan.fillers()[1].tolist() == [False, False, True, True, False, False]
    assert not bool(plan.valid[plan.fillers()].any())
    wide = pad_plan(plan, plan.length + 3, at=2)
    assert wide.length == plan.length + 3 and int(wide.fillers().sum()) == 2 + 6
    assert torch.equal(wide.index[:, 5:], plan.index[:, 2:])
    inner = KeepPlan(
        index=torch.tensor([[0, 1, 3, 4, 5], [0, 1, 1, 4, 5]]),
        valid=torch.tensor([[True] * 5, [True, True, False, True, True]]),
        shared=2,
    )
    composed = compose(plan, inner)
    assert composed.index.tolist() == [[0, 1, 3, 6, 7], [0, 1, 1, 6, 7]]
