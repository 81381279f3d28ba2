"""Token-pruning strategies and the prune engine on tiny checkpoints (LLaVA, Qwen2-VL, Gemma 3,
Qwen3-VL with deepstack), eager and sdpa.

Each property would catch a real bug: budget 1.0 must be the untouched model; `all` must be
the sweep's drop; FastV's and CLS's rankings must equal independent re-implementations (eager
attention weights, or the vision block's attention recomputed from its weights); random must
draw the same tokens for a sample whatever batch it is in; a 2x2 pool must leave exactly one
token per block holding the block's mean (read at the layer's hook); cached generation must
equal uncached and drop equal mask; the shared prune engine must equal one run per branch.
"""

from __future__ import annotations

import pytest
import torch

from cliffscope.conformance import suite
from cliffscope.engines.branches import BASE, Branch
from cliffscope.engines.prune import (
    branch_notes,
    check_branches,
    make_branches,
    prune_naive,
    prune_shared,
)
from cliffscope.engines.sweep import shared_sweep
from cliffscope.engines.truncation import truncate
from cliffscope.errors import CliffscopeError
from cliffscope.models.saliency import recording
from cliffscope.strategies.pool import grid_blocks
from cliffscope.strategies.registry import make_strategy

pytestmark = pytest.mark.slow

CASES = [
    ("llava", "sdpa"),
    ("llava", "eager"),
    ("qwen2-vl", "sdpa"),
    ("qwen2-vl", "eager"),
    ("gemma3", "sdpa"),
    ("qwen3-vl", "eager"),
]
KEYS = ["sample-a", "sample-b"]
K = 1


@pytest.fixture(scope="module", params=CASES, ids=[f"{f}-{a}" for f, a in CASES])
def case(request: pytest.FixtureRequest):
    family, attn = request.param
    setup = suite.setup(family, attn, "float32")
    return setup, setup.batch()


def _strategies(adapter, budget: float) -> list:
    last = adapter.num_layers - 1
    out = [
        make_strategy("fastv", budget=budget),
        make_strategy("random", budget=budget, seed=11),
        make_strategy("cls", budget=budget),
        make_strategy("pool", budget=1.0 if budget == 1.0 else 0.25),
        make_strategy("pyramid", schedule=f"{K}:{budget},{last}:{budget / 2 if budget < 1 else 1}"),
    ]
    return out


def _logits(adapter, batch, k: int | None = None, **kw) -> torch.Tensor:
    positions = adapter.position_ids(batch)
    with torch.no_grad():
        if k is None:
            out = adapter.model(**batch.inputs, position_ids=positions).logits[:, -1]
        else:
            with truncate(adapter, k, batch, keys=KEYS[: len(batch)], **kw):
                out = adapter.model(**batch.inputs, position_ids=positions).logits[:, -1]
    adapter.reset_state()
    return out.float()


def test_budget_one_is_the_untouched_model(case) -> None:
    setup, batch = case
    adapter = setup.adapter
    plain = _logits(adapter, batch)
    for strategy in _strategies(adapter, 1.0):
        got = _logits(adapter, batch, K, strategy=strategy)
        torch.testing.assert_close(got, plain, atol=1e-5, rtol=0, msg=strategy.describe())
    shared = prune_shared(adapter, batch, make_branches(["fastv", "pool"], [1.0], K), 3, KEYS)
    for name in ("fastv@1", "pool@1"):
        torch.testing.assert_close(shared.first_logits[name], plain, atol=1e-5, rtol=0)
        assert shared.answers[name] == shared.answers[BASE]


def test_all_is_the_sweeps_drop(case) -> None:
    setup, batch = case
    adapter = setup.adapter
    layers = list(range(adapter.num_layers))
    sweep = shared_sweep(adapter, batch, layers, 3)
    for k in layers:
        pruned = prune_shared(adapter, batch, make_branches(["all"], [], k), 3, KEYS)
        assert pruned.answers["all"] == sweep.answers[k]
        torch.testing.assert_close(
            pruned.first_logits["all"], sweep.first_logits[k], atol=1e-5, rtol=0
        )
        torch.testing.assert_close(
            pruned.first_logits["all"], _logits(adapter, batch, k), atol=1e-5, rtol=0
        )


def test_fastv_ranking_equals_eager_attention_weights(case) -> None:
    setup, batch = case
    eager = setup.eager
    with torch.no_grad():
        out = eager.model(
            **batch.inputs, position_ids=eager.position_ids(batch), output_attentions=True
        )
    eager.reset_state()
    row = out.attentions[K - 1][:, :, -1].float().mean(dim=1)  # (B, S), head mean
    _assert_keeps_the_top(setup, batch, K, make_strategy("fastv", budget=0.5), row)


def _assert_keeps_the_top(setup, batch, k: int, strategy, scores: torch.Tensor) -> None:
    """The strategy keeps exactly the round(budget x n) image tokens of highest `scores`."""
    with truncate(setup.adapter, k, batch, strategy=strategy) as trunc:
        _ = setup.adapter.model(**batch.inputs, position_ids=setup.adapter.position_ids(batch))
    setup.adapter.reset_state()
    for r, groups in enumerate(batch.groups):
        image = torch.tensor(list(groups.image))
        top = image[scores[r, image].topk(int(strategy.budget * len(image) + 0.5)).indices]
        assert sorted(top.tolist()) == trunc.selected[r].nonzero().squeeze(1).tolist()


