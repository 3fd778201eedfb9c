"""Named options declared once: model families, likelihoods, architectures, decoder heads, presets.

Each name is registered by the module that implements it (``repvae.models.*``); the config check,
the CLI's choices and the error messages all read the names from here, so there is no second list
to keep in step. The registries live in the config layer because the config check needs the
names; what they hold (builders, family specifications) is defined by the models layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from repvae.config.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> entry, in registration order. ``field`` is the config field (or flag) whose value
    is one of the names: it starts every error message."""

    def __init__(self, field: str, what: str) -> None:
        self.field = field
        self.what = what
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise ConfigError(
                f"{self.field}: unknown {self.what} {name!r}; choose from {self.names()}"
            )
        return self._entries[name]

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(list(self._entries.items()))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
