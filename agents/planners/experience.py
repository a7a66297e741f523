"""How retrieved skills and guardrails change the graph planner's tree and choices.

Records are duck-typed (``memory.models.Skill`` / ``Guardrail`` or look-alikes with the
same attribute names, or dicts). Knowledge below ``min_confidence`` is ignored.

Guardrails with ``failure_cause == "missing_requirement"`` for a subgoal target X teach
requirements of X, read from two places:

- the risk pattern: ``stone_pickaxe<1`` (the failure happens without a stone pickaxe)
  means X needs 1 ``stone_pickaxe``; ``wood<2`` means 2 wood; ``!near:furnace`` means
  X needs a furnace nearby;
- the repair text: every thing the tree knows named in it, with an optional count
  before it: "first get stone_pickaxe" -> 1 stone_pickaxe; "collect 2 wood first" ->
  2 wood; "place a furnace nearby" -> furnace nearby.

Skills teach the same from their preconditions (``wood>=1``, ``near:table``): what held
whenever the skill worked. A guardrail's counts only ever raise what the tree says; a
craft or place skill states what was consumed, so its items replace the recipe's
(a wrong guess is undone by the first success). Stations are only ever added.

Any other guardrail (e.g. ``died`` with ``health<4``) makes the planner hold back the
subgoal it is about while its risk pattern holds at planning time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from agents.executor.guardrails import holds
from agents.techtree import STATIONS, TechTree
from memory import facts as factlib

_COUNT = re.compile(r"(?:(\d+)\s+(?:x\s+)?)?(?:an?\s+|the\s+)?([a-z_]+)")


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _target(record: Any) -> str | None:
    trig = _get(record, "trigger")
    return _get(trig, "subgoal_target") if trig is not None else None


def _known_things(tree: TechTree) -> set[str]:
    return set(tree.graph.nodes) | set(STATIONS)


def requirements_from_facts(facts: Sequence[str], negate: bool) -> dict[str, int]:
    """``{'stone_pickaxe': 1, 'near:table': 1}`` from a risk pattern (``negate``: the
    facts say when it fails) or from preconditions (the facts say what must hold)."""
    out: dict[str, int] = {}
    for fact in facts:
        try:
            c = factlib.parse(fact)
        except factlib.FactError:
            continue
        if c.name.startswith("near:"):
            flag_false = c.hi < 1
            if flag_false == negate:
                out[c.name] = 1
            continue
        if negate and c.hi < float("inf") and c.lo == float("-inf"):
            out[c.name] = int(c.hi) + 1  # fails while x <= hi: needs hi + 1
        elif not negate and c.lo > 0:
            out[c.name] = int(c.lo)
    return out


def requirements_from_text(text: str, tree: TechTree) -> dict[str, int]:
    known = _known_things(tree)
    out: dict[str, int] = {}
    for num, word in _COUNT.findall(text.lower()):
        if word in known:
            if word in STATIONS and ("near" in text.lower() or "station" in text.lower()):
                out[f"near:{word}"] = 1
            else:
                out[word] = max(out.get(word, 0), int(num) if num else 1)
    return out


def apply(tree: TechTree, skills: Sequence[Any], guardrails: Sequence[Any],
          min_confidence: float = 0.3) -> list[str]:
    """Teach ``tree`` what the records say; returns one line per fact learned."""
    learned: list[str] = []
    known = _known_things(tree)
    for g in guardrails:
        if _get(g, "failure_cause") != "missing_requirement" or _get(g, "confidence", 1.0) < min_confidence:
            continue
        target = _target(g)
        if not target:
            continue
        reqs = requirements_from_facts(list(_get(g, "risk_pattern") or ()), negate=True)
        reqs.update({k: v for k, v in requirements_from_text(str(_get(g, "repair", "")), tree).items()
                     if k not in reqs})
        learned += _teach(tree, target, reqs, known, _kind(g))
    for s in skills:
        if _get(s, "confidence", 1.0) < min_confidence:
            continue
        target = _target(s)
        if target:
            reqs = requirements_from_facts(list(_get(s, "preconditions") or ()), negate=False)
            kind = _get(_get(s, "trigger"), "subgoal_kind")
            if kind in ("craft", "place"):
                learned += _teach_recipe(tree, target, kind, reqs, known)
            else:
                learned += _teach(tree, target, reqs, known, kind)
    return learned


def requirement_records(store: Any, task: str, min_confidence: float = 0.3) -> tuple[list[Any], list[Any]]:
    """Every skill and every missing-requirement guardrail ``store`` holds for ``task`` (or
    any task): what :func:`apply` can teach a tree, whatever retrieval would rank first."""
    return (store.list_skills(task=task, min_confidence=min_confidence),
            store.list_guardrails(task=task, cause="missing_requirement", min_confidence=min_confidence))


def compare_rules(learned: TechTree, truth: TechTree) -> list[tuple[str, dict[str, int], dict[str, int]]]:
    """(rule, what ``learned`` says it needs, what ``truth`` says) for every collect, make
    and place of the tree's rules: how far a learned tree is from the game's own."""
    rows = []
    for section, kind in (("collect", None), ("make", None), ("place", "place")):
        for thing in learned.rules.get(section, {}):
            rows.append((f"{section} {thing}", learned.requirements(thing, kind), truth.requirements(thing, kind)))
    return rows


def _kind(record: Any) -> str | None:
    trig = _get(record, "trigger")
    return _get(trig, "subgoal_kind") if trig is not None else None


def _teach_recipe(tree: TechTree, target: str, kind: str, reqs: Mapping[str, int], known: set[str]) -> list[str]:
    """A craft or place that worked: what it consumed is the recipe, exactly (counts go
    down as well as up, and a guessed item it did not use goes); a craft's stations are
    those that were next to the player (a guessed one that was not goes)."""
    near = {k[5:] for k in reqs if k.startswith("near:")}
    out = _teach(tree, target, {f"near:{s}": 1 for s in near}, known, kind)
    recipe = tree.recipe(target, "place" if kind == "place" else None)
    uses = {k: v for k, v in reqs.items() if not k.startswith("near:") and k in known and k != target}
    if recipe is None or not uses:  # consumed nothing: it found the thing, it did not make it
        return out
    if kind == "craft":
        for station in recipe.stations:
            if station not in near:
                tree.learn_station(target, station, needed=False, kind=kind)
                out.append(f"{target} does not need {station} nearby")
    for item in recipe.uses:
        if item not in uses and item != target:
            tree.learn_requirement(target, item, 0, kind)
            out.append(f"{target} does not use {item}")
    for item, count in uses.items():
        if recipe.uses.get(item) != count:
            tree.learn_requirement(target, item, count, kind)
            out.append(f"{target} uses {count} {item}")
    return out


def _teach(tree: TechTree, target: str, reqs: Mapping[str, int], known: set[str],
           kind: str | None = None) -> list[str]:
    out = []
    place = "place" if kind == "place" else None

    def now() -> dict[str, int]:  # a record without a kind may be about placing the thing
        return tree.requirements(target, place) or (tree.requirements(target, "place") if kind is None else {})

    current = now()
    for name, count in reqs.items():
        if name.startswith("near:"):
            station = name[5:]
            if station in STATIONS and station not in current and station != target:
                tree.learn_station(target, station, kind=place)
                out.append(f"{target} needs {station} nearby")
        elif name in known and name != target and current.get(name, 0) < count:
            tree.learn_requirement(target, name, count, place)
            current = now()
            out.append(f"{target} needs {count} {name}")
    return out


def held_back(guardrails: Sequence[Any], kind: str, target: str, facts: Mapping[str, float],
              min_confidence: float = 0.3) -> Any | None:
    """A non-requirement guardrail whose risk pattern holds now for (kind, target)."""
    for g in guardrails:
        if _get(g, "failure_cause") == "missing_requirement" or _get(g, "confidence", 1.0) < min_confidence:
            continue
        trig = _get(g, "trigger")
        if trig is None or _get(trig, "subgoal_kind") != kind or _get(trig, "subgoal_target") not in (None, target):
            continue
        pattern = [f for f in (_get(g, "risk_pattern") or ()) if not f.startswith(("action:", "front:"))]
        if pattern and all(holds(f, facts) for f in pattern):
            return g
    return None
