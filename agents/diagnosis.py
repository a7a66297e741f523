"""Diagnosis of one subgoal attempt: compositional signals, not just pass or fail.

From the observations before and after, and the trace of the attempt, it derives a
state-difference summary, one failure cause from an enumerated set, continuous
indicators (progress, distance to target, steps over budget, damage) and stagnation and
loop flags. Pure: no env, no store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from agents.plan import Subgoal
from envs import Observation
from memory.models import Diagnosis

LOOP_MAX_PERIOD = 4  # action cycles up to this length count as loops...
LOOP_MIN_REPEATS = 4  # ...when repeated this often at the end of an attempt
STAGNANT_MIN_STEPS = 30  # shorter attempts are too short to call stagnant
STAGNANT_MAX_SPREAD = 3  # cells: moving within this box is standing still
REVISIT_RATIO = 0.25  # distinct cells / steps below this: walking in circles


@dataclass
class AttemptTrace:
    """What the executor did during one subgoal, as diagnosis needs it."""

    actions: Sequence[int] = ()
    positions: Sequence[tuple[int, int]] = ()
    steps_used: int = 0
    budget: int = 1
    check_held: bool = False
    episode_done: bool = False
    died: bool = False
    damage_taken: float = 0.0
    executor_reason: str = ""  # the executor's own word when it gave up (e.g. target_not_found)
    notes: list[str] = field(default_factory=list)


def state_diff(pre: Observation, post: Observation) -> dict[str, float]:
    """Changed quantities only: ``{"inventory.wood": 2, "vitals.health": -3, "moved": 7}``."""
    diff: dict[str, float] = {}
    for key in set(pre.inventory) | set(post.inventory):
        d = post.inventory.get(key, 0) - pre.inventory.get(key, 0)
        if d:
            diff[f"inventory.{key}"] = float(d)
    for key in set(pre.vitals) | set(post.vitals):
        d = post.vitals.get(key, 0) - pre.vitals.get(key, 0)
        if d:
            diff[f"vitals.{key}"] = float(d)
    moved = abs(post.position[0] - pre.position[0]) + abs(post.position[1] - pre.position[1])
    if moved:
        diff["moved"] = float(moved)
    new = len(post.achievements - pre.achievements)
    if new:
        diff["achievements"] = float(new)
    return diff


def repeating_cycle(actions: Sequence[int]) -> int:
    """The period of an action cycle repeated at the end of ``actions`` (0 if none)."""
    for period in range(1, LOOP_MAX_PERIOD + 1):
        span = period * LOOP_MIN_REPEATS
        if len(actions) < span:
            break
        tail = list(actions[-span:])
        if len(set(tail)) > 1 and all(tail[i] == tail[i % period] for i in range(span)):
            return period
    return 0


def is_stagnant(trace: AttemptTrace, diff: dict[str, float]) -> bool:
    """Many steps, nothing gained, and the player stayed within a small box."""
    if trace.check_held or trace.steps_used < STAGNANT_MIN_STEPS:
        return False
    gained = any(k.startswith("inventory.") and v > 0 for k, v in diff.items()) or "achievements" in diff
    if gained:
        return False
    if not trace.positions:
        return True
    xs = [p[0] for p in trace.positions]
    ys = [p[1] for p in trace.positions]
    return max(xs) - min(xs) <= STAGNANT_MAX_SPREAD and max(ys) - min(ys) <= STAGNANT_MAX_SPREAD


def is_looping(trace: AttemptTrace) -> bool:
    if trace.check_held:
        return False
    if repeating_cycle(trace.actions) > 0:
        return True
    steps = len(trace.positions)
    return steps >= 2 * STAGNANT_MIN_STEPS and len(set(trace.positions)) / steps < REVISIT_RATIO


def progress(subgoal: Subgoal, pre: Observation, post: Observation) -> float:
    """How far toward the check, 0..1 (1 when it holds)."""
    check = subgoal.check
    if check.holds(post):
        return 1.0
    if check.type in ("inventory", "vital"):
        source = "inventory" if check.type == "inventory" else "vitals"
        before = getattr(pre, source).get(check.key, 0)
        after = getattr(post, source).get(check.key, 0)
        if check.value > before:
            return max(0.0, min(1.0, (after - before) / (check.value - before)))
    return 0.0


def distance_to(obs: Observation, name: str) -> float:
    """Manhattan distance to the nearest visible ``name``, -1 when none is in view."""
    pr, pc = obs.player_cell
    best = -1.0
    view = obs.local_view
    for r in range(view.shape[0]):
        for c in range(view.shape[1]):
            if view[r, c] == name:
                d = abs(r - pr) + abs(c - pc)
                best = d if best < 0 else min(best, d)
    return float(best)


_EXECUTOR_CAUSES = {"missing_requirement", "target_not_found", "path_blocked", "took_damage"}


def failure_cause(trace: AttemptTrace, stagnant: bool, looping: bool) -> str:
    """One enumerated cause; the most specific evidence wins."""
    if trace.died:
        return "died"
    if trace.executor_reason in _EXECUTOR_CAUSES:
        return trace.executor_reason
    if looping:
        return "loop"
    if stagnant:
        return "stagnation"
    if trace.damage_taken >= 3:
        return "took_damage"
    if trace.steps_used >= trace.budget:
        return "timeout"
    return trace.executor_reason or "unknown"


def diagnose(subgoal: Subgoal, pre: Observation, post: Observation, trace: AttemptTrace) -> Diagnosis:
    diff = state_diff(pre, post)
    stagnant = is_stagnant(trace, diff)
    looping = is_looping(trace)
    prog = progress(subgoal, pre, post)
    indicators = {
        "progress": prog,
        "distance_to_target": distance_to(post, subgoal.target),
        "steps_used": float(trace.steps_used),
        "budget": float(trace.budget),
        "budget_used": trace.steps_used / max(1, trace.budget),
        "damage_taken": float(trace.damage_taken),
    }
    if trace.check_held:
        return Diagnosis(outcome="success", state_diff=diff, indicators=indicators,
                         explanation=f"{subgoal.name}: {subgoal.check.describe()} in {trace.steps_used} steps")
    cause = failure_cause(trace, stagnant, looping)
    outcome = "partial" if prog > 0 and cause != "died" else "failure"
    explanation = f"{subgoal.name}: {cause} after {trace.steps_used}/{trace.budget} steps, progress {prog:.2f}"
    if trace.notes:
        explanation += "; " + "; ".join(trace.notes[-3:])
    return Diagnosis(outcome=outcome, state_diff=diff, failure_cause=cause, indicators=indicators,
                     stagnant=stagnant, looping=looping, explanation=explanation)
