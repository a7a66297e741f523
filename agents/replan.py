"""When to repair the plan: the three triggers of Steve-Evolving's local replanning."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

FAIL_WINDOW, FAIL_MIN = 4, 2  # at least half of the last 4 subgoals failed
CAUSE_WINDOW, CAUSE_REPEATS, CAUSE_SUBGOALS = 8, 3, 2  # a cause 3 times over 2+ subgoals in the last 8


@dataclass(frozen=True)
class Attempt:
    """One finished subgoal attempt, as the router sees it."""

    subgoal: str
    success: bool
    failure_cause: str | None = None
    stagnant: bool = False


def replan_reason(history: Sequence[Attempt]) -> str | None:
    """Why the unfinished part of the plan should be repaired now, or None.

    - the last subgoal stagnated;
    - at least half of the last 4 subgoals failed (2 or more of them);
    - one failure cause recurs 3 times over 2 or more different subgoals within the last 8.
    """
    if not history:
        return None
    if history[-1].stagnant:
        return f"stagnation in {history[-1].subgoal}"
    recent = history[-FAIL_WINDOW:]
    failed = sum(not a.success for a in recent)
    if failed >= FAIL_MIN and 2 * failed >= len(recent):
        return f"{failed} of the last {len(recent)} subgoals failed"
    window = [a for a in history[-CAUSE_WINDOW:] if not a.success and a.failure_cause]
    for cause in {a.failure_cause for a in window}:
        hits = [a for a in window if a.failure_cause == cause]
        if len(hits) >= CAUSE_REPEATS and len({a.subgoal for a in hits}) >= CAUSE_SUBGOALS:
            return f"failure cause {cause} recurred {len(hits)} times over {len({a.subgoal for a in hits})} subgoals"
    return None
