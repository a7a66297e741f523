"""Crafter score of the scripted agent (graph planner + executor, plain loop) over several
seed ranges, episodes spread over worker processes: one score per range and one pooled.

Scores over 60 seeds swing by several points between ranges, and a change to the agent
moves every trajectory after its first effect, so a gain measured on the ranges it was
tuned on is often noise: judge a change by the pooled score over ranges it was not tuned
on (see docs/agent-results.md).

    python bench/bench_agent_ranges.py --ranges 2000:60,3000:60,4000:60 --workers 2
"""

from __future__ import annotations

import argparse
import json
import time
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import envs
from bench_agent_scripted import summary  # bench/ is on the path when a bench runs as a script


def _episode(job: tuple[int, str, int]) -> dict[str, Any]:
    from agents.executor import Executor
    from agents.loop import play_episode
    from agents.planners import GraphPlanner

    seed, prior, max_steps = job
    planner = GraphPlanner(prior=prior)
    result = play_episode(envs.make("crafter", max_steps=max_steps), planner, Executor(planner.tree),
                          task="open", seed=seed)
    return {"seed": seed, "length": result.length, "died": result.died, "achievements": sorted(result.achievements)}


def _summary(episodes: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    return {"episodes": len(episodes), **summary(episodes, names)}


def parse_ranges(text: str) -> list[tuple[int, int]]:
    """``"2000:60,3000:60"`` -> [(2000, 60), (3000, 60)]."""
    out = []
    for part in text.split(","):
        start, _, count = part.strip().partition(":")
        if not start.isdigit() or not count.isdigit() or int(count) < 1:
            raise SystemExit(f"--ranges: {part!r} is not START:COUNT (e.g. 2000:60)")
        out.append((int(start), int(count)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranges", default="2000:60,3000:60,4000:60", help="START:COUNT,... seed ranges")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=10000)
    parser.add_argument("--prior", choices=("full", "partial", "none"), default="full")
    parser.add_argument("--out", type=Path, default=Path("bench/results/agent_ranges.json"))
    args = parser.parse_args()
    ranges = parse_ranges(args.ranges)
    jobs = [(s, args.prior, args.max_steps) for start, n in ranges for s in range(start, start + n)]
    start_t = time.perf_counter()
    with get_context("spawn").Pool(max(1, args.workers)) as pool:
        episodes = pool.map(_episode, jobs, chunksize=1)
    names = list(envs.make("crafter").achievements)
    by_range = {f"{s}-{s + n - 1}": _summary([e for e in episodes if s <= e["seed"] < s + n], names)
                for s, n in ranges}
    res = {"prior": args.prior, "max_steps": args.max_steps, "pooled": _summary(episodes, names),
           "ranges": by_range, "wall_s": time.perf_counter() - start_t, "per_episode": episodes}
    for name, r in {**by_range, "pooled": res["pooled"]}.items():
        print(f"{name:>12s}: score {r['crafter_score']:5.1f} over {r['episodes']} episodes, "
              f"mean length {r['mean_length']:.0f}, deaths {r['deaths']}")
    print("pooled per achievement: " + ", ".join(
        f"{k} {v:.0f}" for k, v in sorted(res["pooled"]["success_rates"].items(), key=lambda kv: kv[1])))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
