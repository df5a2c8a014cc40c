"""The tasks a search can run; a new task is one file here and one line in TASKS."""

from __future__ import annotations

from automl.tasks.autoencoder import AutoencoderTask
from automl.tasks.base import Task
from automl.tasks.binary import BinaryTask
from automl.tasks.multiclass import MulticlassTask

TASKS: dict[str, type[Task]] = {
    "binary": BinaryTask,
    "multiclass": MulticlassTask,
    "autoencoder": AutoencoderTask,
}


def get_task(name: str) -> Task:
    """The task called ``name``; the error lists the ones there are."""
    try:
        return TASKS[name]()
    except KeyError:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}") from None
