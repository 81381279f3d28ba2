"""The registry: built-ins, user TOML tasks (strictly validated), overrides and snapshots."""

from __future__ import annotations

import textwrap

import pytest
import tomlkit
from pydantic import ValidationError as SpecError

from cliffscope.errors import NotFoundError, ValidationError
from cliffscope.tasks import (
    TaskSpec,
    apply_overrides,
    catalogue,
    find_spec,
    get_task,
    list_tasks,
    load_task_file,
    parse_set,
    task_from_snapshot,
)

BUILTINS = {
    "shapes-vqa",
    "shapes-caption",
    "vqav2",
    "textvqa",
    "gqa",
    "chartqa",
    "docvqa",
    "scienceqa-img",
    "pope",
    "coco-caption",
    "flickr30k",
}


@pytest.fixture(autouse=True)
def user_tasks(tmp_path, monkeypatch):
    directory = tmp_path / "tasks"
    directory.mkdir()
    monkeypatch.setenv("CLIFFSCOPE_TASKS", str(directory))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return directory


def write(directory, name, text):
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_lists_every_builtin_with_a_metric_and_kind():
    specs = {s.name: s for s in list_tasks()}
    assert set(specs) >= BUILTINS
    assert specs["scienceqa-img"].answer_kind == "choice"
    assert {specs[n].answer_kind for n in ("coco-caption", "flickr30k", "shapes-caption")} == {
        "caption"
    }
    for name in BUILTINS - {"shapes-vqa", "shapes-caption"}:
        assert specs[name].source == "hf" and specs[name].hub_id.startswith("lmms-lab/")


def test_spec_rejects_incoherent_definitions():
    with pytest.raises(SpecError, match="choices"):
        TaskSpec(name="x", hub_id="a/b", answer_kind="choice", columns={"answer": "a"})
    with pytest.raises(SpecError, match="placeholder"):
        TaskSpec(
            name="x", hub_id="a/b", columns={"answer": "a"}, prompt_template="{question} {foo}"
        )
    with pytest.raises(SpecError, match="hub_id or data_path"):
        TaskSpec(name="x", columns={"answer": "a"})
    with pytest.raises(SpecError, match="column path"):
        TaskSpec(name="x", hub_id="a/b", columns={"answers": "answers[].", "answer": None})
    with pytest.raises(SpecError):
        TaskSpec(name="../up", hub_id="a/b", columns={"answer": "a"})


def test_user_task_with_base_and_relative_path(user_tasks):
    write(
        user_tasks,
        "pope-adv.toml",
        """
        base = "pope"
        description = "adversarial only"
        data_path = "data/pope"
        [[filters]]
        column = "category"
        equals = "adversarial"
    """,
    )
    spec = find_spec("pope-adv")
    assert spec.name == "pope-adv" and spec.metric == "yes_no_accuracy"
    assert spec.data_path == str((user_tasks / "data" / "pope").resolve())
    assert spec.columns.id == "id" and spec.filters[0].equals == "adversarial"
    assert "pope-adv" in {s.name for s in list_tasks()}


@pytest.mark.parametrize(
    ("body", "line", "key"),
    [
        ('name = "t"\nbase = "vqav2"\nprompt_templte = "{question}"\n', 3, "prompt_templte"),
        ('base = "vqav2"\n\nmax_new_tokens = "many"\n', 3, "max_new_tokens"),
        ('base = "vqav2"\n[columns]\nanswer_col = "x"\n', 3, "columns.answer_col"),
        ('description = "x"\nbase = "vqa2"\n', 2, "base"),
        ('base = "shapes-vqa"\n[shapes]\ndistractors = 1\nn_shapes = 9\n', 4, "shapes.n_shapes"),
        ('base = "shapes-vqa"\n[shapes]\nn_shape = 2\n', 3, "shapes.n_shape"),
        ('base = "vqav2"\n\nmetric = "vqa_acc"\n', 3, "metric"),
    ],
)
def test_bad_user_task_names_file_line_and_key(user_tasks, body, line, key):
    path = user_tasks / "bad.toml"
    path.write_text(body)
    with pytest.raises(ValidationError) as err:
        load_task_file(path)
    where = err.value.where
    assert (where.path, where.line, where.key) == (str(path), line, key)


