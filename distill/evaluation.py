"""Validation of a student against the teacher's recorded actions, and the batch loss
that training and validation share.

:func:`evaluate` gives the metrics written to ``metrics.jsonl`` during training and
printed by ``steve distill eval``: action agreement, subgoal exact match, KL(teacher ||
student), and the share of steps where the student's action is one of the teacher's equally
good ones (its recorded distribution spreads over them: on a route both ``move_left`` and
``move_up`` may shorten the way, and the recorded action is the first);
:func:`agreement_by_label` breaks the agreement down by action, by subgoal
and (on Crafter) by the light of the frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from distill.config import DistillConfig
from distill.data import DistillDataset
from distill.losses import TAID, action_loss, cross_entropy, forward_kl
from distill.visual_memory import NO_WALK
from envs.crafter_env import daylight

# Crafter's light, in three parts: the frame is clear; tinted; tinted and noisy (the
# player sees little beyond the cells next to it, the teacher's map sees everything)
LIGHT = {"day (light >= 0.9)": (0.9, np.inf), "dusk or dawn (0.5-0.9)": (0.5, 0.9), "night (< 0.5, noisy)": (0.0, 0.5)}


def to_device(batch: dict[str, torch.Tensor], device: str) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def compute_losses(model: torch.nn.Module, batch: dict[str, torch.Tensor], cfg: DistillConfig,
                   taid: TAID | None = None) -> tuple[torch.Tensor, dict[str, float], Any]:
    """The training loss on one batch: the action objective plus the weighted subgoal LM
    loss (and, with ``model.walk_target``, the weighted loss of where the walk ends)."""
    t = cfg.train
    out = model(batch["frame"], batch["task"], batch["history"], batch["subgoal_in"], memory=batch.get("memory"),
                clock=batch.get("clock"), landmarks=batch.get("landmarks"))
    probs = batch["teacher_probs"] * batch["has_probs"][:, None].to(batch["teacher_probs"].dtype)
    a_loss = action_loss(t.action_loss, out.action_logits, probs, batch["action"], beta=t.beta, alpha=t.alpha,
                         temperature=t.temperature, label_smoothing=t.label_smoothing, taid=taid)
    target = batch["subgoal_out"]
    s_loss = cross_entropy(out.subgoal_logits, target, mask=target != -100, label_smoothing=t.label_smoothing)
    loss = a_loss + t.subgoal_weight * s_loss
    parts = {"action_loss": a_loss.item(), "subgoal_loss": s_loss.item()}
    if out.walk_logits is not None:
        end = batch["walk_end"]
        w_loss = cross_entropy(out.walk_logits, end, ignore_index=NO_WALK)
        loss = loss + t.walk_weight * w_loss
        parts["walk_loss"] = w_loss.item()
    return loss, {"loss": loss.item(), **parts}, out


@torch.no_grad()
def evaluate(model: torch.nn.Module, dataset: DistillDataset, cfg: DistillConfig, device: str,
             batch_size: int = 256, limit: int | None = None, by_label: bool = False) -> dict[str, Any]:
    """Validation metrics: action agreement with the teacher, subgoal exact match (all
    teacher-forced words right, which is exactly when greedy decoding writes the
    teacher's subgoal), KL(teacher || student) where the teacher gave a distribution.
    ``by_label`` adds where the disagreement lies (:func:`agreement_by_label`)."""
    was_training = model.training
    model.eval()
    n = len(dataset) if limit is None else min(limit, len(dataset))
    agree = agree_any = exact = kl_sum = kl_n = walk_hit = walk_n = 0.0
    losses = []
    preds: list[torch.Tensor] = []
    goods: list[torch.Tensor] = []
    spread = np.linspace(0, len(dataset) - 1, n).round().astype(int).tolist() if n else []
    # TAID's training target moves with its state; validation measures against the teacher itself (t = 1).
    taid = TAID(t_start=1.0) if cfg.train.action_loss == "taid" else None
    for first in range(0, n, batch_size):
        batch = to_device(dataset[spread[first:first + batch_size]], device)
        with autocast(device):
            loss, parts, out = compute_losses(model, batch, cfg, taid)
        losses.append((parts["loss"], len(batch["action"])))
        logits = out.action_logits.float()
        picked = logits.argmax(-1)
        hit = picked == batch["action"]
        agree += float(hit.sum())
        has = batch["has_probs"]
        good = hit.clone()  # where the teacher gave a distribution: any action it gave weight
        good[has] = batch["teacher_probs"][has].gather(1, picked[has, None]).squeeze(1) > 0
        agree_any += float(good.sum())
        preds.append(picked.cpu())
        goods.append(good.cpu())
        target = batch["subgoal_out"]
        right = (out.subgoal_logits.argmax(-1) == target) | (target == -100)
        exact += float(right.all(-1).sum())
        if out.walk_logits is not None:
            walks = batch["walk_end"] != NO_WALK
            walk_hit += float((out.walk_logits.argmax(-1) == batch["walk_end"])[walks].sum())
            walk_n += float(walks.sum())
        if bool(has.any()):
            kl_sum += float(forward_kl(logits[has], batch["teacher_probs"][has].float())) * int(has.sum())
            kl_n += int(has.sum())
    model.train(was_training)
    total = max(1, n)
    metrics: dict[str, Any] = {
        "val_loss": sum(v * k for v, k in losses) / total, "action_agreement": agree / total,
        "action_agreement_any": agree_any / total,
        "subgoal_exact": exact / total, "kl": kl_sum / kl_n if kl_n else float("nan"), "val_samples": n}
    if walk_n:  # the share of the teacher's moves whose walk's end the walk head names
        metrics["walk_end_accuracy"] = walk_hit / walk_n
    if by_label:
        table, rows = dataset.table, dataset.indices[spread]
        picked = torch.cat(preds).numpy() if preds else np.zeros(0, np.int64)
        good = torch.cat(goods).numpy() if goods else np.zeros(0, bool)
        crafter = all(table.episodes[e].env == "crafter" for e in np.unique(table.episode[rows]).tolist())
        metrics.update(agreement_by_label(picked, table.action[rows], table.subgoal[rows], table.action_names,
                                          table.subgoals, daylight(table.t[rows]) if crafter else None, good))
    return metrics


def agreement_by_label(picked: np.ndarray, action: np.ndarray, subgoal: np.ndarray, action_names: dict[int, str],
                       subgoals: Sequence[str], light: np.ndarray | None = None,
                       good: np.ndarray | None = None, mistakes: int = 10) -> dict[str, dict[str, dict[str, Any]]]:
    """Where the student's most likely action ``picked`` departs from the teacher's
    ``action``: per action, how many steps, recall (the teacher's steps of it that the
    student picks too) and precision (the student's picks of it that are the teacher's),
    None where it never picks it; per subgoal (``subgoal`` indexes ``subgoals``), how
    many steps and the agreement on them. Most frequent first. With ``light`` (Crafter's
    daylight at each step), the agreement by day, dusk or dawn, and night (see
    :data:`LIGHT`), in that order. With ``good`` (per step: the student's action is one of
    the teacher's equally good ones), each row also has that share: ``recall_any`` per
    action, ``agreement_any`` per subgoal and light. ``by_mistake``: the ``mistakes`` most
    common disagreements, as ``"subgoal: teacher's action -> student's"`` with how many
    steps and their share of the subgoal's steps (with ``good``, only those not among the
    teacher's equally good actions: route ties are not mistakes)."""
    picked, action, subgoal = (np.asarray(a, np.int64) for a in (picked, action, subgoal))
    hit = picked == action
    good = None if good is None else np.asarray(good, bool)

    def rates(at: np.ndarray, key: str) -> dict[str, Any]:
        row = {"n": int(at.sum()), key: float(hit[at].mean()) if at.any() else None}
        if good is not None:
            row[f"{key}_any"] = float(good[at].mean()) if at.any() else None
        return row

    by_action = {}
    for a in sorted(set(action.tolist()) | set(picked.tolist()), key=lambda a: -int((action == a).sum())):
        student = picked == a
        by_action[action_names.get(a) or str(a)] = {
            **rates(action == a, "recall"), "precision": float(hit[student].mean()) if student.any() else None}
    ids, counts = np.unique(subgoal, return_counts=True)
    by_subgoal = {subgoals[i]: rates(subgoal == i, "agreement")
                  for i, _ in sorted(zip(ids.tolist(), counts.tolist()), key=lambda e: -e[1])}
    wrong = ~hit if good is None else ~good
    triples, n_wrong = np.unique(np.stack([subgoal, action, picked])[:, wrong], axis=1, return_counts=True)
    by_mistake = {}
    for k in np.argsort(-n_wrong, kind="stable")[:mistakes].tolist():
        g, a, p = triples[:, k].tolist()
        name = f"{subgoals[g]}: {action_names.get(a) or a} -> {action_names.get(p) or p}"
        by_mistake[name] = {"n": int(n_wrong[k]), "share": float(n_wrong[k] / (subgoal == g).sum())}
    out = {"by_action": by_action, "by_subgoal": by_subgoal, "by_mistake": by_mistake}
    if light is not None:
        light = np.asarray(light, np.float64)
        out["by_light"] = {}
        for name, (low, high) in LIGHT.items():
            at = (light >= low) & (light < high)
            if at.any():
                out["by_light"][name] = rates(at, "agreement")
    return out


def autocast(device: str) -> Any:
    if device == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)
