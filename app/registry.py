"""Small name → component registries, so a YAML config can pick components by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Generic[T]):
    """A named table of components; ``registry.register("name")`` decorates one entry.

    Args:
        label: what the entries are, in words (``"sampler"``, ``"block type"``), used in errors.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator adding its argument as entry ``name`` (ValueError if the name is taken)."""

        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.label} {name!r} is registered twice")
            self._items[name] = item
            return item

        return add

    def get(self, name: str, key: str | None = None) -> T:
        """The entry ``name``; the error names the config ``key`` and lists the choices."""
        try:
            return self._items[name]
        except KeyError:
            where = f"{key}: " if key else ""
            raise ValueError(
                f"{where}unknown {self.label} {name!r}; choose one of {sorted(self._items)}"
            ) from None

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items
