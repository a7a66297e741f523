"""What flows through the graph: plain, JSON-able values, checkpointed after every node.

Live objects (the env, the current observation, the store) are in the injected
:class:`agents.evolving.context.AgentContext`, never here.
"""

from __future__ import annotations

from typing import Any, TypedDict


class AttemptRecord(TypedDict):
    """One finished subgoal, as the router and the planner's history see it."""

    subgoal: str
    kind: str
    target: str
    success: bool
    failure_cause: str | None
    stagnant: bool
    steps: int
    line: str


class AgentState(TypedDict, total=False):
    task: str
    episode_id: str
    seed: int
    step: int  # env steps taken so far in the episode
    plan: dict[str, Any] | None  # agents.plan.Plan as a dict
    cursor: int  # index of the subgoal to do next
    history: list[AttemptRecord]  # newest last, bounded
    attempts: int  # subgoals attempted this episode (history is bounded, these are not)
    successes: int
    replans: int
    idle: int  # subgoals in a row that took no step
    replan_reason: str | None
    retrieved: dict[str, list[str]]  # ids of the skills and guardrails in use
    outcome: dict[str, Any] | None  # the attempt just acted, diagnosed, anchored
    learned: dict[str, int]  # knowledge written: skills/guardrails added, merged, rejected
    done: bool
