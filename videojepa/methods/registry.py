"""The method registry: `register_method(cls)` makes a method buildable by `method.name`.

A method class declares everything the rest of the library needs to know about it (its networks and
their roles, its config section and rules, its FLOPs per step), so the trainer, the config loader and the FLOPs
accountant never name a method. Registering checks those declarations, so a method that forgot one
fails when it is defined, not halfway through a run; it also registers the method's config section
(`Method.config_section`), which is how `method:` in a config is validated (`videojepa.config.schema`).
"""

from __future__ import annotations

import logging

from videojepa.config.schema import register_method_section, unregister_method_section
from videojepa.errors import ConfigError
from videojepa.models.roles import check_roles

log = logging.getLogger("videojepa.train")

_METHODS: dict[str, type] = {}


def register_method(cls: type) -> type:
    """Class decorator (or plain call): add a `Method` subclass under its `name`."""
    name = getattr(cls, "name", "")
    if not name:
        raise TypeError(f"{cls.__qualname__}: a method needs a non-empty class attribute `name`")
    if name in _METHODS and _METHODS[name] is not cls:
        raise TypeError(f"method name {name!r} is already registered by {_METHODS[name].__qualname__}")
    if not callable(getattr(cls, "flops_components", None)):
        raise TypeError(
            f"method {name!r} ({cls.__qualname__}) declares no FLOPs: define the classmethod "
            f"`flops_components(cfg, shape)` returning its `videojepa.flops.Component`s"
        )
    check_roles(cls, name)
    register_method_section(name, cls.config_section)
    _METHODS[name] = cls
    return cls


def unregister_method(name: str) -> None:
    _METHODS.pop(name, None)
    unregister_method_section(name)


def list_methods() -> list[str]:
    return list(_METHODS)


def get_method(name: str) -> type:
    if name not in _METHODS:
        raise ConfigError("method.name", f"unknown method {name!r}; allowed values: {', '.join(_METHODS)}")
    return _METHODS[name]


def build_method(cfg):
    """The configured method, started from model.init's weights when set (a checkpoint found in run.dir later
    replaces them on resume)."""
    method = get_method(cfg.method.name)(cfg)
    if cfg.model.init:
        log.info("model.init: %s from %s", ", ".join(method.initialize_from(cfg.model.init)), cfg.model.init)
    return method


def check_config(cfg) -> None:
    """The rules of the config's method that span other sections (`Method.check_config`); the trainer and the
    CLI commands run them before any work. Its own section's keys were checked when the config was loaded."""
    get_method(cfg.method.name).check_config(cfg)
