"""`cliffscope tasks list|show` through the real entry point (click's CliRunner)."""

from __future__ import annotations

import json
import re

import datasets
import pytest
from click.testing import CliRunner
from PIL import Image

from cliffscope.cli.main import cli
from cliffscope.errors import NotFoundError
from cliffscope.tasks import get_task, ids_hash


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIFFSCOPE_TASKS", str(tmp_path / "no-user-tasks"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=True)


def test_show_shapes_vqa_previews_three_samples():
    result = run("tasks", "show", "shapes-vqa", "--limit", "3")
    assert result.exit_code == 0, result.output
    expected = get_task("shapes-vqa").select(3, 0).ids
    assert re.findall(r"shapes-\d{6}", result.output) == expected
    assert result.output.count("64x64 RGB") == 3
    assert "What color is the" in result.output and ids_hash(expected) in result.output


def test_show_json_matches_the_subset_a_run_would_record():
    result = run(
        "tasks",
        "show",
        "shapes-vqa",
        "--limit",
        "3",
        "--seed",
        "5",
        "--json",
        "--set",
        "n_shapes=3",
        "--set",
        "image_size=96",
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    ids = [s["id"] for s in out["samples"]]
    assert ids == out["subset"]["ids"] and out["subset"]["hash"] == ids_hash(ids)
    assert out["task"]["spec"]["shapes"] == {"n_shapes": 3, "image_size": 96}
    assert all(s["image_size"] == [96, 96] and s["references"] for s in out["samples"])


def test_list_json_has_builtin_and_real_tasks():
    result = run("tasks", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert {"shapes-vqa", "shapes-caption", "vqav2", "gqa", "pope", "coco-caption"} <= set(rows)
    assert rows["vqav2"]["hub_id"] == "lmms-lab/VQAv2" and rows["vqav2"]["split"] == "validation"
    assert rows["chartqa"]["metric"] == "relaxed_accuracy"
    assert all(r["origin"] == "builtin" for r in rows.values())


def test_list_table_shows_every_task():
    result = run("tasks", "list")
    assert result.exit_code == 0
    for name in ("shapes-vqa", "textvqa", "docvqa", "scienceqa-img", "flickr30k"):
        assert name in result.output


def test_show_real_task_from_local_parquet(tmp_path):
    features = datasets.Features(
        {
            "type": datasets.Value("string"),
            "question": datasets.Value("string"),
            "answer": datasets.Value("string"),
            "image": datasets.Image(),
        }
    )
    data = {
        "type": ["human", "augmented"],
        "question": ["How many bars?", "Max value?"],
        "answer": ["4", "12.5"],
        "image": [Image.new("RGB", (30, 20)), Image.new("L", (10, 40))],
    }
    datasets.Dataset.from_dict(data, features=features).to_parquet(tmp_path / "chart.parquet")
    result = run(
        "tasks", "show", "chartqa", "--data", str(tmp_path / "chart.parquet"), "--limit", "2"
    )
    assert result.exit_code == 0, result.output
    assert "How many bars?" in result.output and "12.5" in result.output
    assert "30x20 RGB" in result.output and "10x40 RGB" in result.output


def test_unknown_task_is_a_cliffscope_error():
    result = run("tasks", "show", "no-such-task")
    assert isinstance(result.exception, NotFoundError)
