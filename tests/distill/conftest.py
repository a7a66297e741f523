"""Shared fixtures of the distillation tests: a small real Crafter run, recorded once."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import envs
from envs.recorder import EpisodeRecorder

# (subgoal, check as the planner writes it); "" is a stretch without a subgoal.
SUBGOALS = (
    ("collect wood", "inventory wood >= 1"),
    ("make wood_pickaxe", "achievement make_wood_pickaxe"),
    ("", None),
    ("eat cow", "achievement eat_cow"),
)
LENGTHS = (60, 100, 150)  # cut by the next reset or max_steps, unless the player dies first
SEGMENT = 25  # steps per subgoal


def plan_text(first: int) -> str:
    lines = []
    for n, (name, check) in enumerate(s for s in SUBGOALS[first:] + SUBGOALS[:first] if s[0]):
        lines.append(f"{n + 1}. [ ] {name} (until {check}, 250 steps)")
    return "\n".join(lines)


@dataclass
class RecordedEpisode:
    episode_id: str
    seed: int
    task: str
    frames: np.ndarray  # uint8 [n, 64, 64, 3], the frame each action was chosen from
    actions: list[int]
    subgoals: list[str]
    actors: list[str]
    probs: list[np.ndarray | None]  # the teacher distribution passed, or None


@dataclass
class RecordedRun:
    run_dir: Path
    episodes: list[RecordedEpisode]
    action_names: tuple[str, ...]


@pytest.fixture(scope="session")
def recorded_run(tmp_path_factory) -> RecordedRun:
    """Three Crafter episodes (up to 60, 100, 150 steps; seeds 0, 1, 2), random actions.

    Subgoals change every 25 steps (one stretch has none), steps 30-39 are the
    student's and 40-44 expert-relabelled, every third step has no teacher_probs, and
    parts are 40 steps. Session-scoped: copy ``run_dir`` before damaging it.
    """
    run_dir = tmp_path_factory.mktemp("distill_run")
    env = EpisodeRecorder(envs.make("crafter", max_steps=max(LENGTHS)), run_dir, agent="test",
                          config_hash="0123456789abcdef", flush_every=40)
    names = tuple(env.action_names)
    rng = np.random.default_rng(0)
    episodes = []
    for ep, length in enumerate(LENGTHS):
        obs, info = env.reset(seed=ep)
        task = "collect diamond" if ep == 0 else "open"
        env.annotate(task=task)
        rec = RecordedEpisode(info["episode_id"], ep, task, np.zeros(0), [], [], [], [])
        frames = []
        for k in range(length):
            if k % SEGMENT == 0:
                first = (k // SEGMENT + ep) % len(SUBGOALS)
                env.annotate(subgoal=SUBGOALS[first][0], plan=plan_text(first))
            actor = "student" if 30 <= k < 40 else "expert-relabelled" if 40 <= k < 45 else "teacher"
            env.annotate(actor=actor)
            logits = rng.normal(size=len(names))
            probs = np.exp(logits) / np.exp(logits).sum() if k % 3 else None
            action = int(rng.integers(0, len(names)))
            frames.append(obs.frame.copy())
            rec.actions.append(action)
            rec.subgoals.append(SUBGOALS[(k // SEGMENT + ep) % len(SUBGOALS)][0])
            rec.actors.append(actor)
            rec.probs.append(probs)
            obs, _, terminated, truncated, _ = env.step(action, teacher_probs=probs)
            if terminated or truncated:
                break
        rec.frames = np.stack(frames)
        episodes.append(rec)
    env.close()
    return RecordedRun(run_dir, episodes, names)


def play_student(checkpoint: Path, seed: int, max_steps: int, trace: bool = True):
    """One Crafter episode of the student alone (sampled, by the traced pass unless
    ``trace`` is false): (agent, frames it chose from, its actions, the env's move vectors)."""
    from distill.agent import StudentAgent
    from distill.visual_memory import move_vectors

    agent = StudentAgent(None, checkpoint, sample=True, trace=trace)
    env = envs.make("crafter", max_steps=max_steps)
    agent.env = env
    obs, _ = env.reset(seed)
    agent.reset(obs, seed)
    frames, actions = [], []
    done = False
    while not done:
        frames.append(obs.frame.copy())
        actions.append(agent.act(obs))
        obs, _, term, trunc, _ = env.step(actions[-1])
        done = term or trunc
    env.close()
    return agent, np.stack(frames), np.array(actions), move_vectors(env.action_names, len(env.action_names))


def world_name(cls: int) -> str:
    """The name the env's ``local_view`` gives what class ``cls`` (:mod:`distill.cells`) shows."""
    from distill import cells

    name = cells.TEXTURES[cls - 1]
    return {"plant-ripe": "ripe_plant"}.get(name, "arrow" if name.startswith("arrow") else name)


def random_moves(seed: int, steps: int, hold: float = 0.8):
    """Crafter under random moves and ``noop`` (each kept with probability ``hold``), never
    asleep: (observations, actions, moves)."""
    from distill.visual_memory import move_vectors

    env = envs.make("crafter", max_steps=steps + 1)
    names = list(env.action_names)
    moves = move_vectors(names, len(names))
    walk = [i for i, m in enumerate(moves[:-1]) if m.any()] + [names.index("noop")]
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed)
    seen, actions = [obs], []
    a = walk[-1]
    for _ in range(steps):
        if rng.random() > hold:
            a = int(rng.choice(walk))
        actions.append(a)
        obs, _, term, trunc, _ = env.step(a)
        if term or trunc:
            break
        seen.append(obs)
    env.close()
    return seen[: len(actions)], np.array(actions), moves


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny batch-1 ops: one torch thread is faster, and immune to a busy second core."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def run_dir(recorded_run, tmp_path_factory) -> Path:
    """A private copy of the recorded run per test module (the session fixture must stay intact)."""
    copy = tmp_path_factory.mktemp("run") / "run"
    shutil.copytree(recorded_run.run_dir, copy)
    return copy
