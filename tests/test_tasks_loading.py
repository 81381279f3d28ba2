"""Real-task definitions against tiny local copies built here in the datasets' real schemas.

Feature names and types below are copied from the dataset cards cited in
`cliffscope/tasks/builtin.py`; each fixture is written the way a user would bring it over
(save_to_disk, Parquet, a hub-snapshot folder, JSONL + images).
"""

from __future__ import annotations

import json

import datasets
import pytest
from PIL import Image

from cliffscope.errors import CliffscopeError, NotFoundError, ValidationError
from cliffscope.tasks import get_task, list_tasks
from cliffscope.tasks.spec import path_root

# ---- schemas from the dataset cards ------------------------------------------------------

V, Img = datasets.Value, datasets.Image
SCHEMAS: dict[str, datasets.Features] = {
    "vqav2": datasets.Features(
        {
            "question_type": V("string"),
            "multiple_choice_answer": V("string"),
            "answers": [
                {"answer": V("string"), "answer_confidence": V("string"), "answer_id": V("int64")}
            ],
            "image_id": V("int64"),
            "answer_type": V("string"),
            "question_id": V("int64"),
            "question": V("string"),
            "image": Img(),
        }
    ),
    "textvqa": datasets.Features(
        {
            "image_id": V("string"),
            "question_id": V("int32"),
            "question": V("string"),
            "question_tokens": [V("string")],
            "image": Img(),
            "image_width": V("int32"),
            "image_height": V("int32"),
            "flickr_original_url": V("string"),
            "flickr_300k_url": V("string"),
            "answers": [V("string")],
            "image_classes": [V("string")],
            "set_name": V("string"),
            "ocr_tokens": [V("string")],
        }
    ),
    "gqa": datasets.Features(
        {
            "id": V("string"),
            "imageId": V("string"),
            "question": V("string"),
            "answer": V("string"),
            "fullAnswer": V("string"),
            "isBalanced": V("bool"),
        }
    ),
    "chartqa": datasets.Features(
        {
            "type": V("string"),
            "question": V("string"),
            "answer": V("string"),
            "image": Img(),
        }
    ),
    "docvqa": datasets.Features(
        {
            "questionId": V("string"),
            "question": V("string"),
            "question_types": [V("string")],
            "image": Img(),
            "docId": V("int64"),
            "ucsf_document_id": V("string"),
            "ucsf_document_page_no": V("string"),
            "answers": [V("string")],
            "data_split": V("string"),
        }
    ),
    "scienceqa-img": datasets.Features(
        {
            "image": Img(),
            "question": V("string"),
            "choices": [V("string")],
            "answer": V("int8"),
            "hint": V("string"),
            "task": V("string"),
            "grade": V("string"),
            "subject": V("string"),
            "topic": V("string"),
            "category": V("string"),
            "skill": V("string"),
            "lecture": V("string"),
            "solution": V("string"),
        }
    ),
    "pope": datasets.Features(
        {
            "id": V("string"),
            "question_id": V("string"),
            "question": V("string"),
            "answer": V("string"),
            "image_source": V("string"),
            "image": Img(),
            "category": V("string"),
        }
    ),
    "coco-caption": datasets.Features(
        {
            "question_id": V("string"),
            "image": Img(),
            "question": V("string"),
            "answer": [V("string")],
            "id": V("int64"),
            "license": V("int8"),
            "file_name": V("string"),
            "coco_url": V("string"),
            "height": V("int32"),
            "width": V("int32"),
            "date_captured": V("string"),
        }
    ),
    "flickr30k": datasets.Features(
        {
            "image": Img(),
            "caption": [V("string")],
            "sentids": [V("string")],
            "img_id": V("string"),
            "filename": V("string"),
        }
    ),
}
GQA_IMAGES = datasets.Features({"id": V("string"), "image": Img()})


@pytest.fixture(autouse=True)
def _isolated_hf_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)


def img(color=(200, 30, 30), mode="RGB", size=(8, 6)):
    if len(color) == 4:
        return Image.new("RGBA", size, color)
    return Image.new("RGB", size, color).convert(mode)


def rows_for(name: str, n: int) -> dict[str, list]:
    """`n` rows of plausible values for every column of a schema."""
    out: dict[str, list] = {}
    for col, feat in SCHEMAS[name].items():
        if isinstance(feat, Img):
            out[col] = [img((10 * i, 40, 90)) for i in range(n)]
        elif isinstance(getattr(feat, "feature", None), dict):  # list of records
            keys = list(feat.feature)
            out[col] = [
                [{k: (f"{col}{i}" if k == keys[0] else None) for k in keys}] for i in range(n)
            ]
        elif not isinstance(feat, V):  # list of strings
            out[col] = [[f"{col}{i}a", f"{col}{i}b"] for i in range(n)]
        elif feat.dtype == "bool":
            out[col] = [True] * n
        elif feat.dtype.startswith("int"):
            out[col] = list(range(n))
        else:
            out[col] = [f"{col}-{i}" for i in range(n)]
    return out


