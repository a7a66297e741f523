"""The self-evolving agent's three targets, each measured side by side in one run.

    python bench/bench_agent.py score     --episodes 20 --seed 1000   # prior full, memory learned on other seeds
    python bench/bench_agent.py evolution --episodes 50 --seed 2000 --prior none   # learning vs --no-learn
    python bench/bench_agent.py speed     --steps 5000                # agent vs bare Crafter, steps/s

Each writes its run directories and a JSON of figures under ``bench/results/agent/``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from agents.runner import run_episodes
from envs.episodes import read_index
from envs.plots import learning_curve, running_scores
from steve.config import load

OUT = Path("bench/results/agent")


EXTRA: list[str] = []  # --set overrides from the command line, applied to every run


def _run(out: Path, sets: list[str]) -> dict[str, Any]:
    cfg = load(overrides=[f"run.out={out}", *sets, *EXTRA])
    start = time.perf_counter()
    summary = run_episodes(cfg)
    summary["wall_s"] = time.perf_counter() - start
    return summary


def score(args: argparse.Namespace) -> dict[str, Any]:
    """Learn a memory on ``--train`` other seeds, then play ``--episodes`` held-out seeds."""
    memory = OUT / "score-memory"
    base = ["agent.name=steve", "agent.prior=full", f"env.max_steps={args.max_steps}",
            f"memory.path={memory}", f"memory.embedder={args.embedder}"]
    train = _run(OUT / "score-train", base + [f"run.episodes={args.train}", f"run.seed={args.seed + 10_000}"])
    test = _run(OUT / "score-test", base + [f"run.episodes={args.episodes}", f"run.seed={args.seed}",
                                            "agent.learn=false"])
    return {"train_score": train["crafter_score"], "score": test["crafter_score"],
            "success_rates": test["success_rates"], "episodes": test["episodes"], "seeds": test["seeds"],
            "wall_s": train["wall_s"] + test["wall_s"]}


def evolution(args: argparse.Namespace) -> dict[str, Any]:
    """Empty memory, ``--episodes`` episodes: learning against the same agent not learning."""
    runs = {}
    for label, learn in (("learning", "true"), ("no-learn", "false")):
        runs[label] = _run(OUT / f"evolution-{label}", [
            "agent.name=steve", f"agent.prior={args.prior}", f"agent.learn={learn}",
            f"env.max_steps={args.max_steps}", f"run.episodes={args.episodes}", f"run.seed={args.seed}",
            f"memory.path={OUT / f'evolution-{label}' / 'memory'}", f"memory.embedder={args.embedder}"])
    from envs import make

    achievements = make("crafter").achievements
    last = {k: running_scores(v["per_episode"], achievements, args.window)[-1] for k, v in runs.items()}
    chart = learning_curve({k: v["per_episode"] for k, v in runs.items()}, achievements,
                           OUT / "evolution.png", args.window)
    return {"prior": args.prior, "episodes": args.episodes, f"score_last_{args.window}": last,
            "gain": last["learning"] - last["no-learn"], "chart": str(chart),
            "overall": {k: v["crafter_score"] for k, v in runs.items()}}


def speed(args: argparse.Namespace) -> dict[str, Any]:
    """Steps per second of the whole agent (graph, memory, recording, checkpoints) and of
    bare Crafter on the very same trajectories: each round plays one episode (seed S+r),
    then replays its actions from the same seed in Crafter's own ``Env`` in this process.
    Rates are totals over the rounds. Both clocks leave world generation out, and the
    embedding model is loaded when the store opens, before the episode's clock starts.
    A short untimed episode first pays what a process pays once (lazy imports, the first
    Parquet and Chroma writes, Crafter's textures), as the bare side has by the time it
    replays: the figure is the cost per step of a run, not of starting one. Each round's
    replay follows its episode at once, and each round's ratio is reported too (their
    median resists a host whose speed drifts within the run)."""
    from bench_agent_scripted import replay_rates

    from envs.episodes import read_steps

    if args.warmup:
        _run(OUT / "speed-warmup", ["agent.name=steve", f"env.max_steps={args.warmup}", "run.episodes=1",
                                    f"run.seed={args.seed - 1}", f"memory.embedder={args.embedder}"])
    steps, lengths, rounds = 0, [], []
    spent = {"agent": 0.0, "raw": 0.0, "adapter": 0.0}
    for r in range(args.rounds):
        out = OUT / f"speed-{r}"
        _run(out, ["agent.name=steve", f"env.max_steps={args.steps}", "run.episodes=1",
                   f"run.seed={args.seed + r}", f"memory.embedder={args.embedder}"])
        (meta,) = read_index(out)  # the episode's own clock
        actions = read_steps(out, ["action"]).column("action").to_pylist()
        # the bare replay right after its episode: a machine whose speed drifts (a shared
        # host) then weighs on both sides of each round alike
        bare = replay_rates([(args.seed + r, actions)], args.steps)
        agent_s = meta.finished_at - meta.started_at
        n = meta.length
        steps += n
        lengths.append(n)
        spent["agent"] += agent_s
        spent["raw"] += n / bare["raw"]
        spent["adapter"] += n / bare["adapter"]
        rounds.append(round(agent_s * bare["raw"] / n, 3))  # this round: agent time / bare time
    rates = {k: steps / v for k, v in spent.items()}
    return {"embedder": args.embedder, "steps": steps, "lengths": lengths,
            "steps_per_s": {"bare": rates["raw"], "bare_adapter": rates["adapter"], "agent": rates["agent"]},
            "ratio": rates["raw"] / rates["agent"], "ratio_per_round": rounds,
            "ratio_median_round": float(statistics.median(rounds))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("which", choices=["score", "evolution", "speed"])
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--train", type=int, default=10, help="score: episodes that fill the memory")
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--max-steps", type=int, default=10000)
    p.add_argument("--prior", default="partial")
    p.add_argument("--window", type=int, default=10)
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--warmup", type=int, default=300, help="speed: steps of the untimed first episode (0: none)")
    p.add_argument("--embedder", default="minilm")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every run, e.g. --set memory.retrieval.k_skills=3")
    args = p.parse_args()
    EXTRA.extend(args.sets)
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob(f"{args.which}*"):
        if old.is_dir():
            import shutil

            shutil.rmtree(old)
    result = {"score": score, "evolution": evolution, "speed": speed}[args.which](args)
    (OUT / f"{args.which}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
