"""``steve distill``: record teacher episodes, train the student, DAgger rounds, offline eval."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="STEVE-2: distil the agent into one small student model.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)

Data = Annotated[list[Path], typer.Option("--data", help="run directories (or folders of them) with episodes")]
ConfigOpt = Annotated[str, typer.Option("--config", help="configs/distill/<name>.yaml or a YAML path")]
Sets = Annotated[Optional[list[str]], typer.Option("--set", help="override, e.g. --set train.steps=200")]


def _fail(message: str) -> None:
    from rich.markup import escape

    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _errors() -> tuple[type[BaseException], ...]:
    from distill.checkpoint import CheckpointError
    from distill.config import DistillConfigError
    from envs.episodes import CorruptEpisodeError

    return (DistillConfigError, CheckpointError, CorruptEpisodeError, ValueError, FileNotFoundError, ImportError)


class _ProgressBar:
    """Rich progress bars fed by ``progress(n, total, metrics)``: the trainer's steps, or the
    rollouts' episodes (``unit="episode"``); :meth:`stream` adds another to the same display
    (rich runs one at a time), as DAgger's rollouts beside its retraining. Where the console
    is not a terminal (a log file, a batch job) a bar would print nothing until the end, so
    there each prints a plain line every ``every_s`` seconds, at the first and at the last of
    each stretch (a DAgger round's)."""

    def __init__(self, label: str, console: Console = err_console, every_s: float = 60.0, unit: str = "step"):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console, self.every_s = console, every_s
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=console,
                            transient=True) if console.is_terminal else None
        self.main = self.stream(label, unit)

    def stream(self, label: str, unit: str = "step") -> _Stream:
        return _Stream(self, label, unit)

    def __enter__(self) -> _ProgressBar:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def __call__(self, step: int, total: int, metrics: dict[str, float]) -> None:
        self.main(step, total, metrics)


class _Stream:
    """One count on a :class:`_ProgressBar`."""

    def __init__(self, owner: _ProgressBar, label: str, unit: str):
        self.owner, self.label, self.unit = owner, label, unit
        self.task: Any = None
        self.since: tuple[int, float] | None = None  # (n, time) this stretch began
        self.printed = -math.inf
        self.step = 0

    def __call__(self, step: int, total: int, metrics: dict[str, float]) -> None:
        info = f"loss {metrics['loss']:.3f}" if "loss" in metrics else ""
        if "action_agreement" in metrics:
            info += f"  agree {metrics['action_agreement']:.3f}"
        bar = self.owner.bar
        if bar is not None:
            if self.task is None:
                self.task = bar.add_task(self.label, total=total, info="")
            bar.update(self.task, completed=step, total=total, info=info)
            return
        now = time.monotonic()
        if self.since is None or step <= self.step:  # the first call, or a DAgger round's stretch begins
            self.since, self.printed = (step - 1, now), -math.inf
        self.step = step
        if step < total and now - self.printed < self.owner.every_s:
            return
        self.printed = now
        done, began = self.since
        if step < total and step - done >= 10:  # the first steps' pace says little
            info += f"  ~{(now - began) / (step - done) * (total - step) / 60:.0f} min left"
        self.owner.console.print(f"{self.label}: {self.unit} {step:,}/{total:,}  {info}".rstrip(), highlight=False)


def _table(title: str, rows: dict[str, Any]) -> None:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in rows.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)


