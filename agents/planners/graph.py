"""The embedded planner: subgoals from a networkx tech tree, no LLM.

``plan(ctx)`` returns, in order: survival subgoals (the most depleted vital first),
then the expansion of the next few achievements through the tree (prerequisites before
targets, collects merged). Task ``"open"`` picks achievements by the prior's curriculum
(cheap first, then the tool chain to diamond), or without one (the none prior) by the
fewest steps the tree, as learned so far, needs for each; it takes opportunities out of
order (water, a cow or a zombie in view). Any other task is one achievement name.

Experience steers it (see :mod:`agents.planners.experience`): missing-requirement
guardrails and skills' preconditions teach the tree (``TechTree.learn_*``, which beat
the prior); other guardrails hold a target back while their risk pattern holds.
Failures reported to ``repair`` hold the failed target back for a while (longer after
each failure), so one unreachable diamond does not stall the rest.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

from agents.executor.reflexes import need_thresholds
from agents.plan import Check, Plan, PlanContext, Subgoal
from agents.planners import experience
from agents.techtree import PlanError, Step, TechTree
from envs import Observation

log = logging.getLogger(__name__)

# Steps per subgoal: finding iron or a diamond can take a long walk.
BUDGETS = {"wood": 200, "sapling": 250, "stone": 250, "coal": 500, "iron": 1500, "diamond": 3000,
           "drink": 400, "cow": 500, "plant": 700, "zombie": 800, "skeleton": 1500, "energy": 700}
STATION_RADIUS = 14  # a known table this near is walked to rather than built again
_OPPORTUNITIES = (("collect_drink", "water", 4), ("eat_cow", "cow", 5), ("defeat_zombie", "zombie", 4))


DAY = 300  # Crafter's day length; night is roughly steps 165..255 of each day


def _dusk(obs: Observation) -> bool:
    return 140 <= obs.step % DAY < 250


def _near(obs: Observation, name: str, radius: int) -> bool:
    return Check(type="nearby", key=name, value=radius).holds(obs)


def _key(subgoal: Subgoal) -> tuple[str, str, str]:
    return subgoal.kind, subgoal.target, subgoal.name


class GraphPlanner:
    """Plans over :class:`TechTree` under a prior (``full``, ``partial``, ``none``)."""

    name = "graph"

    def __init__(self, techtree: TechTree | None = None, prior: str = "full", horizon: int = 3,
                 min_confidence: float = 0.3):
        self.tree = techtree or TechTree.load(prior)
        self.prior = prior if techtree is None else self.tree.prior
        self.horizon = horizon
        self.min_confidence = min_confidence
        self.learned: list[str] = []
        self.world: Any = None  # optional: what the executor has seen (see use_world)
        self._new_episode()

    def use_world(self, world: Any) -> None:
        """Let the plan count stations the executor has seen out of view as near.

        ``world`` needs ``known_near(name, radius) -> bool`` (``WorldMap`` has it).
        Without one, only stations in the current view count.
        """
        self.world = world

    def _new_episode(self) -> None:
        self._last_step = -1
        self._held_until: dict[str, int] = {}
        self._failures: Counter[str] = Counter()
        # (kind, target, name) of the newest plan's subgoals -> the achievement each serves;
        # by content, not identity: the graph hands back copies read from its state
        self._origin: dict[tuple[str, str, str], str] = {}

    # -- Planner protocol ----------------------------------------------------------------
    def plan(self, ctx: PlanContext) -> Plan:
        obs = ctx.obs
        if obs.step < self._last_step:
            self._new_episode()
        self._last_step = obs.step
        self._origin.clear()  # only the newest plan's subgoals can be repaired
        if ctx.guardrails or ctx.skills:
            self.learned += experience.apply(self.tree, ctx.skills, ctx.guardrails, self.min_confidence)
        subgoals = self._survival(obs)
        targets = self._targets(ctx)
        for sg in subgoals:
            self._origin[_key(sg)] = f"survival:{sg.target}"
        subgoals += self._expand(targets, obs)
        if not targets and self._remaining(ctx) and not subgoals:
            # all that is left failed recently: look around a while, then try again
            subgoals.append(Subgoal(name="explore", kind="explore", target="frontier",
                                    check=Check(type="achievement", key="__never__"), budget=60))
        why = ", ".join(targets) or ("done" if not self._remaining(ctx) else "wait")
        return Plan(task=ctx.task, subgoals=subgoals, rationale=f"next: {why}")

    def repair(self, ctx: PlanContext, plan: Plan, done: int, reason: str) -> Plan:
        """Keep ``plan.subgoals[:done]``; hold back what failed; plan the rest afresh."""
        if done < len(plan.subgoals):
            self.note_failure(ctx, plan.subgoals[done], reason)
        fresh = self.plan(ctx)
        return Plan(task=plan.task, subgoals=list(plan.subgoals[:done]) + fresh.subgoals,
                    rationale=f"repair after {reason}: {fresh.rationale}")

    def note_failure(self, ctx: PlanContext, failed: Subgoal, reason: str) -> None:
        """Hold the failed subgoal's target back for a while (longer each time it fails)."""
        origin = self._origin.get(_key(failed)) or self._origin_of(failed)
        self._failures[origin] += 1
        n = self._failures[origin]
        wait = 150 if reason == "not_ready" else min(1500, 150 * n)
        if reason == "interrupted":  # not the subgoal's fault: a need came first
            self._failures[origin] -= 1
            wait = 0
        if origin.startswith("survival"):
            wait = 30  # a need does not go away: try again soon (other needs meanwhile)
        self._held_until[origin] = ctx.obs.step + wait
        log.debug("%s failed (%s), held back %d steps", failed.name, reason, wait)

    def _origin_of(self, subgoal: Subgoal) -> str:
        """The achievement a subgoal serves, for subgoals of an older plan."""
        if subgoal.name in ("drink water", "eat cow", "sleep", "rest in shelter"):
            return f"survival:{subgoal.target}"
        for ach in self.tree.achievements:
            if self.tree.achievement_goal(ach) == (subgoal.kind, subgoal.target):
                return ach
        return f"{subgoal.kind}:{subgoal.target}"

    # -- choosing targets --------------------------------------------------------------
    def _remaining(self, ctx: PlanContext) -> list[str]:
        if ctx.task == "open":
            left = [a for a in self.tree.curriculum if a not in ctx.obs.achievements]
            if not self.tree.rules.get("strategy", {}).get("curriculum"):
                # no advice on the order: what the tree can plan, fewest steps first by what
                # it knows now (an untried recipe looks cheap, is tried, and teaches its
                # cost); the rest (sleeping, eating, fighting) as the needs come up
                left.sort(key=lambda a: self._cost(a, ctx.obs))
            return left
        if ctx.task not in self.tree.achievements:
            raise ValueError(f"unknown task {ctx.task!r}: 'open' or one of {', '.join(self.tree.achievements)}")
        return [] if ctx.task in ctx.obs.achievements else [ctx.task]

    def _targets(self, ctx: PlanContext) -> list[str]:
        obs = ctx.obs
        remaining = self._remaining(ctx)
        if not remaining:
            return []
        facts = self._facts(obs) if ctx.guardrails else {}
        out: list[str] = []
        if ctx.task == "open":
            for ach, name, radius in _OPPORTUNITIES:
                if ach in remaining and _near(obs, name, radius) and self._ready(ach, obs):
                    out.append(ach)
            if self.tree.rules.get("strategy", {}).get("curriculum"):
                # a tool whose materials are held and whose stations are near is one craft
                # away: made now rather than after the curriculum's slower items (without a
                # curriculum, the cheapest plan goes first anyway)
                stations = self._stations(obs)
                for ach in remaining:
                    if len(out) < self.horizon and self._craftable(ach, obs, stations) and self._ready(ach, obs):
                        out.append(ach)
        for ach in remaining:
            if len(out) >= self.horizon:
                break
            if ach in out or not self._ready(ach, obs):
                continue
            if ctx.guardrails:
                kind, target = self.tree.achievement_goal(ach)
                if experience.held_back(ctx.guardrails, kind, target, facts, self.min_confidence):
                    continue
            out.append(ach)
        return out  # empty while everything left is held back: plan() wanders meanwhile

    def _craftable(self, ach: str, obs: Observation, stations: list[str]) -> bool:
        """``ach`` is a craft whose uses and tools are held and whose stations are near."""
        kind, target = self.tree.achievement_goal(ach)
        r = self.tree.recipe(target) if kind == "craft" else None
        inv = obs.inventory
        return (r is not None and all(inv.get(u, 0) >= c for u, c in r.uses.items())
                and all(inv.get(t, 0) >= c for t, c in r.tools.items()) and set(r.stations) <= set(stations))

    def _ready(self, ach: str, obs: Observation) -> bool:
        if self._held_until.get(ach, -1) > obs.step:
            return False
        if ach == "defeat_zombie" and (obs.vitals.get("health", 0) < 5 or not 15 <= obs.step % DAY < 120):
            return False  # by full daylight only: at dusk and dawn one zombie brings others
        if ach == "defeat_skeleton" and obs.vitals.get("health", 0) < 6:
            return False
        # sleep at dusk: awake again at dawn, not in the middle of the night
        return not (ach == "wake_up" and not (_dusk(obs) or obs.vitals.get("energy", 9) < 3))

    # -- survival ------------------------------------------------------------------------
    def _survival(self, obs: Observation) -> list[Subgoal]:
        v = obs.vitals
        needs = []
        # the executor's thresholds: eat and drink while the light keeps zombies away, so
        # that the player goes into its shelter full; later, only when it must
        drink_below, food_below = need_thresholds(obs.step)
        if v.get("drink", 9) < drink_below:
            needs.append((v["drink"], Subgoal(name="drink water", kind="drink", target="water",
                                              check=Check(type="vital", key="drink", value=9),
                                              budget=BUDGETS["drink"])))
        if v.get("food", 9) < food_below:
            needs.append((v["food"], Subgoal(name="eat cow", kind="eat", target="cow",
                                             check=Check(type="vital", key="food", value=min(9, food_below + 2)),
                                             budget=BUDGETS["cow"])))
        phase = obs.step % DAY
        ach = obs.achievements
        if (20 <= phase < 110 and "make_stone_sword" in ach and "eat_plant" not in ach
                and obs.inventory.get("sapling", 0) < 1):
            # a sapling in the pocket for the evening: the executor walls it in by its bed
            needs.append((6, Subgoal(name="collect sapling", kind="collect", target="sapling",
                                     check=Check(type="inventory", key="sapling", value=1), budget=60)))
        if 60 <= phase < 125 and obs.inventory.get("wood_pickaxe", 0) and obs.inventory.get("stone", 0) < 6:
            # walls for the night: a pocket in the open takes up to six stones
            needs.append((5, Subgoal(name="collect stone", kind="collect", target="stone",
                                     check=Check(type="inventory", key="stone", value=8), budget=80)))
        sleeping = bool(obs.extras.get("sleeping"))
        if not sleeping and (v.get("energy", 9) < 3 or (_dusk(obs) and v.get("energy", 9) <= 7)):
            # asleep through the night in a walled pocket: zombies swarm the grass then
            needs.append((v["energy"], Subgoal(name="sleep", kind="sleep", target="energy",
                                               check=Check(type="vital", key="energy", value=9),
                                               budget=BUDGETS["energy"])))
        if v.get("health", 9) <= 5 and not sleeping and v.get("food", 0) > 0 and v.get("drink", 0) > 0:
            needs.append((v["health"] - 0.5, Subgoal(name="rest in shelter", kind="sleep", target="health",
                                                     check=Check(type="vital", key="health", value=7),
                                                     budget=400)))
        return [sg for _, sg in sorted(needs, key=lambda p: p[0])
                if self._held_until.get(f"survival:{sg.target}", -1) <= obs.step]

    # -- expansion ------------------------------------------------------------------------
    def _needs(self, ach: str, inv: Mapping[str, int]) -> list[tuple[str, str, int]]:
        needs = [("have", item, n) for item, n in self.tree.carry(ach).items()]
        kind, target = self.tree.achievement_goal(ach)
        if (kind == "collect" and target != "drink") or kind == "craft":
            needs.append(("have", target, inv.get(target, 0) + 1))
        elif kind == "place":
            needs.append(("place", target, 1))
        else:
            needs.append(("act", ach, 0))
        return needs

    def _stations(self, obs: Observation) -> list[str]:
        return [s for s in ("table", "furnace") if _near(obs, s, 6)
                or (self.world is not None and self.world.known_near(s, STATION_RADIUS))]

    def _cost(self, ach: str, obs: Observation) -> int:
        """Steps of the plan for ``ach`` alone; an achievement the tree does not plan
        (``act``: sleep, eat, fight) or cannot plan comes after every plannable one."""
        needs = self._needs(ach, obs.inventory)
        if needs[-1][0] == "act":
            return 1_000
        try:
            return len(self.tree.steps_for(needs, obs.inventory, self._stations(obs)))
        except PlanError:
            return 1_000

    def _expand(self, targets: list[str], obs: Observation) -> list[Subgoal]:
        inv = obs.inventory
        needs = [need for ach in targets for need in self._needs(ach, inv)]
        stations = self._stations(obs)
        try:
            steps = self.tree.steps_for(needs, inv, stations)
        except PlanError as err:
            log.debug("cannot expand %s: %s", targets, err)
            steps = [Step("act", ach, 0, 0) for ach in targets]
        out = []
        for step in steps:
            sg = self._subgoal(step, targets, obs)
            if sg is not None:
                self._origin[_key(sg)] = self._serves(step, targets)
                out.append(sg)
        return out

    def _serves(self, step: Step, targets: list[str]) -> str:
        for ach in targets:
            _, target = self.tree.achievement_goal(ach)
            if step.thing in (ach, target):
                return ach
        return targets[0] if targets else "survival"

    def _subgoal(self, step: Step, targets: list[str], obs: Observation) -> Subgoal | None:
        t = step.thing
        if step.kind == "collect":
            check = Check(type="inventory", key=t, value=step.level)
            return Subgoal(name=f"collect {t}", kind="collect", target=t, check=check,
                           budget=BUDGETS.get(t, 300))
        if step.kind == "make":
            return Subgoal(name=f"make {t}", kind="craft", target=t,
                           check=Check(type="inventory", key=t, value=step.level), budget=200)
        if step.kind == "place":
            check = (Check(type="nearby", key=t, value=2) if step.station
                     else Check(type="achievement", key=f"place_{t}"))
            return Subgoal(name=f"place {t}", kind="place", target=t, check=check, budget=200)
        kind, target = self.tree.achievement_goal(t)
        names = {"drink": "drink water", "eat": f"eat {target}", "fight": f"defeat {target}",
                 "sleep": "sleep until rested", "collect": f"collect {target}", "craft": f"make {target}",
                 "place": f"place {target}"}
        return Subgoal(name=names.get(kind, t), kind=kind, target=target,
                       check=Check(type="achievement", key=t), budget=BUDGETS.get(target, 500))

    @staticmethod
    def _facts(obs: Observation) -> dict[str, float]:
        facts: dict[str, float] = dict(obs.vitals)
        facts.update(obs.inventory)
        facts["night"] = float(obs.daylight < 0.35)
        for name in set(obs.local_view.flat):
            facts[f"near:{name}"] = 1.0
        return facts
