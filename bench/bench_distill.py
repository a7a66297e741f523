"""The STEVE-2 student against its teacher: the table the distillation issue asks for.

    python bench/bench_distill.py --teacher-episodes 200 --eval-episodes 20 --minutes 45 --dagger-rounds 2

Steps, each skipped when its output is given:

1. the teacher (graph planner + executor, prior full) records ``--teacher-episodes``
   episodes on seeds 0.. (``--teacher DIR`` reuses them);
2. the student (``--config``, default small) trains on them on this machine's CPU for at
   most ``--minutes`` (``--checkpoint CKPT`` reuses one);
3. DAgger rounds on the teacher's own seeds (``--dagger-rounds``, 0 for none);
4. teacher and student play the same held-out seeds (``--eval-seed``..), side by side;
   with ``--student-window START END`` also the two together: the student in control
   only at those steps of each 300-step day, the teacher the rest (``0 120``: the
   student's days with the teacher's nights), which says where the student loses;
   both replayed for their nights (walled in on day 0, the dark steps spent enclosed:
   ``steve distill nights``);
5. latency of one decision at batch 1 on CPU (1 thread and all threads), over frames
   of those episodes, subgoal decoding included;
6. with a GPU: training samples/s and model FLOPs utilisation on it.

Training samples/s on the CPU is measured while it trains; with ``--checkpoint`` it is
read from that student's own training log (:func:`logged_training_rate`).

Writes ``bench/results/distill.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distill.agent import StudentAgent
from distill.checkpoint import load_student, read
from distill.config import PLAY_TEMPERATURE, load
from distill.dagger import run_dagger
from distill.rollouts import RolloutJob, play, pool_for, record_teacher
from distill.data import DistillDataset, split
from distill.evaluation import evaluate
from distill.nights import night_report
from distill.steps import load_steps_for
from distill.trainer import read_metrics, train
from envs.compare import scores_if_matched
from envs.crafter_env import DAY_LENGTH
from envs.episodes import decode_frames, find_runs, iter_episodes
from envs.observation import Observation

log = logging.getLogger("bench_distill")
OUT = Path("bench/results/distill")

# Dense bf16 peak of cards a bench might meet, for model FLOPs utilisation (vendor sheets).
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12, "L4": 121e12}


def latency(checkpoint: Path, run_dirs: list[Path], threads: int, decisions: int = 2000,
            **options: Any) -> dict[str, float]:
    """Seconds per decision (frame -> subgoal -> action) at batch 1 on CPU, as the student
    plays: frames in episode order, so the subgoal draft holds as it does in play;
    ``options`` are the StudentAgent's (avoid_lava, keep_subgoal)."""
    agent = StudentAgent(None, checkpoint, sample=True, threads=threads, **options)
    times: list[float] = []
    for meta, steps in iter_episodes(run_dirs, columns=["frame", "t"]):
        frames = decode_frames(steps.column("frame").to_pylist(), meta.frame_shape)
        # what the student reads: the frame, the step counter (its clock), and whether the
        # player sleeps (the episodes do not say; awake, every decision counts)
        obs = Observation(frame=frames[0], inventory={}, vitals={}, local_view=np.empty((0, 0), object),
                          position=(0, 0), facing=(0, 1), achievements=frozenset(), step=0)
        agent.reset(obs, 0)
        for frame, t in zip(frames, steps.column("t").to_pylist()):
            obs.frame, obs.step = frame, t
            start = time.perf_counter()
            agent.act(obs)
            times.append(time.perf_counter() - start)
            if len(times) >= decisions:
                return _percentiles(times, agent.passes / len(times))
    return _percentiles(times, agent.passes / max(1, len(times)))


def _percentiles(times: list[float], passes: float) -> dict[str, float]:
    ms = np.array(times[50:] or times) * 1000  # the first decisions warm caches up
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "mean_ms": float(ms.mean()), "passes_per_decision": passes}


def logged_training_rate(checkpoint: Path) -> dict[str, Any] | None:
    """Training samples/s as the run that trained ``checkpoint`` logged it (its
    ``metrics.jsonl``, beside the ``ckpt-*`` folders): the median of the logged windows up
    to the checkpoint's step, on whatever host trained it. What a bench given
    ``--checkpoint``, which trains nothing, can say of training; None without that log."""
    ckpt = read(checkpoint)
    log_file = ckpt.path.parent / "metrics.jsonl"
    rates = [row["samples_per_s"] for row in read_metrics(log_file)
             if row.get("split") == "train" and "samples_per_s" in row and row.get("step", 0) <= ckpt.step]
    if not rates:
        return None
    return {"samples_per_s": float(np.median(rates)), "windows": len(rates), "log": str(log_file)}


