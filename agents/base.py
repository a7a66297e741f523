"""What the episode runner needs from an agent, and the registry of agents."""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from envs import Env, Observation


class Agent(Protocol):
    """Chooses actions; seeded per episode so a run is reproducible."""

    name: str

    def reset(self, obs: Observation, seed: int) -> None: ...

    def act(self, obs: Observation) -> int: ...


# "student" lives in distill (it is trained there); the string keeps that import lazy.
_AGENTS = {"random": "agents.random_agent:RandomAgent", "steve": "agents.evolving.agent:SteveAgent",
           "student": "distill.agent:StudentAgent"}


def make_agent(name: str, env: Env, **config: Any) -> Agent:
    try:
        module, attr = _AGENTS[name].split(":")
    except KeyError:
        raise ValueError(f"unknown agent {name!r}; known: {', '.join(sorted(_AGENTS))}") from None
    return getattr(importlib.import_module(module), attr)(env, **config)
