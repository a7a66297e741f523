"""Play episodes with an agent, record them, and write the run's summary."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Protocol

import envs
from agents.base import make_agent
from envs.episodes import INDEX_FILE, STEPS_DIR
from envs.plots import plot_summary
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


def _play(env: envs.Env, agent: Any, seed: int, progress: Progress | None, reset: bool = True) -> None:
    """The plain loop: observation -> action, until the episode ends."""
    obs = env.reset(seed)[0] if reset else _recorder_obs(env)
    agent.reset(obs, seed)
    done, pending = False, 0
    while not done:
        obs, _, terminated, truncated, _ = env.step(agent.act(obs))
        done = terminated or truncated
        pending += 1
        if progress and (pending == PROGRESS_EVERY or done):
            progress.advanced(pending)
            pending = 0


def _recorder_obs(env: Any) -> Any:
    while not isinstance(env, EpisodeRecorder):
        env = env.env
    return env.last_obs


class _StepCounter:
    """An ``on_step`` hook that feeds the progress bar every PROGRESS_EVERY steps."""

    def __init__(self, progress: Progress | None):
        self.progress, self.pending = progress, 0

    def __call__(self, action: int, probs: Any = None) -> None:
        self.pending += 1
        if self.progress and self.pending == PROGRESS_EVERY:
            self.progress.advanced(self.pending)
            self.pending = 0


def open_store(config: Any, out: Path) -> Any:
    """The experience store of a run: ``memory.url``, ``memory.path`` or ``RUN/memory``."""
    from memory import ExperienceStore

    mem = config.memory
    if not mem.url and not mem.path:
        mem = mem.model_copy(update={"path": str(out / "memory")})
    store = ExperienceStore.open(mem)
    store.warm()
    return store


def _make_agent(config: Any, env: envs.Env, out: Path, store: Any) -> Any:
    if config.agent.name == "student":
        return make_agent("student", env, checkpoint=config.agent.checkpoint, task=config.agent.task,
                          sample=config.agent.sample, temperature=config.agent.temperature,
                          min_p=config.agent.min_p, history=config.agent.history,
                          keep_subgoal=config.agent.keep_subgoal, avoid_lava=config.agent.avoid_lava)
    if config.agent.name != "steve":
        return make_agent(config.agent.name, env)
    a = config.agent
    return make_agent("steve", env, planner=a.planner, prior=a.prior, task=a.task, store=store,
                      learn=a.learn, checkpoint=out / "checkpoints.sqlite", llm=config.llm, run_dir=out)


def run_episodes(config: Any, progress: Progress | None = None, resume: bool = False) -> dict[str, Any]:
    """Play ``config.run.episodes`` episodes (seed ``S + i``) and write the run directory.

    ``config`` is a resolved :class:`steve.config.Config`; returns the summary, which is
    also written to ``RUN/summary.json``. With ``resume`` the run directory exists:
    finished episodes are kept, the one a killed process left open continues (the
    ``steve`` agent from its last checkpointed subgoal; others start it over).
    """
    if not config.run.out:
        raise RunDirError("no output directory: pass --out DIR")
    out = Path(config.run.out)
    if not resume:
        prepare_run_dir(out)
        (out / "config.yaml").write_text(config.to_yaml())

    base = envs.make(config.env.name, **config.env.make_kwargs())
    recorder = EpisodeRecorder(base, out, agent=config.agent.name, config_hash=config.digest(),
                               flush_every=config.run.flush_every)
    env: envs.Env = recorder
    if config.run.video:  # outermost, so it sees the recorder's episode id
        env = VideoRecorder(recorder, out / "videos", scale=config.run.video_scale,
                            captions=config.agent.name in ("steve", "student"))  # the current subgoal
    store = open_store(config, out) if config.agent.name == "steve" else None
    agent = _make_agent(config, env, out, store)
    stats: dict[str, dict[str, Any]] = {}
    done_ids = {m.episode_id for m in recorder.finished}
    try:
        for i in range(config.run.episodes):
            seed = config.run.seed + i
            episode_id = recorder.episode_id_for_seed(seed)
            if episode_id in done_ids:
                continue
            if progress:
                progress.episode_started(i, seed, config.env.max_steps)
            started = resume and recorder.steps_on_disk(episode_id) > 0
            if hasattr(agent, "play"):  # agents with their own loop (the graph)
                hook = _StepCounter(progress)
                if started and hasattr(agent, "resume"):
                    agent.resume(env, seed, on_step=hook)
                else:
                    agent.play(env, seed, on_step=hook)
                stats[recorder.finished[-1].episode_id] = agent.episode_stats()
            else:
                if started:  # no way to restore this agent's state: start the episode over
                    recorder.resume(seed, 0)
                _play(env, agent, seed, progress, reset=not started)
            meta = recorder.finished[-1]
            if progress:
                progress.episode_finished(i, meta.length, meta.achievements)
    finally:
        env.close()
        if hasattr(agent, "close"):
            agent.close()
        if store is not None:
            store.close()

    rows = [m.row() | stats.get(m.episode_id, {}) for m in recorder.finished]
    summary = summarize(rows, base.achievements)
    for row, entry in zip(rows, summary["per_episode"]):
        entry.update({k: row[k] for k in ("subgoals", "subgoal_success_rate", "replans", "learned") if k in row})
    summary["env"] = config.env.name
    summary["agent"] = config.agent.name
    summary["config_hash"] = config.digest()
    if isinstance(env, VideoRecorder):
        summary["videos"] = [str(p.relative_to(out)) for p in env.paths]
    summary["plots"] = [str(p.relative_to(out)) for p in plot_summary(summary, base.achievements, out / "plots")]
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
