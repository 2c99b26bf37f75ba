"""Base class for config sections: strict keys, validated on assignment, and which keys the user gave."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, PrivateAttr


class Section(BaseModel):
    """A config section. Unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())
    # dotted keys the user set (config files and overrides), recorded by the loader; None = not loaded by it
    _given: frozenset | None = PrivateAttr(default=None)

    def __eq__(self, other) -> bool:
        """Equal settings are equal configs, however they were given."""
        return type(self) is type(other) and self.model_dump() == other.model_dump()

    __hash__ = None  # mutable, like any pydantic model

    def given_keys(self) -> frozenset:
        """The dotted keys set by the user rather than left at their defaults (`data.crop_size`, ...), so that
        a default can be told apart from the same value chosen on purpose."""
        if self._given is not None:
            return self._given
        keys = set()
        for name in self.model_fields_set:  # built in Python: the fields passed to the constructor
            value = getattr(self, name)
            keys.add(name)
            if isinstance(value, Section):
                keys.update(f"{name}.{k}" for k in value.given_keys())
        return frozenset(keys)


def dotted_keys(data: dict, prefix: str = "") -> set[str]:
    """Every key of a nested mapping as a dotted path, sections included (lists are leaves)."""
    keys = set()
    for key, value in data.items():
        keys.add(f"{prefix}{key}")
        if isinstance(value, dict):
            keys |= dotted_keys(value, f"{prefix}{key}.")
    return keys