def gpu_throughput(cfg_name: str, runs: list[Path], steps: int = 60) -> dict[str, Any] | None:
    """Training samples/s and model FLOPs utilisation on the GPU, when there is one."""
    if not torch.cuda.is_available():
        return None
    from torch.utils.flop_counter import FlopCounterMode

    from distill.model import Student
    from distill.tokenizer import Tokenizer

    cfg = load(cfg_name)
    table = load_steps_for(runs[:20], cfg.data, cfg.model)
    idx, _ = split(table, 0.0, 0)
    tok = Tokenizer.build(table.subgoals + table.tasks)
    data = DistillDataset(table, idx, tok, cfg.model)
    batch = data[[i % len(data) for i in range(cfg.train.batch_size)]]
    batch = {k: v.cuda() for k, v in batch.items()}
    model = Student(cfg.model, len(tok), table.n_actions).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

    def one_step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(batch["frame"], batch["task"], batch["history"], batch["subgoal_in"],
                        memory=batch.get("memory"), clock=batch.get("clock"),
                        landmarks=batch.get("landmarks"))
            loss = torch.nn.functional.cross_entropy(out.action_logits.float(), batch["action"])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    with FlopCounterMode(display=False) as counter:
        one_step()
    flops = counter.get_total_flops()
    for _ in range(10):
        one_step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        one_step()
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    return {"device": name, "batch": cfg.train.batch_size, "samples_per_s": cfg.train.batch_size / seconds,
            "mfu": flops / seconds / peak if peak else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", type=Path, help="reuse these teacher episodes (a folder of run directories)")
    ap.add_argument("--teacher-episodes", type=int, default=200)
    ap.add_argument("--checkpoint", type=Path, help="reuse this student (skip training and DAgger)")
    ap.add_argument("--config", default="small")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="distill config overrides")
    ap.add_argument("--minutes", type=float, default=45.0, help="CPU training budget before DAgger")
    ap.add_argument("--dagger-rounds", type=int, default=2)
    ap.add_argument("--no-farm-at-dusk", dest="farm_at_dusk", action="store_false",
                    help="the teacher shelters where it is at dusk (as `steve distill teacher --no-farm-at-dusk`)")
    ap.add_argument("--teacher-memory", type=int, default=None,
                    help="steps the teacher's map keeps a cell out of view (steve distill teacher --memory)")
    ap.add_argument("--teacher-near-pocket", type=int, default=None,
                    help="the teacher shelters within this many cells first (steve distill teacher --near-pocket)")
    ap.add_argument("--eval-episodes", type=int, default=20)
    ap.add_argument("--eval-seed", type=int, default=10_000, help="held-out seeds for teacher and student")
    ap.add_argument("--max-steps", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--temperature", type=float, default=PLAY_TEMPERATURE, help="of the student's action sampling")
    ap.add_argument("--min-p", type=float, default=0.0, help="never sample an action less than this times as "
                    "likely as the most likely one")
    ap.add_argument("--greedy", action="store_true", help="the student takes its most likely action")
    ap.add_argument("--avoid-lava", action="store_true",
                    help="the student never moves onto a cell it reads as lava (agent.avoid_lava)")
    ap.add_argument("--keep-subgoal", type=float, default=0.0,
                    help="the student holds its subgoal unless the greedy one is this many times as likely "
                    "(agent.keep_subgoal; 0: off)")
    ap.add_argument("--no-history", dest="history", action="store_false",
                    help="the student plays without reading its last actions (agent.history=false)")
    ap.add_argument("--student-window", type=int, nargs=2, metavar=("START", "END"),
                    help="also play the student only at these steps of each day, the teacher the rest")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if args.student_window and not 0 <= args.student_window[0] < args.student_window[1] <= DAY_LENGTH:
        ap.error(f"--student-window needs 0 <= START < END <= {DAY_LENGTH}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    pool = pool_for(args.workers)
    options = {"avoid_lava": args.avoid_lava, "keep_subgoal": args.keep_subgoal}  # the StudentAgent's
    report: dict[str, Any] = {"config": args.config, "sets": args.sets, "teacher_memory": args.teacher_memory,
                              "teacher_near_pocket": args.teacher_near_pocket,
                              "temperature": args.temperature,
                              "min_p": args.min_p, "greedy": args.greedy, "history": args.history, **options}

    teacher_dir = args.teacher or args.out / "teacher"
    if args.teacher is None:
        t0 = time.perf_counter()
        played = record_teacher(teacher_dir, range(args.teacher_episodes), args.max_steps, "full", pool,
                                args.farm_at_dusk, args.teacher_memory, args.teacher_near_pocket)
        report["teacher_train"] = {"episodes": args.teacher_episodes, "crafter_score": played["crafter_score"],
                                   "seconds": time.perf_counter() - t0}
        log.info("teacher: %d episodes, score %.1f", args.teacher_episodes, played["crafter_score"])
    runs = find_runs([teacher_dir])

    checkpoint = args.checkpoint
    if checkpoint is None:
        cfg = load(args.config, args.sets)
        probe = train(cfg.model_copy(update={"train": cfg.train.model_copy(update={"steps": 30, "log_every": 10,
                      "eval_every": 30, "save_every": 30})}), runs, args.out / "probe", resume=False)
        steps = int(args.minutes * 60 * probe["train_samples_per_s"] / cfg.train.batch_size)
        cfg = load(args.config, [*args.sets, f"train.steps={steps}"])
        log.info("training %d steps (%.0f samples/s measured)", steps, probe["train_samples_per_s"])
        t0 = time.perf_counter()
        metrics = train(cfg, runs, args.out / "student", resume=False)
        report["train"] = {**metrics, "seconds": time.perf_counter() - t0}
        checkpoint = args.out / "student"
        if args.dagger_rounds:
            memory = "null" if args.teacher_memory is None else args.teacher_memory
            near = "null" if args.teacher_near_pocket is None else args.teacher_near_pocket
            cfg = load(args.config, [*args.sets, f"dagger.rounds={args.dagger_rounds}", "dagger.seed=0",
                                     f"dagger.teacher_farm_at_dusk={str(args.farm_at_dusk).lower()}",
                                     f"dagger.teacher_memory={memory}", f"dagger.teacher_near_pocket={near}",
                                     f"dagger.max_steps={args.max_steps}", f"dagger.workers={args.workers}"])
            t0 = time.perf_counter()
            shutil.rmtree(args.out / "dagger", ignore_errors=True)  # rounds of the last run's student, if any
            report["dagger"] = run_dagger(cfg, runs, checkpoint, args.out / "dagger", pool=pool)
            report["dagger_seconds"] = time.perf_counter() - t0
            checkpoint = Path(report["dagger"][-1]["checkpoint"])

    seeds = range(args.eval_seed, args.eval_seed + args.eval_episodes)
    for old in ("eval-teacher", "eval-student", "eval-window"):  # the last run's plays: a recorder never overwrites
        shutil.rmtree(args.out / old, ignore_errors=True)
    teacher = record_teacher(args.out / "eval-teacher", seeds, args.max_steps, "full", pool, args.farm_at_dusk,
                             args.teacher_memory, args.teacher_near_pocket)
    student = play([RolloutJob(seed=s, out=str(args.out / "eval-student" / f"seed-{s}"), checkpoint=str(checkpoint),
                               max_steps=args.max_steps, teacher=False, label="student", sample=not args.greedy,
                               temperature=args.temperature, min_p=args.min_p, history=args.history,
                               **options)
                  for s in seeds], pool)
    if args.student_window:
        window = tuple(args.student_window)
        mixed = play([RolloutJob(seed=s, out=str(args.out / "eval-window" / f"seed-{s}"), beta=0.0,
                                 checkpoint=str(checkpoint), max_steps=args.max_steps, window=window,
                                 farm_at_dusk=args.farm_at_dusk, teacher_memory=args.teacher_memory,
                                 teacher_near_pocket=args.teacher_near_pocket, **options)
                      for s in seeds], pool)
        report["student_in_window"] = {"window": list(window), **_summary(mixed, args.max_steps),
                                       "ratio": mixed["crafter_score"] / teacher["crafter_score"]
                                       if teacher["crafter_score"] else None}
    model, _ = load_student(checkpoint)
    ckpt = read(checkpoint)
    table = load_steps_for(find_runs([args.out / "eval-teacher"]), ckpt.config.data, ckpt.config.model)
    offline = evaluate(model, DistillDataset(table, np.arange(len(table)), ckpt.tokenizer, ckpt.config.model),
                       ckpt.config, "cpu", limit=8192)
    eval_runs = find_runs([args.out / "eval-teacher"])
    report.update({
        "checkpoint": str(checkpoint), "parameters": model.num_parameters(), "eval_seeds": [seeds[0], seeds[-1]],
        "teacher_farm_at_dusk": args.farm_at_dusk,
        "teacher": _summary(teacher, args.max_steps, args.out / "eval-teacher"),
        "student": _summary(student, args.max_steps, args.out / "eval-student"),
        "ratio": student["crafter_score"] / teacher["crafter_score"] if teacher["crafter_score"] else None,
        "student_at_teacher_rate": scores_if_matched(student["success_rates"], teacher["success_rates"]),
        "offline_on_eval_seeds": offline,
        "latency_1_thread": latency(checkpoint, eval_runs, threads=1, **options),
        "latency_all_cores": latency(checkpoint, eval_runs, threads=os.cpu_count() or 2, **options),
        "gpu": gpu_throughput(args.config, runs),
    })
    if "train" not in report:
        report["train_logged"] = logged_training_rate(checkpoint)
    (args.out.parent / "distill.json").write_text(json.dumps(report, indent=2))
    samples = report.get("train", {}).get("train_samples_per_s")
    logged = report.get("train_logged")
    samples_text = (f"{samples:.0f}" if samples is not None
                    else f"{logged['samples_per_s']:.0f} (as its training logged it)" if logged else "not measured")
    lat = report["latency_1_thread"]
    print(f"latency with {os.cpu_count()} threads: p50 {report['latency_all_cores']['p50_ms']:.2f} ms")
    print("| parameters | teacher score | student score | ratio | action agreement | latency p50 / p95 (1 thread) "
          "| training samples/s (CPU) |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {report['parameters']:,} | {teacher['crafter_score']:.1f} | {student['crafter_score']:.1f} | "
          f"{report['ratio']:.2f} | {offline['action_agreement']:.3f} | {lat['p50_ms']:.2f} / {lat['p95_ms']:.2f} ms | "
          f"{samples_text} |")
    print(f"ended on day 0: teacher {report['teacher']['ended_on_day_0']}, "
          f"student {report['student']['ended_on_day_0']} of {len(seeds)}")
    nights = {who: report[who]["nights"] for who in ("teacher", "student")}
    print("walled in on day 0 (steve distill nights): " + ", ".join(
        f"{who} {n['enclosed_on_day_0']:.0%}, dark steps enclosed {n['dark_enclosed'] or 0:.0%}"
        for who, n in nights.items()))
    print(_gap_line(report["student_at_teacher_rate"]))
    if args.student_window:
        w = report["student_in_window"]
        print(f"student at steps {w['window'][0]}-{w['window'][1]} of each day, teacher the rest: score "
              f"{w['crafter_score']:.1f} (ratio {w['ratio']:.2f}), ended on day 0 {w['ended_on_day_0']}")


def _gap_line(matched: dict[str, float], top: int = 3) -> str:
    """Where the student loses most: its score at the teacher's rate of one achievement
    (:func:`envs.compare.scores_if_matched`), the ``top`` largest."""
    return "the student's score at the teacher's rate of one achievement: " + ", ".join(
        f"{n} {score:.1f}" for n, score in list(matched.items())[:top])


def _summary(played: dict[str, Any], max_steps: int, run_dir: Path | None = None) -> dict[str, Any]:
    """Score, success rates, mean length and the episodes that died in the first day; with
    ``run_dir`` (the plays' episodes) how they spent the nights (:mod:`distill.nights`)."""
    out = {**{k: played[k] for k in ("crafter_score", "success_rates", "mean_length")},
           "ended_on_day_0": sum(e["length"] < min(DAY_LENGTH, max_steps) for e in played["episodes"])}
    if run_dir is not None:
        out["nights"] = {k: v for k, v in night_report(find_runs([run_dir])).items() if k != "per_episode"}
    return out


if __name__ == "__main__":
    main()
