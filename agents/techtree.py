"""The tech tree: the game's rules (``configs/techtree.yaml``) as a networkx graph.

A :class:`TechTree` holds one *prior* (``full``: the game's own rules; ``partial``: an
LLM-like prior with gaps and errors, ``configs/priors/partial.yaml``; ``none``: no
requirement known) plus what experience taught (:meth:`TechTree.learn_requirement`,
:meth:`TechTree.learn_station`). Learned facts always take precedence over the prior.

Nodes of :attr:`TechTree.graph` are things (items, stations, and ``place:stone`` /
``place:plant`` for placing what is also an item); an edge
``a -> b`` says "``a`` is needed to get ``b``", with ``relation`` ``uses`` (consumed),
``tool`` (held) or ``station`` (nearby) and a ``count``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import yaml

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
PRIORS = ("full", "partial", "none")
STATIONS = ("table", "furnace")
CAP = 9  # Crafter clamps every inventory count to 9
_MAX_DEPTH = 12


class PlanError(RuntimeError):
    """The tree cannot say how to get something (unknown thing, or a cycle)."""


@dataclass(frozen=True)
class Recipe:
    """How to get one thing: ``collect`` it from a material, ``make`` it, or ``place`` it."""

    kind: str
    thing: str
    uses: Mapping[str, int] = field(default_factory=dict)  # consumed
    tools: Mapping[str, int] = field(default_factory=dict)  # held, not consumed
    stations: tuple[str, ...] = ()  # within 1 cell of the player
    source: str | None = None  # the material a collect faces
    where: tuple[str, ...] = ()  # materials a place may target
    probability: float = 1.0


@dataclass(frozen=True)
class Step:
    """One thing to do: ``collect wood`` until ``level`` are held, ``make``, ``place``.

    A ``place`` step with ``station=True`` only needs the station near (an existing one
    will do); ``station=False`` must really place one (an achievement).
    """

    kind: str
    thing: str
    level: int = 1
    gain: int = 1
    station: bool = False


def _deep_merge(base: dict, over: Mapping) -> dict:
    """``over`` wins; a mapping merges key by key, anything else replaces."""
    for key, value in over.items():
        # ``require``/``uses`` and an empty mapping replace: a prior's {} means "nothing"
        if value and isinstance(value, Mapping) and isinstance(base.get(key), dict) and key not in (
                "require", "uses"):
            _deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def load_rules(prior: str = "full", config_dir: Path | None = None) -> dict[str, Any]:
    """The tree's rules under ``prior``: techtree.yaml with the prior's overrides applied."""
    if prior not in PRIORS:
        raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}")
    root = Path(config_dir) if config_dir else CONFIG_DIR
    rules = yaml.safe_load((root / "techtree.yaml").read_text())
    spec = yaml.safe_load((root / "priors" / f"{prior}.yaml").read_text()) or {}
    for section in ("collect", "make", "place"):
        for rule in rules.get(section, {}).values():
            for key in spec.get("clear", ()):
                if key in rule:
                    rule[key] = [] if isinstance(rule[key], list) else {}
    _deep_merge(rules, spec.get("overrides") or {})
    rules["prior"] = prior
    return rules


class TechTree:
    """Requirements, their closure and what to do next, under a prior plus learned facts."""

    def __init__(self, rules: Mapping[str, Any]):
        self.rules = dict(rules)
        self.prior: str = str(rules.get("prior", "full"))
        self._learned_req: dict[str, dict[str, int]] = {}
        self._learned_station: dict[str, dict[str, bool]] = {}
        self.graph = nx.DiGraph()
        self._recipes: dict[str, Recipe] = {}
        self._rebuild()

    @classmethod
    def load(cls, prior: str = "full", config_dir: Path | None = None) -> TechTree:
        return cls(load_rules(prior, config_dir))

    # -- what the rules say ------------------------------------------------------------
    @property
    def achievements(self) -> tuple[str, ...]:
        return tuple(self.rules.get("achievements", {}))

    @property
    def curriculum(self) -> tuple[str, ...]:
        order = list(self.rules.get("strategy", {}).get("curriculum") or [])
        return tuple(order + [a for a in self.achievements if a not in order])

    def carry(self, achievement: str) -> dict[str, int]:
        """What the strategy says to hold before trying ``achievement`` (may be empty)."""
        return dict((self.rules.get("strategy", {}).get("carry") or {}).get(achievement) or {})

    @property
    def scarce(self) -> frozenset[str]:
        """Items the strategy says to collect one use at a time (see :func:`_merge_collects`)."""
        return frozenset(self.rules.get("strategy", {}).get("scarce") or ())

    def achievement_goal(self, name: str) -> tuple[str, str]:
        """(subgoal kind, target) that unlocks achievement ``name``."""
        spec = self.rules["achievements"][name]
        return spec["kind"], spec["target"]

    def recipe(self, thing: str, kind: str | None = None) -> Recipe | None:
        """How to get ``thing`` (prior + learned); ``kind='place'`` asks how to place it."""
        if kind == "place":
            return self._recipes.get(f"place:{thing}")
        return self._recipes.get(thing)

    def source(self, item: str) -> str | None:
        """The material a collect of ``item`` faces (``wood`` -> ``tree``)."""
        r = self._recipes.get(item)
        return r.source if r and r.kind == "collect" else None

    def stations_for(self, item: str) -> tuple[str, ...]:
        r = self._recipes.get(item)
        return r.stations if r else ()

    def requirements(self, thing: str, kind: str | None = None) -> dict[str, int]:
        """Direct requirements of ``thing``: consumed items, held tools, nearby stations."""
        r = self.recipe(thing, kind)
        if r is None:
            return {}
        out = dict(r.tools)
        for k, v in r.uses.items():
            out[k] = out.get(k, 0) + v
        out.update({s: 1 for s in r.stations})
        return out

    def closure(self, thing: str) -> list[str]:
        """Everything ``thing`` needs, transitively, prerequisites first (``thing`` last)."""
        if thing not in self.graph:
            return [thing]
        sub = self.graph.subgraph(nx.ancestors(self.graph, thing) | {thing})
        try:
            return list(nx.lexicographical_topological_sort(sub))
        except nx.NetworkXUnfeasible:  # a wrong learned fact made a cycle: keep going
            return sorted(sub.nodes, key=lambda n: n == thing)

    # -- learning (takes precedence over the prior) -------------------------------------
    def learn_requirement(self, target: str, item: str, count: int = 1, kind: str | None = None) -> None:
        """Experience says ``target`` needs ``count`` of ``item`` (0: it does not).

        A station (table, furnace) becomes a nearby requirement; a tool (a pickaxe or a
        sword) or anything a collect needs is held; anything else is consumed.
        ``kind='place'`` means placing ``target`` (stone is both collected and placed).
        """
        key = self._key(target, kind)
        if item in STATIONS and self._recipes.get(key, Recipe("", "")).kind != "place":
            self.learn_station(target, item, needed=count > 0, kind=kind)
            return
        self._learned_req.setdefault(key, {})[item] = int(count)
        log.debug("learned: %s needs %d %s", key, count, item)
        self._rebuild()

    def learn_station(self, target: str, station: str, needed: bool = True, kind: str | None = None) -> None:
        """Experience says making ``target`` needs (or not) ``station`` nearby."""
        self._learned_station.setdefault(self._key(target, kind), {})[station] = needed
        self._rebuild()

    def _key(self, target: str, kind: str | None) -> str:
        """The recipe ``target`` names: its placing for ``kind='place'`` or for a thing
        that is only ever placed (a table), else getting it."""
        return f"place:{target}" if kind == "place" or target not in self._recipes else target

    @property
    def learned(self) -> dict[str, dict[str, Any]]:
        """What experience changed, per target: ``{'iron': {'stone_pickaxe': 1}}``."""
        out: dict[str, dict[str, Any]] = {t: dict(v) for t, v in self._learned_req.items()}
        for t, stations in self._learned_station.items():
            out.setdefault(t, {}).update({f"near:{s}": n for s, n in stations.items()})
        return out

    # -- planning ----------------------------------------------------------------------
    def steps_for(self, needs: Iterable[tuple[str, str, int]], inventory: Mapping[str, int],
                  nearby: Iterable[str] = ()) -> list[Step]:
        """Ordered steps that reach every need, from ``inventory`` with ``nearby`` stations.

        A need is ``("have", item, n)`` (hold ``n``), ``("place", thing, 1)`` (really
        place one) or ``("act", name, 0)`` (a step the tree knows nothing about, such as
        sleeping, kept in order as ``Step("act", name)``). Items consumed on the way are
        collected again; collects of one item are merged (``collect wood`` to 4, not 2
        then 1 then 1).
        """
        sim = _Sim(dict(inventory), set(nearby))
        for kind, thing, n in needs:
            if kind == "place":
                self._place(thing, sim, 0, station=False)
            elif kind == "act":
                sim.add(Step("act", thing, 0, 0))
            else:
                self._obtain(thing, min(int(n), CAP), sim, 0)
        return _merge_collects(sim.steps, self.scarce)

    def _obtain(self, thing: str, level: int, sim: _Sim, depth: int) -> None:
        if sim.inv.get(thing, 0) >= level:
            return
        if depth > _MAX_DEPTH:
            raise PlanError(f"requirements of {thing} form a cycle")
        r = self._recipes.get(thing)
        if r is None or r.kind == "place":
            raise PlanError(f"the tree does not say how to get {thing}")
        times = level - sim.inv.get(thing, 0)
        for _ in range(3):  # getting one input may consume another (wood for a pickaxe)
            for tool, c in r.tools.items():
                self._obtain(tool, c, sim, depth + 1)
            for st in r.stations:
                self._ensure_station(st, sim, depth + 1)
            for use, c in r.uses.items():
                self._obtain(use, min(CAP, c * times), sim, depth + 1)
            if all(sim.inv.get(u, 0) >= c * times for u, c in r.uses.items()) and all(
                    sim.inv.get(t, 0) >= c for t, c in r.tools.items()):
                break
        for use, c in r.uses.items():
            sim.inv[use] = sim.inv.get(use, 0) - c * times
        sim.add(Step(r.kind, thing, level, times))
        sim.inv[thing] = level

    def _ensure_station(self, station: str, sim: _Sim, depth: int) -> None:
        if station not in sim.stations:
            self._place(station, sim, depth, station=True)

    def _place(self, thing: str, sim: _Sim, depth: int, station: bool) -> None:
        r = self._recipes.get(f"place:{thing}")
        if r is None:
            raise PlanError(f"the tree does not say how to place {thing}")
        for use, c in r.uses.items():
            self._obtain(use, min(CAP, c), sim, depth + 1)
        for use, c in r.uses.items():
            sim.inv[use] = sim.inv.get(use, 0) - c
        sim.add(Step("place", thing, 1, 1, station=station))
        if thing in STATIONS:
            sim.stations.add(thing)

    # -- building ----------------------------------------------------------------------
    def _rebuild(self) -> None:
        recipes: dict[str, Recipe] = {}
        for item, spec in (self.rules.get("collect") or {}).items():
            tools = dict(spec.get("require") or {})
            recipes[item] = Recipe("collect", item, {}, tools, (), spec.get("from", item),
                                   probability=float(spec.get("probability", 1.0)))
        for item, spec in (self.rules.get("make") or {}).items():
            recipes[item] = Recipe("make", item, dict(spec.get("uses") or {}), {},
                                   tuple(spec.get("nearby") or ()))
        for thing, spec in (self.rules.get("place") or {}).items():
            recipes[f"place:{thing}"] = Recipe("place", thing, dict(spec.get("uses") or {}), {},
                                               tuple(spec.get("nearby") or ()),
                                               where=tuple(spec.get("where") or ()))
        for key, reqs in self._learned_req.items():
            r = recipes.get(key)
            if r is None:
                continue
            uses, tools = dict(r.uses), dict(r.tools)
            for item, count in reqs.items():
                held = r.kind == "collect" or item.endswith(("_pickaxe", "_sword"))
                dest, other = (tools, uses) if held else (uses, tools)
                other.pop(item, None)
                if count > 0:
                    dest[item] = count
                else:
                    dest.pop(item, None)
            recipes[key] = Recipe(r.kind, r.thing, uses, tools, r.stations, r.source, r.where,
                                  r.probability)
        for key, stations in self._learned_station.items():
            r = recipes.get(key)
            if r is None:
                continue
            now = [s for s in r.stations if stations.get(s, True)]
            now += [s for s, needed in stations.items() if needed and s not in now]
            recipes[key] = Recipe(r.kind, r.thing, r.uses, r.tools, tuple(now), r.source,
                                  r.where, r.probability)
        self._recipes = recipes
        g = nx.DiGraph()
        for r in recipes.values():
            # a placed station is the station; placing stone or a plant is its own node
            node = r.thing if r.kind != "place" or r.thing in STATIONS else f"place:{r.thing}"
            g.add_node(node, kind=r.kind)
            for item, c in r.uses.items():
                g.add_edge(item, node, relation="uses", count=c)
            for item, c in r.tools.items():
                g.add_edge(item, node, relation="tool", count=c)
            for st in r.stations:
                g.add_edge(st, node, relation="station", count=1)
        self.graph = g


@dataclass
class _Sim:
    """The inventory and stations a plan has on paper, while it is being written."""

    inv: dict[str, int]
    stations: set[str]
    steps: list[Step] = field(default_factory=list)

    def add(self, step: Step) -> None:
        self.steps.append(step)


def _merge_collects(steps: list[Step], scarce: frozenset[str] = frozenset()) -> list[Step]:
    """Fold a later ``collect X`` into the first one (up to the cap of 9).

    The first collect of X already had X's tools, and tools are never used up, so the
    later amount can always be gathered then: one trip to the trees, not three. A
    ``scarce`` item (iron) is not folded: the second can take a long search, and the
    first should make its tool before that.
    """
    out: list[Step] = []
    for step in steps:
        if step.kind == "collect" and step.thing not in scarce:
            for i, prev in enumerate(out):
                if prev.kind == "collect" and prev.thing == step.thing and prev.level + step.gain <= CAP:
                    out[i] = Step("collect", prev.thing, prev.level + step.gain, prev.gain + step.gain)
                    break
            else:
                out.append(step)
            continue
        out.append(step)
    return out
