"""Rollouts: episodes played in the teacher's worlds, by the teacher, the student or both.

Each :class:`RolloutJob` replays one seed into its own run directory. The teacher (the
scripted graph planner and executor of ``agents``, imported lazily) plays as if in
control and every action it picks is recorded as the label of the state it was picked
in; a :class:`MirrorEnv` underneath carries out the teacher's action with probability
``beta`` and the student's otherwise (only inside ``window``, the steps of each Crafter
day in which the student may take control). ``beta`` 1 records plain teacher episodes
(``steve distill teacher``, :func:`record_teacher`; pushed off the teacher's path with
:class:`NoisyEnv`); ``beta`` 0 is the student's own episode, labelled (``steve distill
play``, :func:`play_student`), where the student may act on the teacher's subgoals rather
than its own; a job without a teacher is the student alone (the benches).

Rollouts run in worker processes behind :class:`RolloutExecutor`, a ``map`` over picklable
jobs; :class:`LocalPool` is a process pool, :class:`InlinePool` runs in this process.
A distributed engine (a Ray pool, say) only has to provide ``map``.

A command killed and run again loses nothing and repeats nothing: each finished rollout
leaves :data:`DONE` in its run directory, and :func:`play` plays only the jobs without one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

import envs
from distill.config import PLAY_TEMPERATURE
from distill.visual_memory import MOVES
from envs.base import Wrapper
from envs.crafter_env import DAY_LENGTH
from envs.episodes import read_index
from envs.pool import spawn_pool
from envs.recorder import EpisodeRecorder
from envs.score import crafter_score, success_rates

if TYPE_CHECKING:
    from distill.steps import StepTable
    from distill.trainer import Progress

log = logging.getLogger(__name__)
PLAIN = "-plain"  # marks the config hash of episodes whose teacher skipped its errands at dusk
_MEMORY = re.compile(r"-m(\d+)")  # "-m30": a teacher whose map forgets cells 30 steps out of view
_NEAR = re.compile(r"-n(\d+)")  # "-n4": a teacher that shelters within 4 cells first
SEALED = "-sealed"  # marks the config hash of episodes whose teacher slept once sealed in, by whoever
REPLAN = "-replan"  # and of those whose teacher started its night errands over after each step overruled
TEACHER_PLANS = "-tplans"  # marks the config hash of episodes whose student acted on the teacher's subgoals
DONE = "rollout.json"  # in a rollout's run directory once its episode is recorded: the job and its result


class MirrorEnv(Wrapper):
    """Carries out the teacher's action with probability ``beta``, else the student's; the
    student's only at steps whose place in the day (``step % 300``) is inside ``window``.
    With a student, ``info["taken"]`` names the action carried out: ``sleep`` while the
    player is asleep (:attr:`envs.Observation.asleep`), whatever was chosen, as the game
    does. ``agreed`` counts the steps the student chose the teacher's action, of the
    ``awake`` steps (asleep, neither choice is carried out). ``subgoals`` returns the
    teacher's subgoal of the step (read from the recorder above): with ``follow`` the
    student acts on it rather than on its own, else ``said`` counts the awake steps whose
    subgoal the student wrote as the teacher did."""

    def __init__(self, env: envs.Env, student: Any, beta: float, seed: int,
                 window: tuple[int, int] = (0, DAY_LENGTH), subgoals: Callable[[], str] | None = None,
                 follow: bool = False):
        super().__init__(env)
        self.student, self.beta, self.window = student, beta, window
        self.subgoals, self.follow = subgoals, follow
        self.rng = np.random.default_rng([seed, 7])
        self.obs: envs.Observation | None = None
        self.steps = self.awake = self.student_steps = self.agreed = self.said = 0
        names = list(env.action_names)
        self.sleep = names.index("sleep") if "sleep" in names else None

    def reset(self, seed: int | None = None):
        self.obs, info = self.env.reset(seed)
        if self.student is not None:
            self.student.reset(self.obs, seed or 0)
        return self.obs, info

    def step(self, action: int):
        taken = int(action)
        if self.student is not None:
            assert self.obs is not None
            awake = not self.obs.asleep
            theirs = self.subgoals() if self.subgoals is not None else None
            if self.follow and theirs is not None:
                mine = self.student.choose(self.obs, theirs)
            else:
                mine = self.student.choose(self.obs)
                self.said += int(awake and theirs is not None and self.student.wrote(theirs))
            self.awake += awake
            self.agreed += int(awake and mine == taken)
            if self.rng.random() >= self.beta and self.window[0] <= self.obs.step % DAY_LENGTH < self.window[1]:
                taken = mine
                self.student_steps += 1
            if not awake and self.sleep is not None:
                taken = self.sleep
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
    temperature: float = PLAY_TEMPERATURE  # of the student's action sampling
    min_p: float = 0.0  # and its cut (see distill.agent)
    keep_subgoal: float = 0.0  # the student holds to its subgoal (see distill.model.Student.decide)
    avoid_lava: bool = False  # the student never moves onto lava (see distill.agent)
    history: bool = True  # the student reads its last actions (see distill.agent)
    window: tuple[int, int] = (0, DAY_LENGTH)  # the steps of each day in which the student may take control
    teacher: bool = True  # False: the student plays alone, nobody labels (evaluation)
    teacher_memory: int | None = None  # steps the teacher's map keeps a cell out of view (None: all episode)
    teacher_near_pocket: int | None = None  # the teacher shelters within this many cells first (None: off)
    noise: float = 0.0  # a random move instead of the teacher's action this often (see NoisyEnv; beta 1 only)
    teacher_plans: bool = False  # the student acts on the teacher's subgoal, not its own (see play_student)
    teacher_stop_when_sealed: bool = False  # sealed in by the student, the teacher sleeps (agents.executor.Executor)
    teacher_replan: bool = False  # its night errands start over after each step the student played otherwise


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
    if job.teacher_plans and job.beta >= 1.0:
        raise ValueError("teacher_plans is for a student that acts (beta < 1): at beta 1 the teacher does")
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
    mark = _teacher_mark(job.farm_at_dusk, job.teacher_memory, job.teacher_near_pocket, job.noise,
                         job.teacher_stop_when_sealed, job.teacher_replan)
    mark += TEACHER_PLANS if job.teacher_plans else ""
    recorder = EpisodeRecorder(noisy or mirror, Path(job.out), agent=job.label, task=job.task,
                               config_hash=f"b{job.beta:g}{window}{mark}")
    if student is not None:  # the subgoal the teacher's step is annotated with, as it will be recorded
        mirror.subgoals, mirror.follow = (lambda: recorder.context["subgoal"]), job.teacher_plans
    recorder.annotate(actor="teacher" if student is None else "expert-relabelled")
    planner = GraphPlanner(prior=job.prior)
    try:
        executor = Executor(planner.tree, farm_at_dusk=job.farm_at_dusk, memory=job.teacher_memory,
                            near_pocket=job.teacher_near_pocket, stop_when_sealed=job.teacher_stop_when_sealed,
                            replan_when_overruled=job.teacher_replan)
        play_episode(recorder, planner, executor, task=job.task, seed=job.seed, stop_when_done=False)
    finally:
        recorder.close()
    meta = recorder.finished[-1]
    return _done(job, {"seed": job.seed, "length": meta.length, "achievements": meta.achievements, "run": job.out,
                       "student_steps": mirror.student_steps,
                       "agreement": mirror.agreed / max(1, mirror.awake) if student else None,
                       "subgoal_agreement": mirror.said / max(1, mirror.awake)
                       if student and not job.teacher_plans else None})


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
    return _done(job, {"seed": job.seed, "length": meta.length, "achievements": meta.achievements, "run": job.out,
                       "student_steps": meta.length, "agreement": None, "passes": student.passes})


def _done(job: RolloutJob, result: dict[str, Any]) -> dict[str, Any]:
    """Mark ``job``'s rollout finished (:data:`DONE`: the job and ``result``, written whole
    or not at all) and return ``result``."""
    path = Path(job.out) / DONE
    part = path.with_suffix(".part")
    part.write_text(json.dumps({"job": _as_json(job), "result": result}, indent=1))
    part.replace(path)
    return result


def _as_json(job: RolloutJob) -> dict[str, Any]:
    """``job`` as JSON reads it back, less its folder (which may move)."""
    return {k: v for k, v in json.loads(json.dumps(dataclasses.asdict(job))).items() if k != "out"}


_JOB_DEFAULTS = json.loads(json.dumps({f.name: f.default for f in dataclasses.fields(RolloutJob)
                                       if f.default is not dataclasses.MISSING}))


def _finished(job: RolloutJob) -> dict[str, Any] | None:
    """``job``'s result when its run directory holds its finished rollout (:data:`DONE`);
    None when it is to be played, its folder cleared of any episode cut short. The rollout
    of another job there, or finished episodes with no record of their job (recorded before
    this was kept), are errors: neither is played over."""
    out = Path(job.out)
    path = out / DONE
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
            theirs, result = saved["job"], saved["result"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: unreadable ({err}); delete {out} to play that rollout again") from None
        if (theirs := with_defaults(theirs, _JOB_DEFAULTS)) != (ours := _as_json(job)):
            raise ValueError(f"{out} holds the rollout of another job ({first_difference(theirs, ours)}): "
                             "use another folder")
        return result
    if read_index(out):
        raise ValueError(f"{out} holds finished episodes but no {DONE}: recorded by another command or before "
                         "rollouts were marked; move it away or use another folder")
    shutil.rmtree(out, ignore_errors=True)  # an episode cut short (a kill): played again from its seed
    return None


class RolloutExecutor(Protocol):
    def map(self, fn: Callable[[RolloutJob], dict[str, Any]], jobs: Iterable[RolloutJob]) -> list[dict[str, Any]]: ...


class InlinePool:
    """Rollouts one after another in this process (tests, debugging)."""

    def map(self, fn: Callable[[RolloutJob], dict[str, Any]], jobs: Iterable[RolloutJob]) -> list[dict[str, Any]]:
        return [fn(job) for job in jobs]


class LocalPool:
    """Rollouts in ``workers`` fresh processes (:func:`envs.pool.spawn_pool`: no state
    inherited from torch's threads, gone when this process is)."""

    def __init__(self, workers: int):
        self.workers = workers

    def map(self, fn: Callable[[RolloutJob], dict[str, Any]], jobs: Iterable[RolloutJob]) -> list[dict[str, Any]]:
        jobs = list(jobs)
        if self.workers <= 1 or len(jobs) <= 1:
            return InlinePool().map(fn, jobs)
        with spawn_pool(min(self.workers, len(jobs))) as pool:
            return list(pool.map(fn, jobs))


def pool_for(workers: int) -> RolloutExecutor:
    return LocalPool(workers) if workers > 1 else InlinePool()


def play(jobs: Sequence[RolloutJob], pool: RolloutExecutor,
         progress: Progress | None = None) -> dict[str, Any]:
    """Run ``jobs`` and score them: the Crafter score of the episodes they recorded. A job
    whose rollout already finished (:func:`_finished`) is not played again. ``progress(n,
    total, {})`` hears of each rollout played, in the jobs' order."""
    done = [_finished(job) for job in jobs]
    todo = [job for job, result in zip(jobs, done) if result is None]
    fresh = iter(pool.map(rollout, todo))
    results, played = [], 0
    for result in done:
        if result is None:
            result, played = next(fresh), played + 1
            if progress is not None:
                progress(played, len(todo), {})
        results.append(result)
    names = envs.make("crafter").achievements
    rates = success_rates([r["achievements"] for r in results], names)
    return {"crafter_score": crafter_score(rates), "success_rates": rates, "episodes": results,
            "mean_length": float(np.mean([r["length"] for r in results])),
            **{key: _mean_of(results, key) for key in ("agreement", "subgoal_agreement")}}


def _mean_of(results: list[dict[str, Any]], key: str) -> float | None:
    """The mean of the rollouts' ``key`` where they have one (older results, or rollouts
    without a student or a teacher, have none); None where none has."""
    values = [r[key] for r in results if r.get(key) is not None]
    return float(np.mean(values)) if values else None


def record_teacher(out: Path, seeds: Sequence[int], max_steps: int, prior: str, pool: RolloutExecutor,
                   farm_at_dusk: bool = True, memory: int | None = None,
                   near_pocket: int | None = None, noise: float = 0.0,
                   progress: Progress | None = None) -> dict[str, Any]:
    """Teacher episodes (beta 1, actor "teacher") on ``seeds``, one run directory each under
    ``out``; with ``noise``, pushed off their path that often (:class:`NoisyEnv`)."""
    jobs = [RolloutJob(seed=s, out=str(Path(out) / f"seed-{s}"), max_steps=max_steps, prior=prior, label="teacher",
                       farm_at_dusk=farm_at_dusk, teacher_memory=memory, teacher_near_pocket=near_pocket, noise=noise)
            for s in seeds]
    return play(jobs, pool, progress)


def play_student(out: Path, checkpoint: Path, seeds: Sequence[int], pool: RolloutExecutor, teacher_plans: bool,
                 max_steps: int = 10000, temperature: float = PLAY_TEMPERATURE, stop_when_sealed: bool = False,
                 replan: bool = False, progress: Progress | None = None) -> dict[str, Any]:
    """The student in control of every step of ``seeds`` (one run directory each under
    ``out``), the teacher beside it labelling each state it visits (DAgger's rollouts at
    beta 0, the same episodes as the student alone); with ``teacher_plans`` the student
    acts on the teacher's subgoal at each step, its own plan level unused. The difference
    in score says how much of the student's gap to the teacher its plan level holds.
    ``stop_when_sealed``: the teacher's night errands end once the student is sealed in;
    ``replan``: they start over from where the student stands after each step it played
    otherwise (``agents.executor.Executor``'s ``replan_when_overruled``)."""
    label = "student-teacher-plans" if teacher_plans else "student-labelled"
    jobs = [RolloutJob(seed=s, out=str(Path(out) / f"seed-{s}"), beta=0.0, checkpoint=str(checkpoint),
                       max_steps=max_steps, label=label, temperature=temperature, teacher_plans=teacher_plans,
                       teacher_stop_when_sealed=stop_when_sealed, teacher_replan=replan)
            for s in seeds]
    return play(jobs, pool, progress)


def _teacher_mark(farm_at_dusk: bool, memory: int | None, near_pocket: int | None = None, noise: float = 0.0,
                  stop_when_sealed: bool = False, replan: bool = False) -> str:
    """What sets the teacher apart from the default, for the episodes' config hash (the
    noise, ``-eP``, changes what it was pushed into, not who labels; :data:`PLAIN` last)."""
    return (("" if memory is None else f"-m{memory}") + ("" if near_pocket is None else f"-n{near_pocket}")
            + ("" if not noise else f"-e{noise:g}") + (SEALED if stop_when_sealed else "")
            + (REPLAN if replan else "")
            + ("" if farm_at_dusk else PLAIN))


def check_teacher(table: StepTable, farm_at_dusk: bool, memory: int | None = None,
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


def with_defaults(saved: Any, defaults: Any) -> Any:
    """``saved``, a record written by older code, with each key it lacks (at any depth) set
    to its value in ``defaults``: an option added since with a default that does what the
    older code did, so that a run the older code started continues. Any other key is kept
    as saved."""
    if not (isinstance(saved, dict) and isinstance(defaults, dict)):
        return saved
    return {**defaults, **{k: with_defaults(v, defaults.get(k)) for k, v in saved.items()}}


def first_difference(a: Any, b: Any, where: str = "") -> str:
    """Where two JSON objects first differ: "dotted.key: a there, b now"."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return first_difference(a.get(key), b.get(key), f"{where}.{key}" if where else key)
    return f"{where}: {a!r} there, {b!r} now"
