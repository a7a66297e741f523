"""Benchmark of the experience store: ingest rate and retrieval latency.

    python bench/bench_memory.py --n 10000 --n 100000 --backend embedded --backend server

For each backend and size: a fresh store, ``n`` synthetic Crafter-like experiences
(:mod:`memory.synthetic`) added in batches, ~200 skills and guardrails, then retrievals
for contexts drawn from the same distribution. Retrieval is timed three ways: knowledge
only with the query text's vector cached (a second pass over the contexts: the steady
state of an agent, whose contexts repeat), knowledge only with the cache emptied before
every query (cold: the query is embedded each time), and warm with 3 similar past
experiences as well. Prints a table; writes JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memory import ExperienceStore, RetrievalContext  # noqa: E402
from memory.models import Skill  # noqa: E402
from memory.server import LocalChromaServer  # noqa: E402
from memory.synthetic import TASKS, Generator, knowledge  # noqa: E402


def _knowledge(store: ExperienceStore, seen: list) -> int:
    """The generic knowledge plus a task-scoped copy per task: about 200 items."""
    skills, rails = knowledge(seen)
    items: list = list(skills) + list(rails)
    for task in TASKS:
        for k in skills + rails:
            trig = k.trigger.model_copy(update={"task": task})
            items.append(type(k)(**{**k.model_dump(), "id": "", "trigger": trig.model_dump()}))
    for item in items:
        (store.upsert_skill if isinstance(item, Skill) else store.upsert_guardrail)(item)
    return len(items)


def _contexts(n: int) -> list[RetrievalContext]:
    gen = Generator(seed=999)
    out = []
    for _ in range(n):
        e = gen.experience()
        causes = [e.diagnosis.failure_cause] if e.diagnosis.failure_cause else []
        out.append(RetrievalContext(task=e.task, subgoal=e.subgoal, facts=e.pre_state.facts,
                                    position=e.pre_state.position, recent_causes=causes))
    return out


def _latency(store: ExperienceStore, contexts: list[RetrievalContext], cold: bool = False,
             **update: object) -> dict[str, float]:
    times = []
    for ctx in contexts:
        if update:
            ctx = ctx.model_copy(update=update)
        if cold:
            store.embedder._cache.clear()
        t = time.perf_counter()
        store.retrieve(ctx)
        times.append(time.perf_counter() - t)
    ms = np.array(times) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2)}


def run_one(backend: str, n: int, embedder: str, batch: int, queries: int, workdir: Path) -> dict:
    cfg: dict = {"embedder": embedder, "max_experiences": None}
    server = None
    if backend == "server":
        server = LocalChromaServer(workdir / f"server-{n}").start()
        cfg["url"] = server.url
    else:
        cfg["path"] = str(workdir / f"embedded-{n}")
    try:
        exps = Generator(seed=0).experiences(n)
        store = ExperienceStore.open(cfg)
        store.embedder.embed(["warm up the model"])  # the one-off model load is not ingest
        hits0, misses0 = store.embedder.hits, store.embedder.misses
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            store.add_experiences(exps[start:start + batch])
        ingest_s = time.perf_counter() - t0
        misses = store.embedder.misses - misses0
        lookups = store.embedder.hits - hits0 + misses
        n_knowledge = _knowledge(store, exps[:5000])
        contexts = _contexts(queries)
        _latency(store, contexts)  # first pass: fills the cache with the contexts' vectors
        result = {
            "backend": backend, "n": n, "embedder": store.embedder.identity, "batch": batch,
            "ingest_s": round(ingest_s, 2), "ingest_per_s": round(n / ingest_s),
            "distinct_texts": misses, "cache_hit_rate": round(1 - misses / max(1, lookups), 3),
            "knowledge": n_knowledge,
            "retrieve": _latency(store, contexts),
            "retrieve_cold": _latency(store, contexts[: max(50, queries // 5)], cold=True),
            "retrieve_with_3_experiences": _latency(store, contexts, k_experiences=3),
        }
        t = time.perf_counter()
        store.stats()
        result["stats_ms"] = round((time.perf_counter() - t) * 1000, 1)
        store.close()
        return result
    finally:
        if server:
            server.stop()


def _table(results: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="memory benchmark")
    for col in ("backend", "n", "ingest/s", "distinct texts", "retrieve p50/p95 ms", "cold p50/p95 ms",
                "+3 exp p50/p95 ms"):
        t.add_column(col, justify="right")
    def pp(r: dict, key: str) -> str:
        return f"{r[key]['p50_ms']:.1f} / {r[key]['p95_ms']:.1f}"

    for r in results:
        t.add_row(r["backend"], f"{r['n']:,}", f"{r['ingest_per_s']:,}", f"{r['distinct_texts']:,}",
                  pp(r, "retrieve"), pp(r, "retrieve_cold"), pp(r, "retrieve_with_3_experiences"))
    Console().print(t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append", help="experiences (repeatable); default 10000")
    parser.add_argument("--backend", choices=("embedded", "server"), action="append",
                        help="repeatable; default embedded")
    parser.add_argument("--embedder", default="minilm", choices=("minilm", "hashing"))
    parser.add_argument("--batch", type=int, default=1000, help="experiences per add_experiences call")
    parser.add_argument("--queries", type=int, default=500, help="retrievals timed per configuration")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so a killed run stops its server
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        for backend in args.backend or ["embedded"]:
            for n in args.n or [10_000]:
                print(f"{backend}, {n:,} experiences ...", flush=True)
                results.append(run_one(backend, n, args.embedder, args.batch, args.queries, Path(tmp)))
                print(json.dumps(results[-1]), flush=True)
    _table(results)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"memory-{time.strftime('%Y%m%d-%H%M%S')}.json"
    meta = {"python": platform.python_version(), "machine": platform.machine(), "cpus": _cpus(),
            "argv": sys.argv[1:]}
    path.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"wrote {path}")


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0)


if __name__ == "__main__":
    main()
