"""Training the student: CPU or CUDA, bf16 autocast on GPU, resumable after a kill.

Batches are drawn with replacement from a generator seeded by ``(seed, step, rank)``,
so a resumed run (or one with another number of data workers) sees exactly the batches
an uninterrupted one would. ``torchrun --nproc-per-node N`` runs it data-parallel with
no change: each rank draws its own share of the batch, gradients are averaged by DDP,
rank 0 writes checkpoints and metrics.

Writes into ``OUT``: ``ckpt-*/`` and ``latest`` (see :mod:`distill.checkpoint`),
``data.json`` (what it trained on: runs, episodes, steps per actor, what the filters
dropped), ``metrics.jsonl`` (one JSON object per log line, ``"split": "train" | "val"``)
and ``loss.png``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from distill import checkpoint as ck
from distill import landmarks
from distill.augment import hide_history, mirror_batch, mirror_for
from distill.config import DistillConfig
from distill.data import DistillDataset, build_tokenizer, describe, split, weighted_indices
from distill.evaluation import autocast, compute_losses, evaluate, to_device
from distill.losses import TAID
from distill.model import Student
from distill.steps import StepTable, load_steps_for

Progress = Callable[[int, int, dict[str, float]], None]  # (step or episode, total, latest metrics)


class _StepBatches(Sampler[list[int]]):
    """Index lists for optimiser steps ``start .. total-1`` (micro-batches within each)."""

    def __init__(self, n: int, batch: int, accum: int, start: int, total: int, seed: int, rank: int, world: int):
        self.n, self.batch, self.accum = n, batch, accum
        self.start, self.total, self.seed, self.rank, self.world = start, total, seed, rank, world

    def __len__(self) -> int:
        return (self.total - self.start) * self.accum

    def __iter__(self) -> Iterator[list[int]]:
        per_rank = max(1, self.batch // self.world)
        micro = max(1, per_rank // self.accum)
        for step in range(self.start, self.total):
            rng = np.random.default_rng([self.seed, step, self.rank])
            idx = rng.integers(0, self.n, size=micro * self.accum).tolist()
            for a in range(self.accum):
                yield idx[a * micro:(a + 1) * micro]


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    return _Dist(dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))


def pick_device(choice: str) -> str:
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device=cuda but no CUDA device is visible")
    return choice


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up to 1, then a cosine down to ``min_ratio`` at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class MovingAverage:
    """An exponential moving average of a model's weights (Polyak averaging). The decay
    ramps up as ``(1 + step) / (10 + step)`` to ``decay``, so early weights fade fast."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        keep = min(self.decay, (1 + step) / (10 + step))
        for mine, theirs in zip(self.model.parameters(), model.parameters()):
            mine.lerp_(theirs.detach(), 1.0 - keep)


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "pos" not in n]
    other = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "pos" not in n)]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": other, "weight_decay": 0.0}]


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl``, in order; a line a kill cut short is left out, and
    a file not yet written has none."""
    rows = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _trim_metrics(path: Path, step: int) -> None:
    """After a resume, drop log lines past the checkpoint (they will be written again)."""
    if path.exists():
        path.write_text("".join(json.dumps(r) + "\n" for r in read_metrics(path) if r.get("step", 0) <= step))


def train(cfg: DistillConfig, runs: Sequence[Path], out: Path, init: Path | None = None,
          resume: bool = True, progress: Progress | None = None, table: StepTable | None = None) -> dict[str, Any]:
    """Train (or continue training) a student on the episodes of ``runs``; returns the
    last validation metrics plus throughput. ``init`` starts from another checkpoint's
    weights and tokenizer (DAgger's next round); ``resume`` continues ``out``'s own;
    ``table`` is those runs already read (with ``cfg.data``), so they are not read again."""
    t = cfg.train
    device = pick_device(t.device)
    dist = _init_distributed(device)
    if device == "cuda":
        device = f"cuda:{dist.local}"
        torch.cuda.set_device(device)
    torch.manual_seed(t.seed)
    out = Path(out)
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)

    if table is None:
        table = load_steps_for(runs, cfg.data, cfg.model)
    train_idx, val_idx = split(table, cfg.data.val_fraction, cfg.data.split_seed)
    if len(train_idx) == 0:
        raise ValueError("no training samples left after the filters and the split")
    train_idx = weighted_indices(table, train_idx, cfg.data)
    existing = _latest(out) if resume else None
    source = existing or (Path(init) if init else None)
    if source is not None:
        prev = ck.read(source)
        tokenizer = prev.tokenizer
        if prev.config.model != cfg.model:
            raise ValueError(f"{source}: its model config differs from this one; train into a new directory")
    else:
        tokenizer = build_tokenizer(table, cfg.data.min_word_count)
    n_actions = table.n_actions
    train_set = DistillDataset(table, train_idx, tokenizer, cfg.model)
    val_set = DistillDataset(table, val_idx, tokenizer, cfg.model)

    model = Student(cfg.model, len(tokenizer), n_actions).to(device)
    optimizer = torch.optim.AdamW(_param_groups(model, t.weight_decay), lr=t.lr,
                                  fused=device.startswith("cuda"))
    taid = TAID(total_steps=t.steps) if t.action_loss == "taid" else None
    start = 0
    if existing is not None:
        prev = ck.read(existing)
        ck.load_weights(model, existing / ck.MODEL_FILE)  # the trained weights, not their average
        ck.load_optimizer(existing, optimizer)
        start = prev.step
        if taid is not None and "taid" in prev.extra:
            taid.load_state_dict(prev.extra["taid"])
    elif init is not None:
        loaded, _ = ck.load_student(init, device)
        model.load_state_dict(loaded.state_dict())
    ema = MovingAverage(model, t.ema) if t.ema > 0 else None
    if ema is not None and existing is not None and (existing / ck.EMA_FILE).is_file():
        ck.load_weights(ema.model, existing / ck.EMA_FILE)
    student = model if ema is None else ema.model  # what is validated and plays
    model.train()
    if dist.main:
        _trim_metrics(out / "metrics.jsonl", start)
        (out / "data.json").write_text(json.dumps(describe(table), indent=1, default=str))
    net: torch.nn.Module = model
    if t.compile:
        net = torch.compile(net)
    if dist.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(net, device_ids=[dist.local] if device.startswith("cuda") else None)

    sampler = _StepBatches(len(train_set), t.batch_size, t.grad_accum, start, t.steps, t.seed, dist.rank, dist.world)
    # The sampler gives whole batches of positions, which the dataset reads at once.
    loader = DataLoader(train_set, sampler=sampler, batch_size=None, num_workers=t.workers,
                        pin_memory=device.startswith("cuda"), persistent_workers=False)
    names = [table.action_names.get(i, "") for i in range(n_actions)]  # "": never taken in the data
    mirror = mirror_for(table, names, device) if t.mirror else None
    meta = ck.Checkpoint(out, cfg, tokenizer, n_actions, names, start)
    metrics_file = out / "metrics.jsonl"
    last: dict[str, Any] = {}
    window_samples, window_start = 0, time.perf_counter()
    total_samples, total_time = 0, 0.0
    batches = iter(loader)
    step = start
    while step < t.steps:
        for group in optimizer.param_groups:
            group["lr"] = t.lr * lr_factor(step, t.warmup, t.steps, t.min_lr_ratio)
        tick = time.perf_counter()
        parts_sum: dict[str, float] = {}
        n_step = 0
        for micro in range(t.grad_accum):
            batch = to_device(next(batches), device)
            # drawn from the step, as the batches are: a resumed run augments the same samples
            rng = np.random.default_rng([t.seed, step, dist.rank, micro])
            if t.history_dropout:
                hide_history(batch, t.history_dropout, n_actions, rng)
            if mirror is not None:
                mirror_batch(batch, t.mirror, *mirror, rng)
            with autocast(device):
                loss, parts, _ = compute_losses(net, batch, cfg, taid)
            (loss / t.grad_accum).backward()
            for k, v in parts.items():
                parts_sum[k] = parts_sum.get(k, 0.0) + v / t.grad_accum
            n_step += len(batch["action"])
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.update(model, step)
        if taid is not None:
            taid.step(parts_sum["action_loss"])
        step += 1
        elapsed = time.perf_counter() - tick
        window_samples += n_step * dist.world
        total_samples += n_step * dist.world
        total_time += elapsed
        if dist.main and (step % t.log_every == 0 or step == t.steps):
            now = time.perf_counter()
            rate = window_samples / max(1e-9, now - window_start)
            window_samples, window_start = 0, now
            last = {"split": "train", "step": step, "lr": optimizer.param_groups[0]["lr"],
                    "samples_per_s": rate, **parts_sum}
            if taid is not None:
                last["taid_t"] = taid.t
            _append(metrics_file, last)
        if dist.main and (step % t.eval_every == 0 or step == t.steps) and len(val_set):
            val = {"split": "val", "step": step, **evaluate(student, val_set, cfg, device, limit=4096)}
            _append(metrics_file, val)
            last = {**last, **val}
        if dist.main and (step % t.save_every == 0 or step == t.steps):
            meta.step = step
            meta.extra = {"taid": taid.state_dict()} if taid is not None else {}
            meta.extra["runs"] = [str(r) for r in runs]
            if cfg.model.landmarks:
                meta.extra[ck.LANDMARKS_KEY] = landmarks.VERSION
            ck.save(out, model, meta, optimizer, keep=t.keep_checkpoints, averaged=None if ema is None else ema.model)
            plot_losses(metrics_file, out / "loss.png")
        if progress is not None and dist.main:
            progress(step, t.steps, last)
    if dist.world > 1:
        torch.distributed.barrier()
    return {**last, "step": step, "parameters": model.num_parameters(), "train_samples": len(train_set),
            "val_samples_total": len(val_set), "device": device,
            "train_samples_per_s": total_samples / total_time if total_time else float("nan")}


def _latest(out: Path) -> Path | None:
    try:
        return ck.resolve(out)
    except ck.CheckpointError:
        return None


def _append(path: Path, row: dict[str, Any]) -> None:
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


def plot_losses(metrics: Path, png: Path) -> None:
    """Training and validation loss against the step, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics)
    if not rows:  # saved before the first log line
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for part, key, style in (("train", "loss", "-"), ("val", "val_loss", "o-")):
        pts = [(r["step"], r[key]) for r in rows if r.get("split") == part and key in r]
        if pts:
            ax.plot(*zip(*pts), style, label=f"{part} loss", markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend()
    fig.tight_layout()
    tmp = png.with_name(f".{png.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, png)
