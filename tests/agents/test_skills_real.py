"""Skills in real Crafter runs from fixed seeds (a few hundred steps each)."""

from __future__ import annotations

import math

import pytest

from agents.executor import Executor
from agents.executor.shelter import sealed, sleep
from agents.loop import play_episode
from agents.plan import Check, Subgoal
from agents.planners import GraphPlanner

SEED = 100  # trees, stone, water and cows near the start


def sg(name, kind, target, check_type, key, value=1, budget=150) -> Subgoal:
    return Subgoal(name=name, kind=kind, target=target, check=Check(type=check_type, key=key, value=value),
                   budget=budget)


@pytest.fixture(scope="module")
def started(crafter):
    """An executor and an env after wood, table and tools: the chain most skills need."""
    obs, _ = crafter.reset(seed=SEED)
    ex = Executor()
    ex.reset(obs)
    probs_seen: list[list[float]] = []
    chain = [
        sg("collect wood", "collect", "wood", "inventory", "wood", 5, budget=80),
        sg("place table", "place", "table", "achievement", "place_table", budget=20),
        sg("make wood pickaxe", "craft", "wood_pickaxe", "inventory", "wood_pickaxe", budget=20),
        sg("make wood sword", "craft", "wood_sword", "inventory", "wood_sword", budget=20),
        sg("collect stone", "collect", "stone", "inventory", "stone", 6, budget=120),
        sg("place stone", "place", "stone", "achievement", "place_stone", budget=20),
        sg("make stone pickaxe", "craft", "stone_pickaxe", "inventory", "stone_pickaxe", budget=60),
    ]
    results = []
    for goal in chain:
        res = ex.run(crafter, obs, goal, on_step=lambda a, p: probs_seen.append(p))
        obs = res.obs
        results.append((goal.name, res))
    return crafter, ex, obs, results, probs_seen


def test_collect_place_and_craft_chain(started):
    _, _, obs, results, _ = started
    for name, res in results:
        assert res.success, (name, res.reason, res.detail, res.steps)
    steps = {name: res.steps for name, res in results}
    assert steps["collect wood"] <= 60 and steps["place table"] <= 5 and steps["make wood pickaxe"] <= 10
    assert {"collect_wood", "place_table", "make_wood_pickaxe", "collect_stone", "place_stone",
            "make_stone_pickaxe"} <= obs.achievements


def test_teacher_probabilities_are_distributions_over_equally_good_moves(started):
    *_, probs_seen = started
    assert probs_seen
    spread = 0
    for probs in probs_seen:
        assert math.isclose(sum(probs), 1.0, abs_tol=1e-9)
        support = [p for p in probs if p > 0]
        assert max(support) - min(support) < 1e-12  # evenly spread over its support
        spread += len(support) > 1
    assert spread > 0  # some steps had several equally good moves


def test_sapling_plant_drink_and_cow(started):
    env, ex, obs, _, _ = started
    for goal in (sg("collect sapling", "collect", "sapling", "inventory", "sapling", budget=150),
                 sg("place plant", "place", "plant", "achievement", "place_plant", budget=60),
                 sg("drink", "drink", "water", "achievement", "collect_drink", budget=200),
                 sg("eat cow", "eat", "cow", "achievement", "eat_cow", budget=300)):
        res = ex.run(env, obs, goal)
        obs = res.obs
        assert res.success, (goal.name, res.reason, res.detail)


def test_sleep_walls_itself_in_first(crafter):
    obs, _ = crafter.reset(seed=SEED)
    ex = Executor(reflexes=False)
    ex.reset(obs)
    for goal in (sg("wood", "collect", "wood", "inventory", "wood", 3, budget=80),
                 sg("table", "place", "table", "achievement", "place_table", budget=20),
                 sg("pickaxe", "craft", "wood_pickaxe", "inventory", "wood_pickaxe", budget=20),
                 sg("stone", "collect", "stone", "inventory", "stone", 6, budget=150)):
        obs = ex.run(crafter, obs, goal).obs
    fell_asleep: list[bool] = []

    def watch(action, probs):
        if ex.ctx.obs.extras["sleeping"] and not fell_asleep:
            fell_asleep.append(sealed(ex.ctx))
    res = ex.run(crafter, obs, sg("sleep", "sleep", "energy", "achievement", "wake_up", budget=400), on_step=watch)
    assert res.success, (res.reason, res.detail, res.steps)
    assert fell_asleep == [True]  # asleep only once walled in
    assert res.damage == 0
    # woken rested in the pocket: it waits with noops ("sleep" would do nothing until
    # the energy drops, and reads in the episodes as a step taken asleep)
    x, names, waited = ex.ctx, crafter.action_names, []
    wait = sleep(x)
    for _ in range(12):
        rested = x.obs.vitals["energy"] >= 9 and not x.obs.extras["sleeping"]
        action, _ = next(wait)
        waited.append((rested, names[action]))
        x.obs, *_ = crafter.step(action)
        ex.world.update(x.obs)
    assert (True, "noop") in waited and (True, "sleep") not in waited, waited


def test_missing_tool_is_reported_as_missing_requirement(crafter):
    obs, _ = crafter.reset(seed=SEED)
    ex = Executor()
    ex.reset(obs)
    res = ex.run(crafter, obs, sg("stone", "collect", "stone", "inventory", "stone", budget=150))
    assert not res.success and res.reason == "missing_requirement", (res.reason, res.detail)
    res = ex.run(crafter, res.obs, sg("pickaxe", "craft", "wood_pickaxe", "inventory", "wood_pickaxe", budget=30))
    assert res.reason == "missing_requirement"


