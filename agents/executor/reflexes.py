"""Survival reflexes: programs that interrupt a subgoal, most urgent on top.

Reflexes form a stack: a more urgent one (a zombie next to the player) suspends a less
urgent one (walking to the night shelter), which resumes when the first is done. Each
has a stop condition, a step cap and, after a failure or running out of steps, a
cooldown, so that one hopeless reflex cannot take the whole subgoal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.executor.context import Skill, SkillContext
from agents.executor.farming import go_home, harvest, open_side, plant_before_night
from agents.executor.navigation import DIRS
from agents.executor.shelter import night, sleep
from agents.executor.skills import collect, place_stone_at
from agents.executor.survival import (HOSTILE, dodge, drink, eat_food, incoming_arrow, ripe_plant_near, sidestep,
                                      strike)
from agents.executor.worldmap import WALK_NAMES
from agents.plan import Subgoal

log = logging.getLogger(__name__)

DAY = 300
NIGHT_START = 125  # walls go up before dusk: from ~115 the game spawns zombies on grass
GRASSY = 8  # grass cells in view from which the night is spent walled in (zombie land)
SAFE = (15, 120)  # steps of each day with (almost) no zombie about: eat and drink then
# most urgent first
ORDER = ("dodge", "strike", "rest", "drink", "eat", "sleep", "snack", "stock", "sip", "harvest", "night", "mend")
STEPS = {"dodge": 2, "strike": 12, "rest": 300, "drink": 120, "eat": 150, "sleep": 300, "snack": 25, "stock": 20,
         "sip": 15, "harvest": 40, "night": 260, "mend": 12}
COOLDOWN = 40
# What each reflex is for, in the planner's own subgoal words: recorded as the step's
# subgoal while the reflex acts, so that a student reads what the actions serve
LABELS = {"rest": "rest in shelter", "drink": "drink water", "sip": "drink water", "eat": "eat cow",
          "snack": "eat cow", "sleep": "sleep", "stock": "collect stone", "night": "sleep", "harvest": "eat plant",
          "mend": "eat plant"}
ERRANDS = ("night", "sleep", "rest")  # labelled by the part they are at (see Reflexes.label)
REST_BELOW = 3  # health at which the player walls itself in to heal (26 steps a point awake)


def need_thresholds(step: int) -> tuple[int, int]:
    """(drink, food) below which the player should go drink or eat now.

    High while the light keeps zombies away, so the player walls itself in for the
    night full; low otherwise (going out in the dark costs more than a little hunger).
    """
    return (7, 6) if SAFE[0] <= step % DAY < SAFE[1] else (3, 3)


def is_night(step: int) -> bool:
    """Sheltering time. Crafter's daylight is below ~0.3 from step 165 to 255 of each
    300; zombies spawn on grass once it drops below ~0.83 (step ~115) and linger until
    the light is back (~0.7 at step 285)."""
    return NIGHT_START <= step % DAY < 285


def _chain(*programs: Skill) -> Skill:
    for program in programs:
        yield from program


def _in_view(x: SkillContext, name: str, radius: int, skip: set[tuple[int, int]] | None = None) -> bool:
    """A cell named ``name`` within ``radius`` (Manhattan) of the player, in view, not in ``skip``."""
    view = x.obs.local_view
    hits = view == name
    if not hits.any():  # the usual case: one vectorised comparison
        return False
    rows, cols = np.nonzero(hits)
    r0, c0 = view.shape[0] // 2, view.shape[1] // 2
    near = np.abs(rows - r0) + np.abs(cols - c0) <= radius
    if not skip:
        return bool(near.any())
    px, py = x.pos
    return any((px + c - c0, py + r - r0) not in skip for r, c in zip(rows[near].tolist(), cols[near].tolist()))


@dataclass
class Active:
    name: str
    program: Skill
    stop: Callable[[], bool]
    start: int
    label: str  # the subgoal it serves, in the planner's words (see LABELS)


class Reflexes:
    """The reflex stack of one subgoal run."""

    def __init__(self, x: SkillContext, subgoal: Subgoal, night_shelter: bool = True, farm_at_dusk: bool = True):
        self.x, self.subgoal, self.night_shelter, self.farm_at_dusk = x, subgoal, night_shelter, farm_at_dusk
        self.stack: list[Active] = []
        self.cooldown: dict[str, int] = {}

    def program(self, t: int) -> Skill | None:
        """The program to step now (None: the subgoal's own)."""
        while self.stack:
            top = self.stack[-1]
            if top.stop():
                self._pop()
            elif t - top.start > STEPS[top.name]:
                self.cooldown[top.name] = t + COOLDOWN
                self._pop()
            else:
                break
        limit = ORDER.index(self.stack[-1].name) if self.stack else len(ORDER)
        new = self._trigger(t, limit)
        if new is not None:
            log.debug("t=%d reflex %s starts (stack %s)", self.x.obs.step, new[0], [a.name for a in self.stack])
            name = new[0]
            self.stack.append(Active(name, new[1], new[2], t, new[3] if len(new) > 3 else LABELS[name]))
        return self.stack[-1].program if self.stack else None

    def label(self) -> str | None:
        """The subgoal the running reflex serves (None: the subgoal's own program runs).
        The sheltering programs name each part as they go (``SkillContext.errand``), as a
        planned "sleep" or "rest in shelter" does: walled in, resting is "sleep" too."""
        if not self.stack:
            return None
        top = self.stack[-1]
        return (self.x.errand or top.label) if top.name in ERRANDS else top.label

    def waiting(self) -> bool:
        """Whether a reflex that waits out time (night, rest, sleep) runs now."""
        return any(a.name in ("night", "rest", "sleep") for a in self.stack)

    def failed(self, t: int) -> None:
        """The running reflex raised: drop it and leave it alone for a while."""
        if self.stack:
            log.debug("t=%d reflex %s failed", self.x.obs.step, self.stack[-1].name)
            self.cooldown[self.stack[-1].name] = t + COOLDOWN
            self._pop()

    def finished(self) -> None:
        """The running reflex returned."""
        if self.stack:
            self._pop()

    def close(self) -> None:
        while self.stack:
            self._pop()

    def _pop(self) -> None:
        top = self.stack.pop()
        log.debug("t=%d reflex %s ends", self.x.obs.step, top.name)
        top.program.close()

    def _trigger(self, t: int, limit: int) -> tuple[Any, ...] | None:
        x, sg = self.x, self.subgoal
        active = {a.name for a in self.stack}

        def allowed(name: str) -> bool:
            return ORDER.index(name) < limit and name not in active and self.cooldown.get(name, -1) <= t

        if x.obs.extras.get("sleeping"):
            return None
        if allowed("dodge") and x.world.arrows and not (sg.kind == "fight" and sg.target == "skeleton"):
            way = incoming_arrow(x)
            move = sidestep(x, way) if way is not None else None
            if move is not None:  # an arrow hits for 2, as a zombie does: a step aside costs less
                return "dodge", dodge(move), lambda: False, sg.name
        if allowed("strike"):
            for dx, dy in DIRS:
                name = x.name_at_offset(dx, dy)
                if name in HOSTILE and not (sg.kind == "fight" and sg.target == name):
                    return ("strike", strike(x, dx, dy),
                            lambda dx=dx, dy=dy, name=name: x.name_at_offset(dx, dy) != name, f"defeat {name}")
        v = x.obs.vitals
        dark = is_night(x.obs.step)
        can_wall = bool(x.inv("wood_pickaxe")) or x.inv("stone") >= 3  # else sheltering is a goose chase
        if (allowed("rest") and can_wall and v.get("health", 9) <= REST_BELOW and sg.kind != "sleep"
                and v.get("food", 0) > 2 and v.get("drink", 0) > 2):  # hungry, rest heals nothing
            return "rest", sleep(x), lambda: (x.obs.vitals.get("health", 0) >= 6 or x.obs.vitals.get("food", 0) <= 1
                                              or x.obs.vitals.get("drink", 0) <= 1)
        drink_below, food_below = need_thresholds(x.obs.step)
        if (allowed("drink") and v.get("drink", 9) < drink_below and sg.kind != "drink"
                and (not dark or v.get("drink", 9) <= 1 and x.world.known_near("water", 10)
                     or v.get("drink", 9) == 0 and x.world.known_near("water", 25))):
            return "drink", drink(x), lambda: x.obs.vitals.get("drink", 0) >= 9
        if (allowed("eat") and v.get("food", 9) < food_below and sg.target != "cow"
                and (not dark or (v.get("food", 9) <= 1 and _in_view(x, "cow", 6)))):
            return "eat", eat_food(x), lambda: x.obs.vitals.get("food", 0) >= min(9, food_below + 3)
        if allowed("sleep") and v.get("energy", 9) <= 1 and sg.kind != "sleep":
            return ("sleep", sleep(x),
                    lambda: x.obs.vitals.get("energy", 0) >= 8 and not x.obs.extras.get("sleeping"))
        if allowed("snack") and v.get("food", 9) <= 7 and not dark and sg.kind != "eat" and _in_view(x, "cow", 5):
            # a cow close by is cheaper now than a search later
            food = v.get("food", 0)
            return "snack", eat_food(x), lambda: x.obs.vitals.get("food", 0) > food or not _in_view(x, "cow", 6)
        if (allowed("stock") and x.inv("stone") < 7 and not dark and sg.target != "stone"
                and x.inv("wood_pickaxe") and _in_view(x, "stone", 2, x.world.plant_walls())):
            # walls for the night and for plants: stone is cheap when it is next to us (not
            # the stone of a plant's wall: collect leaves that alone)
            return "stock", collect(x, "stone"), lambda: x.inv("stone") >= 8 or not _in_view(
                x, "stone", 3, x.world.plant_walls())
        if allowed("sip") and v.get("drink", 9) <= 6 and sg.kind != "drink" and _in_view(x, "water", 3):
            return "sip", drink(x), lambda: x.obs.vitals.get("drink", 0) >= 9
        if allowed("harvest") and "eat_plant" not in x.obs.achievements:
            # a plant walled in at dusk ripens 300 steps later, as the next night begins:
            # worth a short trip out of the shelter, a longer one by day
            plant = ripe_plant_near(x, 6 if dark else 20)
            if plant is not None:
                return "harvest", harvest(x, plant), lambda: "eat_plant" in x.obs.achievements
        starving = v.get("food", 9) <= 3 and (_in_view(x, "cow", 5) or ripe_plant_near(x, 6) is not None)
        far = x.inv("stone") < 3 and not x.world.known_near("stone", 10)  # the walk to a wall takes time
        if (allowed("night") and self.night_shelter and can_wall and (dark or far and is_night(x.obs.step + 20))
                and sg.kind != "sleep" and not starving
                and (x.grass_around() >= GRASSY or _in_view(x, "zombie", 5))):
            # zombies swarm the grass at night: wait for the day walled in (asleep if tired)
            # at dawn the zombies drawn to the shelter all night wait outside: stay until
            # none is in view (they despawn in full light) or the morning is well on
            before = _chain(plant_before_night(x), go_home(x)) if self.farm_at_dusk else None
            return "night", night(x, before), lambda: not is_night(x.obs.step) and (
                60 <= x.obs.step % DAY < 150 or not _in_view(x, "zombie", 6))
        if allowed("mend") and x.inv("stone") and not _in_view(x, "zombie", 4):
            side = open_side(x)
            if side is not None:  # a cow or zombie next to a plant eats it: wall it in while here
                return ("mend", place_stone_at(x, side),
                        lambda: x.world.name_at(*side) not in WALK_NAMES, "eat plant")
        return None
