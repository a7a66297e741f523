"""Steps per second: raw Crafter, through the adapter, and with episode recording.

Side by side in one process, same seeds and actions, rounds interleaved so that machine
noise hits every variant alike. Recording overhead is reported against the bare adapter
(the target is at most 10 %).

    python bench/bench_envs.py --steps 20000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def _actions(n: int, seed: int) -> np.ndarray:
    # Mostly noop and moves, so episodes last (a uniform policy dies in ~200 steps and
    # the loop would time resets instead of steps).
    rng = np.random.default_rng(seed)
    return rng.choice(17, size=n, p=[0.3] + [0.1] * 4 + [0.2] + [0.1 / 11] * 11)


def bench_raw(actions: np.ndarray, max_steps: int) -> float:
    import crafter

    env = crafter.Env(seed=0, length=max_steps)
    env.reset()
    start = time.perf_counter()
    for a in actions:
        _, _, done, _ = env.step(int(a))
        if done:
            env.reset()
    return len(actions) / (time.perf_counter() - start)


def bench_adapter(actions: np.ndarray, max_steps: int, record_dir: Path | None = None,
                  flush_every: int = 500) -> float:
    import envs
    from envs.recorder import EpisodeRecorder

    env = envs.make("crafter", max_steps=max_steps)
    if record_dir is not None:
        env = EpisodeRecorder(env, record_dir, agent="bench", config_hash="0" * 16,
                              flush_every=flush_every)
    episode = 0
    env.reset(seed=episode)
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(int(a))
        if terminated or truncated:
            episode += 1
            env.reset(seed=episode)
    rate = len(actions) / (time.perf_counter() - start)
    env.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=10000)
    parser.add_argument("--out", type=Path, default=Path("bench/results/envs.json"))
    args = parser.parse_args()

    actions = _actions(args.steps, 0)
    # Warm-up outside the timed loops: numba's jit, textures, pyarrow's lazy imports
    # (the first Parquet write of a process takes ~0.2 s).
    with tempfile.TemporaryDirectory() as tmp:
        bench_adapter(actions[:600], args.max_steps, Path(tmp))
    rates: dict[str, list[float]] = {"raw": [], "adapter": [], "recording": []}
    for _ in range(args.rounds):
        rates["raw"].append(bench_raw(actions, args.max_steps))
        rates["adapter"].append(bench_adapter(actions, args.max_steps))
        with tempfile.TemporaryDirectory() as tmp:
            rates["recording"].append(bench_adapter(actions, args.max_steps, Path(tmp)))
    best = {k: max(v) for k, v in rates.items()}
    overhead = best["adapter"] / best["recording"] - 1
    adapter_cost = best["raw"] / best["adapter"] - 1
    result = {"steps": args.steps, "rounds": args.rounds, "steps_per_s": best,
              "adapter_overhead_vs_raw": adapter_cost, "recording_overhead_vs_adapter": overhead,
              "all_rounds": rates}
    print(f"{'variant':<12}{'steps/s (best of %d)' % args.rounds:>24}")
    for k in ("raw", "adapter", "recording"):
        print(f"{k:<12}{best[k]:>24.0f}")
    print(f"adapter vs raw Crafter: +{100 * adapter_cost:.1f} % time per step")
    print(f"recording vs bare adapter: +{100 * overhead:.1f} % time per step (target <= 10 %)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
