"""Dual-track distillation of one attempt: a success becomes a Skill, a failure a Guardrail.

With the ``graph`` planner both are derived from the diagnosis and the tech tree:

- **Skill**: preconditions are what the attempt needed, as facts of the pre-state. For a
  craft or a place they are what the final action consumed, read from the inventory
  just before and after it (``wood>=1``, ``stone>=1``: the recipe exactly, whatever the
  tree believed), and for a craft the stations next to the player (``near:table``).
  For a collect, the tree's requirements that held (``wood_pickaxe>=1``). Anything else
  it happened to hold or stand near is left out: the planner learns requirements from
  these, and a spurious one (a plant "needing" a table) misleads every later plan.
- **Guardrail** for ``missing_requirement``: the attempt had what the planner believed
  was enough, so the guardrail states a hypothesis about what was missing, the smallest
  step beyond what was held (:func:`missing_hypothesis`). When the attempt lacked what
  the tree asks for, the tree already explains the failure and no guardrail is written.
  Its repair names them ("first get 2 wood"), which the planner reads
  (``agents.planners.experience``). A wrong hypothesis costs some extra gathering until
  the first success, whose skill states the recipe exactly and overrides it.
- **Guardrail** for damage or death: the risk pattern is the danger that held (night,
  low health), scoped to the task when the player died. Failures with nothing in the
  state to tell them apart (a timeout in daylight at full health) write no guardrail:
  one that always matched would hold its subgoal back for good.
"""

from __future__ import annotations

from agents.plan import Subgoal
from agents.techtree import STATIONS, TechTree
from envs import VITALS, Observation
from memory.models import Diagnosis, Guardrail, Skill, Trigger

PICKAXES = ("wood_pickaxe", "stone_pickaxe", "iron_pickaxe")
NIGHT_BELOW = 0.35  # daylight under this is night for guardrails
LOW_HEALTH = 5
SURVIVAL = ("eat", "drink", "sleep")
MAKES = ("craft", "place")  # subgoal kinds that spend items
GUESS_COUNT = 4  # a place guesses larger counts of what it uses up to this, then other items


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


def consumed(before: Observation, after: Observation) -> dict[str, int]:
    """Items whose count went down from ``before`` to ``after`` (Crafter only spends
    items by making and placing things), and by how much."""
    return {k: int(v - after.inventory.get(k, 0)) for k, v in before.inventory.items()
            if v > after.inventory.get(k, 0)}


def skill_from_success(subgoal: Subgoal, pre: Observation, post: Observation, diagnosis: Diagnosis,
                       experience_id: str, tree: TechTree, actions: list[str],
                       last_pre: Observation | None = None) -> Skill:
    """``last_pre``: the observation before the final action (the one that made or
    placed the thing); without it, the whole attempt's consumption of the recipe's items."""
    pre_facts = consumed(last_pre, post) if subgoal.kind in MAKES and last_pre is not None else {}
    if not pre_facts:  # not made here (a station step that found one), or no last step known
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
        preconditions += [f"near:{s}" for s in stations_near(last_pre or pre)]
    finisher = next((a for a in reversed(actions) if not a.startswith("move_") and a != "noop"), "noop")
    steps = [f"go to the nearest {subgoal.target} or where it can be made", f"{finisher} facing it"]
    used = diagnosis.indicators.get("budget_used", 0.5)
    return Skill(
        name=subgoal.name,
        trigger=Trigger(subgoal_kind=subgoal.kind, subgoal_target=_slug(subgoal.target)),
        preconditions=preconditions, steps=steps, verification=subgoal.check.describe(),
        confidence=round(max(0.5, 1.0 - 0.5 * used), 3), source_experiences=[experience_id],
    )


def missing_hypothesis(subgoal: Subgoal, pre: Observation, tree: TechTree) -> tuple[list[str], list[str]]:
    """(risk facts, things to get first) for a missing requirement, or two empty lists.

    Only when the attempt held everything the tree asks for (otherwise the tree already
    explains the failure, and a guess would teach noise); then the smallest step past it:

    - a collect: the next tier of pickaxe;
    - a craft with no station next to the player: the first station (a table);
    - a craft or place of which nothing consumed is known: the item its name says
      (``stone_sword``: stone); else, for a place, one more of a material held; else the
      first material not held, in the tree's order of collectable items (wood,
      sapling, stone, ...);
    - a craft that had all that: first a station not yet next to it (a furnace), then
      one more kind of material, then one more of each;
    - a place that had all that: one more of each item it consumes, up to
      ``GUESS_COUNT``, then one more kind of material.

    Each guess that was wrong fails again and is followed by the next; the first success
    writes a skill with the exact recipe (:func:`skill_from_success`).
    """
    needs = _requirements(tree, subgoal)
    have = pre.inventory
    if any(have.get(item, 0) < n for item, n in needs.items() if item not in STATIONS):
        return [], []
    if subgoal.kind == "collect":
        held = [p for p in PICKAXES if have.get(p, 0) > 0]
        tier = PICKAXES.index(held[-1]) + 1 if held else 0
        if tier >= len(PICKAXES):
            return [], []
        return [f"{PICKAXES[tier]}<1"], [PICKAXES[tier]]
    if subgoal.kind not in MAKES:
        return [], []
    recipe = tree.recipe(subgoal.target, "place" if subgoal.kind == "place" else None)
    uses = dict(recipe.uses) if recipe else {}
    near = stations_near(pre)
    station = next((s for s in STATIONS if s not in near and s != subgoal.target), None)
    station_guess = ([f"!near:{station}"], [f"a {station} nearby"]) if subgoal.kind == "craft" and station else None
    if station_guess and not near:
        return station_guess
    others = [m for m in _materials(tree) if m != subgoal.target]
    if not uses:
        named = [m for m in subgoal.target.split("_") if m in others and have.get(m, 0) < 1]
        held = [m for m in others if have.get(m, 0) > 0] if subgoal.kind == "place" else []
        return _more(named or held[:1] or [m for m in others if have.get(m, 0) < 1][:1] or others[:1], have)
    if station_guess:
        return station_guess
    fresh = [m for m in others if m not in uses][:1]
    if fresh and (subgoal.kind == "craft" or max(uses.values()) >= GUESS_COUNT):
        return _more(fresh, have)
    return _more(list(uses), have)


def _more(items: list[str], have: dict[str, int]) -> tuple[list[str], list[str]]:
    """The guess "one more of each of ``items`` than held", as risk facts and a repair."""
    counts = {m: have.get(m, 0) + 1 for m in items}
    return [f"{m}<{n}" for m, n in counts.items()], [f"{n} {m}" for m, n in counts.items()]


def _materials(tree: TechTree) -> list[str]:
    """Items the tree says are collected (not vitals), in its order: the candidates a
    recipe nothing is known about may consume."""
    return [name for name in tree.rules.get("collect", {}) if name not in VITALS]


def guardrail_from_failure(subgoal: Subgoal, pre: Observation, diagnosis: Diagnosis, experience_id: str,
                           tree: TechTree, task: str) -> Guardrail | None:
    cause = diagnosis.failure_cause
    if not cause:
        return None
    trigger = Trigger(subgoal_kind=subgoal.kind, subgoal_target=_slug(subgoal.target))
    if cause == "missing_requirement":
        risk, get = missing_hypothesis(subgoal, pre, tree)
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
