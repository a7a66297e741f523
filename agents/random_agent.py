"""The first baseline: uniform random actions (the Crafter paper scores it 1.6)."""

from __future__ import annotations

import numpy as np

from envs import Env, Observation


class RandomAgent:
    name = "random"

    def __init__(self, env: Env):
        self._n = len(env.action_names)
        self._rng = np.random.default_rng(0)

    def reset(self, obs: Observation, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def act(self, obs: Observation) -> int:
        return int(self._rng.integers(self._n))
