"""Fixtures: the scripted server, a client on it, an observation, a planning context."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from agents.llm import CallLog, ChatClient
from agents.plan import PlanContext
from envs import Observation
from tests.agents_llm.helpers import GUARDRAIL, KEY_ENV, SECRET, SKILL, ScriptedServer, TinyPlanner, make_config


@pytest.fixture
def server():
    s = ScriptedServer()
    yield s
    s.close()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(server, sleeps, monkeypatch):
    """``make_client(**config)`` -> a ChatClient on the scripted server; backoff is
    recorded in ``sleeps`` instead of slept."""
    monkeypatch.setenv(KEY_ENV, SECRET)

    def make(log: CallLog | None = None, url: str | None = None, **top: Any) -> ChatClient:
        return ChatClient(make_config(url or server.url, **top), log, sleep=sleeps.append)

    return make


@pytest.fixture
def obs() -> Observation:
    view = np.full((7, 9), "grass", dtype=object)
    view[1, 6] = "tree"
    view[5, 2] = "water"
    view[3, 4] = "player"
    return Observation(
        frame=np.zeros((64, 64, 3), np.uint8), inventory={"wood": 1, "sapling": 0},
        vitals={"health": 9, "food": 7, "drink": 6, "energy": 8}, local_view=view, position=(32, 30),
        facing=(0, 1), achievements=frozenset({"collect_wood"}), step=42)


@pytest.fixture
def ctx(obs) -> PlanContext:
    return PlanContext(task="make a wood pickaxe", obs=obs, skills=[SKILL], guardrails=[GUARDRAIL],
                       history=["collect wood: success in 12 steps", "place table: failed (missing_requirement)"])


@pytest.fixture
def tiny() -> TinyPlanner:
    return TinyPlanner()
