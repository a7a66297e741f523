"""Recorded runs scored with an interval, and two runs (or several pairs) compared seed by seed.

A Crafter score over 100 episodes moves by several points with the seeds played, and
two agents on the same seeds meet the same worlds: their difference is measured best
paired, by seed. Both intervals are percentile bootstraps: episodes drawn with
replacement (for a pair, seeds drawn with replacement, each bringing both agents'
episodes), the score computed on each draw.

The episodes are read from the runs' indices (``episodes.parquet``): the achievements
each unlocked, its seed and its length; no step file is opened.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from envs.episodes import find_runs, read_run
from envs.score import crafter_score

RESAMPLES = 2000


@dataclass(frozen=True)
class Played:
    """The finished episodes of some runs: one row per episode."""

    env: str
    seeds: list[int | None]
    lengths: list[int]
    achievements: list[frozenset[str]]
    names: tuple[str, ...]  # the achievements a score averages over

    def unlocked(self, rows: Sequence[int] | None = None, names: Sequence[str] | None = None) -> np.ndarray:
        """bool [episodes, achievements]: who unlocked what (``names``: these achievements)."""
        rows = range(len(self.seeds)) if rows is None else rows
        names = self.names if names is None else names
        return np.array([[n in self.achievements[i] for n in names] for i in rows], bool).reshape(len(rows), len(names))


def achievement_names(env: str, seen: Iterable[frozenset[str]]) -> tuple[str, ...]:
    """Crafter's 22 achievements (its score averages over all of them, unlocked or not);
    for another world, those unlocked in the episodes at hand."""
    if env == "crafter":
        import crafter

        return tuple(crafter.constants.achievements)
    return tuple(sorted(set().union(*seen)))


class PlayedTwiceError(ValueError):
    """A seed with two episodes among runs read as one side of a comparison."""


def read_played(paths: Sequence[Path | str], names: Sequence[str] | None = None) -> Played:
    """Every finished episode of the runs under ``paths``. One line of ``ValueError`` for
    a path that holds none, runs of two worlds, or a seed played twice (a paired
    comparison needs one episode a seed)."""
    seeds: list[int | None] = []
    lengths: list[int] = []
    unlocked: list[frozenset[str]] = []
    envs: set[str] = set()
    where: dict[int, Path] = {}
    for run in dict.fromkeys(p.resolve() for p in find_runs(paths)):  # a run named twice counts once
        for meta in read_run(run):
            if meta.seed is not None and meta.seed in where:
                raise PlayedTwiceError(f"seed {meta.seed} was played twice ({where[meta.seed]} and {run}): "
                                 "give one play of each seed")
            if meta.seed is not None:
                where[meta.seed] = run
            envs.add(meta.env)
            seeds.append(meta.seed)
            lengths.append(meta.length)
            unlocked.append(frozenset(meta.achievements))
    if len(envs) > 1:
        raise ValueError(f"runs of different worlds ({', '.join(sorted(envs))}): score each world apart")
    env = envs.pop()
    return Played(env, seeds, lengths, unlocked, tuple(names) if names else achievement_names(env, unlocked))


def scores(unlocked: np.ndarray) -> np.ndarray:
    """The Crafter score of each set of episodes: ``unlocked`` [..., episodes, achievements]
    -> [...]; exp(mean ln(1 + rate %)) - 1, as :func:`envs.score.crafter_score`."""
    if unlocked.shape[-1] == 0:  # nothing to average over (as crafter_score({}))
        return np.zeros(unlocked.shape[:-2])
    rates = 100.0 * unlocked.mean(axis=-2)
    return np.expm1(np.log1p(rates).mean(axis=-1))


def _draws(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _interval(values: np.ndarray) -> list[float]:
    lo, hi = np.percentile(values, [2.5, 97.5])
    return [float(lo), float(hi)]


def score_run(played: Played, resamples: int = RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """Score, its 95 % interval over the episodes, mean length and rates of one set of runs."""
    table = played.unlocked()
    return {
        "env": played.env,
        "episodes": len(played.seeds),
        "seeds": seed_ranges(played.seeds),
        "crafter_score": float(scores(table)),
        "interval": _interval(scores(table[_draws(len(table), resamples, seed)])),
        "mean_length": float(np.mean(played.lengths)),
        "success_rates": dict(zip(played.names, (100.0 * table.mean(axis=0)).tolist())),
    }


def compare(a: Played, b: Played, resamples: int = RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """A against B on the seeds both played: each one's score and rates there, A - B, its
    95 % interval from a paired bootstrap over those seeds, and where the difference lies
    (:func:`scores_if_matched`)."""
    pair = _Pair.of(a, b)
    rates_a = dict(zip(pair.names, (100.0 * pair.a.mean(axis=0)).tolist()))
    rates_b = dict(zip(pair.names, (100.0 * pair.b.mean(axis=0)).tolist()))
    return {
        **pair.report(_draws(len(pair.common), resamples, seed))[0],
        "resamples": resamples,
        "rates_a": rates_a,
        "rates_b": rates_b,
        "score_a_if_matched": scores_if_matched(rates_a, rates_b),
    }


def compare_pairs(pairs: Sequence[tuple[Played, Played]], resamples: int = RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """One change asked about on several agents: pairs (A_i, B_i), each A against its own
    B on the seeds both played (a student with and without a playing option, say). Each
    pair's difference, their mean, how many are above 0, and the mean's 95 % interval from
    a bootstrap that draws each pair's seeds on its own (``seed + i`` for the i-th pair)
    and averages the pairs' differences on each draw; the pairs themselves are not drawn:
    they are the agents asked about, and the interval says how sure their mean is, not how
    the change would do on other agents."""
    if not pairs:
        raise ValueError("no pair of runs to compare")
    rows, draws = [], []
    for i, (a, b) in enumerate(pairs):
        pair = _Pair.of(a, b)
        row, on_draws = pair.report(_draws(len(pair.common), resamples, seed + i))
        rows.append(row)
        draws.append(on_draws)
    differences = [r["difference"] for r in rows]
    return {
        "env": pairs[0][0].env,
        "pairs": rows,
        "mean_difference": float(np.mean(differences)),
        "interval": _interval(np.mean(draws, axis=0)),
        "above_zero": sum(d > 0 for d in differences),
        "resamples": resamples,
    }


@dataclass(frozen=True)
class _Pair:
    """Two sides' episodes on the seeds both played, row for row: ``a``, ``b`` [seeds, names]."""

    env: str
    common: list[int]
    only_a: int
    only_b: int
    names: tuple[str, ...]
    a: np.ndarray
    b: np.ndarray

    @classmethod
    def of(cls, a: Played, b: Played) -> _Pair:
        if a.env != b.env:
            raise ValueError(f"runs of different worlds ({a.env}, {b.env}): compare one world")
        rows_a = {s: i for i, s in enumerate(a.seeds) if s is not None}
        rows_b = {s: i for i, s in enumerate(b.seeds) if s is not None}
        common = sorted(rows_a.keys() & rows_b.keys())
        if not common:
            raise ValueError(f"no seed played by both (A: {seed_ranges(a.seeds)}; B: {seed_ranges(b.seeds)})")
        names = a.names if a.names == b.names else tuple(sorted(set(a.names) | set(b.names)))
        return cls(a.env, common, len(rows_a.keys() - rows_b.keys()), len(rows_b.keys() - rows_a.keys()), names,
                   a.unlocked([rows_a[s] for s in common], names), b.unlocked([rows_b[s] for s in common], names))

    def report(self, draws: np.ndarray) -> tuple[dict[str, Any], np.ndarray]:
        """The seeds, both scores, A - B and its 95 % interval over ``draws`` (rows of
        indices into ``common``); and A - B on each draw."""
        score_a, score_b = float(scores(self.a)), float(scores(self.b))
        on_draws = scores(self.a[draws]) - scores(self.b[draws])
        return {"env": self.env, "seeds": len(self.common), "seed_ranges": seed_ranges(self.common),
                "only_a": self.only_a, "only_b": self.only_b, "score_a": score_a, "score_b": score_b,
                "difference": score_a - score_b, "interval": _interval(on_draws)}, on_draws


def scores_if_matched(rates_a: dict[str, float], rates_b: dict[str, float]) -> dict[str, float]:
    """A's score had it B's rate of one achievement, the others its own, per achievement;
    ordered by it, the largest (where A loses most) first.

    The score is a geometric mean of 1 + rate: ten points more from 0 % lift it about as
    much as ninety more from 10 %, so the gap in rates says little of where the gap in
    score lies; this does (a student at 3 % eating a plant, its teacher at 46 %: 30.8 ->
    34.5)."""
    matched = {name: crafter_score({**rates_a, name: rates_b[name]}) for name in rates_a}
    return dict(sorted(matched.items(), key=lambda item: -item[1]))


def seed_ranges(seeds: Iterable[int | None]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2, 5, 7-8"``; episodes without a seed counted apart."""
    runs: list[list[int]] = []
    for s in sorted({s for s in seeds if s is not None}):
        if runs and s == runs[-1][1] + 1:
            runs[-1][1] = s
        else:
            runs.append([s, s])
    parts = [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in runs]
    unknown = sum(s is None for s in seeds)
    if unknown:
        parts.append(f"{unknown} without a seed")
    return ", ".join(parts) or "none"