def test_play_loop_is_deterministic_and_makes_progress():
    import envs

    env = envs.make("crafter", max_steps=300)
    runs = []
    for _ in range(2):
        planner = GraphPlanner(prior="full")
        result = play_episode(env, planner, Executor(planner.tree), seed=SEED)
        runs.append((result.length, tuple(result.achievements)))
    assert runs[0] == runs[1]
    assert len(runs[0][1]) >= 10, runs[0]


def test_a_place_that_does_nothing_on_good_ground_is_a_missing_requirement(crafter):
    """Under the none prior a table is placed with no wood (nothing says it needs any):
    the game refuses, and that is reported as missing_requirement (which teaches), not
    as stagnation (which would teach nothing)."""
    from agents.techtree import TechTree

    obs, _ = crafter.reset(seed=SEED)
    ex = Executor(TechTree.load("none"))
    ex.reset(obs)
    res = ex.run(crafter, obs, sg("place table", "place", "table", "achievement", "place_table", budget=40))
    assert not res.success and res.reason == "missing_requirement", (res.reason, res.detail)
    assert res.before_last is not None and res.before_last.step == res.obs.step - 1


def test_steps_a_reflex_takes_are_recorded_as_the_subgoal_it_serves(tmp_path):
    import envs
    from envs.episodes import read_steps
    from envs.recorder import EpisodeRecorder

    env = EpisodeRecorder(envs.make("crafter", max_steps=10000), tmp_path, "steve", "test")
    obs, _ = env.reset(SEED)
    env.env._env._player.inventory["drink"] = 1  # thirsty in the morning: the drink reflex takes over
    obs = env.step(0)[0]
    ex = Executor()
    ex.reset(obs)
    env.annotate(subgoal="collect wood")
    res = ex.run(env, obs, sg("collect wood", "collect", "wood", "inventory", "wood", 2, budget=150))
    assert res.success, (res.reason, res.detail)
    env.close()
    steps = read_steps(tmp_path, ["subgoal", "action_name"]).to_pylist()
    labels = [s["subgoal"] for s in steps[1:]]
    assert labels[0] == "drink water" and "collect wood" in labels  # the reflex first, then the subgoal
    drinking = [s["action_name"] for s in steps[1:] if s["subgoal"] == "drink water"]
    assert drinking[-1] == "do"  # the last step of the reflex drank
    assert env._context["subgoal"] == "collect wood"  # restored when the reflex ended


def _recorded(tmp_path, run) -> list[dict]:
    """The (subgoal, action_name, sleeping) of each step ``run(env)`` records in Crafter."""
    import envs
    from envs.episodes import read_steps
    from envs.recorder import EpisodeRecorder

    env = EpisodeRecorder(envs.make("crafter", max_steps=400), tmp_path, "steve", "test")
    run(env)
    env.close()
    return read_steps(tmp_path, ["subgoal", "action_name"]).to_pylist()


def test_a_planned_sleep_is_recorded_errand_by_errand(tmp_path):
    """The steps of a "sleep" subgoal carry what each part does: fetching stone, walking
    into a pocket and walling it ("build shelter"); "sleep" only once walled in."""
    seals: list[bool] = []  # walled in before each step of the subgoal

    def run(env):
        obs, _ = env.reset(SEED)
        ex = Executor(reflexes=False)
        ex.reset(obs)
        for goal in (sg("wood", "collect", "wood", "inventory", "wood", 3, budget=80),
                     sg("table", "place", "table", "achievement", "place_table", budget=20),
                     sg("pickaxe", "craft", "wood_pickaxe", "inventory", "wood_pickaxe", budget=20)):
            env.annotate(subgoal=goal.name)
            obs = ex.run(env, obs, goal).obs
        env.annotate(subgoal="sleep")
        seals.append(sealed(ex.ctx))
        res = ex.run(env, obs, sg("sleep", "sleep", "energy", "achievement", "wake_up", budget=400),
                     on_step=lambda a, p: seals.append(sealed(ex.ctx)))
        assert res.success, (res.reason, res.detail)
        assert env._context["subgoal"] == "sleep"  # the subgoal's own name once it ended

    steps = _recorded(tmp_path, run)[1 - len(seals):]  # the subgoal's steps
    labels = [s["subgoal"] for s in steps]
    assert set(labels) <= {"collect stone", "find stone", "build shelter", "sleep"}, set(labels)
    assert labels[0] == "collect stone"  # no stone yet: it fetches some first
    first = labels.index("sleep")
    assert "build shelter" in labels[:first] and not any(seals[:first])
    assert all(seals[first:-1]) and set(labels[first:]) == {"sleep"}  # walled in from there on
    built = [s["action_name"] for s, label in zip(steps, labels) if label == "build shelter"]
    assert "place_stone" in built


def test_the_night_reflex_is_recorded_errand_by_errand(tmp_path):
    """Played by the planner to the first night: the evening's walk into a pocket and its
    walls are "build shelter", and the steps asleep are "sleep"."""
    def run(env):
        planner = GraphPlanner(prior="full")
        play_episode(env, planner, Executor(planner.tree), seed=SEED)

    steps = _recorded(tmp_path, run)[125:]  # from dusk
    labels = [s["subgoal"] for s in steps]
    assert "build shelter" in labels and "sleep" in labels
    assert labels.index("build shelter") < labels.index("sleep")
    assert all(label == "sleep" for s, label in zip(steps, labels) if s["action_name"] == "sleep")
