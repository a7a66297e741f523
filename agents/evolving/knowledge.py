"""Dual-track distillation of one attempt: a success becomes a Skill, a failure a Guardrail.

With the ``graph`` planner both are derived from the diagnosis and the tech tree:

- **Skill**: preconditions are what the attempt needed, as facts of the pre-state: the
  items of the recipe it consumed (``wood>=2`` if two went), the tree's requirements
  that held (``wood_pickaxe>=1``), and for a craft the stations next to the player
  (``near:table``). Anything else it happened to hold or stand near is left out: the
  planner learns requirements from these, and a spurious one (a plant "needing" a
  table) misleads every later plan.
- **Guardrail** for ``missing_requirement``: the attempt had what the planner believed
  was enough, so the guardrail states a hypothesis about what was missing, the smallest
  step beyond what was held: one more of each item the recipe consumes, or the next
  tier of tool for a collect. When the attempt lacked what the tree asks for, the tree
  already explains the failure and no guardrail is written. Its repair names them
  ("first get 2 wood"), which the planner reads (``agents.planners.experience``). A
  wrong hypothesis costs some extra gathering; a right one is confirmed by the skill the
  next success writes, and support accumulates through the store's merging.
- **Guardrail** for damage or death: the risk pattern is the danger that held (night,
  low health), scoped to the task when the player died. Failures with nothing in the
  state to tell them apart (a timeout in daylight at full health) write no guardrail:
  one that always matched would hold its subgoal back for good.
"""

from __future__ import annotations

from agents.plan import Subgoal
from agents.techtree import STATIONS, TechTree
from envs import Observation
from memory.models import Diagnosis, Guardrail, Skill, Trigger

PICKAXES = ("wood_pickaxe", "stone_pickaxe", "iron_pickaxe")
NIGHT_BELOW = 0.35  # daylight under this is night for guardrails
LOW_HEALTH = 5
SURVIVAL = ("eat", "drink", "sleep")


def stations_near(obs: Observation, radius: int = 1) -> list[str]:
    """Stations within ``radius`` cells (Crafter crafts with a station in the 3x3 around)."""
    pr, pc = obs.player_cell
    view = obs.local_view
    found = set()
    for r in range(max(0, pr - radius), min(view.shape[0], pr + radius + 1)):
        for c in range(max(0, pc - radius), min(view.shape[1], pc + radius + 1)):
            if view[r, c] in STATIONS:
                found.add(str(view[r, c]))
    return sorted(found)


def _requirements(tree: TechTree, subgoal: Subgoal) -> dict[str, int]:
    kind = "place" if subgoal.kind == "place" else None
    return tree.requirements(subgoal.target, kind)


def skill_from_success(subgoal: Subgoal, pre: Observation, post: Observation, diagnosis: Diagnosis,
                       experience_id: str, tree: TechTree, actions: list[str]) -> Skill:
    pre_facts: dict[str, int] = {}
    for item, need in _requirements(tree, subgoal).items():
        if item not in STATIONS and pre.inventory.get(item, 0) >= need:
            pre_facts[item] = need
    recipe = tree.recipe(subgoal.target, "place" if subgoal.kind == "place" else None)
    for item in (recipe.uses if recipe else {}):  # what the recipe consumes, as much as went
        used = pre.inventory.get(item, 0) - post.inventory.get(item, 0)
        if used > 0:
            pre_facts[item] = max(pre_facts.get(item, 0), used)
    preconditions = [f"{k}>={v}" for k, v in pre_facts.items()]
    if subgoal.kind == "craft":  # only crafting needs a station nearby
        preconditions += [f"near:{s}" for s in stations_near(pre)]
    finisher = next((a for a in reversed(actions) if not a.startswith("move_") and a != "noop"), "noop")
    steps = [f"go to the nearest {subgoal.target} or where it can be made", f"{finisher} facing it"]
    used = diagnosis.indicators.get("budget_used", 0.5)
    return Skill(
        name=subgoal.name,
        trigger=Trigger(subgoal_kind=subgoal.kind, subgoal_target=_slug(subgoal.target)),
        preconditions=preconditions, steps=steps, verification=subgoal.check.describe(),
        confidence=round(max(0.5, 1.0 - 0.5 * used), 3), source_experiences=[experience_id],
    )


def _missing_hypothesis(subgoal: Subgoal, pre: Observation, tree: TechTree) -> tuple[list[str], list[str]]:
    """(risk facts, things to get first) for a missing requirement, or two empty lists.

    Only when the attempt held everything the tree asks for (otherwise the tree already
    explains the failure, and a guess would teach noise): then the smallest step past
    it, one more of each item the recipe consumes, or the next tier of pickaxe.
    """
    needs = _requirements(tree, subgoal)
    if any(pre.inventory.get(item, 0) < n for item, n in needs.items() if item not in STATIONS):
        return [], []
    if subgoal.kind == "collect":
        held = [p for p in PICKAXES if pre.inventory.get(p, 0) > 0]
        tier = PICKAXES.index(held[-1]) + 1 if held else 0
        if tier >= len(PICKAXES):
            return [], []
        return [f"{PICKAXES[tier]}<1"], [PICKAXES[tier]]
    recipe = tree.recipe(subgoal.target, "place" if subgoal.kind == "place" else None)
    risk, get = [], []
    for item in (recipe.uses if recipe else {}):
        have = pre.inventory.get(item, 0)
        risk.append(f"{item}<{have + 1}")
        get.append(f"{have + 1} {item}")
    return risk, get


def guardrail_from_failure(subgoal: Subgoal, pre: Observation, diagnosis: Diagnosis, experience_id: str,
                           tree: TechTree, task: str) -> Guardrail | None:
    cause = diagnosis.failure_cause
    if not cause:
        return None
    trigger = Trigger(subgoal_kind=subgoal.kind, subgoal_target=_slug(subgoal.target))
    if cause == "missing_requirement":
        risk, get = _missing_hypothesis(subgoal, pre, tree)
        if not risk:
            return None
        return Guardrail(trigger=trigger, failure_cause=cause, risk_pattern=risk, confidence=0.4,
                         repair="first get " + ", ".join(get), source_experiences=[experience_id])
    if cause not in ("died", "took_damage") or subgoal.kind in SURVIVAL:
        return None  # eating, drinking and resting are the repairs themselves
    risk = []
    if pre.daylight < NIGHT_BELOW:
        risk.append("night")
    health = pre.vitals.get("health", 9)
    if health < LOW_HEALTH:
        risk.append(f"health<{int(health) + 1}")
    if not risk:
        return None  # nothing in the state warned of it: a pattern would match always
    scope = "task" if cause == "died" else "subgoal"
    if scope == "task":
        trigger = trigger.model_copy(update={"task": _slug(task)})
    return Guardrail(trigger=trigger, failure_cause=cause, risk_pattern=risk, scope=scope, confidence=0.5,
                     repair=f"do not {subgoal.name} when {' and '.join(risk)}: eat, drink or rest first",
                     source_experiences=[experience_id])


def _slug(text: str) -> str:
    return text.strip().lower().replace(" ", "_")
