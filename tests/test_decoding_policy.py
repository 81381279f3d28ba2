"""One decoding policy on every path, on checkpoints whose generation_config sets everything.

Each tiny checkpoint (LLaVA, Qwen2-VL) gets a generation_config.json that sets every field that
can move the argmax: the honoured ones (suppress_tokens, begin_suppress_tokens, bad_words_ids
with a one-token and a two-token entry, sequence_bias, a list-valued eos_token_id) chosen from
the model's own greedy answers so that each of them really changes something, and the
neutralised ones (sampling, penalties, min length, forced BOS/EOS, length penalty). Then, eager
and sdpa, batch and one at a time, at every k: shared sweep = naive sweep = `generate` under
truncation, token by token; the honoured constraints are visible in the answers; the
neutralised ones change nothing; the run log names every field.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from cliffscope.cli.main import cli
from cliffscope.engines.sweep import BASE, naive_sweep, shared_sweep
from cliffscope.engines.truncation import truncate
from cliffscope.models.loading import load_adapter
from cliffscope.store import RunDir
from tests.tiny_models import tiny_profile

pytestmark = pytest.mark.slow

PROMPTS = ["What is the colour?", "What is the colour of the shape in this image?", "Describe"]
PATHS = {"llava": "tiny_llava_path", "qwen2-vl": "tiny_qwen2_vl_path"}
NEW_TOKENS = 6
NEUTRALISED = {
    "do_sample": True,
    "temperature": 0.7,
    "top_k": 5,
    "top_p": 0.9,
    "repetition_penalty": 1.5,
    "no_repeat_ngram_size": 2,
    "min_length": 200,
    "min_new_tokens": 4,
    "forced_eos_token_id": None,  # filled with the checkpoint's EOS
    "exponential_decay_length_penalty": [1, 3.0],
}


def images() -> list[Image.Image]:
    return [
        Image.new("RGB", (40, 30), (200, 20, 20)),
        Image.new("RGB", (64, 64), (20, 20, 200)),
        Image.new("RGB", (30, 50), (20, 200, 20)),
    ]


def _honoured(answers: dict, eos: int) -> dict:
    """Constraints chosen from the plain model's answers so that each one bites."""
    tokens = Counter(t for rows in answers.values() for row in rows for t in row)
    common = [t for t, _ in tokens.most_common()]
    suppress, single_bad, new_eos = common[0], common[1], common[2]
    first = answers[BASE][0][0]
    begin = first if first not in (suppress, single_bad, new_eos) else answers[BASE][1][0]
    bigrams = Counter(
        (row[i], row[i + 1])
        for rows in answers.values()
        for row in rows
        for i in range(len(row) - 1)
        if {row[i], row[i + 1]}.isdisjoint({suppress, single_bad, new_eos})
    )
    bigram = list(bigrams.most_common(1)[0][0])
    unseen = next(t for t in range(5, 200) if t not in tokens)
    return {
        "suppress_tokens": [suppress],
        "begin_suppress_tokens": [begin],
        "bad_words_ids": [[single_bad], bigram],
        "sequence_bias": [[[unseen], 2.0]],
        "eos_token_id": [eos, new_eos],
    }


def _checkpoint(source: Path, target: Path, settings: dict) -> Path:
    shutil.copytree(source, target)
    config_path = target / "generation_config.json"
    config = json.loads(config_path.read_text())
    config.update(settings)
    config_path.write_text(json.dumps(config))
    return target