def _reference_saliency(setup, batch) -> torch.Tensor:
    """(B, S) saliency recomputed without cliffscope's kernel tap."""
    adapter = setup.eager
    spec = adapter.vision_saliency()
    captured: dict = {}

    def grab(module, args, kwargs):
        captured["args"], captured["kwargs"] = args, kwargs

    handle = spec.module.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        with torch.no_grad():
            adapter.model(**batch.inputs, position_ids=adapter.position_ids(batch))
    finally:
        handle.remove()
        adapter.reset_state()
    args, kwargs = captured["args"], captured["kwargs"]
    hidden = args[0] if args else kwargs["hidden_states"]
    module = spec.module
    if hasattr(module, "qkv"):  # Qwen vision block: fused qkv, 2-D rotary, one chunk per image
        import sys

        rotary = sys.modules[type(module).__module__].apply_rotary_pos_emb_vision
        n = hidden.shape[0]
        q, k, _ = module.qkv(hidden).reshape(n, 3, module.num_heads, -1).permute(1, 0, 2, 3)
        cos, sin = kwargs["position_embeddings"]
        q, k = rotary(q, k, cos, sin)
        bounds = kwargs["cu_seqlens"].tolist()
        images = []
        for a, b in zip(bounds, bounds[1:], strict=False):
            qi, ki = q[a:b].transpose(0, 1), k[a:b].transpose(0, 1)  # (H, n, d)
            weights = ((qi @ ki.transpose(-1, -2)) * module.scaling).softmax(-1)
            images.append(weights.mean(dim=0).mean(dim=0))  # received, head mean
    else:  # CLIP / SigLIP attention: separate projections, no rotary
        b, n, _ = hidden.shape
        heads = module.num_heads
        q = module.q_proj(hidden).view(b, n, heads, -1).transpose(1, 2)
        k = module.k_proj(hidden).view(b, n, heads, -1).transpose(1, 2)
        weights = ((q @ k.transpose(-1, -2)) * module.scale).softmax(-1).mean(dim=1)  # (b, n, n)
        images = list(weights[:, 0] if spec.kind == "cls" else weights.mean(dim=1))
    return spec.to_tokens(batch, images)


def test_cls_ranking_equals_a_recomputed_vision_attention(case) -> None:
    setup, batch = case
    with recording(setup.adapter, batch) as rec, torch.no_grad():
        setup.adapter.model(**batch.inputs, position_ids=setup.adapter.position_ids(batch))
    setup.adapter.reset_state()
    reference = _reference_saliency(setup, batch)
    torch.testing.assert_close(rec.scores(), reference, atol=1e-6, rtol=0)
    kind = setup.adapter.vision_saliency().kind
    assert kind == ("cls" if setup.adapter.family == "llava" else "received")
    (note,) = branch_notes(setup.adapter, make_branches(["cls"], [0.5], 0))
    assert ("by the [CLS] attention" in note) == (kind == "cls")
    assert ("no [CLS] token" in note) == (kind != "cls")
    _assert_keeps_the_top(setup, batch, 0, make_strategy("cls", budget=0.25), reference)


def test_random_is_the_same_per_sample_across_runs_and_batches(case) -> None:
    setup, batch = case
    adapter = setup.adapter

    def picked(b, keys, seed=11):
        strategy = make_strategy("random", budget=0.25, seed=seed)
        with truncate(adapter, K, b, strategy=strategy, keys=keys) as trunc:
            adapter.model(**b.inputs, position_ids=adapter.position_ids(b))
        adapter.reset_state()
        return [
            [i for i, p in enumerate(g.image) if trunc.selected[r, p]]
            for r, g in enumerate(b.groups)
        ]

    both = picked(batch, KEYS)
    assert both == picked(batch, KEYS)  # another run
    alone = adapter.build_batch(setup.images[1:], setup.prompts[1:])
    assert picked(alone, KEYS[1:]) == both[1:]  # another batch (a resumed subset)
    assert picked(batch, KEYS, seed=12) != both
    branches = make_branches(["random"], [0.25], K, seed=11)
    full = prune_shared(adapter, batch, branches, 4, KEYS)
    single = prune_shared(adapter, alone, branches, 4, KEYS[1:])
    assert single.answers["random@0.25"] == full.answers["random@0.25"][1:]


