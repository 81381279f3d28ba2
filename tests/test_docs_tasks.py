"""docs/tasks.md cannot drift from the code: its examples run and its tables match the code.

The page marks every fenced block and every reference table with an HTML comment on the line
before it:

- `<!-- file: PATH [images: DIR] -->`: the block is written to PATH in a scratch folder; for a
  JSONL block with `images: DIR`, an image is drawn into DIR for every file name in it;
- `<!-- python -->`: the block is executed in the scratch folder;
- `<!-- run -->`: every `$ cliffscope ...` line is run there (`analyze` and `sweep` go as far
  as writing the run directory; the worker is not started);
- `<!-- not run: REASON -->`: a block that needs what tests do not have (the network);
- `<!-- table: NAME -->`: the Markdown table that follows is compared with the code.

Blocks run in page order, so a later block may use what an earlier one made. A fenced block
without a marker fails the test: nothing on the page escapes it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import shutil
import sys
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import pytest
from click.testing import CliRunner
from PIL import Image

from cliffscope.cli.main import cli
from cliffscope.errors import CliffscopeError
from cliffscope.metrics.registry import METRICS, get_metric
from cliffscope.paths import CHECKOUT_DIR
from cliffscope.store import RunStore
from cliffscope.tasks import get_task, load_task_file
from cliffscope.tasks.builtin import SHORT, builtin_specs
from cliffscope.tasks.shapes import ShapesConfig
from cliffscope.tasks.spec import AnswerKind, Columns, RowFilter, TaskSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DOC = CHECKOUT_DIR / "docs" / "tasks.md"
BLOCK_KINDS = ("file", "python", "run", "not run")
_MARKER = re.compile(r"^<!--\s*(.*?)\s*-->$")
_IMAGE_NAME = re.compile(r"\.(png|jpe?g)$", re.IGNORECASE)


@dataclass
class Block:
    kind: str  # file | python | run | not run
    arg: str  # what follows the kind in the marker
    text: str
    line: int  # of the opening fence, 1-based


def parse_doc(text: str) -> tuple[list[Block], dict[str, list[list[str]]]]:
    """The page's fenced blocks (each with its marker) and its marked tables (rows of cells)."""
    lines = text.splitlines()
    blocks: list[Block] = []
    tables: dict[str, list[list[str]]] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            marker = _MARKER.match(lines[i - 1]) if i else None
            kind, _, arg = (marker.group(1) if marker else "").partition(":")
            if kind.strip() not in BLOCK_KINDS:
                pytest.fail(f"docs/tasks.md:{i + 1}: fenced block without a marker (see header)")
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            blocks.append(Block(kind.strip(), arg.strip(), "\n".join(lines[i + 1 : end]), i + 1))
            i = end + 1
            continue
        marker = _MARKER.match(line)
        if marker and marker.group(1).startswith("table:"):
            name = marker.group(1).partition(":")[2].strip()
            rows = []
            j = i + 1
            while j < len(lines) and lines[j].startswith("|"):
                rows.append([c.strip() for c in lines[j].strip().strip("|").split("|")])
                j += 1
            tables[name] = rows[2:]  # drop the header and the |---| line
            i = j
            continue
        i += 1
    return blocks, tables


BLOCKS, TABLES = parse_doc(DOC.read_text(encoding="utf-8"))


# ---- running the blocks ---------------------------------------------------------------------


def draw_images(jsonl: str, folder: Path) -> dict[str, tuple[int, int]]:
    """A distinct image (colour and size) for every image file name in a JSONL block."""
    folder.mkdir(parents=True, exist_ok=True)
    sizes: dict[str, tuple[int, int]] = {}
    for line in jsonl.splitlines():
        for value in json.loads(line).values():
            if isinstance(value, str) and _IMAGE_NAME.search(value) and value not in sizes:
                n = len(sizes)
                sizes[value] = (24 + 8 * n, 16 + 4 * n)
                Image.new("RGB", sizes[value], (40 * n % 256, 120, 200)).save(folder / value)
    return sizes


