"""The ``steve`` command line: parses options, composes the config, calls the packages."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from steve import distill_cli, memory_cli
from steve.config import ConfigError, load

app = typer.Typer(help="Self-evolving agents in Minecraft-like worlds.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
env_app = typer.Typer(help="Worlds: what they offer.", no_args_is_help=True)
episodes_app = typer.Typer(help="Recorded episodes: list and check.", no_args_is_help=True)
app.add_typer(env_app, name="env")
app.add_typer(episodes_app, name="episodes")
app.add_typer(memory_cli.app, name="memory")
app.add_typer(distill_cli.app, name="distill")
console = Console()
err_console = Console(stderr=True)

ConfigFiles = Annotated[Optional[list[Path]], typer.Option("--config", help="YAML file(s) layered over configs/")]
Sets = Annotated[Optional[list[str]], typer.Option("--set", help="override, e.g. --set env.max_steps=500")]


def fail(message: str, code: int = 2) -> None:
    from rich.markup import escape

    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


EnvOpt = Annotated[Optional[str], typer.Option("--env", help="world: crafter | minedojo")]
AgentOpt = Annotated[Optional[str], typer.Option("--agent", help="who plays: random | steve | student")]
CheckpointOpt = Annotated[Optional[Path], typer.Option("--checkpoint", help="student: its checkpoint directory")]
PlannerOpt = Annotated[Optional[str], typer.Option("--planner", help="steve's planner: graph | llm")]
PriorOpt = Annotated[Optional[str], typer.Option("--prior", help="steve's prior knowledge: full | partial | none")]
MemoryOpt = Annotated[Optional[Path], typer.Option("--memory", help="experience store directory (default RUN/memory)")]
ResumeOpt = Annotated[Optional[Path], typer.Option("--resume", help="continue the run in this directory after a kill")]
EpisodesOpt = Annotated[Optional[int], typer.Option("--episodes", help="episodes to play")]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="seed of episode 0; episode i uses seed+i")]
MaxStepsOpt = Annotated[Optional[int], typer.Option("--max-steps", help="steps before truncation")]
OutOpt = Annotated[Optional[Path], typer.Option("--out", help="run directory to write")]
VideoOpt = Annotated[Optional[bool], typer.Option("--video/--no-video", help="an MP4 per episode")]
WorkersOpt = Annotated[Optional[int], typer.Option(
    "--workers", help="processes playing episodes side by side (random, student, steve without learning): "
               "the same episodes, sooner")]


@app.command()
def run(
    env: EnvOpt = None,
    agent: AgentOpt = None,
    checkpoint: CheckpointOpt = None,
    planner: PlannerOpt = None,
    prior: PriorOpt = None,
    memory: MemoryOpt = None,
    learn: Annotated[Optional[bool], typer.Option("--learn/--no-learn", help="steve writes experience")] = None,
    resume: ResumeOpt = None,
    episodes: EpisodesOpt = None,
    seed: SeedOpt = None,
    max_steps: MaxStepsOpt = None,
    out: OutOpt = None,
    video: VideoOpt = None,
    workers: WorkersOpt = None,
    config: ConfigFiles = None,
    set_: Sets = None,
) -> None:
    """Play episodes, record them, and print the score table."""
    summary, run_dir = _play(locals())
    _print_summary(summary, run_dir)


@app.command("eval")
def evaluate(
    env: EnvOpt = None,
    agent: AgentOpt = None,
    checkpoint: CheckpointOpt = None,
    planner: PlannerOpt = None,
    prior: PriorOpt = None,
    memory: MemoryOpt = None,
    resume: ResumeOpt = None,
    episodes: EpisodesOpt = None,
    seed: SeedOpt = None,
    max_steps: MaxStepsOpt = None,
    out: OutOpt = None,
    video: VideoOpt = None,
    workers: WorkersOpt = None,
    against: Annotated[Optional[list[Path]], typer.Option(
        help="another agent's runs: the difference on the seeds both played")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    config: ConfigFiles = None,
    set_: Sets = None,
) -> None:
    """Play episodes without learning (steve reads its experience store and writes nothing)
    and print the Crafter score with its 95 % interval; with --against, this agent's score
    minus theirs on the seeds both played, from a paired bootstrap (steve episodes score)."""
    from envs.compare import read_played
    from envs.episodes import CorruptEpisodeError

    try:
        theirs = read_played(against) if against else None  # before playing: a wrong path costs nothing
    except (ValueError, CorruptEpisodeError) as err:
        fail(str(err))
    _, run_dir = _play({**locals(), "set_": [*(set_ or []), "agent.learn=false"]})  # the last --set wins
    try:
        report = {"run": str(run_dir), **_score_report(read_played([run_dir]), theirs)}
    except (ValueError, CorruptEpisodeError) as err:
        fail(str(err))
    _show_scores(report, as_json)
    if not as_json:
        console.print(f"run directory: {run_dir}")


def _play(options: dict[str, Any]) -> tuple[dict[str, Any], Path]:
    """What ``steve run`` and ``steve eval`` share: compose the config from ``options`` (their
    parameters, by name), play, and return the summary and the run directory."""
    from agents.runner import RunDirError, run_episodes
    from envs import EnvError
    from envs.episodes import CorruptEpisodeError
    from memory.errors import StoreError

    from distill.errors import CheckpointError

    files = list(options["config"] or [])
    resume, out, checkpoint, memory = options["resume"], options["out"], options["checkpoint"], options["memory"]
    if resume is not None:  # the run's own resolved config, then whatever is given here
        if not (resume / "config.yaml").exists():
            fail(f"{resume} holds no run to resume (no config.yaml)")
        files.insert(0, resume / "config.yaml")
        out = resume
    flags: dict[str, Any] = {}
    for section, key, value in (("env", "name", options["env"]), ("agent", "name", options["agent"]),
                                ("agent", "planner", options["planner"]), ("agent", "prior", options["prior"]),
                                ("agent", "learn", options.get("learn")),
                                ("agent", "checkpoint", str(checkpoint) if checkpoint else None),
                                ("memory", "path", str(memory) if memory else None),
                                ("run", "episodes", options["episodes"]), ("run", "seed", options["seed"]),
                                ("env", "max_steps", options["max_steps"]), ("run", "video", options["video"]),
                                ("run", "workers", options["workers"]),
                                ("run", "out", str(out) if out else None)):
        if value is not None:
            flags.setdefault(section, {})[key] = value
    try:
        cfg = load(files, options["set_"], flags)
        with _RichProgress(cfg.run.episodes) as progress:
            summary = run_episodes(cfg, progress, resume=resume is not None)
    except (ConfigError, RunDirError, EnvError, CorruptEpisodeError, StoreError, CheckpointError,
            ValueError) as err:
        fail(str(err))
    return summary, Path(cfg.run.out)


class _RichProgress:
    """Two bars: episodes, and steps of the current episode. Where the console is not a
    terminal (a log file, a batch job) a bar prints only once it is done, so there a plain
    line an episode instead."""

    def __init__(self, episodes: int, console: Console = err_console):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._console, self._seed, self._played, self._began = console, None, 0, time.monotonic()
        self._p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                           TimeElapsedColumn(), console=console, transient=False) if console.is_terminal else None
        if self._p is not None:
            self._episodes = self._p.add_task("episodes", total=episodes)
            self._steps = self._p.add_task("steps", total=1)

    def __enter__(self) -> _RichProgress:
        if self._p is not None:
            self._p.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._p.stop()

    def episode_started(self, index: int, seed: int, max_steps: int) -> None:
        self._seed = seed  # its episode_finished comes next
        if self._p is not None:
            self._p.reset(self._steps, total=max_steps, description=f"steps (seed {seed})")

    def advanced(self, steps: int) -> None:
        if self._p is not None:
            self._p.advance(self._steps, steps)

    def episode_finished(self, index: int, length: int, achievements: list[str]) -> None:
        self._played += 1
        if self._p is not None:
            self._p.update(self._steps, total=length, completed=length)
            self._p.advance(self._episodes)
            return
        minutes = (time.monotonic() - self._began) / 60
        self._console.print(f"seed {self._seed}: {length} steps, {len(achievements)} achievements "
                            f"({self._played} played, {minutes:.1f} min)", highlight=False)


def _print_summary(summary: dict[str, Any], out: Path) -> None:
    from rich.table import Table

    table = Table(title=f"{summary['agent']} on {summary['env']}: {summary['episodes']} episodes")
    table.add_column("achievement")
    table.add_column("success %", justify="right")
    for name, rate in summary["success_rates"].items():
        table.add_row(name, f"{rate:.1f}")
    console.print(table)
    console.print(f"Crafter score [bold]{summary['crafter_score']:.2f}[/bold] | "
                  f"mean return {summary['mean_return']:.2f} | mean length {summary['mean_length']:.0f}")
    parts = ["summary.json", "config.yaml", "episodes/", "episodes.parquet"]
    parts += [f"{name}/" for name in ("plots", "videos", "memory") if (out / name).exists()]
    console.print(f"run directory: {out} ({', '.join(parts)})")


@env_app.command("info")
def env_info(
    env: Annotated[str, typer.Option(help="world name")] = "crafter",
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Print the action set, observation fields and achievements of a world."""
    import envs
    from envs.observation import Observation

    try:
        world = envs.make(env, **load(extra={"env": {"name": env}}).env.make_kwargs())
    except (envs.EnvError, ConfigError) as err:
        fail(str(err))
    fields = [f.name for f in dataclasses.fields(Observation)]
    info = {"env": env, "actions": list(world.action_names), "observation_fields": fields,
            "achievements": list(world.achievements)}
    world.close()
    if as_json:
        console.print_json(json.dumps(info))
        return
    console.print(f"[bold]{env}[/bold]")
    console.print("actions: " + ", ".join(f"{i}:{a}" for i, a in enumerate(info["actions"])))
    console.print("observation fields: " + ", ".join(fields))
    console.print(f"achievements ({len(info['achievements'])}): " + ", ".join(info["achievements"]))


