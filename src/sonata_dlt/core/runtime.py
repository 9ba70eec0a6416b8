"""What every service call needs: settings, database, parties, and typed collaborators.

The runtime is built once per process by the start-up wiring (``startup.wiring``), which attaches the
collaborators the domains need (the ledger backend, the keyring, the product schema registry, a billing input
source...). Each collaborator is reached through a typed ``Component`` key that the domain owning it defines, so
``runtime.components[KEYRING]`` is a ``Keyring`` to the type checker, and the core never imports a domain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, Protocol, TypeVar, cast

from sonata_dlt.core.parties import PartyDirectory
from sonata_dlt.settings import Settings
from sonata_dlt.storage.db import Database

T = TypeVar("T")


class Component(Generic[T]):
    """A typed key for one collaborator of a runtime; ``name`` only shows in messages."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Component({self.name!r})"


class Components:
    """The collaborators attached to a runtime, each under its typed key."""

    def __init__(self) -> None:
        self._values: dict[Component[Any], Any] = {}

    def __getitem__(self, key: Component[T]) -> T:
        try:
            return cast(T, self._values[key])
        except KeyError:
            raise LookupError(f"the runtime has no {key.name}; the start-up wiring attaches it") from None

    def __setitem__(self, key: Component[T], value: T) -> None:
        self._values[key] = value

    def __delitem__(self, key: Component[Any]) -> None:
        del self._values[key]

    def __contains__(self, key: Component[Any]) -> bool:
        return key in self._values

    def get(self, key: Component[T]) -> T | None:
        return cast("T | None", self._values.get(key))

    def pop(self, key: Component[T]) -> T | None:
        return cast("T | None", self._values.pop(key, None))


class GroupCommitRunner(Protocol):
    """Runs group-commit jobs somewhere else (the writer process, ``startup.writer_process``)."""

    @property
    def alive(self) -> bool: ...

    async def run(self, function: Callable[..., Any], *args: Any) -> Any: ...


WRITER = Component[GroupCommitRunner]("writer process")


@dataclass
class Runtime:
    settings: Settings
    db: Database
    parties: PartyDirectory
    components: Components = field(default_factory=Components)
    # Called by close(), newest first: what the wiring opened beside the database (shared report store...).
    close_hooks: list[Callable[[], None]] = field(default_factory=list)

    async def run_grouped(self, function: Callable[..., T], *args: Any) -> T:
        """``function(self, *args, session)`` as a group-commit job (``storage.group_commit``): in the writer process
        while one runs, else on this process's writer thread. ``function`` must be importable by name."""
        writer = self.components.get(WRITER)
        if writer is not None and writer.alive:
            result: T = await writer.run(function, *args)
            return result
        return await self.db.run_grouped(partial(function, self, *args))

    def close(self) -> None:
        self.db.dispose()
        for hook in reversed(self.close_hooks):
            hook()