@pytest.mark.parametrize(("budget", "shape"), [(0.25, (2, 2)), (0.5, (1, 2))])
def test_pool_leaves_one_token_per_block_holding_its_mean(case, budget, shape) -> None:
    setup, batch = case
    adapter = setup.adapter
    layer = adapter.decoder_layers()[K]
    seen: dict[str, torch.Tensor] = {}

    def before(module, args, kwargs):
        seen["before"] = (args[0] if args else kwargs["hidden_states"]).clone()

    def after(module, args, kwargs):
        seen["after"] = (args[0] if args else kwargs["hidden_states"]).clone()

    handle = layer.register_forward_pre_hook(before, with_kwargs=True)
    try:
        with truncate(adapter, K, batch, strategy=make_strategy("pool", budget=budget)) as trunc:
            inner = layer.register_forward_pre_hook(after, with_kwargs=True)
            with torch.no_grad():
                adapter.model(**batch.inputs, position_ids=adapter.position_ids(batch))
            inner.remove()
    finally:
        handle.remove()
        adapter.reset_state()
    plan = trunc.plan
    for r in range(len(batch)):
        grids = adapter.image_grids(batch, r)
        blocks = [b for g in grids for b in grid_blocks(g, shape)]
        assert max(len(b) for b in blocks) == shape[0] * shape[1]
        gridded = {p for g in grids for p in g.positions}
        image = set(batch.groups[r].image)
        slots = {int(p): t for t, p in enumerate(plan.index[r].tolist()) if plan.valid[r, t]}
        kept_image = sorted(p for p in slots if p in image)
        assert kept_image == sorted([b[0] for b in blocks] + list(image - gridded))
        for block in blocks:
            mean = seen["before"][r, block].mean(dim=0)
            torch.testing.assert_close(seen["after"][r, slots[block[0]]], mean, atol=1e-6, rtol=0)


def test_cached_generation_equals_uncached_and_drop_equals_mask(case) -> None:
    setup, batch = case
    adapter = setup.adapter
    policy = adapter.policy
    config = policy.generation_config(
        adapter.model.generation_config, 4, adapter.tokenizer.pad_token_id
    )
    for strategy in _strategies(adapter, 0.5):
        with truncate(adapter, K, batch, strategy=strategy, keys=KEYS):
            cached = adapter.generate_ids(batch, 4)
        with truncate(adapter, K, batch, strategy=strategy, keys=KEYS), torch.no_grad():
            raw = adapter.model.generate(
                **batch.inputs, generation_config=config, use_cache=False,
                logits_processor=policy.logits_processor(batch.seq_len),
            )  # fmt: skip
        adapter.reset_state()
        assert cached == [policy.cut(r) for r in raw[:, batch.seq_len :].tolist()], (
            strategy.describe()
        )
        if not strategy.merges_tokens:
            drop = _logits(adapter, batch, K, strategy=strategy)
            mask = _logits(adapter, batch, K, strategy=strategy, mode="mask")
            torch.testing.assert_close(drop, mask, atol=1e-5, rtol=0, msg=strategy.describe())


@pytest.mark.parametrize("new_tokens", [1, 4])
def test_shared_prune_equals_one_run_per_branch(case, new_tokens: int) -> None:
    setup, batch = case
    adapter = setup.adapter
    last = adapter.num_layers - 1
    branches = make_branches(
        ["all", "fastv", "random", "cls", "pyramid"],
        [0.5, 0.25, 0.111],
        K,
        schedule=f"{K}:0.5,{last}:0.25",
        seed=5,
    )
    branches += make_branches(["pool"], [0.25, 0.111], 0) + make_branches(["pool"], [1.0], K)
    shared = prune_shared(adapter, batch, branches, new_tokens, KEYS)
    naive = prune_naive(adapter, batch, branches, new_tokens, KEYS)
    assert set(shared.answers) == set(naive.answers) == {BASE, *(b.name for b in branches)}
    assert shared.answers == naive.answers
    for name, logits in naive.first_logits.items():
        torch.testing.assert_close(shared.first_logits[name], logits, atol=1e-5, rtol=0, msg=name)
    n_image = [len(g.image) for g in batch.groups]
    assert shared.kept["fastv@0.25"] == [[int(0.25 * n + 0.5)] for n in n_image]
    assert [len(stages) for stages in shared.kept["pyramid@0.25"]] == [2, 2]


def test_clear_errors() -> None:
    setup = suite.setup("llava-next", "sdpa", "float32")
    batch = setup.batch()
    with pytest.raises(CliffscopeError, match="not defined for the llava-next"):
        truncate(setup.adapter, 0, batch, strategy=make_strategy("cls", budget=0.5))
    with pytest.raises(CliffscopeError, match="not defined for the llava-next"):
        check_branches(setup.adapter, make_branches(["fastv", "cls"], [0.5], 1))
    with pytest.raises(CliffscopeError, match="mask cannot express"):
        truncate(setup.adapter, 1, batch, mode="mask", strategy=make_strategy("pool", budget=0.25))
    with pytest.raises(CliffscopeError, match="starts at layer 2"):
        truncate(setup.adapter, 1, batch, strategy=make_strategy("pyramid", schedule="2:0.5"))
    with pytest.raises(CliffscopeError, match="outside"):
        truncate(setup.adapter, 1, batch, strategy=make_strategy("pyramid", schedule="1:0.5,9:0.2"))
    with pytest.raises(CliffscopeError, match="sample id"):
        prune_shared(setup.adapter, batch, [Branch("r", 1, make_strategy("random", budget=0.5))])
