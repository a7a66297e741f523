"""A plain-Python play loop: plan -> act -> (repair) until the episode ends.

No memory and no LangGraph: the stand-in for the graph loop, and what the scripted
benchmark measures. After every subgoal the plan is refreshed (planning is cheap next
to acting), so survival needs and opportunities get their turn; a failed subgoal goes
through ``planner.repair`` so the planner can hold the failed target back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents.executor import ExecutionResult, Executor
from agents.plan import PlanContext, Planner, Subgoal
from envs import Env

log = logging.getLogger(__name__)


@dataclass
class SubgoalOutcome:
    """One attempted subgoal, as the loop saw it."""

    name: str
    kind: str
    target: str
    success: bool
    steps: int
    reason: str = ""
    step_start: int = 0

    def line(self) -> str:
        """The history line planners see: ``ok collect wood (12 steps)``."""
        status = "ok" if self.success else f"failed ({self.reason})"
        return f"{status} {self.name} ({self.steps} steps)"


@dataclass
class EpisodeResult:
    """What one episode reached."""

    seed: int | None
    length: int
    achievements: list[str]
    died: bool
    outcomes: list[SubgoalOutcome] = field(default_factory=list)
    reward: float = 0.0


def play_episode(env: Env, planner: Planner, executor: Executor, task: str = "open",
                 seed: int | None = None, guardrails: Sequence[Any] = (), skills: Sequence[Any] = (),
                 on_step: Callable[[int, list[float] | None], None] | None = None,
                 on_subgoal: Callable[[Subgoal, ExecutionResult], None] | None = None,
                 stop_when_done: bool = True, max_subgoals: int = 100000) -> EpisodeResult:
    """Play one episode of ``task`` ("open" or an achievement name) from ``seed``.

    With ``stop_when_done`` the episode ends as soon as the plan is empty (every
    achievement of the task unlocked) instead of idling to the step limit.
    """
    obs, _ = env.reset(seed)
    executor.reset(obs)
    if hasattr(planner, "use_world"):
        planner.use_world(executor.world)
    history: list[str] = []
    outcomes: list[SubgoalOutcome] = []
    reward, died, done = 0.0, False, False

    def context() -> PlanContext:
        return PlanContext(task=task, obs=obs, skills=skills, guardrails=guardrails, history=history[-8:])

    plan = planner.plan(context())
    idx = idle = 0
    noop = list(env.action_names).index("noop") if "noop" in env.action_names else 0
    replans = 0
    for _ in range(max_subgoals):
        if idx >= len(plan.subgoals):
            if stop_when_done and not plan.subgoals:
                break
            replans += 1
            if replans > 10:  # plans whose every check already holds: let time pass
                obs, r, terminated, truncated, _ = env.step(noop)
                reward, replans = reward + r, 0
                if terminated or truncated:
                    died, done = terminated, True
                    break
            plan, idx = planner.plan(context()), 0
            if not plan.subgoals:
                if stop_when_done:
                    break
                plan = plan.model_copy(update={"subgoals": [_idle()]})
            continue
        subgoal = plan.subgoals[idx]
        if subgoal.check.holds(obs):
            idx += 1
            continue
        start, replans = obs.step, 0
        if hasattr(env, "annotate"):  # an episode recorder inside: the steps carry the subgoal
            env.annotate(task=task, subgoal=subgoal.name, plan=plan.text(idx))
        result = executor.run(env, obs, subgoal, guardrails=guardrails, on_step=on_step)
        obs = result.obs
        reward += result.reward
        out = SubgoalOutcome(subgoal.name, subgoal.kind, subgoal.target, result.success,
                             result.steps, result.reason, start)
        outcomes.append(out)
        history.append(out.line())
        if on_subgoal is not None:
            on_subgoal(subgoal, result)
        if result.done:
            died, done = result.terminated, True
            break
        idle = idle + 1 if result.steps == 0 else 0
        if idle >= 20:  # nothing can start here: let the world move on a step
            obs, r, terminated, truncated, _ = env.step(noop)
            reward, idle = reward + r, 0
            if terminated or truncated:
                died, done = terminated, True
                break
        if result.success:
            plan, idx = planner.plan(context()), 0  # fresh: survival and opportunities first
        else:
            plan = planner.repair(context(), plan, idx, result.reason)
    if not done:
        log.debug("episode %s ended by the loop at step %d", seed, obs.step)
    return EpisodeResult(seed=seed, length=obs.step, achievements=sorted(obs.achievements), died=died,
                         outcomes=outcomes, reward=reward)


def _idle() -> Subgoal:
    from agents.plan import Check

    # Nothing left to unlock: keep alive until the step limit.
    return Subgoal(name="wander", kind="explore", target="frontier",
                   check=Check(type="achievement", key="__never__"), budget=10000)
