"""What the graph is given, not what it carries: env, store, planner, executor, settings.

Passed at invocation (LangGraph's runtime context), so a test can swap any part. The
``live`` part is the per-episode scratch space of objects that cannot be checkpointed
(the current observation, the last execution); a resumed run rebuilds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.executor import ExecutionResult, Executor
from agents.plan import Planner
from agents.techtree import TechTree
from envs import Env, Observation


@dataclass
class Live:
    obs: Observation | None = None
    pre: Observation | None = None  # the observation a subgoal started from
    result: ExecutionResult | None = None
    skills: list[Any] = field(default_factory=list)  # retrieved memory.models.Skill records
    guardrails: list[Any] = field(default_factory=list)
    pending: Any = None  # agents.evolving.pending.PendingWrites: memory writes not yet sent


@dataclass
class AgentContext:
    env: Env  # wrapped by envs.recorder.EpisodeRecorder when recording
    planner: Planner
    executor: Executor
    tree: TechTree
    store: Any = None  # memory.ExperienceStore, or None to play without memory
    learn: bool = True  # write experiences and distil knowledge
    retrieve: bool = True  # read knowledge before planning
    history_len: int = 8
    on_step: Any = None  # (action, teacher_probs) -> None, e.g. to caption a video
    live: Live = field(default_factory=Live)
