"""Play episodes with an agent, record them, and write the run's summary."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Protocol

import envs
from agents.base import make_agent
from envs.episodes import INDEX_FILE, STEPS_DIR
from envs.recorder import EpisodeRecorder
from envs.score import summarize
from envs.video import VideoRecorder

log = logging.getLogger(__name__)
PROGRESS_EVERY = 50  # steps between progress updates: per-step updates cost more than a step


class Progress(Protocol):
    def episode_started(self, index: int, seed: int, max_steps: int) -> None: ...
    def advanced(self, steps: int) -> None: ...
    def episode_finished(self, index: int, length: int, achievements: list[str]) -> None: ...


class RunDirError(RuntimeError):
    """The output directory cannot take this run."""


def prepare_run_dir(out: Path) -> None:
    if (out / INDEX_FILE).exists() or any((out / STEPS_DIR).glob("*/part-*.parquet")):
        raise RunDirError(f"{out} already holds a run; choose another --out")
    out.mkdir(parents=True, exist_ok=True)


def run_episodes(config: Any, progress: Progress | None = None) -> dict[str, Any]:
    """Play ``config.run.episodes`` episodes (seed ``S + i``) and write the run directory.

    ``config`` is a resolved :class:`steve.config.Config`; returns the summary, which is
    also written to ``RUN/summary.json``.
    """
    if not config.run.out:
        raise RunDirError("no output directory: pass --out DIR")
    out = Path(config.run.out)
    prepare_run_dir(out)
    (out / "config.yaml").write_text(config.to_yaml())

    base = envs.make(config.env.name, **config.env.make_kwargs())
    recorder = EpisodeRecorder(base, out, agent=config.agent.name, config_hash=config.digest(),
                               flush_every=config.run.flush_every)
    env: envs.Env = recorder
    if config.run.video:  # outermost, so it sees the recorder's episode id
        env = VideoRecorder(recorder, out / "videos", scale=config.run.video_scale)
    agent = make_agent(config.agent.name, env)
    try:
        for i in range(config.run.episodes):
            seed = config.run.seed + i
            obs, _ = env.reset(seed)
            agent.reset(obs, seed)
            if progress:
                progress.episode_started(i, seed, config.env.max_steps)
            done, pending = False, 0
            while not done:
                obs, _, terminated, truncated, _ = env.step(agent.act(obs))
                done = terminated or truncated
                pending += 1
                if progress and (pending == PROGRESS_EVERY or done):
                    progress.advanced(pending)
                    pending = 0
            meta = recorder.finished[-1]
            if progress:
                progress.episode_finished(i, meta.length, meta.achievements)
    finally:
        env.close()

    summary = summarize([m.row() for m in recorder.finished], base.achievements)
    summary["env"] = config.env.name
    summary["agent"] = config.agent.name
    summary["config_hash"] = config.digest()
    if isinstance(env, VideoRecorder):
        summary["videos"] = [str(p.relative_to(out)) for p in env.paths]
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
