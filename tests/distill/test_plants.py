"""``distill.plants``: what becomes of the player's saplings, read back from recorded episodes."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

import distill.plants as dp
import envs
from envs.recorder import EpisodeRecorder
from tests.conftest import run_cli

SEED = 1  # the farmer plants at step 4 and a creature eats the sapling at step 71, before the player dies
MOVES = ("move_left", "move_right", "move_up", "move_down")


@pytest.fixture(scope="module")
def farmer(tmp_path_factory):
    """A player that takes a sapling from the grass, plants it in front of itself and
    stands there, eating it if it ripens; recorded, with the views it saw."""
    run = tmp_path_factory.mktemp("plants") / "farmer"
    env = EpisodeRecorder(envs.make("crafter", max_steps=400), run, agent="farmer", config_hash="0123456789abcdef")
    names = list(env.action_names)
    rng = np.random.default_rng(SEED)
    obs, _ = env.reset(seed=SEED)
    views, done = [obs.local_view], False
    while not done:
        r, c = obs.local_view.shape[0] // 2, obs.local_view.shape[1] // 2
        front = obs.local_view[r + obs.facing[1], c + obs.facing[0]]
        if "place_plant" in obs.achievements:
            action = "do" if front == "ripe_plant" else "noop"
        elif front != "grass":
            action = MOVES[rng.integers(len(MOVES))]
        else:
            action = "place_plant" if obs.inventory.get("sapling", 0) else "do"
        obs, _, terminated, truncated, _ = env.step(names.index(action))
        views.append(obs.local_view)
        done = terminated or truncated
    env.close()
    return run, views, obs


def test_a_sapling_is_followed_from_planting_until_a_creature_eats_it(farmer):
    """The replay finds the one plant where the player's view shows it appear and vanish
    (the player stands beside it throughout), with the open sides the view shows then."""
    run, views, last = farmer
    r, c = views[0].shape[0] // 2, views[0].shape[1] // 2
    y, x = r + last.facing[1], c + last.facing[0]  # the player never turns after planting
    front = [v[y, x] for v in views]
    planted = front.index("plant")
    lost = next(i for i in range(planted, len(front)) if front[i] != "plant")
    assert lost < len(views) - 1 and front[lost] in ("grass", "sand", "path")  # gone while the player lived

    report = dp.plant_report([run])
    (episode,) = report["per_episode"]
    (plant,) = episode["plants"]
    at = views[planted + dp.SIDES_AFTER]
    sides = sum(at[y + dy, x + dx] in ("grass", "sand", "path") for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)))
    assert plant == {"planted": planted, "open_sides": sides, "ripened": None, "eaten": None, "lost": lost}
    assert 1 <= sides <= 3  # the player's own cell is not open while it stands there
    assert report["episodes"] == 1 and report["planted"] == 1.0 and report["ate_plant"] == 0.0
    assert report["lost_unripe"] == 1.0 and report["ripened"] == 0.0 and report["eaten_of_ripened"] is None
    assert report[f"open_sides_after_{dp.SIDES_AFTER}"] == sides


def test_ripened_eaten_lost_and_growing_plants_are_told_apart(monkeypatch):
    """The bookkeeping over a scripted game: plant a ripens and is eaten, b is lost
    unripe before its sides are counted, c is still growing when the episode ends."""
    states = {  # step -> {plant: (grown, open sides)}
        **{t: {"a": (t - 1, 2)} for t in range(1, 20)},
        **{t: {"a": (t - 1, 1), "b": (t - 20, 3)} for t in range(20, 30)},
        **{t: {"a": (t - 1, 1)} for t in range(30, 302)},
        302: {"a": (301, 1)}, 303: {"a": (1, 1), "c": (0, 4)},
        **{t: {"a": (t - 302, 1), "c": (t - 303, 4)} for t in range(304, 330)},
    }

    def replayed(meta, actions, what):
        for t in range(1, len(actions) + 1):
            env = SimpleNamespace(plants=lambda t=t: [(k, (0, 0), g, s) for k, (g, s) in states[t].items()])
            yield env, SimpleNamespace(step=t - 1), 0, SimpleNamespace(step=t), False

    monkeypatch.setattr(dp, "replayed", replayed)
    meta = SimpleNamespace(episode_id="e", seed=3, achievements=frozenset({"eat_plant"}))
    got = dp.follow_plants(meta, [0] * 329)
    a, b, c = got.plants
    assert (a.planted, a.open_sides, a.ripened, a.eaten, a.lost) == (1, 2, 302, 303, None)  # sides at step 16
    assert (b.planted, b.open_sides, b.ripened, b.eaten, b.lost) == (20, None, None, None, 30)
    assert (c.planted, c.open_sides, c.ripened, c.eaten, c.lost) == (303, 4, None, None, None)
    assert got.ate_plant and got.length == 329


def test_the_command_filters_by_length_and_errors_in_one_line(farmer, tmp_path):
    run, views, _ = farmer
    proc = run_cli("distill", "plants", "--data", str(run), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["plants"] == 1 and len(report["per_episode"]) == 1
    proc = run_cli("distill", "plants", "--data", str(run), "--min-length", str(len(views)))
    assert proc.returncode == 0, proc.stderr
    assert "episodes" in proc.stdout and "lost_unripe" in proc.stdout
    assert dp.plant_report([run], min_length=len(views))["episodes"] == 0  # it lived len(views) - 1 steps
    proc = run_cli("distill", "plants", "--data", str(tmp_path / "missing"), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"error: run directory not found: {tmp_path / 'missing'}" in proc.stderr