@app.command()
def teacher(
    out: Annotated[Path, typer.Option(help="folder for the episodes (one run directory per seed)")],
    episodes: Annotated[int, typer.Option(help="episodes to record")] = 20,
    seed: Annotated[int, typer.Option(help="seed of the first episode")] = 0,
    max_steps: Annotated[int, typer.Option(help="steps before truncation")] = 10000,
    prior: Annotated[str, typer.Option(help="the teacher's prior: full | partial | none")] = "full",
    workers: Annotated[int, typer.Option(help="parallel processes")] = 2,
    farm_at_dusk: Annotated[bool, typer.Option(
        "--farm-at-dusk/--no-farm-at-dusk",
        help="plant a sapling, or walk back to the one planted, before the night's shelter; off, the "
             "teacher goes straight to its shelter (DAgger then needs --set dagger.teacher_farm_at_dusk=false)")] = True,
    memory: Annotated[int | None, typer.Option(
        min=0, help="steps the teacher's map keeps a cell once out of view (default: the whole episode); 0 plays "
                    "on the view alone, as the student sees (DAgger then needs --set dagger.teacher_memory=N)")] = None,
    near_pocket: Annotated[int | None, typer.Option(
        min=0, help="shelter for the night in a pocket within N cells first, building its walls if need be, "
                    "rather than the best one on the map: a pocket the student can see (DAgger then needs "
                    "--set dagger.teacher_near_pocket=N)")] = None,
    noise: Annotated[float, typer.Option(
        min=0.0, max=0.99, help="with this probability a step carries out a random move (never onto lava) instead "
                                "of the teacher's action, which stays the label: DART, episodes that show the way "
                                "back to the teacher's path")] = 0.0,
) -> None:
    """Record teacher episodes (graph planner + executor) in parallel, for training. Run again
    into the same --out (after a kill, say), it plays only the seeds that did not finish."""
    from distill.rollouts import pool_for, record_teacher

    try:
        with _ProgressBar("teacher", unit="episode") as bar:
            played = record_teacher(out, range(seed, seed + episodes), max_steps, prior, pool_for(workers),
                                    farm_at_dusk, memory, near_pocket, noise, progress=bar)
    except _errors() as err:
        _fail(str(err))
    _table(f"teacher, {episodes} episodes", {"crafter_score": played["crafter_score"],
                                            "mean_length": played["mean_length"], "out": str(out)})


@app.command()
def train(
    data: Data,
    out: Annotated[Path, typer.Option(help="checkpoint directory to write (resumed if it holds one)")],
    config: ConfigOpt = "small",
    set_: Sets = None,
    init: Annotated[Optional[Path], typer.Option(help="start from this checkpoint's weights")] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="continue OUT's own checkpoint")] = True,
) -> None:
    """Train the student on recorded episodes."""
    from distill.config import load
    from envs.episodes import find_runs
    from distill.trainer import train as run_train

    try:
        cfg = load(config, set_)
        runs = find_runs(data)
        with _ProgressBar("train") as bar:
            metrics = run_train(cfg, runs, out, init=init, resume=resume, progress=bar)
    except _errors() as err:
        _fail(str(err))
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one table
        _table(f"student ({cfg.size}) -> {out}", {k: v for k, v in metrics.items() if k != "split"})


@app.command()
def dagger(
    data: Data,
    checkpoint: Annotated[Path, typer.Option(help="the student to start from")],
    out: Annotated[Path, typer.Option(help="folder for rounds: rollouts and checkpoints")],
    rounds: Annotated[Optional[int], typer.Option(help="DAgger rounds")] = None,
    episodes: Annotated[Optional[int], typer.Option(help="rollouts per round")] = None,
    seed: Annotated[Optional[int], typer.Option(help="first seed (use the teacher's)")] = None,
    workers: Annotated[Optional[int], typer.Option(help="parallel rollout processes")] = None,
    config: ConfigOpt = "small",
    set_: Sets = None,
) -> None:
    """Mirrored distillation: the student plays, the teacher labels, the student retrains. Run
    again into the same --out (after a kill, or with more --rounds), it continues where it stopped."""
    from distill.config import load
    from distill.dagger import run_dagger
    from envs.episodes import find_runs

    sets = list(set_ or [])
    for key, value in (("rounds", rounds), ("episodes", episodes), ("seed", seed), ("workers", workers)):
        if value is not None:
            sets.append(f"dagger.{key}={value}")
    try:
        cfg = load(config, sets)
        with _ProgressBar("retrain") as bar:
            summaries = run_dagger(cfg, find_runs(data), checkpoint, out, train_progress=bar,
                                   rollout_progress=bar.stream("rollouts", "episode"),
                                   on_round=lambda s: err_console.print(
                                       f"round {s['round']}: beta {s['beta']}, rollout score {s['rollout_score']:.1f}"))
    except _errors() as err:
        _fail(str(err))
    table = Table(title=f"DAgger -> {out}")
    for col in ("round", "beta", "rollout score", "agreement (rollouts)", "val agreement", "checkpoint"):
        table.add_column(col)
    for s in summaries:
        agree = "" if s["rollout_agreement"] is None else f"{s['rollout_agreement']:.3f}"
        table.add_row(str(s["round"]), f"{s['beta']:g}", f"{s['rollout_score']:.1f}", agree,
                      f"{s.get('action_agreement') or float('nan'):.3f}", s["checkpoint"])
    console.print(table)


