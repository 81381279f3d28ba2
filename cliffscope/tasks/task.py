"""`Task`: a spec made usable — sample ids in a fixed order, and samples built on demand.

Engines never see dataset columns: they ask a task for `ids()`, pick a subset with
`select(limit, seed)` and call `get(id)` for each, receiving a `Sample` with an RGB image, the
prompt (template applied), reference answers as strings and, for multiple choice, the options.
Two implementations: `ShapesTask` (procedural, `shapes_task.py`) and `DatasetTask`
(`dataset_task.py`).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cliffscope.errors import NotFoundError
from cliffscope.tasks.sampling import ids_hash, select_ids
from cliffscope.tasks.spec import TaskSpec

if TYPE_CHECKING:
    from PIL import Image


@dataclass
class Sample:
    """One input for a model, with what a metric needs to score its answer."""

    id: str
    image: Image.Image
    question: str
    prompt: str
    references: list[str]
    choices: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Subset:
    """The sample ids a run uses, in order, and their fingerprint (for run.toml [subset])."""

    ids: list[str]
    hash: str
    limit: int | None
    seed: int

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seed": self.seed, "ids": list(self.ids), "hash": self.hash}
        if self.limit is not None:
            out["limit"] = self.limit
        return out


class Task(ABC):
    """A task ready to hand out samples."""

    def __init__(self, spec: TaskSpec, data_path: str | os.PathLike | None = None) -> None:
        self.spec = spec
        self.data_path = str(data_path) if data_path else spec.data_path
        #: rows left out of `ids()`, by reason ("no image", "filter: ...")
        self.skipped: dict[str, int] = {}
        #: rows whose id repeated an earlier one and became `ID#2`, `ID#3`, ...
        self.renamed = 0

    @property
    def name(self) -> str:
        return self.spec.name

    @abstractmethod
    def ids(self) -> list[str]:
        """Every usable sample id, in dataset order."""

    @abstractmethod
    def get(self, sample_id: str) -> Sample: ...

    def __len__(self) -> int:
        return len(self.ids())

    def select(self, limit: int | None = None, seed: int = 0) -> Subset:
        """The ids `--limit limit --seed seed` picks (see `sampling.select_ids`)."""
        ids = select_ids(self.ids(), limit, seed)
        return Subset(ids=ids, hash=ids_hash(ids), limit=limit, seed=seed)

    def samples(self, ids: Iterable[str]) -> Iterator[Sample]:
        for sample_id in ids:
            yield self.get(sample_id)

    def snapshot(self) -> dict[str, Any]:
        """What run.toml's [task] table holds: enough to rebuild this exact task."""
        out: dict[str, Any] = {"name": self.spec.name, "spec": self.spec.snapshot()}
        if self.data_path:
            out["data_path"] = str(self.data_path)
        return out

    def _unknown(self, sample_id: str) -> NotFoundError:
        return NotFoundError(
            f"task {self.name!r} has no sample {sample_id!r}",
            hint="ids come from `cliffscope tasks show NAME --json`",
        )
