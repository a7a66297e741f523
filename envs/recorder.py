"""Episode recording as a wrapper around any env: the env itself knows nothing of it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pyarrow.parquet as pq

from envs.base import Env, StepResult, Wrapper
from envs.episodes import (
    ACTORS,
    EpisodeMeta,
    EpisodeWriter,
    carried_out,
    episode_dir,
    part_files,
    read_index,
    write_index,
)
from envs.observation import Observation


def episode_id_for(env: str, agent: str, seed: int | None, config_hash: str) -> str:
    """Deterministic, so one config and seed always names (and writes) the same episode."""
    return f"{env}-{agent}-s{seed if seed is not None else 'x'}-{config_hash[:8]}"


class EpisodeRecorder(Wrapper):
    """Records every step that passes through it into the run's episode files.

    What the agent knows and the env does not (task, subgoal, plan, who acts) is set with
    :meth:`annotate` and holds until changed; a teacher action distribution, when the
    agent has one, goes with the step: ``env.step(action, teacher_probs=probs)``.
    Each row holds the observation the action was chosen from, then the action and
    what it brought (reward, terminated, truncated). An env below that carries out
    another action than the one given says which in ``info["taken"]`` (DAgger's
    :class:`distill.rollouts.MirrorEnv`); it goes in the row's ``taken``.

    Each finished episode joins ``finished`` and, with ``index`` (the default), the run's
    ``episodes.parquet``; recorders playing one run side by side in several processes
    leave the index to the process that gathers their episodes (``agents.runner``).
    """

    def __init__(
        self,
        env: Env,
        run_dir: Path,
        agent: str,
        config_hash: str,
        flush_every: int = 500,
        task: str = "",
        index: bool = True,
    ):
        super().__init__(env)
        self.run_dir = Path(run_dir)
        self.agent = agent
        self.config_hash = config_hash
        self.flush_every = flush_every
        self.index = index
        self._context = {"task": task, "subgoal": "", "plan": "", "actor": "teacher"}
        self._writer: EpisodeWriter | None = None
        self._frame_buffer: Any = None  # reused across episodes (see EpisodeWriter)
        self._obs: Observation | None = None
        self._return = 0.0
        # Episodes already in the run directory (a resumed run) stay in its index.
        self.finished: list[EpisodeMeta] = read_index(self.run_dir)

    def annotate(
        self,
        task: str | None = None,
        subgoal: str | None = None,
        plan: str | None = None,
        actor: str | None = None,
    ) -> None:
        if actor is not None and actor not in ACTORS:
            raise ValueError(f"actor must be one of {ACTORS}, got {actor!r}")
        for key, value in (("task", task), ("subgoal", subgoal), ("plan", plan), ("actor", actor)):
            if value is not None:
                self._context[key] = value

    @property
    def context(self) -> Mapping[str, str]:
        """What the next step will be recorded with: task, subgoal, plan, actor (read-only)."""
        return MappingProxyType(self._context)

    @property
    def last_obs(self) -> Observation | None:
        """The observation the next action will be chosen from."""
        return self._obs

    @property
    def episode_id(self) -> str | None:
        return self._writer.meta.episode_id if self._writer else None

    def reset(self, seed: int | None = None) -> tuple[Observation, dict[str, Any]]:
        obs, info, meta = self._start(seed)
        self._writer = EpisodeWriter(self.run_dir, meta, self.flush_every, self._frame_buffer)
        self._frame_buffer = self._writer.frame_buffer
        self._obs, self._return = obs, 0.0
        info = dict(info, episode_id=meta.episode_id)
        return obs, info

    def _start(self, seed: int | None) -> tuple[Observation, dict[str, Any], EpisodeMeta]:
        if self._writer is not None:  # an episode cut short by a new reset still counts
            self._finish()
        obs, info = self.env.reset(seed)
        meta = EpisodeMeta(episode_id=self.episode_id_for_seed(seed), seed=seed, env=self.env.name,
                           agent=self.agent, config_hash=self.config_hash, frame_shape=list(obs.frame.shape))
        return obs, info, meta

    def flush(self) -> None:
        """Write the buffered steps of the open episode now."""
        if self._writer is not None:
            self._writer.flush()

    def episode_id_for_seed(self, seed: int | None) -> str:
        return episode_id_for(self.env.name, self.agent, seed, self.config_hash)

    def steps_on_disk(self, episode_id: str) -> int:
        """Steps of an episode already written (from the Parquet footers, no data read)."""
        return sum(pq.ParquetFile(p).metadata.num_rows
                   for p in part_files(episode_dir(self.run_dir, episode_id)))

    def resume(self, seed: int, keep: int, on_replay: Any = None) -> tuple[Observation, dict[str, Any]]:
        """Reopen this seed's episode left by a killed process and replay its first
        ``keep`` recorded actions (seeded episodes are reproducible), without recording
        them again. ``on_replay(obs)`` sees every replayed observation."""
        obs, info, meta = self._start(seed)
        self._writer, steps = EpisodeWriter.reopen(self.run_dir, meta, keep, self.flush_every,
                                                   self._frame_buffer)
        self._frame_buffer = self._writer.frame_buffer
        self._return = 0.0
        for action, reward in zip(carried_out(steps).tolist(), steps.column("reward").to_pylist()):
            obs, _, terminated, truncated, _ = self.env.step(action)
            self._return += reward
            if on_replay is not None:
                on_replay(obs)
            if terminated or truncated:
                raise RuntimeError(f"episode {meta.episode_id} ended while replaying: not reproducible?")
        self._obs = obs
        return obs, dict(info, episode_id=meta.episode_id, resumed_at=keep)

    def step(self, action: int, teacher_probs: Any = None) -> StepResult:
        if self._writer is None or self._obs is None:
            raise RuntimeError("step() before reset()")
        obs, reward, terminated, truncated, info = self.env.step(action)
        prev = self._obs
        ctx = self._context
        self._writer.append(
            episode_id=self._writer.meta.episode_id,
            t=prev.step,
            frame=prev.frame,
            task=ctx["task"], subgoal=ctx["subgoal"], plan=ctx["plan"],
            action=int(action),
            action_name=self.env.action_names[int(action)],
            teacher_probs=None if teacher_probs is None else [float(p) for p in teacher_probs],
            reward=reward, terminated=terminated, truncated=truncated,
            inventory=json.dumps(prev.inventory, separators=(",", ":")),
            achievements=sorted(prev.achievements),
            actor=ctx["actor"],
            taken=info.get("taken"),
        )
        self._obs = obs
        self._return += reward
        if terminated or truncated:
            self._finish(obs)
        return obs, reward, terminated, truncated, info

    def _finish(self, last: Observation | None = None) -> None:
        assert self._writer is not None
        meta = self._writer.meta
        last = last or self._obs
        meta.length = self._writer.length
        meta.episode_return = float(self._return)
        meta.achievements = sorted(last.achievements) if last is not None else []
        self.finished.append(self._writer.finish())
        if self.index:
            write_index(self.run_dir, self.finished)
        self._writer = None

    def close(self) -> None:
        if self._writer is not None:
            self._finish()
        self.env.close()
