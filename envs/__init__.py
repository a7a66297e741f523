"""Worlds behind one interface: Crafter (embedded default) and MineDojo (optional)."""

from envs.base import Env, EnvError, StepResult, Wrapper, make, names, register
from envs.observation import VITALS, Observation

__all__ = [
    "Env",
    "EnvError",
    "Observation",
    "StepResult",
    "VITALS",
    "Wrapper",
    "make",
    "names",
    "register",
]
