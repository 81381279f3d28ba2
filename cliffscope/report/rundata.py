"""One run as the report sees it: read once from its directory, then only plain data.

Reports are made of runs in any state (queued, running, failed), so every field here may be
missing; readers downstream treat absent numbers as "not yet" rather than as errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cliffscope.store import RunDir


@dataclass
class RunData:
    id: str
    path: Path
    spec: dict[str, Any]
    status: str
    result: dict[str, Any] | None
    samples: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None

    @classmethod
    def load(cls, run: RunDir, samples: bool = True) -> RunData:
        """Read a run; `samples=False` skips samples.jsonl (partners need only the result)."""
        spec = run.spec
        status = run.status.value
        return cls(
            id=run.id,
            path=run.path,
            spec=spec,
            status=status,
            result=run.result(),
            samples=run.samples() if samples else [],
            problem=run.problem,
        )

    @property
    def kind(self) -> str:
        return str((self.result or {}).get("kind") or self.spec.get("kind") or "?")

    @property
    def res(self) -> dict[str, Any]:
        return self.result or {}

    @property
    def num_layers(self) -> int | None:
        value = self.res.get("num_layers")
        return value if isinstance(value, int) and value > 0 else None

    @property
    def profile(self) -> dict[str, Any]:
        return dict(self.spec.get("profile") or {})

    @property
    def task(self) -> dict[str, Any]:
        return dict(self.spec.get("task") or {})

    @property
    def task_spec(self) -> dict[str, Any]:
        return dict(self.task.get("spec") or {})

    @property
    def label(self) -> str:
        """Short legend text: profile on task, plus the run id's tail to tell twins apart."""
        profile = self.profile.get("name") or "?"
        task = self.task.get("name") or "?"
        return f"{profile} / {task} ({self.id[-4:]})"

    def same_experiment(self, other: RunData) -> bool:
        """Same model (and revision) on the same task: their cliffs can be compared."""
        keys = ("model", "revision")
        return (
            all(self.profile.get(k) == other.profile.get(k) for k in keys)
            and self.task.get("name") == other.task.get("name")
            and self.profile.get("model") is not None
        )


def find_partners(run: RunData, candidates: list[RunData]) -> dict[str, RunData]:
    """Per partner kind (`kinds.registry.partners_of`), the newest run of that kind of the same
    experiment among `candidates`, preferring one on the same sample subset: their cliffs are
    the estimates beside this run's."""
    from cliffscope.kinds.registry import kind_of, partners_of

    if kind_of(run.kind) is None:
        return {}
    subset = run.spec.get("subset", {}).get("hash")
    found = {}
    for want in partners_of(run.kind):
        matches = [
            c
            for c in candidates
            if c.kind == want and c.id != run.id and c.result and run.same_experiment(c)
        ]
        if matches:
            matches.sort(key=lambda c: (c.spec.get("subset", {}).get("hash") == subset, c.id))
            found[want] = matches[-1]
    return found


def store_partners(run: RunData, kinds: list[str]) -> dict[str, RunData]:
    """Look in the run's own store for partners of `kinds` (a single-run export of a run
    that lives in a store)."""
    from cliffscope.store import RunStore

    if not kinds or not (run.path / "run.toml").exists():
        return {}
    others = []
    for want in kinds:
        for other in RunStore(run.path.parent).list(kind=want):
            data = RunData(other.id, other.path, other.spec, "?", None)
            if other.id != run.id and run.same_experiment(data):
                others.append(RunData.load(other, samples=False))
    return find_partners(run, others)
