"""The plain play loop: recorded teacher labels, priors that fail the documented way."""

from __future__ import annotations

import math

import envs
from agents.executor import Executor
from agents.loop import play_episode
from agents.planners import GraphPlanner
from envs.episodes import read_index, read_steps
from envs.recorder import EpisodeRecorder


def test_teacher_labels_reach_the_episode_files(tmp_path):
    env = EpisodeRecorder(envs.make("crafter", max_steps=80), tmp_path, agent="scripted", config_hash="0" * 16)
    planner = GraphPlanner(prior="full")
    seen: list[str] = []
    result = play_episode(env, planner, Executor(planner.tree), seed=100,
                          on_subgoal=lambda goal, res: seen.append(goal.name))
    env.close()
    assert result.length == 80 and seen
    steps = read_steps(tmp_path, ["teacher_probs", "action"]).to_pylist()
    assert len(steps) == 80 and read_index(tmp_path)[0].length == 80
    for row in steps:
        probs = row["teacher_probs"]
        assert probs is not None and math.isclose(sum(probs), 1.0, abs_tol=1e-6)
        assert probs[row["action"]] > 0  # the action taken is among the teacher's choices


def test_partial_prior_fails_with_missing_requirement_where_it_is_wrong():
    env = envs.make("crafter", max_steps=600)
    planner = GraphPlanner(prior="partial")
    result = play_episode(env, planner, Executor(planner.tree), task="collect_iron", seed=100)
    causes = {(o.name, o.reason) for o in result.outcomes if not o.success}
    assert ("collect iron", "missing_requirement") in causes, causes  # a wood pickaxe does not mine iron
    assert "collect_iron" not in result.achievements


def test_full_prior_reaches_iron_on_the_same_seed():
    env = envs.make("crafter", max_steps=600)
    planner = GraphPlanner(prior="full")
    result = play_episode(env, planner, Executor(planner.tree), task="collect_iron", seed=100)
    assert "collect_iron" in result.achievements, [o.line() for o in result.outcomes]