def test_broken_user_file_is_listed_with_its_error_but_does_not_hide_others(user_tasks):
    write(user_tasks, "broken.toml", 'base = "vqav2"\nsplit = 3\n')
    write(user_tasks, "fine.toml", 'base = "shapes-vqa"\n[shapes]\nn_shapes = 1\n')
    entries = {e.name: e for e in catalogue()}
    assert entries["broken"].spec is None and entries["broken"].error.where.line == 2
    assert "fine" in {s.name for s in list_tasks()}
    assert get_task("fine").config.n_shapes == 1


def test_unknown_task_name_lists_known_ones():
    with pytest.raises(NotFoundError) as err:
        find_spec("nosuchtask")
    assert "shapes-vqa" in err.value.hint


def test_parse_set_reads_toml_values():
    assert parse_set(["n_shapes=3", "split=test", "columns.meta=['a', 'b']", "x=1.5"]) == {
        "n_shapes": 3,
        "split": "test",
        "columns.meta": ["a", "b"],
        "x": 1.5,
    }
    with pytest.raises(ValidationError):
        parse_set(["no-equals-sign"])


def test_overrides_change_shapes_difficulty_and_reject_unknown_keys():
    task = get_task(
        "shapes-vqa",
        overrides={
            "n_shapes": 3,
            "shapes.distractors": 2,
            "pool_size": 50,
            "shapes": ["star", "cross", "circle"],
        },
    )
    sample = task.get("shapes-000007")
    assert len(sample.meta["objects"]) == 3 and len(task.ids()) == 50
    assert {o["shape"] for o in sample.meta["objects"]} == {"star", "cross", "circle"}
    with pytest.raises(NotFoundError):
        task.get("shapes-000050")
    with pytest.raises(ValidationError) as err:
        get_task("shapes-vqa", overrides={"n_shapes": 9})
    assert err.value.where.key == "shapes.n_shapes"
    with pytest.raises(ValidationError, match="unknown task setting"):
        apply_overrides(find_spec("vqav2"), {"colums.id": "x"})
    with pytest.raises(ValidationError, match="procedural"):
        get_task("shapes-vqa", data_path=".")


def test_unsetting_a_column_survives_snapshot_and_toml(tmp_path):
    spec = apply_overrides(
        find_spec("vqav2"),
        {"columns.question": "none", "answer_kind": "caption", "prompt_template": "Describe."},
    )
    assert spec.columns.question is None
    task = get_task("coco-caption")
    snap = tomlkit.parse(tomlkit.dumps(task.snapshot())).unwrap()
    rebuilt = task_from_snapshot(snap)
    assert rebuilt.spec == task.spec and rebuilt.spec.columns.question is None


def test_shapes_snapshot_rebuilds_identical_samples():
    task = get_task("shapes-caption", overrides={"n_shapes": 3, "image_size": 48, "seed": 5})
    rebuilt = task_from_snapshot(tomlkit.parse(tomlkit.dumps(task.snapshot())).unwrap())
    a, b = task.get("shapes-000003"), rebuilt.get("shapes-000003")
    assert a.references == b.references and a.image.tobytes() == b.image.tobytes()
    assert a.image.size == (48, 48)


def test_select_records_ids_and_their_hash():
    from cliffscope.tasks import ids_hash

    task = get_task("shapes-vqa")
    subset = task.select(4, seed=11)
    assert subset.ids == task.select(4, seed=11).ids and len(subset.ids) == 4
    assert subset.hash == ids_hash(subset.ids)
    assert subset.to_dict() == {"limit": 4, "seed": 11, "ids": subset.ids, "hash": subset.hash}


def test_every_builtin_task_names_a_registered_metric() -> None:
    from cliffscope.metrics import get_metric
    from cliffscope.tasks import list_tasks

    for spec in list_tasks():
        metric = get_metric(spec.metric)
        assert metric.higher_is_better in (True, False), spec.name
