"""Two speed-ups of the student, each measured side by side against what it replaced:

    python bench/bench_distill_speed.py --data T --checkpoint F

1. reading a training batch: ``DistillDataset[list]`` (column by column) against one
   sample at a time (each a one-row batch) through ``DataLoader`` and its default
   collate, on the same index lists (best of 3 rounds);
2. one decision at batch 1, one thread: ``Student.decide`` as it is (a changed subgoal
   re-runs only the subgoal's positions) against a full forward pass per corrected
   word, alternating on the same frames of recorded episodes, in episode order;
3. one decision as the student plays it (``StudentAgent.act``: maps and landmarks, the
   model, the sampling), one thread: as it is (the model's passes traced, the pocket not
   looked for again on an unchanged map) against both undone, alternating on the same
   frames; the two must choose the same actions;
4. what a decision costs the code after it: the classification of a frame
   (``distill.cells.classify``, numpy alone) timed right after another
   classification, and right after a whole decision (``StudentAgent.act``), alternating
   on the same frames. The traced pass fills the core's caches with its weights and
   activations, and the code after it runs from slower memory: the difference is what a
   host with small caches pays at every decision, and why one student's latency moves
   from host to host.

Prints JSON, and writes it to ``bench/results/distill_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from distill import landmarks
from distill.agent import StudentAgent
from distill.cells import classify
from distill.checkpoint import load_student
from distill.data import DistillDataset, split
from distill.landmarks import memory_for as landmark_memory_for
from distill.steps import load_steps_for
from distill.tokenizer import PAD
from distill.visual_memory import VisualMemory, cell_colours, move_vectors
from envs import Observation
from envs.episodes import decode_frames, find_runs, iter_episodes

OUT = Path("bench/results/distill_speed.json")


def batch_reading(dataset: DistillDataset, batches: int, batch_size: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    index = [rng.integers(0, len(dataset), batch_size).tolist() for _ in range(batches)]
    best = {"one_at_a_time_ms": float("inf"), "at_once_ms": float("inf")}
    for _ in range(3):
        start = time.perf_counter()
        for _batch in DataLoader(dataset, batch_sampler=index):
            pass
        best["one_at_a_time_ms"] = min(best["one_at_a_time_ms"], (time.perf_counter() - start) / batches * 1000)
        start = time.perf_counter()
        for ks in index:
            dataset[ks]
        best["at_once_ms"] = min(best["at_once_ms"], (time.perf_counter() - start) / batches * 1000)
    return {**best, "batch_size": batch_size, "speedup": best["one_at_a_time_ms"] / best["at_once_ms"]}


def decisions(checkpoint: Path, runs: list[Path], n: int) -> dict[str, dict[str, float]]:
    torch.set_num_threads(1)
    model, ckpt = load_student(checkpoint)
    cfg = ckpt.config.model
    ids = ckpt.tokenizer.encode("open", max_len=cfg.max_task_len)
    task = torch.tensor([ids + [PAD] * (cfg.max_task_len - len(ids))])
    full_pass = {}  # the baseline: every pass of a decision is a full forward pass

    def rerun_all(kv: list, task: torch.Tensor, sub: torch.Tensor):  # kv unused: that is the point
        return model(full_pass["frame"], task, full_pass["history"], sub, memory=full_pass["memory"],
                     clock=full_pass["clock"], landmarks=full_pass["landmarks"])

    visual = VisualMemory(cfg.memory) if cfg.memory else None
    marks = landmark_memory_for(cfg)
    moves = move_vectors(ckpt.action_names, ckpt.n_actions)

    reuse = model._new_subgoal
    times: dict[str, list[float]] = {"reuse": [], "full": []}
    passes = {"reuse": 0, "full": 0}
    for meta, steps in iter_episodes(runs, columns=["frame", "action"]):
        frames = decode_frames(steps.column("frame").to_pylist(), meta.frame_shape)
        history = [ckpt.n_actions] * cfg.history
        drafts: dict[str, torch.Tensor | None] = {"reuse": None, "full": None}
        if visual is not None:
            visual.reset()
        if marks is not None:
            marks.reset()
        move = (0, 0)
        for t, (frame, action) in enumerate(zip(frames, steps.column("action").to_pylist())):
            start = time.perf_counter()  # the maps' updates count in both variants' time
            memory = None if visual is None else torch.from_numpy(visual.update(cell_colours(frame), move))[None]
            seen = None if marks is None else torch.from_numpy(marks.update(frame, move, t))[None]
            mapping = time.perf_counter() - start
            x = torch.tensor(frame).permute(2, 0, 1)[None]
            clock = torch.tensor([t]) if cfg.clock else None
            full_pass.update(frame=x, history=torch.tensor([history]), memory=memory, clock=clock, landmarks=seen)
            order = ("reuse", "full") if len(times["reuse"]) % 2 else ("full", "reuse")
            for name in order:
                model._new_subgoal = reuse if name == "reuse" else rerun_all
                start = time.perf_counter()
                drafts[name], _, used = model.decide(x, task, full_pass["history"], drafts[name], memory=memory,
                                                     clock=clock, landmarks=seen)
                times[name].append(time.perf_counter() - start + mapping)
                passes[name] += used
            history = history[1:] + [int(action)] if history else history
            move = tuple(moves[int(action)])
            if len(times["reuse"]) >= n:
                break
        if len(times["reuse"]) >= n:
            break
    model._new_subgoal = reuse
    report = {}
    for name, ts in times.items():
        ms = np.array(ts[50:] or ts) * 1000  # the first decisions warm caches up
        report[name] = {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
                        "mean_ms": float(ms.mean()), "passes_per_decision": passes[name] / len(ts)}
    return report


def playing(checkpoint: Path, runs: list[Path], n: int) -> dict[str, object]:
    agents = {"now": StudentAgent(None, checkpoint), "before": StudentAgent(None, checkpoint, trace=False)}
    if agents["before"].landmarks is not None:  # the pocket looked for at every evening step
        agents["before"].landmarks._pocket = landmarks._pocket
    times: dict[str, list[float]] = {name: [] for name in agents}
    differ = 0
    for meta, steps in iter_episodes(runs, columns=["frame", "t"]):
        frames = decode_frames(steps.column("frame").to_pylist(), meta.frame_shape)
        obs = Observation(frame=frames[0], inventory={}, vitals={}, local_view=np.empty((0, 0), object),
                          position=(0, 0), facing=(0, 1), achievements=frozenset(), step=0)
        for agent in agents.values():
            agent.reset(obs, meta.seed or 0)
        for frame, t in zip(frames, steps.column("t").to_pylist()):
            obs.frame, obs.step = frame, t
            chosen = {}
            for name in (("now", "before") if len(times["now"]) % 2 else ("before", "now")):
                start = time.perf_counter()
                chosen[name] = agents[name].act(obs)
                times[name].append(time.perf_counter() - start)
            differ += chosen["now"] != chosen["before"]
            if len(times["now"]) >= n:
                break
        if len(times["now"]) >= n:
            break
    report: dict[str, object] = {}
    for name, ts in times.items():
        ms = np.array(ts[50:] or ts) * 1000
        report[name] = {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
                        "mean_ms": float(ms.mean())}
    report["traced"] = agents["now"].model._traced is not None
    report["actions_differ"] = differ
    report["speedup_p50"] = report["before"]["p50_ms"] / report["now"]["p50_ms"]
    return report


def after_a_decision(checkpoint: Path, runs: list[Path], n: int) -> dict[str, float]:
    agent = StudentAgent(None, checkpoint)
    times: dict[str, list[float]] = {"after_classify": [], "after_decision": []}
    for meta, steps in iter_episodes(runs, columns=["frame", "t"]):
        frames = decode_frames(steps.column("frame").to_pylist(), meta.frame_shape)
        obs = Observation(frame=frames[0], inventory={}, vitals={}, local_view=np.empty((0, 0), object),
                          position=(0, 0), facing=(0, 1), achievements=frozenset(), step=0)
        agent.reset(obs, meta.seed or 0)
        for frame, t in zip(frames, steps.column("t").to_pylist()):
            obs.frame, obs.step = frame, t
            for name in (("after_decision", "after_classify") if len(times["after_decision"]) % 2
                         else ("after_classify", "after_decision")):
                if name == "after_decision":
                    agent.act(obs)
                else:
                    classify(frame, t)
                start = time.perf_counter()
                classify(frame, t)
                times[name].append(time.perf_counter() - start)
            if len(times["after_decision"]) >= n:
                break
        if len(times["after_decision"]) >= n:
            break
    us = {name: float(np.percentile(np.array(ts[50:] or ts) * 1e6, 50)) for name, ts in times.items()}
    return {"classify_p50_us_after_classify": us["after_classify"],
            "classify_p50_us_after_decision": us["after_decision"],
            "slowdown": us["after_decision"] / us["after_classify"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="run directories (or a folder of them)")
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--decisions", type=int, default=3000)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    _, ckpt = load_student(args.checkpoint)
    runs = find_runs([args.data])
    table = load_steps_for(runs, ckpt.config.data, ckpt.config.model)
    train_idx, _ = split(table, ckpt.config.data.val_fraction, ckpt.config.data.split_seed)
    dataset = DistillDataset(table, train_idx, ckpt.tokenizer, ckpt.config.model)
    report = {"batch_reading": batch_reading(dataset, args.batches, ckpt.config.train.batch_size),
              "decision_1_thread": decisions(args.checkpoint, runs, args.decisions),
              "playing_1_thread": playing(args.checkpoint, runs, args.decisions),
              "after_a_decision_1_thread": after_a_decision(args.checkpoint, runs, args.decisions)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
