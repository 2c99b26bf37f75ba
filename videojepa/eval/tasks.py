"""Evaluation protocols: what a task measures on a frozen encoder, registered by name (`tasks[].evaluation`).

    @register_evaluation
    class Retrieval(Evaluation):
        name = "retrieval"                    # tasks: [{name: ..., evaluation: retrieval, ...}]
        result = RetrievalResult              # a TaskResult subclass: its results.json entry, typed

        def run(self) -> RetrievalResult: ...

        @classmethod
        def markdown(cls, results, tasks) -> list[str]: ...   # its lines of results.md

The contract an evaluation protocol fulfils, so that `videojepa probe` (`runner.run_probe`), its config and its
report need no change to gain one (classification is `classification.Classification`; a localisation
protocol, boxes scored by frame mAP, or a retrieval one, recall@k, is another subclass):
- `Evaluation(context, task, data)`: one task of the run. `context` (`TaskContext`) holds what every task of
  the run shares: the config, the frozen encoder (prepared: precision, device) and its identity for feature
  cache keys, the feature source (videos decoded once for all tasks and encoders) and the log. `task` is the
  task's config entry (`config.TaskConfig`: name, train, val, ...) and `data` its resolved clip protocol (the
  shared `data` section, the task's overrides, the encoder card's defaults). Build the datasets here, so that a
  bad path or unlabelled data fails before any task computes features.
- `run()`: evaluate and return the task's typed result, a `TaskResult` subclass (its class is `result`): the
  common fields below plus the protocol's own; it is written into results.json's `tasks` list as is.
- `markdown(results, tasks)`: the lines results.md shows for this protocol's tasks (`results`: the whole run).
- A protocol that needs other task keys (box files, a query list) adds them to the task's config entry
  (`config.TaskConfig`, where the config loader refuses unknown keys) and checks them in `check(cfg, index)`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
from pydantic import BaseModel, ConfigDict

from videojepa.errors import ConfigError

if TYPE_CHECKING:  # the config module imports this one
    from videojepa.data.config import DataConfig
    from videojepa.eval.config import ProbeConfig, TaskConfig
    from videojepa.eval.features import FeatureSource


class TaskResult(BaseModel):
    """What every evaluation protocol reports of a task (results.json `tasks[]`)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    evaluation: str = "classification"  # the protocol that scored it (absent in files written before protocols)
    train: str
    val: str
    num_train: int  # training videos
    num_val: int  # validation videos scored
    protocol: dict  # the clip protocol: frames_per_clip, frame_step, fps, num_clips, num_views, crop_size
    seconds: dict[str, float]


@dataclass
class TaskContext:
    """What every task of one `videojepa probe` run shares."""

    cfg: ProbeConfig
    encoder: torch.nn.Module
    identity: dict  # the encoder's identity in feature-cache keys
    source: FeatureSource
    log: Callable[[str], None]


class Evaluation(ABC):
    """One task evaluated by a registered protocol; see the module docstring for the contract."""

    name: ClassVar[str] = ""
    result: ClassVar[type[TaskResult]] = TaskResult

    def __init__(self, context: TaskContext, task: TaskConfig, data: DataConfig):
        self.context, self.cfg, self.encoder = context, context.cfg, context.encoder
        self.task, self.data, self.log = task, data, context.log

    @classmethod
    def check(cls, cfg: ProbeConfig, index: int) -> None:
        """Rules for task `index` of `cfg` beyond its config entry's types (raise ConfigError naming the key);
        none by default."""
        return

    @abstractmethod
    def run(self) -> TaskResult:
        """Evaluate the task; its typed result."""

    @classmethod
    def markdown(cls, results: dict, tasks: list[dict]) -> list[str]:
        """results.md lines for this protocol's `tasks` (entries of results.json's tasks list)."""
        return [f"| {t['name']} | {cls.name} | {t['num_train']} / {t['num_val']} |" for t in tasks]


_EVALUATIONS: dict[str, type[Evaluation]] = {}


def register_evaluation(cls: type[Evaluation]) -> type[Evaluation]:
    """Class decorator: add an evaluation protocol under its `name` (`tasks[].evaluation`)."""
    if not cls.name:
        raise TypeError(f"{cls.__qualname__}: an evaluation protocol needs a non-empty class attribute `name`")
    if not (isinstance(cls.result, type) and issubclass(cls.result, TaskResult)):
        raise TypeError(f"evaluation {cls.name!r}: `result` must be a TaskResult subclass, got {cls.result!r}")
    if cls.name in _EVALUATIONS and _EVALUATIONS[cls.name] is not cls:
        raise TypeError(f"evaluation {cls.name!r} is already registered by {_EVALUATIONS[cls.name].__qualname__}")
    _EVALUATIONS[cls.name] = cls
    return cls


def unregister_evaluation(name: str) -> None:
    _EVALUATIONS.pop(name, None)


def list_evaluations() -> list[str]:
    return list(_EVALUATIONS)


def get_evaluation(name: str, key: str = "evaluation") -> type[Evaluation]:
    if name not in _EVALUATIONS:
        raise ConfigError(key, f"unknown evaluation {name!r}; allowed values: {', '.join(_EVALUATIONS)}")
    return _EVALUATIONS[name]


def task_result(entry: dict | TaskResult) -> TaskResult:
    """A results.json task entry as the typed result of the protocol it names."""
    if isinstance(entry, TaskResult):
        return entry
    return get_evaluation(entry.get("evaluation", "classification")).result.model_validate(entry)
