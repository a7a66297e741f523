"""The scripted agent (graph planner + executor, no LLM, no memory): Crafter score and speed.

Plays ``--episodes`` episodes (seeds S, S+1, ...) through ``agents.loop.play_episode``
with the chosen prior, then replays the very same actions from the same seeds in bare
Crafter (raw ``crafter.Env`` and the ``envs`` adapter) in the same process: the speed
ratio is then the agent's cost alone, not a difference between trajectories (Crafter's
own cost per step depends on the state). World generation (reset) is timed apart and
left out of every rate: it is the same for an agent and for bare Crafter.

    python bench/bench_agent_scripted.py --episodes 20 --seed 100 [--harm]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

import envs
from agents.executor import Executor
from agents.loop import play_episode
from agents.planners import GraphPlanner
from envs.base import Wrapper
from envs.score import crafter_score, success_rates

log = logging.getLogger("bench_agent_scripted")


class _Timed(Wrapper):
    """Counts steps and the seconds spent in ``reset`` (world generation)."""

    def __init__(self, env: envs.Env):
        super().__init__(env)
        self.reset_s = 0.0
        self.step_s = 0.0
        self.steps = 0

    def reset(self, seed: int | None = None):
        start = time.perf_counter()
        out = self.env.reset(seed)
        self.reset_s += time.perf_counter() - start
        return out

    def step(self, action: int, **kwargs: Any):
        self.steps += 1
        start = time.perf_counter()
        out = self.env.step(action, **kwargs)
        self.step_s += time.perf_counter() - start
        return out


class _Harm(Wrapper):
    """Where health goes (``--harm``): each loss is put down to a zombie next to the
    player, a hit of 2 or more with none next to it (an arrow), or an empty vital
    (hunger, thirst, fatigue); a final blow of 1 goes to the cause of the loss before it.
    Losses are also split by the time of day (zombies come out from step ~115 of 300)."""

    def __init__(self, env: envs.Env):
        super().__init__(env)
        self.damage: Counter[str] = Counter()
        self.by_time: Counter[str] = Counter()
        self.last_cause = ""
        self._health = 9.0

    def reset(self, seed: int | None = None):
        obs, info = self.env.reset(seed)
        self._health, self.last_cause = obs.vitals.get("health", 9.0), ""
        return obs, info

    def step(self, action: int, **kwargs: Any):
        obs, reward, terminated, truncated, info = self.env.step(action, **kwargs)
        lost = self._health - obs.vitals.get("health", 0.0)
        self._health = obs.vitals.get("health", 0.0)
        if lost > 0:
            view = obs.local_view
            r, c = view.shape[0] // 2, view.shape[1] // 2
            beside = {view[r + dy, c + dx] for dx, dy in ((0, 1), (0, -1), (1, 0), (-1, 0))}
            empty = [k for k in ("food", "drink", "energy") if obs.vitals.get(k, 9) <= 0]
            if "zombie" in beside and lost >= 2:
                cause = "zombie"
            elif lost >= 2:
                cause = "arrow"
            elif empty:
                cause = {"food": "hunger", "drink": "thirst", "energy": "fatigue"}[empty[0]]
            else:
                cause = self.last_cause or "other"
            self.damage[cause] += lost
            self.by_time["night (115-300)" if obs.step % 300 >= 115 else "day"] += lost
            self.last_cause = cause
        return obs, reward, terminated, truncated, info


def replay_rates(episodes: list[tuple[int, list[int]]], max_steps: int) -> dict[str, float]:
    """Steps/s of bare Crafter replaying the agent's own actions from the same seeds.

    Crafter's cost per step depends on the state (creatures near, night-time noise in
    the frame), so the fair bare rate is the one on the same trajectories. ``raw`` is
    Crafter's own ``Env`` (made reproducible, see ``envs.crafter_env``), ``adapter`` the
    ``envs`` wrapper that also builds the structured observation.
    """
    from envs.crafter_env import _deterministic_env_class

    raw = _deterministic_env_class()(length=max_steps)
    adapter = envs.make("crafter", max_steps=max_steps)
    spent = {"raw": 0.0, "adapter": 0.0}
    steps = 0
    for seed, actions in episodes:
        raw._seed, raw._episode = seed, 0  # the world of ``seed``, as the adapter builds it
        raw.reset()
        adapter.reset(seed)
        start = time.perf_counter()
        for a in actions:
            raw.step(a)
        spent["raw"] += time.perf_counter() - start
        start = time.perf_counter()
        for a in actions:
            adapter.step(a)
        spent["adapter"] += time.perf_counter() - start
        steps += len(actions)
    return {k: steps / v for k, v in spent.items()}


def summary(per_episode: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Crafter score, success rates, mean length and deaths of some episodes."""
    rates = success_rates([e["achievements"] for e in per_episode], names)
    return {"crafter_score": crafter_score(rates), "success_rates": rates,
            "mean_length": float(np.mean([e["length"] for e in per_episode])),
            "deaths": sum(e["died"] for e in per_episode)}


