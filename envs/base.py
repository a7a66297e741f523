"""One Gymnasium-style interface for every world, and the registry behind ``envs.make``."""

from __future__ import annotations

import abc
import importlib
from collections.abc import Callable
from typing import Any

from envs.observation import Observation

StepResult = tuple[Observation, float, bool, bool, dict[str, Any]]


class EnvError(RuntimeError):
    """An environment cannot be built or used; the message says what to do."""


class Env(abc.ABC):
    """A world an agent plays in.

    ``reset(seed)`` starts an episode; the same seed and the same actions give the same
    episode, in this process or another. ``step`` follows Gymnasium: ``terminated`` when
    the episode ends inside the game (death), ``truncated`` when a step limit cuts it.
    """

    name: str = "env"

    @property
    @abc.abstractmethod
    def action_names(self) -> tuple[str, ...]: ...

    @property
    @abc.abstractmethod
    def achievements(self) -> tuple[str, ...]:
        """Every achievement this world can unlock, in a fixed order."""

    @abc.abstractmethod
    def reset(self, seed: int | None = None) -> tuple[Observation, dict[str, Any]]: ...

    @abc.abstractmethod
    def step(self, action: int) -> StepResult: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the world holds (processes, windows)."""

    @property
    def unwrapped(self) -> Env:
        return self

    def __enter__(self) -> Env:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Wrapper(Env):
    """Forwards everything to an inner env; subclasses override what they change."""

    def __init__(self, env: Env):
        self.env = env
        self.name = env.name

    @property
    def action_names(self) -> tuple[str, ...]:
        return self.env.action_names

    @property
    def achievements(self) -> tuple[str, ...]:
        return self.env.achievements

    def reset(self, seed: int | None = None) -> tuple[Observation, dict[str, Any]]:
        return self.env.reset(seed)

    def step(self, action: int) -> StepResult:
        return self.env.step(action)

    def close(self) -> None:
        self.env.close()

    @property
    def unwrapped(self) -> Env:
        return self.env.unwrapped


# name -> "module:factory", imported on first use so optional extras stay optional.
_REGISTRY: dict[str, str | Callable[..., Env]] = {
    "crafter": "envs.crafter_env:CrafterEnv",
    "minedojo": "envs.minedojo_env:MineDojoEnv",
}


def register(name: str, factory: str | Callable[..., Env]) -> None:
    """Add a world under ``name``: a callable or a lazy ``"module:attr"`` path."""
    _REGISTRY[name] = factory


def names() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def resolve(name: str) -> Callable[..., Env]:
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise EnvError(f"unknown env {name!r}; known: {', '.join(names())}") from None
    if isinstance(factory, str):
        module, attr = factory.split(":")
        factory = getattr(importlib.import_module(module), attr)
    return factory


def make(name: str, **config: Any) -> Env:
    """Build the world registered as ``name`` with its keyword configuration."""
    return resolve(name)(**config)
