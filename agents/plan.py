"""Plans and subgoals: what planners produce and the executor carries out.

Serialized (memory records hold subgoals, LLMs write plans as JSON), so pydantic
models; the success check is declarative so that an LLM can write one and a person can
read it, and ``Check.holds`` evaluates it against an :class:`envs.Observation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from envs import Observation

SubgoalKind = Literal["collect", "craft", "place", "eat", "drink", "sleep", "fight", "explore"]
SUBGOAL_KINDS: tuple[str, ...] = SubgoalKind.__args__  # type: ignore[attr-defined]


class Check(BaseModel):
    """A predicate over an observation.

    - ``inventory``: ``obs.inventory[key] >= value``
    - ``vital``: ``obs.vitals[key] >= value``
    - ``achievement``: achievement ``key`` unlocked
    - ``nearby``: a cell named ``key`` within ``value`` cells (Manhattan) in the local view
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["inventory", "vital", "achievement", "nearby"]
    key: str
    value: float = 1

    def holds(self, obs: Observation) -> bool:
        if self.type == "inventory":
            return obs.inventory.get(self.key, 0) >= self.value
        if self.type == "vital":
            return obs.vitals.get(self.key, 0) >= self.value
        if self.type == "achievement":
            return self.key in obs.achievements
        pr, pc = obs.player_cell
        view = obs.local_view
        for r in range(view.shape[0]):
            for c in range(view.shape[1]):
                if view[r, c] == self.key and abs(r - pr) + abs(c - pc) <= self.value:
                    return True
        return False

    def describe(self) -> str:
        return {
            "inventory": f"inventory {self.key} >= {self.value:g}",
            "vital": f"{self.key} >= {self.value:g}",
            "achievement": f"achievement {self.key}",
            "nearby": f"{self.key} within {self.value:g} cells",
        }[self.type]


class Subgoal(BaseModel):
    """One step of a plan: e.g. ``collect wood`` until ``inventory wood >= 1``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    kind: SubgoalKind
    target: str = Field(min_length=1, description="item, material, station or creature")
    check: Check
    budget: int = Field(300, ge=1, le=10000, description="env steps allowed")

    def describe(self) -> str:
        return f"{self.name} (until {self.check.describe()}, {self.budget} steps)"


class Plan(BaseModel):
    """An ordered list of subgoals toward a task."""

    model_config = ConfigDict(extra="forbid")

    task: str
    subgoals: list[Subgoal]
    rationale: str = ""

    def text(self, done: int = 0) -> str:
        """Numbered, with finished subgoals marked: the ``plan`` column of recorded steps."""
        return "\n".join(
            f"{i + 1}. [{'x' if i < done else ' '}] {s.describe()}" for i, s in enumerate(self.subgoals)
        )


@dataclass
class PlanContext:
    """What a planner sees. ``skills`` and ``guardrails`` are the records retrieved from
    the experience store (``memory`` models: a skill has ``name, trigger,
    preconditions, steps, verification, confidence``; a guardrail ``trigger,
    failure_cause, risk_pattern, repair, scope, confidence``)."""

    task: str
    obs: Observation
    skills: Sequence[Any] = ()
    guardrails: Sequence[Any] = ()
    history: Sequence[str] = ()  # recent subgoal outcomes, one line each, newest last


class Planner(Protocol):
    """Turns a task and an observation into subgoals; repairs the unfinished part."""

    name: str

    def plan(self, ctx: PlanContext) -> Plan: ...

    def repair(self, ctx: PlanContext, plan: Plan, done: int, reason: str) -> Plan:
        """A new plan that keeps ``plan.subgoals[:done]`` and replaces the rest."""
        ...

    def note_failure(self, ctx: PlanContext, failed: Subgoal, reason: str) -> None:
        """A subgoal failed and no replan was triggered: the next fresh plan should know."""
        ...