def test_builtin_column_maps_name_real_columns():
    """Every column a built-in task reads exists in its dataset's card schema."""
    specs = {s.name: s for s in list_tasks()}
    for name, features in SCHEMAS.items():
        spec = specs[name]
        wanted = dict(spec.columns.mapped())
        if spec.columns.image_key:
            wanted.pop("image")
        wanted.update({f.column: f.column for f in spec.filters})
        for field, path in wanted.items():
            assert path_root(path) in features, f"{name}: {field} -> {path}"


def test_vqav2_save_to_disk_dict_with_answer_records_and_gaps(tmp_path):
    data = rows_for("vqav2", 4)
    data["question_id"] = [501, 502, 503, 504]
    data["answers"] = [
        [{"answer": a, "answer_confidence": "yes", "answer_id": k} for k, a in enumerate(ans)]
        for ans in (["two", "2", "two"], ["red"], [], ["yes"])
    ]
    data["image"][1] = img((0, 0, 255), mode="CMYK")
    data["image"][3] = None
    ds = datasets.Dataset.from_dict(data, features=SCHEMAS["vqav2"])
    datasets.DatasetDict({"validation": ds, "test": ds}).save_to_disk(tmp_path / "vqav2")

    task = get_task("vqav2", data_path=tmp_path / "vqav2")
    assert task.ids() == ["501", "502"]
    assert task.skipped == {"no answer": 1, "no image": 1}
    s = task.get("501")
    assert s.references == ["two", "2", "two"]
    assert s.prompt == "question-0\nAnswer the question using a single word or phrase."
    assert s.meta["question_type"] == "question_type-0" and s.meta["row"] == 0
    cmyk = task.get("502").image
    assert cmyk.mode == "RGB" and cmyk.size == (8, 6)
    r, g, b = cmyk.getpixel((0, 0))
    assert b > 200 and r < 60
    with pytest.raises(NotFoundError):
        task.get("503")


def test_split_missing_from_disk_dict_names_the_available_ones(tmp_path):
    ds = datasets.Dataset.from_dict(rows_for("vqav2", 1), features=SCHEMAS["vqav2"])
    datasets.DatasetDict({"train": ds}).save_to_disk(tmp_path / "d")
    with pytest.raises(NotFoundError) as err:
        get_task("vqav2", data_path=tmp_path / "d").ids()
    assert "train" in err.value.hint


def test_chartqa_parquet_row_number_ids_and_greyscale(tmp_path):
    data = rows_for("chartqa", 3)
    data["image"][2] = img((90, 90, 90), mode="L")
    datasets.Dataset.from_dict(data, features=SCHEMAS["chartqa"]).to_parquet(tmp_path / "c.parquet")
    task = get_task("chartqa", data_path=tmp_path / "c.parquet")
    assert task.ids() == ["0", "1", "2"]
    s = task.get("2")
    assert s.references == ["answer-2"] and s.meta["type"] == "type-2"
    assert s.image.mode == "RGB" and s.image.getpixel((1, 1)) == (90, 90, 90)


def test_gqa_hub_snapshot_folder_joins_images_by_image_id(tmp_path):
    root = tmp_path / "GQA"
    (root / "testdev_balanced_instructions").mkdir(parents=True)
    (root / "testdev_balanced_images").mkdir()
    q = rows_for("gqa", 3)
    q["imageId"] = ["n1", "n2", "n1"]
    datasets.Dataset.from_dict(q, features=SCHEMAS["gqa"]).to_parquet(
        root / "testdev_balanced_instructions" / "testdev-00000-of-00001.parquet"
    )
    images = {"id": ["n2", "n1"], "image": [img((0, 255, 0)), img((255, 0, 0))]}
    datasets.Dataset.from_dict(images, features=GQA_IMAGES).to_parquet(
        root / "testdev_balanced_images" / "testdev-00000-of-00001.parquet"
    )
    task = get_task("gqa", data_path=root)
    assert task.ids() == ["id-0", "id-1", "id-2"]
    assert task.get("id-0").image.getpixel((0, 0)) == (255, 0, 0)
    assert task.get("id-1").image.getpixel((0, 0)) == (0, 255, 0)
    assert task.get("id-2").references == ["answer-2"]


