"""Mirrored distillation (DAgger): the student plays the teacher's worlds, the teacher labels.

Each round plays the student in copies of the teacher's worlds (same seeds;
:mod:`distill.rollouts`), mixed with the teacher by the round's ``beta``, with every state
the mixed policy visits labelled by the teacher (``actor`` "expert-relabelled"). The
labelled rollouts join the original episodes and the student is fine-tuned from its
previous checkpoint.

A command killed and run again loses nothing and repeats nothing: :func:`run_dagger` keeps
the rounds done (``dagger.jsonl``), replays no finished rollout of the round it was in
(:func:`distill.rollouts.play`), and continues that round's training from its last
checkpoint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill.config import DistillConfig
from distill.rollouts import (RolloutExecutor, RolloutJob, check_teacher, first_difference, play, pool_for,
                              with_defaults)

if TYPE_CHECKING:
    from distill.trainer import Progress


def run_dagger(cfg: DistillConfig, data: Sequence[Path], checkpoint: Path, out: Path,
               pool: RolloutExecutor | None = None, train_progress: Progress | None = None,
               on_round: Callable[[dict[str, Any]], None] | None = None,
               rollout_progress: Progress | None = None) -> list[dict[str, Any]]:
    """``cfg.dagger.rounds`` rounds from ``checkpoint``: roll out, label, aggregate, retrain.

    Writes ``OUT/round-<k>/rollouts/seed-<s>/`` (labelled episodes), ``OUT/round-<k>/student/``
    (the checkpoint after the round), ``OUT/dagger.jsonl`` (one line per round) and
    ``OUT/dagger.json`` (what the run started from). Run again into the same ``OUT`` (after
    a kill, or with more rounds), it continues: the rounds done are kept, and the round it
    was in plays only its unfinished rollouts and trains on from its last checkpoint.
    Returns the rounds' summaries; the last round's student is the result.
    """
    from distill.steps import concat_tables, load_steps_for
    from distill.trainer import train

    d = cfg.dagger
    pool = pool or pool_for(d.workers)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = [Path(p) for p in data]
    table = load_steps_for(runs, cfg.data, cfg.model)  # read once; each round adds its rollouts
    if d.teacher_check:
        check_teacher(table, d.teacher_farm_at_dusk, d.teacher_memory, d.teacher_near_pocket)
    done = _rounds_done(out, cfg, runs, Path(checkpoint))
    current = Path(checkpoint)
    rounds = []
    for k in range(d.rounds):
        beta = d.beta[min(k, len(d.beta) - 1)]
        round_dir = out / f"round-{k}"
        jobs = [RolloutJob(seed=d.seed + i, out=str(round_dir / "rollouts" / f"seed-{d.seed + i}"), beta=beta,
                           checkpoint=str(current), max_steps=d.max_steps, prior=d.teacher_prior,
                           farm_at_dusk=d.teacher_farm_at_dusk, label=f"dagger-{k}", window=d.student_window,
                           teacher_memory=d.teacher_memory, teacher_near_pocket=d.teacher_near_pocket,
                           teacher_stop_when_sealed=d.teacher_stop_when_sealed, teacher_replan=d.teacher_replan)
                for i in range(d.episodes)]
        played = None if k < len(done) else play(jobs, pool, rollout_progress)
        new = [Path(job.out) for job in jobs]
        runs += new
        table = concat_tables([table, load_steps_for(new, cfg.data, cfg.model)])
        student = round_dir / "student"
        if played is None:  # done before: its rollouts are data, its student the next round's start
            rounds.append(done[k])
            current = student
            continue
        round_cfg = cfg.model_copy(update={"train": cfg.train.model_copy(
            update={"steps": d.steps_per_round, "warmup": min(cfg.train.warmup, d.steps_per_round // 10)})})
        metrics = train(round_cfg, runs, student, init=current, resume=True, progress=train_progress, table=table)
        if "action_agreement" not in metrics:  # trained to the end before a kill: its last validation
            metrics = {**_last_validation(student / "metrics.jsonl"), **metrics}
        current = student
        summary = {"round": k, "beta": beta, "rollout_score": played["crafter_score"],
                   "rollout_agreement": played["agreement"], "rollout_mean_length": played["mean_length"],
                   "runs": len(runs), "checkpoint": str(current),
                   **{key: metrics.get(key)
                      for key in ("action_agreement", "action_agreement_any", "subgoal_exact", "kl", "val_loss")}}
        with (out / "dagger.jsonl").open("a") as f:
            f.write(json.dumps(summary) + "\n")
        rounds.append(summary)
        if on_round is not None:
            on_round(summary)
    return rounds


_STARTED = "dagger.json"
_FREE = {"rounds", "workers"}  # dagger options a run may continue with changed: more rounds, other processes


def _started_config(cfg: DistillConfig) -> dict[str, Any]:
    """What of ``cfg`` a run continues only with: all but :data:`_FREE`."""
    config = cfg.model_dump(mode="json")
    config["dagger"] = {k: v for k, v in config["dagger"].items() if k not in _FREE}
    return config


def _rounds_done(out: Path, cfg: DistillConfig, data: list[Path], checkpoint: Path) -> list[dict[str, Any]]:
    """The summaries of the rounds ``out`` holds from an earlier call that started as this
    one (:data:`_STARTED`: the config but :data:`_FREE`, the data, the start checkpoint's
    weights), which is recorded there when it holds none. ``out`` holding another run's is
    an error; so is a line of ``dagger.jsonl`` that cannot be read, but its last, which a
    kill cut short (dropped)."""
    from distill import checkpoint as ck

    config = _started_config(cfg)
    weights = ck.resolve(checkpoint) / ck.MODEL_FILE
    ours = {"config": config, "data": [str(p.resolve()) for p in data],
            "checkpoint": hashlib.sha256(weights.read_bytes()).hexdigest()}  # its weights, wherever it lies
    path, log_file = out / _STARTED, out / "dagger.jsonl"
    if not path.is_file():
        if log_file.exists() or any(out.glob("round-*")):
            raise ValueError(f"{out} holds DAgger rounds but no {_STARTED} (another run's, or one from before it "
                             "was kept): use another --out")
        path.write_text(json.dumps(ours, indent=1))
        return []
    try:
        theirs = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: unreadable ({err}); use another --out") from None
    if isinstance(theirs, dict):  # options added since it started, at their defaults, are what it ran
        theirs["config"] = with_defaults(theirs.get("config"), _started_config(DistillConfig()))
    if theirs != ours:
        what = {"config": f"another config ({first_difference(theirs.get('config'), config)})",
                "data": "other data", "checkpoint": "another checkpoint (other weights)"}
        first = next(k for k in ours if ours[k] != theirs.get(k))
        raise ValueError(f"{out} holds a DAgger run started from {what[first]}: run it with what it started from, "
                         "or use another --out")
    lines = log_file.read_text().splitlines() if log_file.exists() else []
    rows = []
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
        except ValueError:
            if i == len(lines) - 1:  # cut short by a kill: the round trains again (from its checkpoint)
                log_file.write_text("".join(f"{kept}\n" for kept in lines[:-1]))
                break
            raise ValueError(f"{log_file}: line {i + 1} is not JSON; use another --out") from None
        if row.get("round") != i:
            raise ValueError(f"{log_file}: line {i + 1} is round {row.get('round')!r}, not {i}; use another --out")
        rows.append(row)
    return rows


def _last_validation(metrics: Path) -> dict[str, Any]:
    """The last validation row of a trainer's ``metrics.jsonl`` (empty when there is none)."""
    from distill.trainer import read_metrics

    return next((row for row in reversed(read_metrics(metrics)) if row.get("split") == "val"), {})
