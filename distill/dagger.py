"""Mirrored distillation (DAgger): the student plays the teacher's worlds, the teacher labels.

Each rollout replays one of the teacher's seeds. The teacher (the expert: the scripted
graph planner and executor of ``agents``, imported lazily) plays as if in control, and
every action it picks is recorded as the label of the state it was picked in; a
:class:`MirrorEnv` underneath carries out, at each step, the teacher's action with
probability ``beta`` and the student's otherwise (only inside ``window``, the steps of each
Crafter day in which the student may take control; the teacher plays the rest). So the
recorded states are the ones the mixed policy visits and the labels the ones the teacher
would give (``actor`` "expert-relabelled"; "teacher" when ``beta`` is 1 and no student
plays). Rounds aggregate all labelled rollouts with the original episodes and fine-tune
the student from its previous checkpoint.

Rollouts run in worker processes behind :class:`RolloutExecutor`, a ``map`` over picklable
jobs; :class:`LocalPool` is a process pool, :class:`InlinePool` runs in this process.
A distributed engine (a Ray pool, say) only has to provide ``map``.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

import envs
from distill.config import DistillConfig
from distill.visual_memory import MOVES
from envs.base import Wrapper
from envs.crafter_env import DAY_LENGTH
from envs.recorder import EpisodeRecorder
from envs.score import crafter_score, success_rates

if TYPE_CHECKING:
    from distill.steps import StepTable

log = logging.getLogger(__name__)
PLAIN = "-plain"  # marks the config hash of episodes whose teacher skipped its errands at dusk
_MEMORY = re.compile(r"-m(\d+)")  # "-m30": a teacher whose map forgets cells 30 steps out of view
_NEAR = re.compile(r"-n(\d+)")  # "-n4": a teacher that shelters within 4 cells first


class MirrorEnv(Wrapper):
    """Carries out the teacher's action with probability ``beta``, else the student's; the
    student's only at steps whose place in the day (``step % 300``) is inside ``window``.
    With a student, ``info["taken"]`` names the action carried out."""

    def __init__(self, env: envs.Env, student: Any, beta: float, seed: int,
                 window: tuple[int, int] = (0, DAY_LENGTH)):
        super().__init__(env)
        self.student, self.beta, self.window = student, beta, window
        self.rng = np.random.default_rng([seed, 7])
        self.obs: envs.Observation | None = None
        self.steps = self.student_steps = self.agreed = 0

    def reset(self, seed: int | None = None):
        self.obs, info = self.env.reset(seed)
        if self.student is not None:
            self.student.reset(self.obs, seed or 0)
        return self.obs, info

    def step(self, action: int):
        taken = int(action)
        if self.student is not None:
            assert self.obs is not None
            mine = self.student.choose(self.obs)
            self.agreed += int(mine == taken)
            if self.rng.random() >= self.beta and self.window[0] <= self.obs.step % DAY_LENGTH < self.window[1]:
                taken = mine
                self.student_steps += 1
            self.student.observe(taken)
        self.steps += 1
        self.obs, reward, terminated, truncated, info = self.env.step(taken)
        if self.student is not None:  # the recorder keeps it beside the teacher's label
            info = dict(info, taken=taken)
        return self.obs, reward, terminated, truncated, info


class NoisyEnv(Wrapper):
    """Carries out a random move instead of the action given with probability ``noise``
    (DART: the teacher records its own episodes, pushed off its path now and then, and
    its next actions, recorded as labels, are the way back). A move is drawn among the
    four whose cell is not lava (Crafter's player walks into lava; the teacher never
    does), and none while the player sleeps (the game carries out ``sleep`` whatever it
    is given). ``info["taken"]`` names the move where it replaced the action."""

    def __init__(self, env: envs.Env, noise: float, seed: int):
        super().__init__(env)
        if not 0.0 <= noise < 1.0:
            raise ValueError(f"noise must be in [0, 1), got {noise}")
        self.noise = noise
        self.rng = np.random.default_rng([seed, 11])
        self.moves = [(env.action_names.index(name), dx, dy) for name, (dx, dy) in MOVES.items()]
        self.obs: envs.Observation | None = None
        self.pushes = 0

    def reset(self, seed: int | None = None):
        self.obs, info = self.env.reset(seed)
        return self.obs, info

    def _push(self) -> int | None:
        """A random move that is not onto lava, or None (asleep, or lava all round)."""
        assert self.obs is not None
        if self.obs.extras.get("sleeping"):
            return None
        view = self.obs.local_view
        r, c = self.obs.player_cell
        safe = [a for a, dx, dy in self.moves if view[r + dy, c + dx] != "lava"]
        return int(self.rng.choice(safe)) if safe else None

    def step(self, action: int):
        taken = int(action)
        if self.rng.random() < self.noise and (push := self._push()) is not None:
            taken = push
            self.pushes += 1
        self.obs, reward, terminated, truncated, info = self.env.step(taken)
        if taken != int(action):
            info = dict(info, taken=taken)
        return self.obs, reward, terminated, truncated, info


@dataclass(frozen=True)
class RolloutJob:
    seed: int
    out: str  # this rollout's own run directory
    beta: float = 1.0  # teacher control; 1 records plain teacher episodes
    checkpoint: str | None = None  # the student; None only with beta == 1
    max_steps: int = 10000
    prior: str = "full"
    farm_at_dusk: bool = True  # the teacher's evening errands (see agents.executor.Executor)
    task: str = "open"
    label: str = "dagger"  # the recorded episodes' agent name
    sample: bool = True
    temperature: float = 1.0  # of the student's action sampling
    min_p: float = 0.0  # and its cut (see distill.agent)
    keep_subgoal: float = 0.0  # the student holds to its subgoal (see distill.model.Student.decide)
    avoid_lava: bool = False  # the student never moves onto lava (see distill.agent)
    history: bool = True  # the student reads its last actions (see distill.agent)
    window: tuple[int, int] = (0, DAY_LENGTH)  # the steps of each day in which the student may take control
    teacher: bool = True  # False: the student plays alone, nobody labels (evaluation)
    teacher_memory: int | None = None  # steps the teacher's map keeps a cell out of view (None: all episode)
    teacher_near_pocket: int | None = None  # the teacher shelters within this many cells first (None: off)
    noise: float = 0.0  # a random move instead of the teacher's action this often (see NoisyEnv; beta 1 only)


def rollout(job: RolloutJob) -> dict[str, Any]:
    """One episode of the mixed policy, labelled by the teacher, recorded into ``job.out``."""
    import torch

    from agents.executor import Executor
    from agents.loop import play_episode
    from agents.planners import GraphPlanner

    torch.set_num_threads(1)
    if not job.teacher:
        return _student_alone(job)
    if job.noise and job.beta < 1.0:
        raise ValueError("noise pushes the teacher's own episodes (beta 1); DAgger's student already does")
    student = None
    if job.beta < 1.0:
        if job.checkpoint is None:
            raise ValueError("a rollout with beta < 1 needs the student's checkpoint")
        from distill.agent import StudentAgent

        student = StudentAgent(None, job.checkpoint, task=job.task, sample=job.sample, temperature=job.temperature,
                               min_p=job.min_p, history=job.history, keep_subgoal=job.keep_subgoal,
                               avoid_lava=job.avoid_lava)
    base = envs.make("crafter", max_steps=job.max_steps)
    mirror = MirrorEnv(base, student, job.beta, job.seed, tuple(job.window))
    noisy = NoisyEnv(mirror, job.noise, job.seed) if job.noise else None
    window = "" if tuple(job.window) == (0, DAY_LENGTH) else "w{}-{}".format(*job.window)
    mark = _teacher_mark(job.farm_at_dusk, job.teacher_memory, job.teacher_near_pocket, job.noise)
    recorder = EpisodeRecorder(noisy or mirror, Path(job.out), agent=job.label, task=job.task,
                               config_hash=f"b{job.beta:g}{window}{mark}")
    recorder.annotate(actor="teacher" if student is None else "expert-relabelled")
    planner = GraphPlanner(prior=job.prior)
    try:
        executor = Executor(planner.tree, farm_at_dusk=job.farm_at_dusk, memory=job.teacher_memory,
                            near_pocket=job.teacher_near_pocket)
        play_episode(recorder, planner, executor, task=job.task, seed=job.seed, stop_when_done=False)
    finally:
        recorder.close()
    meta = recorder.finished[-1]
    return {"seed": job.seed, "length": meta.length, "achievements": meta.achievements, "run": job.out,
            "student_steps": mirror.student_steps, "agreement": mirror.agreed / max(1, mirror.steps) if student else None}


def _student_alone(job: RolloutJob) -> dict[str, Any]:
    from distill.agent import StudentAgent

    if job.checkpoint is None:
        raise ValueError("a student rollout needs the student's checkpoint")
    recorder = EpisodeRecorder(envs.make("crafter", max_steps=job.max_steps), Path(job.out), agent=job.label,
                               config_hash="student", task=job.task)
    student = StudentAgent(recorder, job.checkpoint, task=job.task, sample=job.sample,
                           temperature=job.temperature, min_p=job.min_p, history=job.history,
                           keep_subgoal=job.keep_subgoal, avoid_lava=job.avoid_lava)
    try:
        obs, _ = recorder.reset(job.seed)
        student.reset(obs, job.seed)
        done = False
        while not done:
            obs, _, terminated, truncated, _ = recorder.step(student.act(obs))
            done = terminated or truncated
    finally:
        recorder.close()
    meta = recorder.finished[-1]
    return {"seed": job.seed, "length": meta.length, "achievements": meta.achievements, "run": job.out,
            "student_steps": meta.length, "agreement": None, "passes": student.passes}


class RolloutExecutor(Protocol):
    def map(self, fn: Callable[[RolloutJob], dict[str, Any]], jobs: Iterable[RolloutJob]) -> list[dict[str, Any]]: ...


class InlinePool:
    """Rollouts one after another in this process (tests, debugging)."""

    def map(self, fn: Callable[[RolloutJob], dict[str, Any]], jobs: Iterable[RolloutJob]) -> list[dict[str, Any]]:
        return [fn(job) for job in jobs]


class LocalPool:
    """Rollouts in ``workers`` fresh processes (spawned: no state inherited from torch threads)."""

    def __init__(self, workers: int):
        self.workers = workers

    def map(self, fn: Callable[[RolloutJob], dict[str, Any]], jobs: Iterable[RolloutJob]) -> list[dict[str, Any]]:
        jobs = list(jobs)
        if self.workers <= 1 or len(jobs) <= 1:
            return InlinePool().map(fn, jobs)
        with ProcessPoolExecutor(min(self.workers, len(jobs)), mp_context=get_context("spawn")) as pool:
            return list(pool.map(fn, jobs))


def pool_for(workers: int) -> RolloutExecutor:
    return LocalPool(workers) if workers > 1 else InlinePool()


def play(jobs: Sequence[RolloutJob], pool: RolloutExecutor) -> dict[str, Any]:
    """Run ``jobs`` and score them: the Crafter score of the episodes they recorded."""
    results = pool.map(rollout, jobs)
    names = envs.make("crafter").achievements
    rates = success_rates([r["achievements"] for r in results], names)
    agreement = [r["agreement"] for r in results if r["agreement"] is not None]
    return {"crafter_score": crafter_score(rates), "success_rates": rates, "episodes": results,
            "mean_length": float(np.mean([r["length"] for r in results])),
            "agreement": float(np.mean(agreement)) if agreement else None}


def record_teacher(out: Path, seeds: Sequence[int], max_steps: int, prior: str, pool: RolloutExecutor,
                   farm_at_dusk: bool = True, memory: int | None = None,
                   near_pocket: int | None = None, noise: float = 0.0) -> dict[str, Any]:
    """Teacher episodes (beta 1, actor "teacher") on ``seeds``, one run directory each under
    ``out``; with ``noise``, pushed off their path that often (:class:`NoisyEnv`)."""
    jobs = [RolloutJob(seed=s, out=str(Path(out) / f"seed-{s}"), max_steps=max_steps, prior=prior, label="teacher",
                       farm_at_dusk=farm_at_dusk, teacher_memory=memory, teacher_near_pocket=near_pocket, noise=noise)
            for s in seeds]
    return play(jobs, pool)


def _teacher_mark(farm_at_dusk: bool, memory: int | None, near_pocket: int | None = None, noise: float = 0.0) -> str:
    """What sets the teacher apart from the default, for the episodes' config hash (the
    noise, ``-eP``, changes what it was pushed into, not who labels)."""
    return (("" if memory is None else f"-m{memory}") + ("" if near_pocket is None else f"-n{near_pocket}")
            + ("" if not noise else f"-e{noise:g}") + ("" if farm_at_dusk else PLAIN))


def _check_teacher(table: StepTable, farm_at_dusk: bool, memory: int | None = None,
                   near_pocket: int | None = None) -> None:
    """The teacher that labels must be the one that recorded the teacher episodes."""
    hashes = {ep.config_hash for ep in table.episodes if ep.agent == "teacher"}
    plain = {h.endswith(PLAIN) for h in hashes}
    if len(plain) > 1:
        raise ValueError("the teacher episodes were recorded with and without --no-farm-at-dusk: "
                         "DAgger's teacher can label as only one of them")
    if plain == {farm_at_dusk}:  # plain episodes for a farming teacher, or the other way round
        raise ValueError(f"the teacher episodes were recorded {'with' if farm_at_dusk else 'without'} "
                         f"--no-farm-at-dusk: set dagger.teacher_farm_at_dusk={str(not farm_at_dusk).lower()} "
                         "so that the same teacher labels")
    _check_option(hashes, _MEMORY, memory, "memory", "memory")
    _check_option(hashes, _NEAR, near_pocket, "near-pocket", "near_pocket")
    if "sleep" in table.subgoals and "build shelter" not in table.subgoals:
        # a teacher from before errands (agents.executor.reflexes.Reflexes.label) called its
        # whole evening "sleep": mixed with today's labels, "sleep" would mean both. ("rest
        # in shelter" tells nothing: today's planner still plans it when health runs low.)
        raise ValueError("the teacher episodes were recorded before sheltering was labelled part by part "
                         "(their evening is all 'sleep'): record them again with steve distill teacher")


def _check_option(hashes: set[str], mark: re.Pattern, ours: int | None, flag: str, key: str) -> None:
    """The teacher episodes' ``--FLAG N`` (read from their config hash) is ``dagger.teacher_KEY``."""
    theirs = {int(m.group(1)) if (m := mark.search(h)) else None for h in hashes}
    if len(theirs) > 1:
        raise ValueError(f"the teacher episodes were recorded with different --{flag} "
                         f"({sorted(theirs, key=str)}): DAgger's teacher can label as only one of them")
    if theirs and theirs != {ours}:
        (n,) = theirs
        how = f"without --{flag}" if n is None else f"with --{flag} {n}"
        raise ValueError(f"the teacher episodes were recorded {how}: set dagger.teacher_{key}="
                         f"{'null' if n is None else n} so that the same teacher labels")


