"""Paths on a hand-made map: shortest, around lava, through stone when it can dig, and
the teacher's equally good moves."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from agents.executor.executor import CRAFTER_ACTIONS
from agents.executor.goals import Face
from agents.executor.navigation import ARRIVED, DIRS, GRASS_AT_NIGHT, INF, Navigator
from agents.executor.worldmap import CODE, RIPE, WorldMap

A = {n: i for i, n in enumerate(CRAFTER_ACTIONS)}
MOVES = {A["move_left"]: DIRS[0], A["move_right"]: DIRS[1], A["move_up"]: DIRS[2], A["move_down"]: DIRS[3]}


def hand_map(rows: list[str]) -> WorldMap:
    """'.' grass, 'L' lava, '#' stone, '~' water, 'T' tree; the map is padded with grass."""
    legend = {".": "grass", "L": "lava", "#": "stone", "~": "water", "T": "tree"}
    w = WorldMap(16)
    w.mat[:] = CODE["grass"]
    for y, row in enumerate(rows):
        for x, ch in enumerate(row):
            w.mat[y, x] = CODE[legend[ch]]
    return w


def follow(w: WorldMap, nav: Navigator, route, start, facing=(0, 1), limit=60, target=None):
    """Walk a route on the map (no env): moves into free cells, turns into blocked ones;
    stops facing ``target`` when given (as ``go`` does for a walkable target)."""
    pos, path = start, [start]
    for _ in range(limit):
        w.position = pos
        if target is not None and (pos[0] + facing[0], pos[1] + facing[1]) == target:
            return path, facing
        step = route.step(pos, facing)
        assert step is not None
        if step is ARRIVED:
            return path, facing
        action, alts = step
        assert action in alts
        if action == A["do"]:  # dig the faced cell
            fx, fy = pos[0] + facing[0], pos[1] + facing[1]
            w.mat[fy, fx] = CODE["path"]
            continue
        d = MOVES[action]
        facing = d
        nxt = (pos[0] + d[0], pos[1] + d[1])
        if w.mat[nxt[1], nxt[0]] in (CODE["grass"], CODE["sand"], CODE["path"]) and nxt not in w.plants:
            pos = nxt
            path.append(pos)
            assert w.mat[pos[1], pos[0]] != CODE["lava"]
        elif (nxt[0] - pos[0], nxt[1] - pos[1]) == facing and route.seeds.get(w.index(*pos)):
            return path, facing  # the final turn toward a blocking target
    raise AssertionError("route did not arrive")


def test_path_goes_around_lava_and_water():
    w = hand_map(["......",
                  ".LLLL.",
                  ".L~~L.",
                  "......"])
    w.position = (0, 3)
    nav = Navigator(w, A)
    enter = nav.enter_costs()
    assert enter[w.index(1, 1)] >= INF and enter[w.index(2, 2)] >= INF  # lava, water
    route = nav.search(nav.stand_seeds(np.array([[5, 0]])), enter)
    path, _ = follow(w, nav, route, (0, 3))
    assert path[-1] == (5, 0)
    assert len(path) - 1 == route.cost((0, 3)) == 8  # the shortest way round


def test_unreachable_goal_gives_no_route():
    w = hand_map(["..~..",
                  "..~..",
                  "~~~.."])
    w.mat[3:, :] = CODE["water"]
    w.mat[:, 5:] = CODE["water"]
    w.position = (0, 0)
    nav = Navigator(w, A)
    assert nav.search(nav.stand_seeds(np.array([[4, 0]])), nav.enter_costs()) is None


def test_digging_through_stone_only_with_a_pickaxe():
    w = hand_map(["..#..",
                  "..#..",
                  "..#..",
                  "..#.."])
    w.mat[4:, :] = CODE["water"]
    w.position = (0, 0)
    nav = Navigator(w, A)
    goal = nav.stand_seeds(np.array([[4, 0]]))
    assert nav.search(goal, nav.enter_costs(minable=())) is None
    route = nav.search(goal, nav.enter_costs(minable=("stone",)))
    path, _ = follow(w, nav, route, (0, 0), facing=(1, 0))
    assert path[-1] == (4, 0) and w.mat[0, 2] == CODE["path"]


def test_facing_a_tree_ends_with_a_turn():
    w = hand_map([".....",
                  "...T.",
                  "....."])
    w.position = (0, 1)
    nav = Navigator(w, A)
    enter = nav.enter_costs()
    route = nav.search(nav.face_seeds(np.array([[3, 1]]), enter), enter)
    path, facing = follow(w, nav, route, (0, 1))
    assert (path[-1][0] + facing[0], path[-1][1] + facing[1]) == (3, 1)


def walled_plant(age: int) -> WorldMap:
    """A plant of ours at (3, 2), ``age`` steps grown, stone on all four sides."""
    w = hand_map(["......",
                  "...#..",
                  "..#.#.",
                  "...#.."])
    w.note_plant((3, 2), own=True)
    w.plants[(3, 2)] = age
    return w


def test_a_ripe_walled_plant_out_of_view_is_faced_by_digging_through_its_wall():
    # the map keeps only the grass under a plant once it is out of view; the plant is
    # still there and blocks, so the route digs a wall and ends with a turn toward it
    w = walled_plant(RIPE)
    w.position = (0, 0)
    w.view = (0, 0, 0, 0)  # nothing in view
    nav = Navigator(w, A)
    enter = nav.enter_costs(minable=("stone",))
    assert enter[w.index(3, 2)] >= INF
    seeds = nav.face_seeds(np.array([[3, 2]]), enter)
    assert seeds
    path, facing = follow(w, nav, nav.search(seeds, enter), (0, 0))
    assert (path[-1][0] + facing[0], path[-1][1] + facing[1]) == (3, 2)
    assert (3, 2) not in path


def test_a_growing_plant_keeps_its_walls_from_routes_and_from_mining():
    w = walled_plant(RIPE - 1)
    w.mat[0, 5] = CODE["stone"]  # the only other stone
    w.position = (0, 0)
    w.view = (0, 0, 0, 0)
    nav = Navigator(w, A)
    walls = [(3, 1), (2, 2), (4, 2), (3, 3)]
    assert w.plant_walls() == set(walls)
    enter = nav.enter_costs(minable=("stone",))
    assert all(enter[w.index(*c)] >= INF for c in walls)  # not dug on the way anywhere
    assert not nav.face_seeds(np.array([[3, 2]]), list(enter))  # nor to reach the plant itself
    goal = Face(("stone",))
    goal.seeds(SimpleNamespace(world=w, nav=nav), list(enter))
    assert goal.targets == [(5, 0)]  # collecting stone leaves the walls alone
    w.plants[(3, 2)] = RIPE  # ripe: eating it opens a wall, and the stone is anyone's
    assert not w.plant_walls()
    enter = nav.enter_costs(minable=("stone",))
    assert all(enter[w.index(*c)] < INF for c in walls)
    goal.seeds(SimpleNamespace(world=w, nav=nav), list(enter))
    assert set(walls) <= set(goal.targets)


def test_a_route_to_face_a_cell_never_digs_through_that_cell():
    # sealing a pocket faces its stone P from the far side E; the shortest walk there
    # digs through P itself, after which the final move, meant as a turn, steps onto P
    w = hand_map(["..#...",
                  "..#...",
                  "..#...",
                  "......"])
    w.position = (0, 1)
    nav = Navigator(w, A)
    enter = nav.enter_costs(minable=("stone",))
    seeds = nav.face_seeds(np.array([[2, 1]]), enter, stand_ok=lambda x, y: (x, y) == (3, 1))
    path, facing = follow(w, nav, nav.search(seeds, enter), (0, 1), facing=(1, 0))
    assert path[-1] == (3, 1) and facing == (-1, 0)
    assert (2, 1) not in path and w.mat[1, 2] == CODE["stone"]


def test_teacher_moves_are_all_and_only_the_equally_good_ones():
    w = hand_map(["......",
                  "......",
                  "......"])
    w.position = (0, 2)
    nav = Navigator(w, A)
    enter = nav.enter_costs()
    route = nav.search(nav.stand_seeds(np.array([[3, 0]])), enter)
    _, alts = route.step((0, 2), (0, 1))
    assert set(alts) == {A["move_right"], A["move_up"]}  # both shorten the way by one
    d = route.cost((0, 2))
    for a in alts:
        dx, dy = MOVES[a]
        assert route.cost((dx, 2 + dy)) == d - 1
    _, alts = route.step((3, 2), (0, 1))
    assert alts == (A["move_up"],)  # straight below the goal: one good move


def test_a_wall_is_built_from_grass_at_night():
    # after dark grass costs more to walk on; a cell on grass is still faced from grass,
    # or no wall (of a night pocket) could be built in the open
    w = hand_map(["......",
                  "......",
                  "......"])
    w.position = (0, 1)
    nav = Navigator(w, A)
    enter = nav.enter_costs(grass=GRASS_AT_NIGHT)
    seeds = nav.face_seeds(np.array([[4, 1]]), enter)
    assert seeds
    path, facing = follow(w, nav, nav.search(seeds, enter), (0, 1), target=(4, 1))
    assert (path[-1][0] + facing[0], path[-1][1] + facing[1]) == (4, 1)


def test_a_route_never_digs_through_the_walls_it_must_keep():
    # the way to a night pocket's entry must not dig the pocket's own side wall; the
    # shortest walk digs straight through it, so the kept route goes round
    w = hand_map(["..#...",
                  "..#...",
                  "..#...",
                  "......"])
    w.position = (0, 1)
    nav = Navigator(w, A)
    x = SimpleNamespace(world=w, nav=nav)
    enter = nav.enter_costs(minable=("stone",))
    plain = nav.search(Face(cells=np.array([[4, 1]]), k=1).seeds(x, list(enter)), enter)
    dug, _ = follow(w, nav, plain, (0, 1), facing=(1, 0), target=(4, 1))
    assert (2, 1) in dug  # without ``keep`` the wall is dug
    w.mat[1, 2] = CODE["stone"]
    w.position = (0, 1)
    kept = list(enter)
    route = nav.search(Face(cells=np.array([[4, 1]]), k=1, keep=[(2, 0), (2, 1), (2, 2)]).seeds(x, kept), kept)
    path, facing = follow(w, nav, route, (0, 1), facing=(1, 0), target=(4, 1))
    assert (path[-1][0] + facing[0], path[-1][1] + facing[1]) == (4, 1)
    assert all(w.mat[y, 2] == CODE["stone"] for y in range(3)) and (2, 3) in path


def test_the_cells_ahead_of_a_flying_arrow_cost_more():
    w = hand_map(["........"])
    w.position = (0, 4)
    nav = Navigator(w, A)
    plain = nav.enter_costs()
    w.arrows = {(3, 2): (1, 0)}  # flying right along row 2
    costs = nav.enter_costs()
    raised = {(i % w.size, i // w.size) for i, (c, p) in enumerate(zip(costs, plain)) if c != p}
    assert raised == {(4, 2), (5, 2), (6, 2)}  # its next three cells, not the ones behind it
    w.arrows = {(3, 2): None}  # not seen a step ago: direction unknown
    assert nav.enter_costs() == plain


def test_a_map_with_a_short_memory_forgets_what_left_the_view():
    """``forget_after``: a cell out of view for longer is unknown again; what is still
    remembered reads as in the map that remembers everything."""
    import envs

    env = envs.make("crafter", max_steps=200)
    obs, _ = env.reset(3)
    full, short, none = WorldMap(64), WorldMap(64, forget_after=5), WorldMap(64, forget_after=0)
    rng = np.random.default_rng(0)
    for _ in range(60):
        for w in (full, short, none):
            w.update(obs)
        known = short.mat != CODE["unknown"]
        assert (known == (short.seen_at >= obs.step - 5)).all()
        assert (short.mat[known] == full.mat[known]).all()
        x0, y0, x1, y1 = none.view
        assert (none.mat != CODE["unknown"]).sum() == (x1 - x0) * (y1 - y0)  # the view alone
        obs, *_ = env.step(int(rng.integers(1, 5)))
    assert (full.mat != CODE["unknown"]).sum() > known.sum()
    short.reset()
    assert short.forget_after == 5
