"""Export, import and integrity check.

File format: JSON lines. The first is a header (``{"type": "header", "format":
"steve-memory", ...}``), then one line per record, ``{"type": KIND, "record": {...}}``,
kinds in the order experience, skill, guardrail, summary, ids sorted within each kind,
keys sorted: exporting a store, importing the file into an empty store and exporting
again gives the same bytes. Vectors are not exported; the importing store embeds.

Import checks every line before writing any: malformed JSON, unknown kinds, invalid
records, duplicate ids and evidence that points nowhere are reported with their line
numbers, and nothing is imported. Into an empty store the import is an exact copy
(summaries included); into a non-empty one it merges: new experiences are added and
counted, knowledge goes through the usual merging, summary lines are not used.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from memory import codec, indices, summaries
from memory.errors import CorruptStoreError, ImportFileError, StoreError
from memory.models import KIND_MODELS, SCHEMA_VERSION, ExperienceTuple, Record, RecordError, validate

if TYPE_CHECKING:
    from memory.store import ExperienceStore

log = logging.getLogger(__name__)

ORDER = ("experience", "skill", "guardrail", "summary")
PAGE = 5000


def _line(kind: str, record: Record) -> str:
    return json.dumps({"type": kind, "record": record.model_dump(mode="json")}, sort_keys=True,
                      separators=(",", ":"))


def _all_rows(collection: Any, include: list[str]) -> dict[str, list]:
    out: dict[str, list] = {"ids": [], **{k: [] for k in include}}
    offset = 0
    while True:
        got = collection.get(limit=PAGE, offset=offset, include=include)
        out["ids"] += got["ids"]
        for k in include:
            out[k] += list(got[k]) if got[k] is not None else []
        if len(got["ids"]) < PAGE:
            return out
        offset += PAGE


def _lines(store: ExperienceStore, kind: str) -> list[str]:
    """Export lines of one kind, sorted by id. Rows hold their record as the JSON the model
    wrote, so it is re-keyed, not re-validated (``check`` validates)."""
    if kind == "summary":
        return [_line(kind, s) for s in store.list_summaries()]
    got = _all_rows(store._cols[kind + "s"], ["metadatas"])
    rows = sorted(zip(got["ids"], got["metadatas"]))
    return [json.dumps({"type": kind, "record": json.loads(m["record"])}, sort_keys=True, separators=(",", ":"))
            for _, m in rows]


def export_jsonl(store: ExperienceStore, path: Path) -> dict[str, int]:
    store.flush()
    records = {kind: _lines(store, kind) for kind in ORDER}
    counts = {kind: len(rs) for kind, rs in records.items()}
    ident = store.backend.identity
    header = {"type": "header", "format": "steve-memory", "schema_version": SCHEMA_VERSION,
              "embedder": ident["embedder"], "spatial_resolutions": ident["spatial_resolutions"], "counts": counts}
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(json.dumps(header, sort_keys=True, separators=(",", ":")) + "\n")
        for kind in ORDER:
            for line in records[kind]:
                out.write(line + "\n")
    tmp.replace(path)
    return counts


@dataclass
class ImportReport:
    mode: str  # exact (empty store) | merge
    added: dict[str, int] = field(default_factory=dict)
    merged: int = 0
    rejected: list[str] = field(default_factory=list)


def _parse(path: Path, store: ExperienceStore) -> dict[str, list[Record]]:
    problems: list[str] = []
    records: dict[str, list[Record]] = {kind: [] for kind in ORDER}
    first_seen: dict[tuple[str, str], int] = {}
    lines_of: dict[str, int] = {}
    try:
        handle = open(path, encoding="utf-8")
    except OSError as err:
        raise StoreError(f"cannot read {path}: {err.strerror}") from None
    with handle:
        for n, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
                kind = row["type"] if isinstance(row, dict) else None
            except (json.JSONDecodeError, KeyError) as err:
                problems.append(f"line {n}: not a record ({err.__class__.__name__}: {str(err)[:80]})")
                continue
            if kind == "header":
                if row.get("format") != "steve-memory":
                    problems.append(f"line {n}: not a steve-memory export (format {row.get('format')!r})")
                elif row.get("schema_version", 0) > SCHEMA_VERSION:
                    problems.append(f"line {n}: schema v{row['schema_version']} is newer than this code")
                continue
            if kind not in ORDER:
                problems.append(f"line {n}: unknown type {kind!r} (expected {', '.join(ORDER)})")
                continue
            try:
                record = validate(kind, row.get("record"))
            except RecordError as err:
                problems.append(f"line {n}: {err}")
                continue
            rid = record.id  # type: ignore[attr-defined]
            if (kind, rid) in first_seen:
                problems.append(f"line {n}: duplicate {kind} id {rid} (first on line {first_seen[kind, rid]})")
                continue
            first_seen[kind, rid] = lines_of[rid] = n
            records[kind].append(record)
    if store.cfg.require_evidence:
        have = {r.id for r in records["experience"]}  # type: ignore[attr-defined]
        for kind in ("skill", "guardrail"):
            for item in records[kind]:
                lost = [i for i in item.source_experiences if i not in have]  # type: ignore[attr-defined]
                if lost:
                    lost = [i for i in lost if not store._cols["experiences"].get(ids=[i], include=[])["ids"]]
                if lost:
                    problems.append(f"line {lines_of[item.id]}: {kind} {item.id} cites unknown "  # type: ignore
                                    f"experience(s) {', '.join(lost[:3])}")
    if problems:
        raise ImportFileError(str(path), problems)
    return records


def _is_empty(store: ExperienceStore) -> bool:
    return all(store._cols[p].count() == 0 for p in ("experiences", "skills", "guardrails", "summaries"))


def import_jsonl(store: ExperienceStore, path: Path) -> ImportReport:
    records = _parse(path, store)
    exps: list[ExperienceTuple] = records["experience"]  # type: ignore[assignment]
    if not _is_empty(store):
        report = ImportReport("merge", {"experience": store.add_experiences(exps)})
        for kind in ("skill", "guardrail"):
            report.added[kind] = 0
            for result in store.upsert_knowledge([(kind, item) for item in records[kind]]):
                if result.status == "added":
                    report.added[kind] += 1
                elif result.status == "merged":
                    report.merged += 1
                else:
                    report.rejected.append(f"{result.id}: {result.reason}")
        if records["summary"]:
            log.warning("import into a non-empty store: summary lines skipped, summaries counted from experiences")
        return report
    # An exact copy: experiences are written uncounted, then the file's summaries become
    # this writer's shards, with the watermark past the imported experiences (one call).
    for start in range(0, len(exps), store.cfg.write_batch_size):
        store._write_experiences(exps[start:start + store.cfg.write_batch_size], count=False)
    for kind in ("skill", "guardrail"):
        store._write_knowledge([store._bounded(item) for item in records[kind]])
    store.book.shards = {s.id: s for s in records["summary"]}  # type: ignore[misc]
    store.book.dirty = set(store.book.shards)
    store.book.flush()
    return ImportReport("exact", {k: len(v) for k, v in records.items()})


@dataclass
class CheckReport:
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def problem(self, text: str) -> None:
        self.ok = False
        self.problems.append(text)


def check(store: ExperienceStore, repair: bool = False) -> CheckReport:
    """Every record readable, vectors sound, evidence present, every experience counted.

    With ``repair``, experiences left uncounted by interrupted writers are counted (in
    server mode, run it while no other process writes).
    """
    store.flush()
    report = CheckReport()
    rows: dict[str, dict[str, list]] = {}
    for part in ("experiences", "situations", "skills", "guardrails", "summaries"):
        col = store._cols[part]
        rows[part] = got = _all_rows(col, ["metadatas"])
        report.counts[part] = len(got["ids"])
        if col.count() != len(got["ids"]):
            report.problem(f"{part}: Chroma counts {col.count()} rows but returns {len(got['ids'])}")
        if part != "experiences":  # experiences carry a 1-d placeholder (see memory.backend)
            _check_vectors(store, part, report)
    _check_situations(store, rows, report, repair)
    ids: set[str] = set(rows["experiences"]["ids"])
    for kind in ("experience", "skill", "guardrail"):
        got = rows[kind + "s"]
        for rid, meta in zip(got["ids"], got["metadatas"]):
            try:
                record = codec.decode(KIND_MODELS[kind], meta, rid)
            except CorruptStoreError as err:
                report.problem(str(err))
                continue
            if record.id != rid:
                report.problem(f"{kind} row {rid} holds record {record.id}")
            lost = [i for i in getattr(record, "source_experiences", []) if i not in ids]
            if lost:
                report.problem(f"{kind} {rid}: cites {len(lost)} missing experience(s), e.g. {lost[0]}")
    merged, marks = summaries.read_all(store._cols["summaries"])
    report.counts["recorded"] = sum(s.count for s in merged if s.scope == "task")
    late = summaries.unaccounted(rows["experiences"]["metadatas"], marks)
    for writer, n in sorted(late.items()):
        if not repair:
            report.problem(f"{n} experience(s) of writer {writer} not counted in summaries (interrupted "
                           "write): run check --repair")
            continue
        book = summaries.SummaryBook(store._cols["summaries"], writer, store._vectors, store.resolutions)
        book.load()
        report.repaired.append(f"counted {book.recover(store._cols['experiences'])} experience(s) of {writer}")
    if report.counts["recorded"] + sum(late.values()) < report.counts["experiences"]:
        report.problem(f"summaries count {report.counts['recorded']} experiences, fewer than the "
                       f"{report.counts['experiences']} stored")
    return report


def _check_situations(store: ExperienceStore, rows: dict, report: CheckReport, repair: bool) -> None:
    have = set(rows["situations"]["ids"])
    lost = {}
    for rid, meta in zip(rows["experiences"]["ids"], rows["experiences"]["metadatas"]):
        if meta.get("sit") not in have:
            lost.setdefault(meta.get("sit"), (rid, meta))
    if not lost:
        return
    if not repair:
        report.problem(f"{len(lost)} situation vector(s) missing, e.g. for experience {next(iter(lost.values()))[0]}"
                       ": run check --repair")
        return
    exps = [codec.decode(ExperienceTuple, m, rid) for rid, m in lost.values()]
    texts = [indices.experience_text(e) for e in exps]
    metas = [{"sit": codec.situation_id(t), "task": e.task, "kind": e.subgoal.kind} for t, e in zip(texts, exps)]
    store._write_situations([e.id for e in exps], texts, metas)
    report.repaired.append(f"re-embedded {len(lost)} missing situation(s)")


def _check_vectors(store: ExperienceStore, part: str, report: CheckReport, sample: int = 200) -> None:
    got = store._cols[part].get(limit=sample, include=["embeddings"])
    emb = got["embeddings"]
    if emb is None or not len(got["ids"]):
        return
    arr = np.asarray(emb, dtype=np.float32)
    if arr.shape[1] != store.embedder.dim:
        report.problem(f"{part}: vectors have {arr.shape[1]} dimensions, the embedder {store.embedder.dim}")
    elif not np.isfinite(arr).all() or np.abs(np.linalg.norm(arr, axis=1) - 1).max() > 1e-3:
        report.problem(f"{part}: some vectors are not finite unit vectors")
    probe = store._cols[part].query(query_embeddings=arr[:1], n_results=1, include=["distances"])
    if not probe["ids"][0] or probe["distances"][0][0] > 1e-3:
        report.problem(f"{part}: the vector index does not find a stored vector")
