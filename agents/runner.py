"""Play episodes with an agent, record them, and write the run's summary."""

from __future__ import annotations

import json
import logging
import os
import shutil
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import envs
from agents.base import make_agent
from envs.episodes import INDEX_FILE, STEPS_DIR, EpisodeMeta, read_index, write_index
from envs.plots import plot_summary
from envs.pool import spawn_pool
from envs.recorder import EpisodeRecorder, episode_id_for
from envs.score import summarize
from envs.video import VideoRecorder

log = logging.getLogger(__name__)
PROGRESS_EVERY = 50  # steps between progress updates: per-step updates cost more than a step
STORE_COPIES = ".store-copies"  # RUN/.store-copies: the workers' copies of the store of a run that does not learn


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


def open_store(config: Any, out: Path, copies: Path | None = None) -> Any:
    """The experience store of a run: ``memory.url``, ``memory.path`` or ``RUN/memory``.

    With ``copies`` (a worker of a run that does not learn) an embedded store is opened
    from this process's own copy under that folder: one process at a time holds a
    store's directory, and a reader's copy serves it as well."""
    from memory import ExperienceStore

    mem = _memory_config(config, out)
    if copies is not None and not mem.url:
        mine = copies / str(os.getpid())
        shutil.copytree(Path(mem.path).expanduser(), mine)
        mem = mem.model_copy(update={"path": str(mine)})
    store = ExperienceStore.open(mem)
    store.warm()
    return store


def _memory_config(config: Any, out: Path) -> Any:
    mem = config.memory
    return mem if mem.url or mem.path else mem.model_copy(update={"path": str(out / "memory")})


def _make_agent(config: Any, env: envs.Env, out: Path, store: Any) -> Any:
    if config.agent.name == "student":
        return make_agent("student", env, checkpoint=config.agent.checkpoint, task=config.agent.task,
                          sample=config.agent.sample, temperature=config.agent.temperature,
                          min_p=config.agent.min_p, history=config.agent.history,
                          keep_subgoal=config.agent.keep_subgoal, avoid_lava=config.agent.avoid_lava,
                          subgoal_temperature=config.agent.subgoal_temperature)
    if config.agent.name != "steve":
        return make_agent(config.agent.name, env)
    a = config.agent
    return make_agent("steve", env, planner=a.planner, prior=a.prior, task=a.task, store=store,
                      learn=a.learn, checkpoint=out / "checkpoints.sqlite", llm=config.llm, run_dir=out)


class _Player:
    """One process's world and agent: the env stack (recorder, video) and the agent
    that plays a run's episodes one after another."""

    def __init__(self, config: Any, out: Path, index: bool = True, copies: Path | None = None):
        base = envs.make(config.env.name, **config.env.make_kwargs())
        self.achievements = base.achievements
        self.recorder = EpisodeRecorder(base, out, agent=config.agent.name, config_hash=config.digest(),
                                        flush_every=config.run.flush_every, index=index)
        self.env: envs.Env = self.recorder
        if config.run.video:  # outermost, so it sees the recorder's episode id
            self.env = VideoRecorder(self.recorder, out / "videos", scale=config.run.video_scale,
                                     captions=config.agent.name in ("steve", "student"))  # the current subgoal
        self.store = open_store(config, out, copies) if config.agent.name == "steve" else None
        self.agent = _make_agent(config, self.env, out, self.store)

    def play(self, seed: int, resume: bool, progress: Progress | None) -> tuple[EpisodeMeta, dict[str, Any]]:
        """Play seed ``seed``'s episode (continue it where a killed process left it, with
        ``resume``); its index row and the agent's statistics (``{}`` for plain agents)."""
        agent, env, recorder = self.agent, self.env, self.recorder
        started = resume and recorder.steps_on_disk(recorder.episode_id_for_seed(seed)) > 0
        stats: dict[str, Any] = {}
        if hasattr(agent, "play"):  # agents with their own loop (the graph)
            hook = _StepCounter(progress)
            if started and hasattr(agent, "resume"):
                agent.resume(env, seed, on_step=hook)
            else:
                agent.play(env, seed, on_step=hook)
            stats = agent.episode_stats()
        else:
            if started:  # no way to restore this agent's state: start the episode over
                recorder.resume(seed, 0)
            _play(env, agent, seed, progress, reset=not started)
        return recorder.finished[-1], stats

    @property
    def videos(self) -> list[Path]:
        return list(self.env.paths) if isinstance(self.env, VideoRecorder) else []

    def close(self) -> None:
        self.env.close()
        if hasattr(self.agent, "close"):
            self.agent.close()
        if self.store is not None:
            self.store.close()


