"""Survival: when a night pocket counts as sealed, and which pocket is chosen."""

from __future__ import annotations

from types import SimpleNamespace

from agents.executor.context import SkillContext
from agents.executor.executor import CRAFTER_ACTIONS
from agents.executor.navigation import DIRS, Navigator
from agents.executor.shelter import _wall_front, find_pockets, sealed
from agents.executor.worldmap import CODE, WorldMap
from agents.techtree import TechTree
from tests.agents.conftest import make_obs


def _pocket(extra: dict) -> SimpleNamespace:
    """The player walled in with stone above and on both sides, a lake below (7 x 9 view)."""
    cells = {(-1, 0): "stone", (1, 0): "stone", (0, -1): "stone"}
    cells.update({(dx, dy): "water" for dx in range(-4, 5) for dy in (1, 2, 3)})
    cells.update(extra)
    return SimpleNamespace(obs=make_obs(cells=cells))


def test_a_pocket_by_a_lake_is_sealed_unless_a_skeleton_can_shoot_over_it():
    assert sealed(_pocket({}))
    assert sealed(_pocket({(-4, -3): "arrow"}))  # an arrow far off: no skeleton in range
    assert not sealed(_pocket({(2, 2): "path", (3, 2): "path"}))  # skeleton ground across the water


def test_an_arrow_in_the_doorway_is_waited_out_before_the_wall_goes_up():
    # sealing, the last stone goes on the entry; an arrow flying through it at that
    # moment used to leave the pocket open (and the player walked off to build another)
    front = iter(["arrow", "arrow", "path"])
    state = {"front": next(front)}
    x = SimpleNamespace(a={"place_stone": 7, "noop": 0}, front_name=lambda: state["front"])
    actions = []
    for action, _ in _wall_front(x):
        actions.append(action)
        state["front"] = next(front, "stone")
    assert actions == [0, 0, 7]  # wait, wait, wall
    state["front"] = "water"
    assert list(_wall_front(x)) == []  # water (or a wall) needs no stone


def _field(stones: int, near_pocket: int | None) -> SkillContext:
    """Open grass around the player at (32, 32), and 12 cells east a pocket walled in
    stone on every side but its entry E = (44, 32), facing east."""
    obs = make_obs(inventory={"stone": stones, "wood_pickaxe": 1})
    world = WorldMap(64)
    world.update(obs)
    world.mat[:, :] = CODE["grass"]
    for x, y in ((45, 31), (45, 33), (46, 31), (46, 33), (47, 32)):
        world.mat[y, x] = CODE["stone"]
    a = {n: i for i, n in enumerate(CRAFTER_ACTIONS)}
    return SkillContext(obs, world, Navigator(world, a), TechTree.load("full"), a, near_pocket=near_pocket)


def test_the_best_pocket_is_a_walk_away_and_a_near_one_is_built_where_the_player_stands():
    (e, k, build), *_ = find_pockets(_field(stones=8, near_pocket=None))
    assert (e, DIRS[k], build) == ((44, 32), (1, 0), [])  # nothing to build: worth the walk
    (e, k, build), *_ = find_pockets(_field(stones=8, near_pocket=4))
    assert max(abs(e[0] - 32), abs(e[1] - 32)) <= 4 and len(build) == 4  # its four side walls, on the grass
    # without the stone to build one, the near teacher walks to the pocket that is there
    (e, k, build), *_ = find_pockets(_field(stones=1, near_pocket=4))
    assert (e, build) == ((44, 32), [])


def test_sealed_in_by_another_a_teacher_that_stops_when_sealed_sleeps_where_it_stands():
    """The teacher labelling a student's states sets out for the pocket 12 cells east; the
    student walls itself in where it stands. Committed, the teacher's errand stays "build
    shelter" (walk out, east); stopping when sealed, its next label is to sleep there."""
    from agents.executor.shelter import sleep

    walled = {(-1, 0): "stone", (1, 0): "stone", (0, -1): "stone", (0, 1): "stone"}
    labels = {}
    for stop in (False, True):
        x = _field(stones=8, near_pocket=None)
        x.stop_when_sealed = stop
        x.obs = make_obs(inventory={"stone": 8, "wood_pickaxe": 1}, vitals={"energy": 3.0}, step=200)
        program = sleep(x)
        first, _ = next(program)
        assert x.errand == "build shelter" and CRAFTER_ACTIONS[first] == "move_right"  # off to its pocket
        x.obs = make_obs(inventory={"stone": 8, "wood_pickaxe": 1}, vitals={"energy": 3.0}, step=201,
                         cells=walled)
        action, _ = next(program)
        labels[stop] = (x.errand, CRAFTER_ACTIONS[action])
        program.close()
    assert labels == {False: ("build shelter", "move_right"), True: ("sleep", "sleep")}


def test_overruled_a_teacher_that_replans_walks_to_the_pocket_nearest_where_the_player_is():
    """Two pockets: 12 cells east of the player (the best at the start) and 13 west. The
    teacher sets out east; another player walks the player four cells west instead, where
    the west pocket is the nearer. Committed, the teacher's label still walks east;
    starting over after each step overruled, it walks west."""
    from agents.executor.shelter import sleep

    labels = {}
    for replan in (False, True):
        x = _field(stones=8, near_pocket=None)
        for cx, cy in ((18, 31), (18, 33), (17, 31), (17, 33), (16, 32)):  # entry (19, 32), facing west
            x.world.mat[cy, cx] = CODE["stone"]
        x.replan_when_overruled = replan
        x.obs = make_obs(inventory={"stone": 8, "wood_pickaxe": 1}, vitals={"energy": 3.0}, step=200)
        program = sleep(x)
        first, _ = next(program)
        assert x.errand == "build shelter" and CRAFTER_ACTIONS[first] == "move_right"  # off to the east pocket
        for i in range(1, 5):  # the other player's moves were carried out instead
            x.obs = make_obs(inventory={"stone": 8, "wood_pickaxe": 1}, vitals={"energy": 3.0}, step=200 + i,
                             position=(32 - i, 32), facing=(-1, 0))
            x.world.update(x.obs)  # as the executor does after each step
            x.overruled = True
            action, _ = next(program)
        labels[replan] = (x.errand, CRAFTER_ACTIONS[action])
        program.close()
    assert labels == {False: ("build shelter", "move_right"), True: ("build shelter", "move_left")}


def test_the_executor_knows_when_its_action_was_overruled(crafter):
    """``info["taken"]`` other than the action chosen (another player's carried out, as in
    a DAgger rollout) sets ``overruled`` for the skills; the executor's own does not."""
    from agents.executor import Executor
    from agents.plan import Check, Subgoal
    from envs.base import Wrapper

    class Noop(Wrapper):  # carries out noop, whatever was chosen
        def step(self, action):
            obs, reward, terminated, truncated, info = self.env.step(0)
            return obs, reward, terminated, truncated, dict(info, taken=0)

    goal = Subgoal(name="collect wood", kind="collect", target="wood", budget=3,
                   check=Check(type="inventory", key="wood", value=5))
    for env, overruled in ((crafter, False), (Noop(crafter), True)):
        ex = Executor(reflexes=False)
        obs, _ = crafter.reset(seed=1)
        res = ex.run(env, obs, goal)
        assert res.steps == 3 and ex.ctx.overruled is overruled and any(a != 0 for a in res.actions)
