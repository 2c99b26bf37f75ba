"""Checkpoint formats, registered by name: sources `videojepa convert --from NAME` reads, targets `--to NAME` writes.

A format is added with one class and one decorator, from anywhere (`videojepa convert --help` lists them):

    @register_source
    class MyFormat(CheckpointSource):
        name = "myformat"
        description = "a .ckpt file of MyLab's trainer"
        def read(self, path):                       # -> (encoder, predictor or None, EncoderCard[, writers...])
            ...

`read` builds our encoder (`videojepa.models.registry.encoder_from_arch`), loads every source tensor strictly
(`videojepa.interop.state.SourceState`) and describes it with an `EncoderCard` (architecture, clip protocol,
source); `convert` writes the result as an encoder folder that `load_encoder` reads. A classifier's reader
returns, after the card, a writer `write(out)` of its extra file: the probe (`videojepa.eval.probe_file`) or
the fine-tuned head (`videojepa.finetune.export`) that `videojepa.load_classifier(out)` joins to the encoder.
`hub = True` lets SRC be a Hugging Face Hub model id (fetched into the Hub cache, `hub`); `options` names the
keyword options `read` takes (the CLI's source-specific flags, refused for the other formats). A target's
`write(folder, out)` writes a `convert` output folder in its format.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from torch import nn

from videojepa.encoder_io import EncoderCard
from videojepa.errors import UserError


class CheckpointSource(ABC):
    """A format `convert` reads (module docstring)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    hub: ClassVar[bool] = False  # SRC may be a Hugging Face Hub model id
    options: ClassVar[tuple[str, ...]] = ()  # keyword options `read` takes

    @abstractmethod
    def read(self, path: Path, **options) -> tuple[nn.Module, nn.Module | None, EncoderCard] | tuple:
        """(encoder, predictor or None, the encoder's card) from the file or folder `path`, and for a classifier
        a writer `write(out)` of its probe or head (module docstring)."""


class CheckpointTarget(ABC):
    """A format `export` writes (module docstring)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    @abstractmethod
    def write(self, folder: Path, out: Path) -> Path:
        """Write the encoder folder `folder` (a `convert` output) into `out` in this format; returns `out`."""


_SOURCES: dict[str, type[CheckpointSource]] = {}
_TARGETS: dict[str, type[CheckpointTarget]] = {}


def _register(table: dict, cls: type, base: type, what: str) -> type:
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise TypeError(f"{cls!r}: a checkpoint {what} subclasses {base.__name__}")
    if not cls.name:
        raise TypeError(f"{cls.__qualname__}: a checkpoint {what} needs a non-empty class attribute `name`")
    if cls.__abstractmethods__:  # refused here, not when `convert` first instantiates it
        raise TypeError(f"{cls.__qualname__}: a checkpoint {what} defines {', '.join(sorted(cls.__abstractmethods__))}")
    if cls.name in table and table[cls.name] is not cls:
        raise TypeError(f"checkpoint {what} {cls.name!r} is already registered by {table[cls.name].__qualname__}")
    table[cls.name] = cls
    return cls


def register_source(cls: type[CheckpointSource]) -> type[CheckpointSource]:
    """Class decorator: add a source format under its `name` (`videojepa convert --from NAME`)."""
    return _register(_SOURCES, cls, CheckpointSource, "source")


def register_target(cls: type[CheckpointTarget]) -> type[CheckpointTarget]:
    """Class decorator: add a target format under its `name` (`videojepa convert --to NAME`)."""
    return _register(_TARGETS, cls, CheckpointTarget, "target")


def unregister_source(name: str) -> None:
    _SOURCES.pop(name, None)


def unregister_target(name: str) -> None:
    _TARGETS.pop(name, None)


def list_sources() -> list[str]:
    """The source names in alphabetical order (the order modules register in depends on their imports)."""
    return sorted(_SOURCES)


def list_targets() -> list[str]:
    return sorted(_TARGETS)


def get_source(name: str) -> CheckpointSource:
    if name not in _SOURCES:
        raise UserError(f"unknown source format {name!r}; available: {', '.join(_SOURCES)}")
    return _SOURCES[name]()


def get_target(name: str) -> CheckpointTarget:
    if name not in _TARGETS:
        raise UserError(f"unknown target format {name!r}; available: {', '.join(_TARGETS)}")
    return _TARGETS[name]()


def describe(table: str) -> str:
    """'name: description; ...' of the sources or the targets, for `videojepa convert --help`."""
    found = _SOURCES if table == "sources" else _TARGETS
    return "; ".join(
        f"{name}: {found[name].description}" if found[name].description else name for name in sorted(found)
    )