def test_scienceqa_choice_letters_context_and_image_filter(tmp_path):
    data = rows_for("scienceqa-img", 3)
    data["choices"] = [["cat", "dog"], ["sun", "moon", "star"], ["x", "y"]]
    data["answer"] = [1, 2, 0]
    data["hint"] = ["It barks.", "", ""]
    data["image"][2] = None
    ds = datasets.Dataset.from_dict(data, features=SCHEMAS["scienceqa-img"])
    ds.save_to_disk(tmp_path / "sqa")
    task = get_task("scienceqa-img", data_path=tmp_path / "sqa")
    assert task.ids() == ["0", "1"]
    assert task.skipped == {"filter: image present": 1}
    s = task.get("0")
    assert s.references == ["B"] and s.choices == ["cat", "dog"]
    assert s.prompt == (
        "Context: It barks.\nquestion-0\nA. cat\nB. dog\n"
        "Answer with the option's letter from the given choices directly."
    )
    assert task.get("1").references == ["C"] and task.get("1").prompt.startswith(
        "question-1\nA. sun"
    )


def test_coco_caption_references_and_fixed_prompt(tmp_path):
    data = rows_for("coco-caption", 2)
    data["answer"] = [[f"cap {i} {k}" for k in range(5)] for i in range(2)]
    datasets.Dataset.from_dict(data, features=SCHEMAS["coco-caption"]).to_parquet(
        tmp_path / "v.parquet"
    )
    task = get_task("coco-caption", data_path=tmp_path / "v.parquet")
    s = task.get("question_id-1")
    assert len(s.references) == 5 and s.question == ""
    assert s.prompt == "Provide a one-sentence caption for the provided image."


def test_renamed_columns_fail_clearly_then_work_with_overrides(tmp_path):
    data = rows_for("textvqa", 2)
    data["gold"] = data.pop("answers")
    datasets.Dataset.from_dict(data).save_to_disk(tmp_path / "t")
    with pytest.raises(ValidationError) as err:
        get_task("textvqa", data_path=tmp_path / "t").ids()
    assert "answers" in err.value.what and "columns.answers" in err.value.hint
    task = get_task("textvqa", data_path=tmp_path / "t", overrides={"columns.answers": "gold"})
    assert task.get("1").references == ["answers1a", "answers1b"]


def test_repeated_ids_are_renamed_not_dropped(tmp_path):
    data = rows_for("pope", 3)
    data["id"] = ["a", "b", "a"]
    datasets.Dataset.from_dict(data, features=SCHEMAS["pope"]).to_parquet(tmp_path / "p.parquet")
    task = get_task("pope", data_path=tmp_path / "p.parquet")
    assert task.ids() == ["a", "b", "a#2"] and task.renamed == 1
    assert task.get("a#2").meta["row"] == 2


def _jsonl_fixture(tmp_path):
    (tmp_path / "imgs").mkdir()
    img((0, 0, 255, 0)).save(tmp_path / "imgs" / "clear.png")
    img((255, 0, 0)).convert("P").save(tmp_path / "imgs" / "pal.png")
    (tmp_path / "imgs" / "broken.png").write_bytes(b"not an image")
    rows = [
        {"qid": "x1", "img": "clear.png", "q": "What?", "gold": ["nothing"]},
        {"qid": "x2", "img": "pal.png", "q": "Colour?", "gold": "red"},
        {"qid": "x3", "img": "broken.png", "q": "Broken?", "gold": "?"},
        {"qid": "x4", "img": None, "q": "No image?", "gold": "?"},
    ]
    (tmp_path / "data.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return tmp_path / "data.jsonl"


def test_jsonl_with_image_folder_and_custom_columns(tmp_path):
    path = _jsonl_fixture(tmp_path)
    overrides = {
        "image_dir": "imgs",
        "columns.id": "qid",
        "columns.image": "img",
        "columns.question": "q",
        "columns.answers": "gold",
        "columns.meta": [],
    }
    task = get_task("vqav2", data_path=path, overrides=overrides)
    assert task.ids() == ["x1", "x2", "x3"] and task.skipped == {"no image": 1}
    clear = task.get("x1").image
    assert clear.mode == "RGB" and clear.getpixel((0, 0)) == (255, 255, 255)  # alpha on white
    pal = task.get("x2")
    assert pal.image.mode == "RGB" and pal.references == ["red"]
    with pytest.raises(CliffscopeError) as err:
        task.get("x3")
    assert "x3" in err.value.what and "broken.png" in err.value.what


def test_bad_jsonl_line_is_located(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "ok"}\n{not json\n')
    with pytest.raises(ValidationError) as err:
        get_task("vqav2", data_path=path).ids()
    assert err.value.where.line == 2 and err.value.where.path == str(path)


def test_unreachable_hub_says_how_to_use_a_local_copy():
    with pytest.raises(CliffscopeError) as err:
        get_task("docvqa").ids()
    assert "lmms-lab/DocVQA" in err.value.what
    assert "--data" in err.value.hint and "save_to_disk" in err.value.hint
