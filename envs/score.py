"""The Crafter score and the per-run summary, from per-episode achievements."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def success_rates(unlocked: Iterable[Iterable[str]], achievements: Sequence[str]) -> dict[str, float]:
    """Percentage of episodes that unlocked each achievement at least once."""
    episodes = [set(u) for u in unlocked]
    if not episodes:
        return {name: 0.0 for name in achievements}
    return {name: 100.0 * sum(name in u for u in episodes) / len(episodes) for name in achievements}


def crafter_score(rates: Mapping[str, float]) -> float:
    """exp(mean_i ln(1 + s_i)) - 1 over the achievements, s_i in percent (Hafner 2021)."""
    if not rates:
        return 0.0
    return math.exp(sum(math.log1p(s) for s in rates.values()) / len(rates)) - 1.0


def summarize(episodes: Sequence[Mapping[str, Any]], achievements: Sequence[str]) -> dict[str, Any]:
    """``summary.json``: score, success rates, means and the per-episode list.

    ``episodes`` are mappings with ``seed``, ``length``, ``return`` and ``achievements``.
    """
    rates = success_rates((e["achievements"] for e in episodes), achievements)
    n = len(episodes)
    return {
        "crafter_score": crafter_score(rates),
        "success_rates": rates,
        "mean_return": sum(e["return"] for e in episodes) / n if n else 0.0,
        "mean_length": sum(e["length"] for e in episodes) / n if n else 0.0,
        "episodes": n,
        "seeds": [e["seed"] for e in episodes],
        "per_episode": [
            {"seed": e["seed"], "length": e["length"], "return": e["return"],
             "achievements": sorted(e["achievements"])}
            for e in episodes
        ],
    }
