"""The executor: runs one subgoal with a skill until its check holds.

Per step it only updates the map (numpy, tens of microseconds), asks the running skill
for an action, checks guardrails when the action is risky, and steps the env. Searches
happen when a skill plans a route: once per leg, again only when blocked or when the
map shows something new of the kind it walks to.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents.executor import guardrails as guard
from agents.executor.context import Skill, SkillContext, SkillFailure
from agents.executor.farming import eat_plant
from agents.executor.navigation import DIRS, MOVE_NAMES, Navigator
from agents.executor.reflexes import Reflexes
from agents.executor.shelter import sealed, sleep
from agents.executor.skills import collect, craft, explore_until, place, wander
from agents.executor.survival import drink, eat_food, hunt
from agents.executor.worldmap import CODE, WALK_NAMES, WorldMap
from agents.plan import Subgoal
from agents.techtree import TechTree
from envs import Env, Observation

log = logging.getLogger(__name__)

CRAFTER_ACTIONS = ("noop", "move_left", "move_right", "move_up", "move_down", "do", "sleep",
                   "place_stone", "place_table", "place_furnace", "place_plant", "make_wood_pickaxe",
                   "make_stone_pickaxe", "make_iron_pickaxe", "make_wood_sword", "make_stone_sword",
                   "make_iron_sword")
OnStep = Callable[[int, list[float]], None]


@dataclass
class ExecutionResult:
    """What running one subgoal did."""

    obs: Observation
    success: bool  # the subgoal's check held
    steps: int
    actions: list[int] = field(default_factory=list)
    positions: list[tuple[int, int]] = field(default_factory=list)
    damage: float = 0.0  # health lost, summed over steps
    done: bool = False  # the episode ended
    terminated: bool = False
    truncated: bool = False
    reason: str = ""  # failure cause: target_not_found, missing_requirement, path_blocked, ...
    detail: str = ""
    reward: float = 0.0
    blocked: int = 0  # actions a guardrail blocked
    unlocked: list[str] = field(default_factory=list)
    before_last: Observation | None = None  # the observation the last action was taken in


class Executor:
    """Runs subgoals in an env with skills, survival reflexes and guardrails.

    One executor plays one episode at a time and keeps its map between subgoals (call
    :meth:`reset` at a new episode; ``run`` also notices one). ``reflexes=False`` turns
    survival interruptions off (tests of a single skill); ``night_shelter`` walls the
    player in at night, and ``farm_at_dusk`` has it plant a sapling first, or walk back to
    the one it planted (for eat_plant: a plant grows only near the player); ``yield_below``
    (0: off) ends a subgoal as ``interrupted`` when food or drink falls below it, handing
    the need to the planner. ``memory`` (steps; None: the whole episode) is how long the
    map keeps a cell once it is out of view: 0 plays on what is in view alone.
    ``near_pocket`` (cells; None: off) shelters for the night in a pocket within that
    distance first, building its walls if need be, rather than the best one on the map.
    ``stop_when_sealed`` ends the night's errands (collecting stone, building the shelter)
    as soon as the player is sealed in, by whoever: for a teacher labelling the states
    another player reaches, who may wall itself in elsewhere. Off, the teacher finishes
    the pocket it set out for (in its own play, 8 of 40 episodes differ with it on).
    ``replan_when_overruled`` starts the night's errands over, from where the player now
    is, whenever the action carried out was not the one chosen (``info["taken"]``: another
    player is in control): the label of each state is then its first action, as if the
    teacher had arrived there itself, rather than a step of the pocket it chose, or gave up
    as failed, where it stood before.
    """

    def __init__(self, techtree: TechTree | None = None, action_names: Sequence[str] = CRAFTER_ACTIONS,
                 map_size: int = 64, reflexes: bool = True, night_shelter: bool = True,
                 farm_at_dusk: bool = True, yield_below: float = 0, memory: int | None = None,
                 near_pocket: int | None = None, stop_when_sealed: bool = False,
                 replan_when_overruled: bool = False):
        self.tree = techtree or TechTree.load("full")
        self.action_names = tuple(action_names)
        self.a = {n: i for i, n in enumerate(self.action_names)}
        self.map_size = map_size
        self.reflexes = reflexes
        self.night_shelter = night_shelter
        self.farm_at_dusk = farm_at_dusk
        self.yield_below = yield_below
        self.near_pocket = near_pocket
        self.stop_when_sealed = stop_when_sealed
        self.replan_when_overruled = replan_when_overruled
        self.world = WorldMap(map_size, forget_after=memory)
        self.nav = Navigator(self.world, self.a)
        self.ctx: SkillContext | None = None
        self._probs_ok: dict[int, bool] = {}

    def reset(self, obs: Observation) -> None:
        """Forget the map: a new episode starts at ``obs`` (the same map object, so
        whoever holds ``executor.world`` keeps seeing the current episode)."""
        self.world.reset()
        self.nav = Navigator(self.world, self.a)
        self.world.update(obs)
        self.ctx = SkillContext(obs, self.world, self.nav, self.tree, self.a, near_pocket=self.near_pocket,
                                stop_when_sealed=self.stop_when_sealed,
                                replan_when_overruled=self.replan_when_overruled)

    def program(self, subgoal: Subgoal) -> Skill:
        """The skill that carries out ``subgoal`` (dispatch on kind and target)."""
        x, kind, target = self.ctx, subgoal.kind, subgoal.target
        if kind == "collect":
            item = target if self.tree.recipe(target) else next(
                (r for r in ("wood", "stone", "coal", "iron", "diamond", "sapling", "drink")
                 if self.tree.source(r) == target), target)
            return drink(x) if item == "drink" else collect(x, item)
        if kind == "drink":
            return drink(x)
        if kind == "eat":
            if target in ("plant", "ripe_plant"):
                return eat_plant(x)
            return eat_food(x) if target == "cow" and subgoal.check.type == "vital" else hunt(x, target)
        if kind == "fight":
            return hunt(x, target)
        if kind == "sleep":
            return sleep(x)
        if kind == "place":
            return place(x, target, reuse=subgoal.check.type == "nearby")
        if kind == "craft":
            return craft(x, target)
        if target in CODE:
            return explore_until(x, (target,))
        return wander(x)

    def run(self, env: Env, obs: Observation, subgoal: Subgoal, guardrails: Sequence[Any] = (),
            on_step: OnStep | None = None) -> ExecutionResult:
        """Act in ``env`` from ``obs`` until ``subgoal.check`` holds, the budget is spent,
        the skill fails or the episode ends.

        ``on_step(action, teacher_probs)`` is called after every step with a distribution
        spread evenly over the equally good actions (the same list goes to
        ``env.step(..., teacher_probs=...)`` when an episode recorder is inside ``env``).
        Steps spent walled in for the night or to heal do not count against the budget.
        """
        if self.ctx is None or obs.step < self.world.step:
            self.reset(obs)
        x = self.ctx
        x.obs = obs
        self.world.update(obs)
        res = ExecutionResult(obs=obs, success=False, steps=0)
        check, budget = subgoal.check, subgoal.budget
        program = self.program(subgoal)
        reflexes = Reflexes(x, subgoal, self.night_shelter, self.farm_at_dusk) if self.reflexes else None
        pass_probs = self._accepts_probs(env)
        annotate = getattr(env, "annotate", None)  # an episode recorder: steps carry what they serve
        shown: str | None = None  # the reflex or errand label the recorder holds (None: the subgoal's name)
        want_probs = pass_probs or on_step is not None
        n_actions = len(self.action_names)
        last_health = obs.vitals.get("health", 0.0)
        consecutive_blocks = waited = 0
        # needs that were fine when the subgoal began and drop below ``yield_below`` hand
        # control back to the planner ("interrupted"), which schedules them properly
        watch = [k for k in ("food", "drink") if obs.vitals.get(k, 9) >= self.yield_below
                 and subgoal.kind not in ("eat", "drink", "sleep")] if self.yield_below else []
        while True:
            if check.holds(x.obs):
                res.success = True
                break
            if res.steps - waited >= budget:  # the night and resting are not the subgoal's time
                res.reason = "timeout"
                break
            if watch and res.steps >= 10 and any(x.obs.vitals.get(k, 9) < self.yield_below for k in watch):
                res.reason, res.detail = "interrupted", "a need came up"
                break
            reflex = reflexes.program(res.steps) if reflexes else None
            try:
                if x.obs.extras.get("sleeping") and subgoal.kind != "sleep" and reflex is None:
                    # asleep, the game ignores actions: wait for it to wake the player
                    action, alts = self.a["noop"], (self.a["noop"],)
                else:
                    action, alts = next(reflex or program)
            except StopIteration:
                if reflex is not None:
                    reflexes.finished()
                    continue
                res.reason = "stagnation"
                break
            except SkillFailure as err:
                if reflex is not None:
                    reflexes.failed(res.steps)
                    continue
                res.reason, res.detail = err.reason, err.detail
                break
            if annotate is not None:  # read once the program has chosen: its errand is this step's
                label = reflexes.label() if reflexes else None
                if label is None and subgoal.kind == "sleep":
                    label = x.errand
                if label != shown:
                    shown = label
                    annotate(subgoal=label or subgoal.name)
            if guardrails or self.action_names[action] in MOVE_NAMES:
                safe = self._guard(x, subgoal, action, guardrails)
                if safe != action:
                    res.blocked += 1
                    consecutive_blocks += 1
                    action, alts = safe, (safe,)
                    if consecutive_blocks > 20:
                        res.reason = "guardrail_blocked"
                        break
                else:
                    consecutive_blocks = 0
            probs = None
            if want_probs:
                probs = [0.0] * n_actions
                share = 1.0 / len(alts)
                for a in alts:
                    probs[a] = share
            if pass_probs:
                obs, reward, terminated, truncated, info = env.step(action, teacher_probs=probs)
            else:
                obs, reward, terminated, truncated, info = env.step(action)
            res.before_last, x.obs = x.obs, obs
            x.overruled = info.get("taken", action) != action
            self.world.update(obs)
            res.steps += 1
            if reflexes is not None and reflexes.waiting():
                waited += 1
            res.actions.append(action)
            res.positions.append(obs.position)
            res.reward += reward
            res.unlocked.extend(info.get("unlocked", ()))
            health = obs.vitals.get("health", 0.0)
            if health < last_health:
                res.damage += last_health - health
            last_health = health
            if on_step is not None:
                on_step(action, probs)
            if terminated or truncated:
                res.done, res.terminated, res.truncated = True, terminated, truncated
                res.success = check.holds(obs)
                if not res.success:
                    res.reason = "died" if terminated else "timeout"
                break
        program.close()
        if reflexes:
            reflexes.close()
        if shown is not None:
            annotate(subgoal=subgoal.name)
        res.obs = x.obs
        if not res.success and not res.reason:
            res.reason = "unknown"
        return res

    # -- guardrails --------------------------------------------------------------------
    def _guard(self, x: SkillContext, subgoal: Subgoal, action: int, guardrails: Sequence[Any]) -> int:
        """``action`` if it is safe, else a safer one (noop, or a step back)."""
        name = self.action_names[action]
        if name in MOVE_NAMES:
            dx, dy = DIRS[MOVE_NAMES.index(name)]
            if x.name_at_offset(dx, dy) == "lava":  # built in: never walk into lava
                self._avoid(x, dx, dy)
                return self.a["noop"]
        if not guardrails:
            return action
        names = {(dx, dy): x.name_at_offset(dx, dy) for dx in (-2, -1, 0, 1, 2) for dy in (-2, -1, 0, 1, 2)
                 if abs(dx) + abs(dy) <= 2}
        facing = x.obs.facing
        if not guard.risky(names, name, facing):
            return action
        facts = guard.situation(names, name, x.obs.vitals, x.obs.inventory, facing, x.obs.daylight,
                                bool(x.obs.extras.get("sleeping")), sealed(x) if name == "sleep" else None)
        g = guard.blocking(guardrails, subgoal.kind, subgoal.target, facts)
        if g is None:
            return action
        log.debug("guardrail %s blocks %s", getattr(g, "id", g), name)
        if name in MOVE_NAMES:
            self._avoid(x, *DIRS[MOVE_NAMES.index(name)])
            return self.a["noop"]
        if name == "do":  # step back from the creature instead of fighting it
            back = (-facing[0], -facing[1])
            if x.name_at_offset(*back) in WALK_NAMES:
                return self.a[MOVE_NAMES[DIRS.index(back)]]
        return self.a["noop"]

    def _avoid(self, x: SkillContext, dx: int, dy: int) -> None:
        cx, cy = x.pos[0] + dx, x.pos[1] + dy
        if self.world.inside(cx, cy):
            self.world.avoid.add(self.world.index(cx, cy))
        x.replan = True

    def _accepts_probs(self, env: Any) -> bool:
        """Whether ``env.step`` takes ``teacher_probs`` (an episode recorder inside)."""
        key = id(env)
        if key not in self._probs_ok:
            ok, layer = False, env
            while layer is not None:
                params = inspect.signature(layer.step).parameters
                if "teacher_probs" in params:
                    ok = True
                    break
                if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
                    break
                layer = getattr(layer, "env", None)
            self._probs_ok[key] = ok
        return self._probs_ok[key]
