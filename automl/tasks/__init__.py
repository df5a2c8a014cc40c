"""The tasks a search can run; a new task is one file here and one line in TASKS."""

from __future__ import annotations

from automl.data import rebuild
from automl.settings.choices import allowed
from automl.settings.run_config import SearchConfig
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


def check_config(config: SearchConfig) -> SearchConfig:
    """Every check of ``config``: its declared ones (:meth:`SearchConfig.validate`), then those
    of its task: an objective the task can select on, image sizes its models can be built at.
    Returns ``config``.

    Raises:
        ValueError: one line naming the option, what it got and what is allowed.
    """
    config.validate()
    task = get_task(config.task)
    objectives = task.objectives(config.validation)
    if config.objective is not None and config.objective not in objectives:
        raise ValueError(f"--objective: got {config.objective!r} for the {config.task} task with "
                         f"--validation {config.validation}; choose {allowed(objectives)}")
    for size in (config.image_size, config.screen_size):
        if size:
            task.check_image_size(size, fixed=config.fixed, families=config.families)
    return config


def objective_name(config: SearchConfig) -> str:
    """The objective a run of ``config`` maximises (or minimises:
    :func:`automl.settings.choices.objective_direction`): ``--objective`` or the task's."""
    return config.objective or get_task(config.task).default_objective(config.validation)


def task_data(config: SearchConfig, *, log=print) -> tuple[Task, rebuild.RunData]:
    """The task of ``config`` with the classes of its data, and the run's data
    (:func:`automl.data.rebuild.run_data`) with each split reduced to the rows the task can use.

    Raises:
        ValueError: a label of the data the task cannot use (naming its first row), a bad row
            of a manifest, or an option the data's budget defaults do not allow.
    """
    data = rebuild.run_data(config, log=log)
    task = get_task(data.config.task)
    task.use_labels(data.index, data.config.positive)
    data.parts = {name: task.select(part) for name, part in data.parts.items()}
    return task, data


def label_errors(name: str, index, positive: str) -> list[str]:
    """Why task ``name`` cannot use the labels of ``index`` (none: it can), for ``automl data check``."""
    try:
        get_task(name).use_labels(index, positive)
    except ValueError as error:
        return [str(error)]
    return []