def run(episodes: int, seed: int, max_steps: int, prior: str, harm: bool = False) -> dict[str, Any]:
    harmed = _Harm(envs.make("crafter", max_steps=max_steps)) if harm else None
    env = _Timed(harmed or envs.make("crafter", max_steps=max_steps))
    planner = GraphPlanner(prior=prior)
    executor = Executor(planner.tree)
    per_episode, trajectories = [], []
    start = time.perf_counter()
    for i in range(episodes):
        actions: list[int] = []
        result = play_episode(env, planner, executor, task="open", seed=seed + i,
                              on_step=lambda a, _probs, acts=actions: acts.append(int(a)))
        trajectories.append((seed + i, actions))
        per_episode.append({"seed": seed + i, "length": result.length, "died": result.died,
                            "achievements": result.achievements})
        if harmed is not None and result.died:
            per_episode[-1]["killed_by"] = harmed.last_cause
        log.info("seed %d: %d steps, %d achievements%s", seed + i, result.length,
                     len(result.achievements), " (died)" if result.died else "")
    agent_s = time.perf_counter() - start - env.reset_s
    bare = replay_rates(trajectories, max_steps)
    agent_sps = env.steps / agent_s
    return {
        "prior": prior, "episodes": episodes, "seeds": [seed, seed + episodes - 1], "max_steps": max_steps,
        **summary(per_episode, list(env.achievements)),
        "steps_per_s": {"agent": agent_sps, "bare_raw": bare["raw"], "bare_adapter": bare["adapter"]},
        "agent_vs_bare_raw": agent_sps / bare["raw"],
        # the agent's own time (planner + executor + loop), measured around env.step
        "agent_overhead_ms_per_step": 1000 * (agent_s - env.step_s) / env.steps,
        "env_steps_per_s_inside_agent_run": env.steps / env.step_s,
        "total_agent_steps": env.steps, "reset_s": env.reset_s,
        "per_episode": per_episode,
        **({"damage": dict(harmed.damage.most_common()), "damage_by_time": dict(harmed.by_time),
            "killed_by": dict(Counter(e["killed_by"] for e in per_episode if "killed_by" in e).most_common())}
           if harmed is not None else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--max-steps", type=int, default=10000)
    parser.add_argument("--prior", choices=("full", "partial", "none"), default="full")
    parser.add_argument("--out", type=Path, default=Path("bench/results/agent_scripted.json"))
    parser.add_argument("--harm", action="store_true",
                        help="also report where health went (zombies, arrows, hunger, ...) and what killed")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")

    res = run(args.episodes, args.seed, args.max_steps, args.prior, args.harm)
    print(f"prior {res['prior']}, {res['episodes']} episodes, seeds {res['seeds'][0]}..{res['seeds'][1]}")
    for name, rate in res["success_rates"].items():
        print(f"  {name:20s} {rate:6.1f} %")
    sps = res["steps_per_s"]
    print(f"Crafter score {res['crafter_score']:.2f}   mean length {res['mean_length']:.0f}   "
          f"deaths {res['deaths']}/{res['episodes']}")
    print(f"steps/s: agent {sps['agent']:.0f}, bare crafter {sps['bare_raw']:.0f} (adapter "
          f"{sps['bare_adapter']:.0f}); agent/bare {res['agent_vs_bare_raw']:.2f} "
          f"(target >= 0.67); agent's own time {res['agent_overhead_ms_per_step']:.3f} ms/step "
          f"(env steps inside the run: {res['env_steps_per_s_inside_agent_run']:.0f}/s)")
    if args.harm:
        print(f"health lost: {res['damage']} ({res['damage_by_time']}); deaths by: {res['killed_by']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
