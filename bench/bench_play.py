"""Episodes played side by side (``run.workers``) against one after another, in one run.

    python bench/bench_play.py --agent student --checkpoint CKPT --episodes 40 --seed 10000 --workers 1 2
    python bench/bench_play.py --agent steve --memory RUN/memory --episodes 20 --workers 1 2   # without learning

Plays the same seeds once per worker count (each into its own run directory under
``--out``), checks that every count played the same episodes, and prints the wall time
of each and its speed-up over the first, as JSON (also ``--out/bench_play.json``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from agents.runner import run_episodes
from steve.config import load


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agent", default="student", choices=["random", "student", "steve"])
    ap.add_argument("--checkpoint", help="the student's checkpoint directory")
    ap.add_argument("--memory", help="steve's experience store, read and never written (default: a new one per run)")
    ap.add_argument("--episodes", type=int, default=40)
    ap.add_argument("--seed", type=int, default=10000)
    ap.add_argument("--max-steps", type=int, default=10000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", type=Path, default=Path("bench/results/play"))
    args = ap.parse_args()

    sets = [f"agent.name={args.agent}", f"run.episodes={args.episodes}", f"run.seed={args.seed}",
            f"env.max_steps={args.max_steps}"] + ([f"agent.checkpoint={args.checkpoint}"] if args.checkpoint else [])
    if args.agent == "steve":  # side by side only without learning, which also keeps the episodes independent
        sets += ["agent.learn=false"] + ([f"memory.path={args.memory}"] if args.memory else [])
    rows, episodes = [], None
    for workers in args.workers:
        out = args.out / f"workers-{workers}"
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        summary = run_episodes(load(overrides=[*sets, f"run.workers={workers}", f"run.out={out}"]))
        wall = time.perf_counter() - start
        if episodes is not None and summary["per_episode"] != episodes:
            raise SystemExit(f"workers={workers} played other episodes than workers={args.workers[0]}")
        episodes = summary["per_episode"]
        steps = sum(e["length"] for e in episodes)
        rows.append({"workers": workers, "wall_s": round(wall, 2), "steps": steps,
                     "steps_per_s": round(steps / wall, 1), "crafter_score": summary["crafter_score"]})
    for row in rows:
        row["speedup"] = round(rows[0]["wall_s"] / row["wall_s"], 2)
    report = {"agent": args.agent, "checkpoint": args.checkpoint, "memory": args.memory, "episodes": args.episodes,
              "seed": args.seed, "same_episodes": True, "runs": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_play.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
