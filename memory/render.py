"""What ``steve memory`` shows: rich tables for people, plain data for ``--json``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from memory import indices
from memory.io import CheckReport
from memory.models import ExperienceTuple, Guardrail, Record, Skill, Summary
from memory.reads import Evidence, Hit, StoreStats


def data(record: Record) -> dict[str, Any]:
    return record.model_dump(mode="json")


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "-"


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def stats_table(s: StoreStats) -> Table:
    t = Table(title=f"memory {s.namespace} ({s.mode}: {s.where})", show_header=False)
    t.add_column(style="bold")
    t.add_column()
    rows = [("embedder", s.embedder), ("experiences", f"{s.experiences:,} live, {s.recorded:,} recorded, "
            f"{s.folded:,} folded (cap {s.max_experiences or 'none'})"), ("skills", f"{s.skills:,}"),
            ("guardrails", f"{s.guardrails:,}"), ("summaries", f"{s.summaries:,}"),
            ("success rate", f"{s.success_rate:.1%}"), ("writers", str(s.writers)),
            ("top failure causes", ", ".join(f"{c} ({n})" for c, n in s.top_causes.items()) or "-")]
    for key, value in rows:
        t.add_row(key, value)
    return t


def skills_table(items: list[Skill]) -> Table:
    t = Table(title=f"{len(items)} skill(s)")
    for col in ("id", "name", "subgoal", "task", "preconditions", "steps", "conf", "support", "evidence"):
        t.add_column(col, justify="right" if col in ("conf", "support", "evidence") else "left")
    for s in items:
        tr = s.trigger
        t.add_row(s.id, s.name, f"{tr.subgoal_kind} {tr.subgoal_target or ''}", tr.task or "*",
                  ", ".join(s.preconditions) or "-", _short(" > ".join(s.steps), 40), f"{s.confidence:.2f}",
                  str(s.support), str(len(s.source_experiences)))
    return t


def guardrails_table(items: list[Guardrail]) -> Table:
    t = Table(title=f"{len(items)} guardrail(s)")
    for col in ("id", "subgoal", "scope", "cause", "risk pattern", "repair", "conf", "support", "evidence"):
        t.add_column(col, justify="right" if col in ("conf", "support", "evidence") else "left")
    for g in items:
        tr = g.trigger
        t.add_row(g.id, f"{tr.subgoal_kind} {tr.subgoal_target or ''}", g.scope + (f" {tr.task}" if tr.task else ""),
                  g.failure_cause, ", ".join(g.risk_pattern) or "always", _short(g.repair, 40),
                  f"{g.confidence:.2f}", str(g.support), str(len(g.source_experiences)))
    return t


def experiences_table(items: list[ExperienceTuple]) -> Table:
    t = Table(title=f"{len(items)} experience(s)")
    for col in ("id", "task", "subgoal", "outcome", "cause", "facts", "actions", "cell", "ended"):
        t.add_column(col)
    for e in items:
        color = "green" if e.success else "red"
        t.add_row(e.id, e.task, e.subgoal.name, f"[{color}]{e.diagnosis.outcome}[/{color}]",
                  e.diagnosis.failure_cause or "-", _short(", ".join(e.pre_state.facts) or "-", 40),
                  str(len(e.actions)), e.spatial_cell or "-", _when(e.ended_at))
    return t


def summaries_table(items: list[Summary]) -> Table:
    t = Table(title=f"{len(items)} summary(ies)")
    for col in ("scope", "key", "attempts", "success", "actions/attempt", "common failures", "last"):
        t.add_column(col, justify="right" if col in ("attempts", "success", "actions/attempt") else "left")
    for s in items:
        top = sorted(s.causes.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        t.add_row(s.scope, s.key, f"{s.count:,}", f"{s.success_rate:.0%}",
                  f"{s.actions / s.count:.1f}" if s.count else "-",
                  ", ".join(f"{c} ({n})" for c, n in top) or "-", _when(s.last_at))
    return t


def hits_table(hits: list[Hit]) -> Table:
    t = Table(title=f"{len(hits)} result(s)")
    for col in ("similarity", "kind", "id", "text"):
        t.add_column(col, justify="right" if col == "similarity" else "left")
    for h in hits:
        t.add_row(f"{h.similarity:.3f}", h.kind, getattr(h.record, "id", "-"), _short(text_of(h.record), 90))
    return t


def text_of(record: Record) -> str:
    return indices.record_text(record)


def evidence_view(ev: Evidence) -> Group:
    record = ev.record
    kind = type(record).__name__
    parts: list[Any] = [Panel(record.model_dump_json(indent=2), title=f"{kind} {getattr(record, 'id', '')}",
                              subtitle=_short(text_of(record), 100))]
    if isinstance(record, (Skill, Guardrail)):
        t = experiences_table(ev.experiences)
        t.title = f"evidence: {len(ev.experiences)} experience(s)" + (
            f", {len(ev.missing)} no longer stored" if ev.missing else "")
        parts.append(t)
    elif isinstance(record, ExperienceTuple):
        t = Table(title=f"cited by {len(ev.cited_by)} skill(s)/guardrail(s)")
        for col in ("id", "kind", "text"):
            t.add_column(col)
        for k in ev.cited_by:
            t.add_row(k.id, type(k).__name__.lower(), _short(text_of(k), 90))
        parts.append(t)
    return Group(*parts)


def evidence_data(ev: Evidence) -> dict[str, Any]:
    return {"record": data(ev.record), "kind": type(ev.record).__name__.lower(),
            "evidence": [data(e) for e in ev.experiences], "missing_evidence": ev.missing,
            "cited_by": [k.id for k in ev.cited_by]}


def check_table(report: CheckReport) -> Table:
    t = Table(title="check: " + ("[green]ok[/green]" if report.ok else f"[red]{len(report.problems)} problem(s)[/red]"),
              show_header=False)
    t.add_column(style="bold")
    t.add_column()
    for key, n in report.counts.items():
        t.add_row(key, f"{n:,}")
    for text in report.repaired:
        t.add_row("[yellow]repaired[/yellow]", text)
    for text in report.problems:
        t.add_row("[red]problem[/red]", text)
    return t
