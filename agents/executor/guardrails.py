"""Guardrails checked before risky actions.

A guardrail (a ``memory.models.Guardrail`` or any object/dict with ``trigger``,
``risk_pattern`` and ``failure_cause``) *matches* an action when its trigger fits the
subgoal (``subgoal_kind`` and, if set, ``subgoal_target``) and every fact of its
``risk_pattern`` holds in the action's :func:`situation`. A matching guardrail blocks
the action; the executor then does something safer (see ``Executor``).

Facts are the memory's fact language (``memory.facts``): quantities such as
``health<4`` or ``stone>=1`` over vitals and inventory, and flags such as ``night``,
``sleeping``, ``sealed``, ``action:move_left``, ``front:zombie`` (the faced cell) and
``near:lava`` (the cell the action leads to, or one next to it, is lava). Only risky
actions are checked, so the cost per step stays near zero: moves that end next to lava
or a hostile creature, ``do`` on a creature, ``sleep``, and ``place_*``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from agents.executor.navigation import DIRS, MOVE_NAMES
from agents.executor.worldmap import WALK_NAMES
from memory import facts as factlib

_DANGER = frozenset(("lava", "zombie", "skeleton", "arrow"))
_CREATURES = frozenset(("zombie", "skeleton", "cow"))


@lru_cache(maxsize=1024)
def _constraint(fact: str) -> factlib.Constraint | None:
    try:
        return factlib.parse(fact)
    except factlib.FactError:
        return None


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def situation(names: Mapping[tuple[int, int], str], action: str, vitals: Mapping[str, float],
              inventory: Mapping[str, int], facing: tuple[int, int], daylight: float,
              sleeping: bool = False, sealed: bool | None = None) -> dict[str, float]:
    """The facts a guardrail is matched against, for ``action`` taken now.

    ``names`` maps offsets from the player (dx, dy) to what is there (at least the 3x3
    around the player and the cells two steps away along the axes).
    """
    facts: dict[str, float] = {f"action:{action}": 1.0, "night": float(daylight < 0.35),
                               "sleeping": float(sleeping)}
    facts.update(vitals)
    facts.update(inventory)
    if sealed is not None:
        facts["sealed"] = float(sealed)
    dest = (0, 0)
    if action in MOVE_NAMES:
        d = DIRS[MOVE_NAMES.index(action)]
        facing = d
        if names.get(d) in WALK_NAMES or names.get(d) == "lava":
            dest = d
    facts[f"front:{names.get((dest[0] + facing[0], dest[1] + facing[1]), 'unknown')}"] = 1.0
    for dx, dy in ((0, 0), *DIRS):
        facts[f"near:{names.get((dest[0] + dx, dest[1] + dy), 'unknown')}"] = 1.0
    return facts


def risky(names: Mapping[tuple[int, int], str], action: str, facing: tuple[int, int]) -> bool:
    """Whether ``action`` is worth checking against guardrails at all."""
    if action in ("sleep",) or action.startswith("place_"):
        return True
    if action == "do":
        return names.get(facing) in _CREATURES
    if action in MOVE_NAMES:
        d = DIRS[MOVE_NAMES.index(action)]
        return any(names.get((d[0] + dx, d[1] + dy)) in _DANGER for dx, dy in ((0, 0), *DIRS))
    return False


def holds(fact: str, facts: Mapping[str, float]) -> bool:
    c = _constraint(fact)
    if c is None:
        return False
    v = facts.get(c.name, 0.0)
    return c.lo <= v <= c.hi and v not in c.excluded


def applies(guardrail: Any, kind: str, target: str) -> bool:
    """The guardrail's trigger fits a subgoal of this kind and target."""
    trig = _get(guardrail, "trigger")
    if trig is None:
        return True
    g_kind = _get(trig, "subgoal_kind")
    g_target = _get(trig, "subgoal_target")
    return g_kind in (None, "*", "any", kind) and g_target in (None, "*", target)


def blocking(guardrails: Sequence[Any], kind: str, target: str, facts: Mapping[str, float]) -> Any | None:
    """The first guardrail whose risk pattern holds for these facts, if any."""
    for g in guardrails:
        pattern = _get(g, "risk_pattern") or ()
        if isinstance(pattern, str):
            pattern = [p for p in pattern.replace(";", ",").split(",") if p.strip()]
        if list(pattern) == ["night"]:
            # half of every day, not a situation around an action: blocking each risky
            # step then (a strike at a zombie, a step past one) cost 6 points with the
            # partial prior; such a guardrail holds its subgoal back at planning only
            continue
        if pattern and applies(g, kind, target) and all(holds(f, facts) for f in pattern):
            return g
    return None