def run_episodes(config: Any, progress: Progress | None = None, resume: bool = False) -> dict[str, Any]:
    """Play ``config.run.episodes`` episodes (seed ``S + i``) and write the run directory.

    ``config`` is a resolved :class:`steve.config.Config`; returns the summary, which is
    also written to ``RUN/summary.json``. With ``resume`` the run directory exists:
    finished episodes are kept, the one a killed process left open continues (the
    ``steve`` agent from its last checkpointed subgoal; others start it over). With
    ``run.workers`` above 1 the episodes are played side by side in that many processes
    (:func:`_play_side_by_side`), to the same episodes as one after another.
    """
    if not config.run.out:
        raise RunDirError("no output directory: pass --out DIR")
    out = Path(config.run.out)
    if not resume:
        prepare_run_dir(out)
        (out / "config.yaml").write_text(config.to_yaml())
    seeds = [config.run.seed + i for i in range(config.run.episodes)]
    play = _play_side_by_side if config.run.workers > 1 else _play_in_turn
    played = play(config, out, seeds, resume, progress)

    rows = [m.row() | played.stats.get(m.episode_id, {}) for m in played.episodes]
    summary = summarize(rows, played.achievements)
    for row, entry in zip(rows, summary["per_episode"]):
        entry.update({k: row[k] for k in ("subgoals", "subgoal_success_rate", "replans", "learned") if k in row})
    summary["env"] = config.env.name
    summary["agent"] = config.agent.name
    summary["config_hash"] = config.digest()
    if config.run.video:
        summary["videos"] = [str(p.relative_to(out)) for p in played.videos]
    summary["plots"] = [str(p.relative_to(out)) for p in plot_summary(summary, played.achievements, out / "plots")]
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


@dataclass
class Played:
    """What a run's players leave for its summary."""

    episodes: list[EpisodeMeta]  # the run's index rows, finished earlier (resume) and now
    achievements: tuple[str, ...]
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)  # the agent's, by episode id
    videos: list[Path] = field(default_factory=list)  # those written now


def _play_in_turn(config: Any, out: Path, seeds: list[int], resume: bool, progress: Progress | None) -> Played:
    """The episodes one after another in this process."""
    player = _Player(config, out)
    played = Played(player.recorder.finished, tuple(player.achievements))
    done_ids = {m.episode_id for m in played.episodes}
    try:
        for i, seed in enumerate(seeds):
            if player.recorder.episode_id_for_seed(seed) in done_ids:
                continue
            if progress:
                progress.episode_started(i, seed, config.env.max_steps)
            meta, stats = player.play(seed, resume, progress)
            played.stats[meta.episode_id] = stats
            if progress:
                progress.episode_finished(i, meta.length, meta.achievements)
    finally:
        player.close()
    played.videos = player.videos
    return played


def _play_side_by_side(config: Any, out: Path, seeds: list[int], resume: bool, progress: Progress | None) -> Played:
    """The episodes in ``run.workers`` processes (:func:`envs.pool.spawn_pool`), one
    episode a task, each process with its own env and agent; this process gathers the
    finished episodes into the index as they come, so a kill keeps them. The steve agent
    (only when it does not learn, :class:`steve.config.Config`) reads its store in each
    process from a copy under ``RUN/.store-copies``, removed at the end (and, after a
    kill, when the run resumes)."""
    base = envs.make(config.env.name, **config.env.make_kwargs())  # a world that cannot be made fails here
    played = Played(read_index(out), tuple(base.achievements))
    base.close()
    done_ids = {m.episode_id for m in played.episodes}
    order = {seed: i for i, seed in enumerate(seeds)}
    digest = config.digest()
    todo = [seed for seed in seeds if episode_id_for(config.env.name, config.agent.name, seed, digest) not in done_ids]
    copies = out / STORE_COPIES if config.agent.name == "steve" else None
    if copies is not None:
        shutil.rmtree(copies, ignore_errors=True)  # a killed run's
    if not todo:
        return played
    if copies is not None:
        from memory import ExperienceStore

        # made here if new; a store that does not open stops the run before any worker starts
        ExperienceStore.open(_memory_config(config, out)).close()
        copies.mkdir(parents=True)
    pool = spawn_pool(min(config.run.workers, len(todo)))
    try:
        futures = [pool.submit(_play_in_worker, config, str(out), seed, resume, copies) for seed in todo]
        for future in as_completed(futures):
            meta, stats, video = future.result()
            played.episodes.append(meta)
            played.episodes.sort(key=lambda m: order.get(m.seed, len(order)))
            write_index(out, played.episodes)
            played.stats[meta.episode_id] = stats
            played.videos += [Path(video)] if video else []
            if progress:
                i = order[meta.seed]
                progress.episode_started(i, meta.seed, config.env.max_steps)
                progress.advanced(meta.length)
                progress.episode_finished(i, meta.length, meta.achievements)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if copies is not None:
            shutil.rmtree(copies, ignore_errors=True)
    played.videos.sort()
    return played


_WORKER: _Player | None = None  # the player of a worker process, made by its first task


def _play_in_worker(config: Any, out: str, seed: int, resume: bool,
                    copies: Path | None = None) -> tuple[EpisodeMeta, dict[str, Any], str | None]:
    global _WORKER
    if _WORKER is None:
        _WORKER = _Player(config, Path(out), index=False, copies=copies)
    meta, stats = _WORKER.play(seed, resume, None)
    videos = _WORKER.videos
    return meta, stats, str(videos[-1]) if videos else None