def run_command(line: str, scratch: Path) -> Any:
    """`[VAR=value ...] cliffscope ARGS` through the real CLI; `$PWD` is the scratch folder."""
    words = shlex.split(line.replace("$PWD", str(scratch)))
    env = {}
    while words and re.match(r"^[A-Z_]+=", words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    assert words[0] == "cliffscope", line
    return CliRunner().invoke(cli, words[1:], env=env)


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Every block of the page run in order in one scratch folder; what the checks need."""
    scratch = tmp_path_factory.mktemp("docs-tasks").resolve()
    patch = pytest.MonkeyPatch()
    patch.chdir(scratch)
    for var in ("CLIFFSCOPE_TASKS", "CLIFFSCOPE_PROFILES"):
        patch.delenv(var, raising=False)
    patch.setenv("CLIFFSCOPE_RUNS", str(scratch / "runs"))
    patch.setenv("XDG_CONFIG_HOME", str(scratch / "config"))  # no user tasks of this machine
    patch.setattr(datasets.config, "HF_DATASETS_CACHE", str(scratch / "hf-cache"))
    patch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    # analyze / sweep: write the run directory for real, start no worker
    patch.setattr("cliffscope.worker.launch.launch", lambda *a, **k: None)
    patch.setattr("cliffscope.cli.follow.follow", lambda run, proc: 0)
    sizes: dict[str, dict[str, tuple[int, int]]] = {}
    commands: list[str] = []
    try:
        for block in BLOCKS:
            where = f"docs/tasks.md:{block.line}"
            if block.kind == "file":
                path, _, images = block.arg.partition(" images:")
                target = scratch / path.strip()
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(block.text + "\n", encoding="utf-8")
                if images:
                    sizes[path.strip()] = draw_images(block.text, scratch / images.strip())
            elif block.kind == "python":
                exec(compile(block.text, where, "exec"), {"__name__": "docs_example"})
            elif block.kind == "run":
                for line in block.text.splitlines():
                    if line.startswith("$ "):
                        result = run_command(line[2:], scratch)
                        assert result.exit_code == 0, f"{where}: {line}\n{result.output}"
                        commands.append(line[2:])
            else:
                assert block.arg, f"{where}: say why the block is not run"
        yield {"scratch": scratch, "sizes": sizes, "commands": commands}
    finally:
        patch.undo()


def test_every_kind_of_block_is_there(walked) -> None:
    kinds = {b.kind for b in BLOCKS}
    assert kinds == set(BLOCK_KINDS)
    assert len(walked["commands"]) >= 10


def test_every_task_file_loads_and_every_local_sample_reads(walked) -> None:
    scratch, sizes = walked["scratch"], walked["sizes"]
    files = [b.arg for b in BLOCKS if b.kind == "file" and b.arg.endswith(".toml")]
    assert len(files) == 6
    for name in files:
        spec = load_task_file(scratch / name)
        if spec.source == "hf" and spec.data_path is None:
            continue  # a hub task: loaded above, read in test_the_hub_task_fails_clearly
        task = get_task(str(scratch / name))
        data_file = Path(spec.data_path).relative_to(scratch) if spec.data_path else None
        data = sizes.get(data_file.as_posix(), {}) if data_file else {}
        for sample_id in task.ids():
            sample = task.get(sample_id)
            assert sample.image.mode == "RGB" and sample.references, (name, sample_id)
            if data:
                assert sample.image.size in data.values(), (name, sample_id)


def test_a_builtin_on_the_local_jsonl(walked) -> None:
    task = get_task(str(walked["scratch"] / "tasks/vqa-local.toml"))
    assert task.ids() == ["1001", "1002", "1003"] and task.skipped == {"no answer": 1}
    cat = task.get("1001")
    assert cat.references == ["black", "black", "grey"]  # answers[].answer of the base
    assert cat.prompt == SHORT.format(question="What color is the cat?")
    assert cat.image.size == walked["sizes"]["vqa/questions.jsonl"]["cat.png"]
    same = get_task("vqav2", walked["scratch"] / "vqa/questions.jsonl", {"image_dir": "images"})
    assert same.ids() == task.ids() and same.get("1001").image.size == cat.image.size


def test_the_from_scratch_task_filters_and_maps_nested_answers(walked) -> None:
    task = get_task(str(walked["scratch"] / "tasks/my-vqa.toml"))
    assert task.ids() == ["1002", "1003"]
    assert task.skipped == {"filter: answer_type in ['yes/no', 'number']": 1, "no answer": 1}
    two = task.get("1002")
    assert two.references == ["2", "two"] and two.meta["answer_type"] == "number"
    assert two.prompt.startswith("How many cats are there?\nAnswer the question")


def test_multiple_choice_letters_and_context(walked) -> None:
    task = get_task(str(walked["scratch"] / "tasks/my-choice.toml"))
    refs = {i: task.get(i).references for i in task.ids()}
    assert refs == {"m1": ["A"], "m2": ["B"], "m3": ["C"]}  # index, letter, option text
    first = task.get("m1").prompt
    assert first.startswith("Context: There are two shapes.\nWhich shape is on the left?\n")
    assert "A. circle\nB. square\nC. star\nAnswer with the option's letter" in first
    assert task.get("m2").prompt.startswith("What color is the square?\nA. red\nB. blue")
    assert get_metric("choice_accuracy").score_one("(B)", ["B"], ["red", "blue"]) == 1.0


def test_captions_use_row_numbers_and_no_question(walked) -> None:
    task = get_task(str(walked["scratch"] / "tasks/my-captions.toml"))
    assert task.ids() == ["0", "1"] and task.spec.columns.question is None
    sample = task.get("1")
    assert sample.question == "" and sample.references == ["a blue square and a green star",
                                                           "two shapes"]  # fmt: skip
    assert sample.prompt == "Provide a one-sentence caption for the provided image."


def test_saved_copies_hold_the_images(walked) -> None:
    """save_to_disk and the Parquet written from it still read with the image folder gone."""
    scratch = walked["scratch"]
    shutil.move(scratch / "vqa" / "images", scratch / "images-moved")
    try:
        for copy in ("vqa-disk", "vqa-parquet"):
            task = get_task("vqav2", scratch / copy)
            assert task.ids() == ["1001", "1002", "1003"], copy
            size = walked["sizes"]["vqa/questions.jsonl"]["street.png"]
            assert task.get("1003").image.size == size, copy
    finally:
        shutil.move(scratch / "images-moved", scratch / "vqa" / "images")


def test_the_hub_task_fails_clearly(walked) -> None:
    spec = load_task_file(walked["scratch"] / "tasks/textvqa-train.toml")
    assert (spec.hub_id, spec.split, spec.data_path) == ("lmms-lab/textvqa", "train", None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", str(walked["scratch"] / "hf-cache"))
        with pytest.raises(CliffscopeError) as err:
            get_task(str(walked["scratch"] / "tasks/textvqa-train.toml")).ids()
    assert "lmms-lab/textvqa" in err.value.what and "'train'" in err.value.what
    assert "--data" in err.value.hint


def test_shapes_file_and_set_reach_the_task_and_the_run(walked) -> None:
    task = get_task(str(walked["scratch"] / "tasks/shapes-hard.toml"))
    assert (task.config.n_shapes, task.config.distractors, len(task)) == (3, 2, 2000)
    assert task.config.question_types == ("color", "side")
    assert task.get(task.ids()[0]).image.size == (336, 336)
    runs = RunStore(walked["scratch"] / "runs").list()
    specs = [r.read_spec() for r in runs]
    shapes = [s for s in specs if s["task"]["name"] == "shapes-vqa"]
    assert [s["task"]["spec"]["shapes"] for s in shapes] == [{"image_size": 336, "grid": 0}]
    local = [s for s in specs if s["task"]["name"] == "vqa-local"]
    assert sorted(s["kind"] for s in local) == ["analysis", "sweep"]
    assert all(len(s["subset"]["ids"]) == 2 for s in local)


# ---- the tables against the code ------------------------------------------------------------


def _code(cell: str) -> str:
    assert cell.startswith("`") and cell.endswith("`"), cell
    return cell.strip("`")


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def check_defaults(rows: list[list[str]], defaults: dict[str, Any], free: set[str]) -> None:
    """A backticked default is TOML equal to the code's; free text only for None or `free`."""
    assert {_code(r[0]) for r in rows} == set(defaults)
    for row in rows:
        key, cell = _code(row[0]), row[1]
        if cell.startswith("`"):
            written = tomllib.loads(f"v = {_code(cell)}")["v"]
            assert written == _plain(defaults[key]), key
        else:
            assert defaults[key] is None or key in free, key


def _field_default(field: Any) -> Any:
    return field.default_factory() if field.default_factory is not None else field.default


def test_task_keys_table() -> None:
    defaults = {k: _field_default(f) for k, f in TaskSpec.model_fields.items()}
    defaults["columns"] = None
    check_defaults(TABLES["task-keys"], defaults | {"base": None}, {"name"})


def test_columns_table() -> None:
    defaults = {k: _field_default(f) for k, f in Columns.model_fields.items()}
    check_defaults(TABLES["columns"], defaults, set())


def test_shapes_knobs_table() -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(ShapesConfig)}
    check_defaults(TABLES["shapes-knobs"], defaults, set())


