"""Which subgoals of a recorded episode were reached: the success check the plan's text
gives each subgoal (``(until inventory stone >= 2)``), read back and tested on the step
after the subgoal's last one. ``data.success_only`` keeps only those steps
(:func:`distill.steps.load_steps`).

Depends on numpy and pyarrow.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa

_PLAN_LINE = re.compile(r"^\s*\d+\.\s*\[ \]\s*(?P<name>.*?)\s*\(until (?P<check>.*?)(?:, \d+ steps)?\)\s*$")
_INVENTORY_CHECK = re.compile(r"^inventory (\S+) >= ([-+0-9.eE]+)$")
_ACHIEVEMENT_CHECK = re.compile(r"^achievement (\S+)$")


def parse_check(plan: str, subgoal: str = "") -> tuple[str, str, float] | None:
    """The success check of the current subgoal in a plan's text, or None.

    The current subgoal is the first unfinished (``[ ]``) line naming ``subgoal``, else
    the first unfinished line. Understood checks: ``inventory X >= n`` ->
    ``("inventory", X, n)`` and ``achievement Y`` -> ``("achievement", Y, 1)``; any other
    (vitals, nearby) gives None.
    """
    lines = [m for m in map(_PLAN_LINE.match, plan.splitlines()) if m]
    if not lines:
        return None
    line = next((m for m in lines if subgoal and m["name"] == subgoal), lines[0])
    check = line["check"].strip()
    if m := _INVENTORY_CHECK.match(check):
        try:
            return ("inventory", m[1], float(m[2]))
        except ValueError:
            return None
    if m := _ACHIEVEMENT_CHECK.match(check):
        return ("achievement", m[1], 1.0)
    return None


def reached_mask(steps: pa.Table, subgoal_codes: np.ndarray) -> np.ndarray:
    """Per step: was the subgoal of its segment reached?

    A segment is a maximal run of consecutive steps with the same subgoal. Its check is
    parsed from the plan of its first step (:func:`parse_check`) and evaluated on the
    step right after the segment (``inventory`` / ``achievements`` there are the state
    the segment's last action led to). When there is no such step (the segment ends
    the episode) or the check is not understood, the segment counts as reached unless
    it is the last segment of an episode that terminated (the player died in it): the
    agent moving on to another subgoal means the executor considered it done. A stretch
    without a subgoal (``""``) has no check and follows the same rule.
    """
    n = len(subgoal_codes)
    starts = np.flatnonzero(np.r_[True, subgoal_codes[1:] != subgoal_codes[:-1]])
    ends = np.r_[starts[1:], n]
    terminated = bool(steps.column("terminated")[n - 1].as_py())
    plan, subgoal = steps.column("plan"), steps.column("subgoal")
    inventory, achievements = steps.column("inventory"), steps.column("achievements")
    reached = np.ones(n, bool)
    for s, e in zip(starts.tolist(), ends.tolist()):
        check = parse_check(plan[s].as_py() or "", subgoal[s].as_py() or "")
        if check is None or e >= n:
            ok = not (e >= n and terminated)
        elif check[0] == "inventory":
            inv = json.loads(inventory[e].as_py() or "{}")
            ok = float(inv.get(check[1], 0)) >= check[2]
        else:
            ok = check[1] in (achievements[e].as_py() or [])
        reached[s:e] = ok
    return reached
