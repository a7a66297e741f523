"""The two pictures of a run: the learning curve and the success rate per achievement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from envs.score import crafter_score, success_rates


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def running_scores(per_episode: Sequence[Mapping[str, Any]], achievements: Sequence[str],
                   window: int = 10) -> list[float]:
    """Crafter score over the last ``window`` episodes, after each episode."""
    out = []
    for i in range(len(per_episode)):
        recent = per_episode[max(0, i + 1 - window): i + 1]
        out.append(crafter_score(success_rates((e["achievements"] for e in recent), achievements)))
    return out


def learning_curve(curves: Mapping[str, Sequence[Mapping[str, Any]]], achievements: Sequence[str],
                   path: Path, window: int = 10) -> Path:
    """Score (running, over ``window`` episodes) and achievements per episode, one line
    per labelled run: several runs (e.g. learning and --no-learn) share one chart."""
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for label, eps in curves.items():
        xs = list(range(1, len(eps) + 1))
        top.plot(xs, running_scores(eps, achievements, window), label=label)
        bottom.plot(xs, [len(e["achievements"]) for e in eps], marker=".", label=label)
    top.set_ylabel(f"Crafter score (last {window})")
    bottom.set_ylabel("achievements")
    bottom.set_xlabel("episode")
    top.legend()
    top.grid(alpha=0.3)
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def success_bars(rates: Mapping[str, float], path: Path, title: str = "") -> Path:
    plt = _pyplot()
    names = list(rates)
    fig, ax = plt.subplots(figsize=(8, 6))
    ax.barh(names, [rates[n] for n in names], color="tab:green")
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("episodes that unlocked it (%)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_summary(summary: Mapping[str, Any], achievements: Sequence[str], out_dir: Path) -> list[Path]:
    """``learning_curve.png`` and ``success_rates.png`` for one run's summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    label = f"{summary.get('agent', 'agent')}"
    return [
        learning_curve({label: summary["per_episode"]}, achievements, out_dir / "learning_curve.png"),
        success_bars(summary["success_rates"], out_dir / "success_rates.png",
                     title=f"{label}: Crafter score {summary['crafter_score']:.1f}"),
    ]