def run_dagger(cfg: DistillConfig, data: Sequence[Path], checkpoint: Path, out: Path,
               pool: RolloutExecutor | None = None, train_progress: Any = None,
               on_round: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """``cfg.dagger.rounds`` rounds from ``checkpoint``: roll out, label, aggregate, retrain.

    Writes ``OUT/round-<k>/rollouts/seed-<s>/`` (labelled episodes), ``OUT/round-<k>/student/``
    (the checkpoint after the round) and ``OUT/dagger.jsonl`` (one line per round).
    Returns the rounds' summaries; the last round's student is the result.
    """
    from distill.steps import concat_tables, load_steps_for
    from distill.trainer import train

    d = cfg.dagger
    pool = pool or pool_for(d.workers)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = [Path(p) for p in data]
    table = load_steps_for(runs, cfg.data, cfg.model)  # read once; each round adds its rollouts
    _check_teacher(table, d.teacher_farm_at_dusk, d.teacher_memory, d.teacher_near_pocket)
    current = Path(checkpoint)
    rounds = []
    for k in range(d.rounds):
        beta = d.beta[min(k, len(d.beta) - 1)]
        round_dir = out / f"round-{k}"
        shutil.rmtree(round_dir, ignore_errors=True)
        jobs = [RolloutJob(seed=d.seed + i, out=str(round_dir / "rollouts" / f"seed-{d.seed + i}"), beta=beta,
                           checkpoint=str(current), max_steps=d.max_steps, prior=d.teacher_prior,
                           farm_at_dusk=d.teacher_farm_at_dusk, label=f"dagger-{k}", window=d.student_window,
                           teacher_memory=d.teacher_memory, teacher_near_pocket=d.teacher_near_pocket)
                for i in range(d.episodes)]
        played = play(jobs, pool)
        new = [Path(r["run"]) for r in played["episodes"]]
        runs += new
        table = concat_tables([table, load_steps_for(new, cfg.data, cfg.model)])
        round_cfg = cfg.model_copy(update={"train": cfg.train.model_copy(
            update={"steps": d.steps_per_round, "warmup": min(cfg.train.warmup, d.steps_per_round // 10)})})
        metrics = train(round_cfg, runs, round_dir / "student", init=current, resume=False, progress=train_progress,
                        table=table)
        current = round_dir / "student"
        summary = {"round": k, "beta": beta, "rollout_score": played["crafter_score"],
                   "rollout_agreement": played["agreement"], "rollout_mean_length": played["mean_length"],
                   "runs": len(runs), "checkpoint": str(current),
                   **{key: metrics.get(key)
                      for key in ("action_agreement", "action_agreement_any", "subgoal_exact", "kl", "val_loss")}}
        with (out / "dagger.jsonl").open("a") as f:
            f.write(json.dumps(summary) + "\n")
        rounds.append(summary)
        if on_round is not None:
            on_round(summary)
    return rounds