def test_filters_answer_kinds_and_metrics_tables() -> None:
    assert {_code(r[0]) for r in TABLES["filters"]} == set(RowFilter.model_fields)
    assert {_code(r[0]) for r in TABLES["answer-kinds"]} == set(typing.get_args(AnswerKind))
    rows = {_code(r[0]): r[1] for r in TABLES["metrics"]}
    assert set(rows) == set(METRICS)
    for name, scored in rows.items():
        assert scored == ("corpus" if get_metric(name).corpus_level else "per sample"), name


def test_builtin_tasks_table() -> None:
    rows = {_code(r[0]): r for r in TABLES["builtin-tasks"]}
    specs = {s.name: s for s in builtin_specs()}
    assert list(rows) == list(specs)
    for name, (_, data, kind, metric) in rows.items():
        spec = specs[name]
        assert (_code(kind), _code(metric)) == (spec.answer_kind, spec.metric), name
        if spec.source == "shapes":
            assert data.startswith("procedural"), name
            continue
        config = f" [`{spec.config_name}`]" if spec.config_name else ""
        assert data == f"`{spec.hub_id}`{config} : `{spec.split}`", name


def test_readme_links_the_page() -> None:
    readme = (CHECKOUT_DIR / "README.md").read_text(encoding="utf-8")
    assert "(docs/tasks.md)" in readme
