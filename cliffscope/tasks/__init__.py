"""Tasks: named datasets + prompts + answer kinds + metrics (see `registry` for the entry points).

Importing this package is light (pydantic, PIL, numpy); `datasets` is imported only when a
task's rows are first read.
"""

from cliffscope.tasks.registry import (
    apply_overrides,
    catalogue,
    find_spec,
    get_task,
    list_tasks,
    load_task_file,
    parse_set,
    task_from_snapshot,
)
from cliffscope.tasks.sampling import ids_hash, select_ids
from cliffscope.tasks.spec import Columns, RowFilter, TaskSpec
from cliffscope.tasks.task import Sample, Subset, Task

__all__ = [
    "Columns",
    "RowFilter",
    "Sample",
    "Subset",
    "Task",
    "TaskSpec",
    "apply_overrides",
    "catalogue",
    "find_spec",
    "get_task",
    "ids_hash",
    "list_tasks",
    "load_task_file",
    "parse_set",
    "select_ids",
    "task_from_snapshot",
]