@app.command()
def play(
    checkpoint: Annotated[Path, typer.Option(help="the student")],
    out: Annotated[Path, typer.Option(help="folder for the episodes (one run directory per seed)")],
    plans: Annotated[str, typer.Option(help="whose subgoals the student acts on: own | teacher")] = "teacher",
    episodes: Annotated[int, typer.Option(min=1, help="episodes to play")] = 100,
    seed: Annotated[int, typer.Option(help="seed of the first episode")] = 10000,
    max_steps: Annotated[int, typer.Option(min=1, help="steps before truncation")] = 10000,
    temperature: Annotated[Optional[float], typer.Option(
        min=0.0, help="of the student's action sampling (default: the play temperature)")] = None,
    workers: Annotated[int, typer.Option(help="parallel processes")] = 2,
    teacher_stops_when_sealed: Annotated[bool, typer.Option(
        help="the teacher's night errands end once the student is sealed in, wherever: sealed in, it says "
             "sleep rather than walk out to the pocket it chose (config hash -sealed)")] = False,
    teacher_replans: Annotated[bool, typer.Option(
        help="the teacher's night errands start over from where the student stands after each step it "
             "played otherwise: the label is the teacher's first action from there (config hash -replan)")] = False,
) -> None:
    """The student plays every step with the teacher beside it, labelling each state it visits.
    With --plans teacher the student acts on the teacher's subgoal at each step, its own plan
    level unused: against --plans own (the student's own episodes) the score says how much of
    its gap to the teacher lies in its plan level. Run again into the same --out, it plays only
    the seeds that did not finish."""
    from distill import checkpoint as ck
    from distill.config import PLAY_TEMPERATURE
    from distill.rollouts import play_student, pool_for

    if plans not in ("own", "teacher"):
        _fail(f"--plans is own or teacher, not {plans!r}")
    try:
        ck.read(checkpoint)  # a missing or broken checkpoint: said here, not by each worker
        with _ProgressBar("play", unit="episode") as bar:
            played = play_student(out, checkpoint, range(seed, seed + episodes), pool_for(workers),
                                  teacher_plans=plans == "teacher", max_steps=max_steps,
                                  temperature=PLAY_TEMPERATURE if temperature is None else temperature,
                                  stop_when_sealed=teacher_stops_when_sealed, replan=teacher_replans,
                                  progress=bar)
    except _errors() as err:
        _fail(str(err))
    whose = "the teacher's" if plans == "teacher" else "its own"
    _table(f"the student acting on {whose} subgoals, {episodes} episode{'' if episodes == 1 else 's'}",
           {"crafter_score": played["crafter_score"], "mean_length": played["mean_length"],
            "action agreement with the teacher": played["agreement"],
            **({} if plans == "teacher" else {"subgoal agreement with the teacher": played["subgoal_agreement"]}),
            "out": str(out)})


