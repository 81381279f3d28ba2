"""Odd dataset rows and images, end to end through the real analysis and sweep jobs and the
Markdown export: CMYK, greyscale, alpha, palette with transparency, 1x1, 3000x2000, a corrupt
file, a decompression bomb; rows with no image, no answer, an empty answer, a unicode answer,
hostile Markdown in the question and `../` in the sample id. Usable rows are answered, unusable
ones cost one sample each with a message naming it, gaps are counted, nothing escapes the run
directory, and the export escapes the dataset's text.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from cliffscope.errors import CliffscopeError
from cliffscope.store import RunStatus, RunStore
from cliffscope.tasks.registry import get_task
from tests.test_reliability_support import write_profile


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height (what a decompression bomb looks like)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def _save(image: Image.Image, path: Path, **kw) -> str:
    image.save(path, **kw)
    return path.name


HOSTILE_QUESTION = "Colour | <script>alert(1)</script> `rm -rf` *x*\n# heading?"


def odd_dataset(root: Path) -> Path:
    """JSONL + image folder: every image form the issue lists, and rows with gaps."""
    images = root / "imgs"
    images.mkdir(parents=True)
    red = Image.new("RGB", (40, 30), (200, 30, 30))
    rgba = Image.new("RGBA", (40, 30), (0, 0, 255, 0))
    rgba.paste((0, 200, 0, 255), (10, 10, 30, 20))
    palette = red.convert("P")
    palette.info["transparency"] = 0
    files = {
        "cmyk": _save(red.convert("CMYK"), images / "cmyk.jpg"),
        "grey": _save(red.convert("L"), images / "grey.png"),
        "alpha": _save(rgba, images / "alpha.png"),
        "palette-alpha": _save(palette, images / "pal.png", transparency=0),
        "one-pixel": _save(Image.new("RGB", (1, 1), (9, 9, 9)), images / "one.png"),
        "large": _save(red.resize((3000, 2000)), images / "large.jpg", quality=30),
        "broken": "broken.png",
        "bomb": "bomb.png",
    }
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (images / "bomb.png").write_bytes(_png_claiming(20_000, 20_000))
    rows = [{"qid": k, "img": v, "q": "What colour?", "gold": ["red"]} for k, v in files.items()]
    rows += [
        {"qid": "no-image", "img": None, "q": "What colour?", "gold": ["red"]},
        {"qid": "no-answer", "img": "grey.png", "q": "What colour?", "gold": None},
        {"qid": "empty-answer", "img": "grey.png", "q": "What colour?", "gold": [""]},
        {"qid": "unicode", "img": "grey.png", "q": "Quelle couleur ? 何色？", "gold": ["红色 🚗"]},
        {"qid": "../../escape", "img": "cmyk.jpg", "q": HOSTILE_QUESTION, "gold": ["a|b <i>"]},
    ]
    data = root / "data.jsonl"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    task = root / "odd.toml"
    task.write_text(
        'name = "odd"\nbase = "vqav2"\ndata_path = "data.jsonl"\nimage_dir = "imgs"\n'
        '[columns]\nid = "qid"\nimage = "img"\nquestion = "q"\nanswers = "gold"\nmeta = []\n'
    )
    return task


UNUSABLE = {"broken", "bomb", "empty-answer"}  # read, then refused with a message
SKIPPED = {"no-image", "no-answer"}  # left out of the id list, counted


@pytest.mark.slow
def test_odd_rows_and_images_through_analysis_sweep_and_export(
    tmp_path: Path, tiny_llava_path: Path
) -> None:
    from cliffscope.report import export_runs
    from cliffscope.run_factory import new_run
    from cliffscope.worker.runner import run_worker

    task_file = odd_dataset(tmp_path / "data")
    task = get_task(str(task_file))
    ids = task.ids()
    assert task.skipped == {"no image": 1, "no answer": 1}
    assert not SKIPPED & set(ids) and len(ids) == 11
    write_profile(tmp_path / "profiles", tiny_llava_path)
    store = RunStore(tmp_path / "runs")
    made = {
        kind: new_run(
            store, kind, "tiny", str(task_file), params, profiles_dir=tmp_path / "profiles"
        )
        for kind, params in (("analysis", {"map_samples": 20}), ("sweep", {"layers": [0, 3]}))
    }
    for run in made.values():
        assert run_worker(run.path) == 0, run.events()[-2:]
        assert run.status is RunStatus.DONE
        lines = run.samples()
        failed = {r["id"]: r["error"] for r in lines if r.get("error")}
        assert set(failed) == UNUSABLE, failed
        for sample_id, message in failed.items():
            assert sample_id in message  # names the sample (and the file, for images)
        done = {r["id"] for r in lines if not r.get("error")}
        assert done == set(ids) - UNUSABLE  # every odd image was answered
        result = run.result()
        assert result["complete"] and result["n_failed"] == len(UNUSABLE)
        assert result["n_samples"] == len(done)
        warnings = [e["message"] for e in run.events() if e.get("level") == "warning"]
        assert len(warnings) == len(UNUSABLE)
    analysis = made["analysis"]
    unicode = next(r for r in analysis.samples() if r["id"] == "unicode")
    assert unicode["references"] == ["红色 🚗"]
    written = [p for p in tmp_path.rglob("*") if "escape" in p.name]
    assert written and all(
        analysis.path / "maps" in p.parents or analysis.path / "images" in p.parents
        for p in written
    )

    report = export_runs([analysis], tmp_path / "report", formats=("md",))
    text = report.markdown.read_text(encoding="utf-8")
    assert "<script>" not in text and "<i>" not in text and "\n# heading" not in text
    assert "红色 🚗" in text


def test_oversized_image_is_a_sample_error_not_a_crash(tmp_path: Path) -> None:
    """PIL refuses images over ~179 megapixels with DecompressionBombError (not an OSError):
    it must come out as a CliffscopeError, which costs one sample, not the run."""
    from cliffscope.tasks.images import load_rgb

    (tmp_path / "bomb.png").write_bytes(_png_claiming(20_000, 20_000))
    for value in (_png_claiming(20_000, 20_000), "bomb.png", {"bytes": None, "path": "bomb.png"}):
        with pytest.raises(CliffscopeError, match="pixels"):
            load_rgb(value, tmp_path)


def test_undecodable_images_in_arrow_datasets_cost_one_sample(tmp_path: Path) -> None:
    """save_to_disk / Parquet / hub datasets decode their images when a row is read: a corrupt
    or oversized image there must also be the sample's CliffscopeError, not end the run."""
    import io

    import datasets

    good = io.BytesIO()
    Image.new("RGB", (8, 6), (1, 2, 3)).save(good, format="PNG")
    images = [good.getvalue(), b"junk, not an image", _png_claiming(20_000, 20_000)]
    features = datasets.Features(
        {
            "question_id": datasets.Value("int64"),
            "question": datasets.Value("string"),
            "answers": [datasets.Value("string")],
            "image": datasets.Image(),
        }
    )
    rows = {
        "question_id": [1, 2, 3],
        "question": ["What colour?"] * 3,
        "answers": [["red"]] * 3,
        "image": [{"bytes": b, "path": None} for b in images],
    }
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(tmp_path / "ds")
    overrides = {"columns.id": "question_id", "columns.meta": []}
    task = get_task("textvqa", data_path=tmp_path / "ds", overrides=overrides)
    assert task.get("1").image.size == (8, 6)
    for sample_id in ("2", "3"):
        with pytest.raises(CliffscopeError) as err:
            task.get(sample_id)
        assert f"sample {sample_id!r}" in err.value.what, err.value.what


def test_image_names_starting_with_a_tilde_are_just_names(tmp_path: Path) -> None:
    """A dataset may name a file `~draft.png`; pathlib reads that as the home of user
    `draft.png` and raises RuntimeError, which would end the run."""
    from cliffscope.tasks.images import load_rgb

    Image.new("RGB", (3, 2), (4, 5, 6)).save(tmp_path / "~draft.png")
    assert load_rgb("~draft.png", tmp_path).getpixel((0, 0)) == (4, 5, 6)
    with pytest.raises(CliffscopeError, match="not found"):
        load_rgb("~no-such-user-here/x.png", tmp_path)