@pytest.fixture(scope="module", params=list(PATHS))
def checkpoints(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    family = request.param
    plain_path = request.getfixturevalue(PATHS[family])
    plain = load_adapter(tiny_profile(plain_path, family))
    batch = plain.build_batch(images(), PROMPTS)
    layers = list(range(plain.num_layers + 1))
    answers = naive_sweep(plain, batch, layers, NEW_TOKENS).answers
    eos = plain.policy.stop_ids[0]
    honoured = _honoured(answers, eos)
    root = tmp_path_factory.mktemp(f"decoding-{family}")
    neutral = dict(NEUTRALISED, forced_eos_token_id=eos)
    return {
        "family": family,
        "plain_answers": answers,
        "honoured": honoured,
        "only_honoured": _checkpoint(plain_path, root / "honoured", honoured),
        "everything": _checkpoint(plain_path, root / "everything", {**honoured, **neutral}),
    }


def _run(adapter, batch, keys=None):
    layers = list(range(adapter.num_layers + 1))
    shared = shared_sweep(adapter, batch, layers, NEW_TOKENS, keys=keys)
    naive = naive_sweep(adapter, batch, layers, NEW_TOKENS, keys=keys)
    return shared, naive


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_every_path_gives_the_same_answers_token_by_token(checkpoints, attn: str) -> None:
    family = checkpoints["family"]
    adapter = load_adapter(tiny_profile(checkpoints["everything"], family, attn))
    batch = adapter.build_batch(images(), PROMPTS)
    shared, naive = _run(adapter, batch)
    assert shared.answers == naive.answers
    # the baseline of a sweep is what generate (the analysis' path) answers
    assert shared.answers[BASE] == adapter.generate_ids(batch, NEW_TOKENS)
    for k in range(adapter.num_layers):
        with truncate(adapter, k, batch):
            assert adapter.generate_ids(batch, NEW_TOKENS) == shared.answers[k], f"k={k}"
    # batch = one at a time
    for row, (image, prompt) in enumerate(zip(images(), PROMPTS, strict=True)):
        single = adapter.build_batch([image], [prompt])
        one_shared, one_naive = _run(adapter, single)
        for k, rows in shared.answers.items():
            assert one_shared.answers[k] == [rows[row]] == one_naive.answers[k], (row, k)


def test_honoured_fields_bite_and_neutralised_ones_change_nothing(checkpoints) -> None:
    family, honoured = checkpoints["family"], checkpoints["honoured"]
    everything = load_adapter(tiny_profile(checkpoints["everything"], family))
    only = load_adapter(tiny_profile(checkpoints["only_honoured"], family))
    batch = everything.build_batch(images(), PROMPTS)
    answers = shared_sweep(everything, batch, list(range(everything.num_layers + 1)), 6).answers
    reference = shared_sweep(only, batch, list(range(only.num_layers + 1)), 6).answers
    assert answers == reference  # sampling, penalties, min length, forced EOS: no effect
    assert answers != checkpoints["plain_answers"]  # the honoured fields did change answers
    suppressed = set(honoured["suppress_tokens"]) | {honoured["bad_words_ids"][0][0]}
    forbidden = suppressed | set(everything.policy.always_forbidden)
    stops = set(honoured["eos_token_id"])
    bigram = tuple(honoured["bad_words_ids"][1])
    for rows in answers.values():
        for row in rows:
            assert not forbidden & set(row) and not stops & set(row)
            assert row[:1] != honoured["begin_suppress_tokens"]
            assert all(tuple(row[i : i + 2]) != bigram for i in range(len(row) - 1))
    assert everything.image_token_id in forbidden  # vision placeholders are never answers


def test_the_log_lists_every_field_applied_or_neutralised(checkpoints) -> None:
    adapter = load_adapter(tiny_profile(checkpoints["everything"], checkpoints["family"]))
    text = "\n".join(adapter.policy.log_lines())
    for key in checkpoints["honoured"]:
        assert f"{key}=" in text, key
    for key in NEUTRALISED:
        assert f"{key}=" in text, key
    assert "vision_tokens_suppressed=" in text


def _cli_run(profiles: Path, runs: Path, *args: str) -> RunDir:
    base = ["--runs-dir", str(runs), "--profiles-dir", str(profiles)]
    result = CliRunner().invoke(cli, [*base, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return RunDir(runs / result.output.splitlines()[0].strip())


def test_cli_engines_and_analysis_write_the_same_answers_and_ids(checkpoints, tmp_path) -> None:
    """The Done-when of the decoding issue, through the real commands and run files."""
    profiles, runs = tmp_path / "profiles", tmp_path / "runs"
    profiles.mkdir()
    (profiles / "gc.toml").write_text(
        f'family = "auto"\nmodel = "{checkpoints["everything"]}"\ndtype = "float32"\n'
        f"batch_size = 3\nmax_new_tokens = {NEW_TOKENS}\n"
    )
    common = ["-p", "gc", "-t", "shapes-caption", "--limit", "5"]
    shared = _cli_run(profiles, runs, "sweep", *common, "--engine", "shared")
    naive = _cli_run(profiles, runs, "sweep", *common, "--engine", "naive")
    analysis = _cli_run(profiles, runs, "analyze", *common)

    def lines(run: RunDir) -> dict[str, tuple]:
        return {r["key"]: (r["prediction"], r["answer_ids"]) for r in run.samples()}

    assert lines(shared) == lines(naive)
    assert len(lines(shared)) == 5 * (len(shared.result()["layers"]) + 1)
    base = {key.removesuffix("@base"): v for key, v in lines(shared).items() if "@base" in key}
    assert lines(analysis) == base
    assert any(ids for _, ids in base.values())  # answers were not all empty
    log = "\n".join(e.get("message", "") for e in shared.events() if e.get("type") == "log")
    for key in [*checkpoints["honoured"], *NEUTRALISED]:
        assert f"{key}=" in log, key