@app.command("eval")
def evaluate(
    checkpoint: Annotated[Path, typer.Option(help="the student")],
    data: Data,
    limit: Annotated[Optional[int], typer.Option(help="at most this many samples")] = None,
    by_label: Annotated[bool, typer.Option(
        "--by-label", help="agreement per action, per subgoal and (Crafter) per light, and the most "
        "common disagreements")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Offline metrics on recorded episodes: action agreement, subgoal exact match, KL."""
    from distill.checkpoint import load_student
    from distill.data import DistillDataset
    from distill.evaluation import evaluate as run_eval
    from distill.steps import load_steps_for
    from envs.episodes import find_runs

    try:
        model, ckpt = load_student(checkpoint)
        teacher_steps = ckpt.config.data.model_copy(update={"actors": ["teacher", "expert-relabelled"]})
        table = load_steps_for(find_runs(data), teacher_steps, ckpt.config.model)
        dataset = DistillDataset(table, list(range(len(table))), ckpt.tokenizer, ckpt.config.model)
        metrics = run_eval(model, dataset, ckpt.config, "cpu", limit=limit, by_label=by_label)
    except _errors() as err:
        _fail(str(err))
    metrics = {"checkpoint": str(ckpt.path), "step": ckpt.step, "parameters": model.num_parameters(), **metrics}
    if as_json:
        print(json.dumps(metrics, indent=2))
        return
    titles = {"by_action": "agreement by action (the teacher's steps)",
              "by_subgoal": "agreement by subgoal (the teacher's steps)",
              "by_light": "agreement by light (the teacher's steps)",
              "by_mistake": "most common disagreements (subgoal: teacher -> student)"}
    labels = {key: metrics.pop(key) for key in titles if key in metrics}
    _table("offline evaluation", metrics)
    for key, rows in labels.items():
        table = Table(title=titles[key])
        columns = next(iter(rows.values()), {}).keys()
        for column in ("", *columns):
            table.add_column(column, justify="right" if column else "left")
        for name, row in rows.items():
            table.add_row(name, *("-" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)
                                  for v in row.values()))
        console.print(table)


@app.command()
def nights(
    data: Data,
    limit: Annotated[int, typer.Option(min=1, help="open cells the player may reach and count as enclosed")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON, one row per episode too")] = False,
) -> None:
    """How the player spends Crafter's nights (replayed from the episodes' seeds): walled in at
    dusk, enclosed and asleep in the dark, why the episodes that died on day 0 died, what
    killed it (lava, a zombie, a skeleton, a vital at 0) and the subgoals it played under
    from dusk to the end of day 0."""
    from distill.nights import night_report

    report = _replay_report(lambda runs: night_report(runs, limit), data, as_json)
    if report is None:
        return
    endings = report.pop("day_0_endings")
    dusk = report.pop("dusk_subgoals")
    deaths = report.pop("deaths")
    _table("nights", {k: "-" if v is None else v for k, v in report.items()})
    _table("died on day 0", endings)
    _table("deaths, on any day (what the view and the vitals show)", deaths)
    _table("subgoals from dusk to the end of day 0 (share of steps)", dusk)


@app.command()
def plants(
    data: Data,
    min_length: Annotated[int, typer.Option(min=0, help="only the episodes that lived this many steps")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON, each plant of each episode too")] = False,
) -> None:
    """What becomes of the saplings the player plants (replayed from the episodes' seeds,
    each plant followed): planted at all, their open sides 15 steps later, lost before
    they ripened (a cow, zombie or skeleton beside them), ripened, eaten once ripe."""
    from distill.plants import plant_report

    report = _replay_report(lambda runs: plant_report(runs, min_length), data, as_json)
    if report is not None:
        _table("plants", {k: "-" if v is None else v for k, v in report.items()})


def _replay_report(read: Callable[[list[Path]], dict[str, Any]], data: list[Path], as_json: bool
                   ) -> dict[str, Any] | None:
    """``read``'s report over the runs under ``data`` (a bad run: one line, exit 2): printed
    whole as JSON with ``as_json`` (then None), else returned without its per-episode rows."""
    from envs.episodes import find_runs

    try:
        report = read(find_runs(data))
    except _errors() as err:
        _fail(str(err))
    if as_json:
        print(json.dumps(report, indent=2))
        return None
    report.pop("per_episode")
    return report
