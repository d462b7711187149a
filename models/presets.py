"""One registry per model family: preset name -> config.

Every place that offers a choice of preset (CLI options, flow parameters, docs) derives it from the family's
registry, so a preset name is written in exactly one place. The lookup mirrors litgpt's `Config.from_name`: an
unknown name is refused with the registered names listed.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Generic, Literal, TypeVar

C = TypeVar("C")


class Presets(Generic[C]):
    """The named configs of one model family, with the name used when none is given.

    >>> sizes = Presets("demo net", {"small": 8, "large": 64}, default="small")
    >>> sizes.from_name("large")
    64
    >>> sizes.from_name("huge")
    Traceback (most recent call last):
    ...
    ValueError: demo net preset 'huge' is not registered; registered: large, small
    """

    def __init__(self, family: str, presets: Mapping[str, C], default: str) -> None:
        if default not in presets:
            raise ValueError(f"{family}: default preset {default!r} is not one of {sorted(presets)}")
        self.family = family
        self._presets = dict(presets)
        self.default = default

    @property
    def names(self) -> tuple[str, ...]:
        """Registered names, sorted: the order CLI choices and docs list them in."""
        return tuple(sorted(self._presets))

    def check(self, name: str, field: str = "preset") -> str:
        """`name` itself if registered; otherwise a ValueError naming `field`, the value and every registered name."""
        if name not in self._presets:
            raise ValueError(f"{self.family} {field} {name!r} is not registered; registered: {', '.join(self.names)}")
        return name

    def from_name(self, name: str) -> C:
        """The config registered under `name` (refused with the registered names when unknown)."""
        return self._presets[self.check(name)]

    @property
    def default_config(self) -> C:
        return self._presets[self.default]

    def items(self) -> Iterator[tuple[str, C]]:
        return iter(sorted(self._presets.items()))

    def help(self) -> str:
        """One line for a CLI option's help: the choices and the default."""
        return f"{self.family} preset: one of {', '.join(self.names)} (default {self.default})"

    @property
    def literal(self) -> Any:
        """`Literal[...]` of the registered names: a flow parameter's annotation (Prefect builds its form from it)."""
        return Literal[self.names]  # type: ignore[valid-type]

    def __contains__(self, name: object) -> bool:
        return name in self._presets

    def __getitem__(self, name: str) -> C:
        return self.from_name(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self._presets)