@episodes_app.command("check")
def episodes_check(run_dir: Annotated[Path, typer.Argument(help="run directory")]) -> None:
    """Read every episode file; name each truncated or corrupt one. Exit 1 if any."""
    from envs.episodes import verify_run

    report = verify_run(run_dir)
    for line in report["corrupt"]:
        err_console.print(f"[red]corrupt:[/red] {line}", highlight=False)
    for line in report["incomplete"]:
        console.print(f"[yellow]incomplete[/yellow] (process died mid-episode; flushed steps kept): {line}")
    console.print(f"{len(report['ok'])} files ok, {len(report['corrupt'])} corrupt, "
                  f"{len(report['incomplete'])} incomplete episodes")
    if report["corrupt"]:
        raise typer.Exit(1)


@episodes_app.command("list")
def episodes_list(run_dir: Annotated[Path, typer.Argument(help="run directory")],
                  as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One line per finished episode of a run."""
    from rich.table import Table

    from envs.episodes import CorruptEpisodeError, read_index

    try:
        metas = read_index(run_dir)
    except CorruptEpisodeError as err:
        fail(str(err))
    if as_json:
        console.print_json(json.dumps([m.row() for m in metas]))
        return
    table = Table()
    for col in ("episode_id", "seed", "length", "return", "achievements"):
        table.add_column(col)
    for m in metas:
        table.add_row(m.episode_id, str(m.seed), str(m.length), f"{m.episode_return:.1f}", str(len(m.achievements)))
    console.print(table)


@episodes_app.command("score")
def episodes_score(
    runs: Annotated[list[Path], typer.Argument(help="run directories, or folders of them (A)")],
    against: Annotated[Optional[list[Path]], typer.Option(help="runs to compare with, seed by seed (B)")] = None,
    resamples: Annotated[int, typer.Option(min=100, help="bootstrap draws")] = 2000,
    seed: Annotated[int, typer.Option(help="seed of the bootstrap's draws")] = 0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Crafter score of recorded runs with a 95 % interval; with --against, A - B on the
    seeds both played, its interval from a paired bootstrap over those seeds."""
    from envs.compare import PlayedTwiceError, read_played
    from envs.episodes import CorruptEpisodeError

    try:
        theirs = read_played(against) if against else None
        try:
            ours = read_played(runs)
        except PlayedTwiceError as err:  # "A B --against C D" reads D as one of A's: say how to write it
            raise ValueError(f"{err}{' (--against takes one run: --against C --against D)' if theirs else ''}") from None
        report = _score_report(ours, theirs, resamples=resamples, seed=seed)
    except (ValueError, CorruptEpisodeError) as err:
        fail(str(err))
    _show_scores(report, as_json)


@episodes_app.command("pairs")
def episodes_pairs(
    runs: Annotated[list[Path], typer.Argument(help="A1 B1 A2 B2 ...: each A against the B after it (a run "
                                                    "directory, or a folder of them)")],
    resamples: Annotated[int, typer.Option(min=100, help="bootstrap draws")] = 2000,
    seed: Annotated[int, typer.Option(help="seed of the bootstrap's draws")] = 0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One change on several agents: each A - B paired by seed as with `score --against`,
    then their mean with a 95 % interval (each pair's seeds drawn on their own)."""
    from envs.compare import compare_pairs, read_played
    from envs.episodes import CorruptEpisodeError

    try:
        if len(runs) % 2:
            raise ValueError(f"runs come two by two, A1 B1 A2 B2 ...: {len(runs)} given")
        report = compare_pairs([(read_played([a]), read_played([b])) for a, b in zip(runs[::2], runs[1::2])],
                               resamples=resamples, seed=seed)
    except (ValueError, CorruptEpisodeError) as err:
        fail(str(err))
    if as_json:
        console.print_json(json.dumps(report))
        return
    from rich.table import Table

    table = Table()
    for col in ("A", "B", "seeds"):
        table.add_column(col)
    for col in ("A score", "B score", "A - B", "95 %"):
        table.add_column(col, justify="right")
    table.caption = "A and B by the last part of their paths"
    for a, b, row in zip(runs[::2], runs[1::2], report["pairs"]):
        lo, hi = row["interval"]
        table.add_row(a.name or str(a), b.name or str(b), row["seed_ranges"], f"{row['score_a']:.2f}",
                      f"{row['score_b']:.2f}", f"{row['difference']:+.2f}", f"{lo:+.1f} to {hi:+.1f}")
    console.print(table)
    for i, row in enumerate(report["pairs"], 1):
        if row["only_a"] or row["only_b"]:
            console.print(f"pair {i}: left out, played by one side only: {row['only_a']} of A's seeds, "
                          f"{row['only_b']} of B's", highlight=False)
    lo, hi = report["interval"]
    n = len(report["pairs"])
    console.print(f"over {n} pair{'s' * (n != 1)}: [bold]mean A - B {report['mean_difference']:+.2f}[/bold] "
                  f"(95 % {lo:+.2f} to {hi:+.2f}, {report['resamples']} draws of each pair's seeds), above 0 in "
                  f"{report['above_zero']} of {n}", highlight=False)


def _score_report(a: Any, b: Any = None, **draws: int) -> dict[str, Any]:
    """Runs ``a`` scored with their interval; with runs ``b``, those too and A - B paired by
    seed; ``draws``: the bootstrap's ``resamples`` and ``seed`` (envs.compare's defaults)."""
    from envs.compare import compare, score_run

    report: dict[str, Any] = {"a": score_run(a, **draws)}
    if b is not None:
        report.update(b=score_run(b, **draws), paired=compare(a, b, **draws))
    return report


def _show_scores(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(report))
    else:
        _print_scores(report)


def _print_scores(report: dict[str, Any]) -> None:
    from rich.table import Table

    for side in ("a", "b"):
        if side in report:
            r = report[side]
            lo, hi = r["interval"]
            console.print(f"{side.upper()}: {r['episodes']} episodes (seeds {r['seeds']}), Crafter score "
                          f"[bold]{r['crafter_score']:.2f}[/bold] (95 % {lo:.2f} to {hi:.2f}), "
                          f"mean length {r['mean_length']:.0f}", highlight=False)
    paired = report.get("paired")
    table = Table()
    table.add_column("achievement")
    table.add_column("A %", justify="right")
    if paired is None:
        for name, rate in report["a"]["success_rates"].items():
            table.add_row(name, f"{rate:.1f}")
        console.print(table)
        return
    table.add_column("B %", justify="right")
    table.add_column("A - B", justify="right")
    table.add_column("A's score at B's %", justify="right")
    table.caption = ("on the seeds both played; the last column: A's score had it B's rate of that "
                     "achievement alone, the rows by it, the largest first")
    for name, matched in paired["score_a_if_matched"].items():  # the largest first
        rate_a, rate_b = paired["rates_a"][name], paired["rates_b"][name]
        table.add_row(name, f"{rate_a:.1f}", f"{rate_b:.1f}", f"{rate_a - rate_b:+.1f}", f"{matched:.2f}")
    console.print(table)
    lo, hi = paired["interval"]
    left_out = "" if not (paired["only_a"] or paired["only_b"]) else (
        f"; left out, played by one side only: {paired['only_a']} of A's seeds, {paired['only_b']} of B's")
    console.print(f"paired over {paired['seeds']} seeds ({paired['seed_ranges']}): A {paired['score_a']:.2f}, "
                  f"B {paired['score_b']:.2f}, [bold]A - B {paired['difference']:+.2f}[/bold] "
                  f"(95 % {lo:+.2f} to {hi:+.2f}, {paired['resamples']} draws of the seeds){left_out}",
                  highlight=False)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
