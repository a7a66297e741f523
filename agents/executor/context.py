"""What a running skill sees (:class:`SkillContext`), failures, and ``go``.

Skills are generators: each ``yield (action, equally_good_actions)`` is one env step;
the executor steps the env, updates ``ctx.obs`` and the map, then resumes the skill.
A skill gives up by raising :class:`SkillFailure` with a failure cause.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agents.executor.navigation import ARRIVED, GRASS_AT_NIGHT, MINABLE, STEP, Navigator, Route
from agents.executor.worldmap import WorldMap
from agents.techtree import TechTree
from envs import Observation

if TYPE_CHECKING:
    from agents.executor.goals import Goal

Act = tuple[int, tuple[int, ...]]
Skill = Iterator[Act]
_ITEM_OF = {"tree": "wood", "stone": "stone", "coal": "coal", "iron": "iron", "diamond": "diamond"}


class SkillFailure(Exception):
    """A skill cannot go on; ``reason`` is a failure cause (``target_not_found`` ...)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


@dataclass
class SkillContext:
    """The per-episode state skills share: observation, map, navigator, tree, actions."""

    obs: Observation
    world: WorldMap
    nav: Navigator
    tree: TechTree
    a: dict[str, int]
    unminable: dict[str, int] = field(default_factory=dict)  # material -> step a `do` on it did nothing
    replan: bool = False  # set when a guardrail blocked a move: routes must be rebuilt
    near_pocket: int | None = None  # shelter within this many cells first (see shelter.find_pockets)
    stop_when_sealed: bool = False  # the night's errands end once sealed in, by whoever (see shelter.sleep)
    replan_when_overruled: bool = False  # the night's errands start over after another's action (shelter.sleep)
    overruled: bool = False  # the action carried out last was not the one chosen (another player's)
    # what a sheltering program (shelter.night, shelter.sleep) is doing now, in subgoal
    # words ("collect stone", "build shelter", "sleep"): recorded as the step's subgoal
    errand: str | None = None

    def inv(self, item: str) -> int:
        return self.obs.inventory.get(item, 0)

    def vital(self, name: str) -> float:
        return self.obs.vitals.get(name, 0.0)

    @property
    def pos(self) -> tuple[int, int]:
        return self.obs.position

    def front(self) -> tuple[int, int]:
        return self.obs.position[0] + self.obs.facing[0], self.obs.position[1] + self.obs.facing[1]

    def name_at_offset(self, dx: int, dy: int) -> str:
        view = self.obs.local_view
        r, c = view.shape[0] // 2 + dy, view.shape[1] // 2 + dx
        if 0 <= r < view.shape[0] and 0 <= c < view.shape[1]:
            return view[r, c]
        return self.world.name_at(self.pos[0] + dx, self.pos[1] + dy)

    def front_name(self) -> str:
        return self.name_at_offset(*self.obs.facing)

    def minable(self) -> list[str]:
        """Materials the player can dig through now (the tree's tools, minus failures)."""
        out = []
        for mat in MINABLE:
            if self.obs.step - self.unminable.get(mat, -10**9) < 300:
                continue  # tried lately without the tool it needs
            r = self.tree.recipe(_ITEM_OF[mat])
            if r is None or all(self.inv(t) >= c for t, c in r.tools.items()):
                out.append(mat)
        return out

    def enter_costs(self) -> list[int]:
        # at night, walking on grass meets zombies: a detour through stone is cheaper
        dark = 150 <= self.obs.step % 300 < 285
        return self.nav.enter_costs(self.minable(), grass=GRASS_AT_NIGHT if dark else STEP)

    def grass_around(self) -> int:
        """Grass cells in view: zombies spawn on grass, in the dark."""
        return int(sum(1 for n in self.obs.local_view.flat if n == "grass"))


def go(x: SkillContext, goal: Goal) -> Skill:
    """Walk (and dig) to ``goal``; replans when blocked, when the map says so, or when told."""
    route: Route | None = None
    replans = stuck = idle = 0
    visits: dict[tuple[int, int], int] = {}
    while True:
        if goal.done(x):
            return
        if route is None or x.replan or goal.stale(x, route):
            x.replan = False
            enter = x.enter_costs()
            seeds = goal.seeds(x, enter)
            if not seeds:
                raise SkillFailure("target_not_found", type(goal).__name__)
            route = x.nav.search(seeds, enter)
            if route is None:
                raise SkillFailure("path_blocked", "no known path")
            replans += 1
            if replans > goal.max_replans:
                raise SkillFailure("stagnation", "too many replans")
        step = route.step(x.pos, x.obs.facing)
        if step is None or step is ARRIVED:
            route = None
            idle += 1
            if idle > 3:
                raise SkillFailure("stagnation", "route ends short of the goal")
            continue
        idle = 0
        action, alts = step
        pos, facing = x.pos, x.obs.facing
        visits[pos] = visits.get(pos, 0) + 1
        if visits[pos] > 8:  # going back and forth: the goal cannot be reached this way
            raise SkillFailure("loop", f"revisited {pos}")
        yield action, alts
        route.age += 1
        if action != x.a["do"] and x.pos == pos and x.obs.facing == facing:
            stuck += 1  # a creature (or a stale map) is in the way
            if stuck >= 2:
                route, stuck = None, 0
        else:
            stuck = 0
