"""``steve memory ...``: inspect the experience store (see memory/).

Only typer is imported here; the store, Chroma and the embedders load inside commands so
that ``steve run`` starts fast. Errors are one line on stderr: exit 2 for a store that
cannot be used (missing, foreign, corrupt, locked, unreachable), 1 for a failed check or
an unknown id.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer

app = typer.Typer(help="Inspect the experience store: skills, guardrails, experiences, summaries.",
                  no_args_is_help=True, pretty_exceptions_enable=False)

Json = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]
Limit = Annotated[int, typer.Option("--limit", "-n", min=1, help="rows at most")]


class Kind(str, Enum):
    skills = "skills"
    guardrails = "guardrails"
    experiences = "experiences"
    summaries = "summaries"


@dataclass
class _Options:
    memory: Optional[Path] = None
    url: Optional[str] = None
    embedder: Optional[str] = None
    namespace: Optional[str] = None
    config: list[Path] = field(default_factory=list)
    sets: list[str] = field(default_factory=list)


def _fail(message: str, code: int = 2) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _print(renderable: Any) -> None:
    from rich.console import Console

    Console().print(renderable)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


@contextmanager
def _handled() -> Iterator[None]:
    """Known failures become one line on stderr, never a traceback."""
    from memory.embeddings import EmbedderError
    from memory.errors import StoreError
    from memory.models import RecordError
    from steve.config import ConfigError

    try:
        yield
    except (StoreError, RecordError, EmbedderError, ConfigError, ValueError, OSError) as err:
        _fail(str(err) or type(err).__name__)


@contextmanager
def _store(ctx: typer.Context, create: bool = False, embedder: str | None = None) -> Iterator[Any]:
    """The store the options name; ``embedder`` is what a store created here records
    (unless --embedder says otherwise)."""
    from memory.store import ExperienceStore
    from steve.config import load

    opts: _Options = ctx.obj
    if opts.memory and opts.url:
        _fail("give --memory DIR or --url URL, not both")
    flags: dict[str, Any] = {"embedder": opts.embedder or "auto"}
    for key, value in (("path", opts.memory), ("url", opts.url), ("namespace", opts.namespace)):
        if value is not None:
            flags[key] = str(value)
    with _handled():
        cfg = load(opts.config, opts.sets, {"memory": flags}).memory
        if not cfg.path and not cfg.url:
            _fail("no memory store given: --memory DIR or --url URL (or memory.path / memory.url in a config)")
        store = ExperienceStore.open(cfg, create=create, create_with=embedder or "minilm")
        try:
            yield store
        finally:
            store.close()


@app.callback()
def _main(
    ctx: typer.Context,
    memory: Annotated[Optional[Path], typer.Option("--memory", help="embedded store directory")] = None,
    url: Annotated[Optional[str], typer.Option("--url", help="a Chroma server, http://127.0.0.1:PORT")] = None,
    embedder: Annotated[Optional[str], typer.Option(
        "--embedder", help="minilm | hashing; default: what the store was built with")] = None,
    namespace: Annotated[Optional[str], typer.Option("--namespace", help="store name on a server")] = None,
    config: Annotated[Optional[list[Path]], typer.Option("--config", help="YAML file(s) layered over configs/")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="override, e.g. --set memory.url=...")] = None,
) -> None:
    ctx.obj = _Options(memory, url, embedder, namespace, config or [], set_ or [])


@app.command()
def stats(ctx: typer.Context, as_json: Json = False) -> None:
    """Counts per tier, folded tuples, success rate, common failure causes."""
    from memory import render

    with _store(ctx) as store:
        s = store.stats()
    _print_json(s.to_dict()) if as_json else _print(render.stats_table(s))


@app.command("list")
def list_(
    ctx: typer.Context,
    kind: Annotated[Kind, typer.Argument(help="skills | guardrails | experiences | summaries")],
    task: Annotated[Optional[str], typer.Option(help="records of this task (knowledge: or of any task)")] = None,
    tag: Annotated[Optional[str], typer.Option(help="records with this tag, e.g. target:wood")] = None,
    cause: Annotated[Optional[str], typer.Option(help="guardrails/experiences with this failure cause")] = None,
    min_confidence: Annotated[Optional[float], typer.Option(min=0, max=1, help="knowledge at least this sure")] = None,
    limit: Limit = 20,
    as_json: Json = False,
) -> None:
    """Records of one tier, filtered: knowledge best first, experiences oldest first."""
    from memory import render

    if cause and kind in (Kind.skills, Kind.summaries):
        _fail(f"--cause filters guardrails and experiences, not {kind.value}")
    if min_confidence is not None and kind in (Kind.experiences, Kind.summaries):
        _fail(f"--min-confidence filters skills and guardrails, not {kind.value}")
    with _store(ctx) as store:
        if kind is Kind.skills:
            items: list = store.list_skills(task=task, tag=tag, min_confidence=min_confidence, limit=limit)
        elif kind is Kind.guardrails:
            items = store.list_guardrails(task=task, tag=tag, cause=cause, min_confidence=min_confidence,
                                          limit=limit)
        elif kind is Kind.experiences:
            items = store.list_experiences(task=task, tag=tag, cause=cause, limit=limit)
        else:
            items = [s for s in store.list_summaries() if not task or (s.scope, s.key) == ("task", task)]
            items = [s for s in items if not tag or tag in (f"{s.scope}:{s.key}", s.key)][:limit]
    if as_json:
        _print_json([render.data(r) | ({"text": r.text} if kind is Kind.summaries else {}) for r in items])
        return
    table = {Kind.skills: render.skills_table, Kind.guardrails: render.guardrails_table,
             Kind.experiences: render.experiences_table, Kind.summaries: render.summaries_table}[kind]
    _print(table(items))


@app.command()
def search(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="what to look for, in words")],
    limit: Limit = 10,
    as_json: Json = False,
) -> None:
    """Skills, guardrails and experiences closest in meaning to TEXT."""
    from memory import render

    with _store(ctx) as store:
        hits = store.search(text, limit=limit)
    if as_json:
        _print_json([{"kind": h.kind, "similarity": round(h.similarity, 4), "record": render.data(h.record)}
                     for h in hits])
    else:
        _print(render.hits_table(hits))


@app.command()
def show(ctx: typer.Context, record_id: Annotated[str, typer.Argument(metavar="ID")], as_json: Json = False) -> None:
    """One record with its evidence chain (or, for an experience, what cites it)."""
    from memory import render

    with _store(ctx) as store:
        ev = store.evidence(record_id)
    if ev is None:
        _fail(f"no record with id {record_id!r}", 1)
    _print_json(render.evidence_data(ev)) if as_json else _print(render.evidence_view(ev))


@app.command("export")
def export(ctx: typer.Context, file: Annotated[Path, typer.Argument(help="FILE.jsonl to write")]) -> None:
    """Every record to a JSONL file (importing it into an empty store is an exact copy)."""
    with _store(ctx) as store:
        counts = store.export_jsonl(file)
    typer.echo(f"wrote {file}: " + ", ".join(f"{n} {k}(s)" for k, n in counts.items()))


@app.command("import")
def import_(ctx: typer.Context, file: Annotated[Path, typer.Argument(help="FILE.jsonl to read")]) -> None:
    """Records from a JSONL export; every line is checked before anything is written."""
    with _handled():
        embedder = _embedder_of(file)
    with _store(ctx, create=True, embedder=embedder) as store:
        report = store.import_jsonl(file)
    typer.echo(f"imported {file} ({report.mode}): " + ", ".join(f"{n} {k}(s)" for k, n in report.added.items())
               + (f", {report.merged} merged" if report.merged else ""))
    for line in report.rejected:
        typer.echo(f"rejected {line}", err=True)


def _embedder_of(file: Path) -> str | None:
    """The embedder named in an export's header: what a new store built from it should use."""
    from memory.embeddings import name_of

    with open(file, encoding="utf-8") as handle:
        try:
            head = json.loads(handle.readline() or "{}")
        except json.JSONDecodeError:
            return None
    return name_of(head["embedder"]) if isinstance(head, dict) and head.get("embedder") else None


@app.command()
def check(
    ctx: typer.Context,
    repair: Annotated[bool, typer.Option(
        "--repair", help="count experiences a killed writer left uncounted; re-embed lost situations")] = False,
    as_json: Json = False,
) -> None:
    """Integrity: records readable, vectors sound, evidence present, summaries complete."""
    from memory import render

    with _store(ctx) as store:
        report = store.check(repair=repair)
        if store.recovered:
            report.repaired.insert(0, f"counted {store.recovered} experience(s) an interrupted write left")
    if as_json:
        _print_json({"ok": report.ok, "problems": report.problems, "repaired": report.repaired,
                     "counts": report.counts})
    else:
        _print(render.check_table(report))
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def graph(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="FILE.png (a picture) or FILE.dot (Graphviz)")],
    task: Annotated[Optional[str], typer.Option(help="knowledge of this task (or of any task)")] = None,
    min_confidence: Annotated[Optional[float], typer.Option(min=0, max=1)] = None,
) -> None:
    """Skills, guardrails, and the subgoals and items they connect, as a graph."""
    from memory import graph as graphs

    if out.suffix not in (".png", ".dot"):
        _fail(f"--out {out}: expected a .png or .dot file")
    with _store(ctx) as store:
        g = graphs.build(store.list_skills(task=task, min_confidence=min_confidence),
                         store.list_guardrails(task=task, min_confidence=min_confidence))
        graphs.write(g, out)
    typer.echo(f"wrote {out}: {g.number_of_nodes()} nodes, {g.number_of_edges()} edges")


@app.command()
def rules(
    ctx: typer.Context,
    prior: Annotated[str, typer.Option(help="what the agent knew beforehand: full | partial | none")] = "none",
    task: Annotated[str, typer.Option(help="knowledge of this task (or of any task)")] = "open",
    as_json: Json = False,
) -> None:
    """The game's rules as the agent believes them: the prior taught by every skill and
    missing-requirement guardrail in the store, next to Crafter's own."""
    from agents.planners import experience
    from agents.techtree import PRIORS, TechTree

    if prior not in PRIORS:
        _fail(f"--prior must be one of {', '.join(PRIORS)}, got {prior!r}")
    learned = TechTree.load(prior)
    with _store(ctx) as store:
        experience.apply(learned, *experience.requirement_records(store, task))
    rows = experience.compare_rules(learned, TechTree.load("full"))
    if as_json:
        _print_json([{"rule": r, "believed": b, "game": g, "right": b == g} for r, b, g in rows])
        return
    from rich.table import Table

    def text(req: dict[str, int]) -> str:  # items by name, then stations
        order = sorted(req, key=lambda k: (k in ("table", "furnace"), k))
        return ", ".join(f"near {k}" if k in ("table", "furnace") else f"{req[k]} {k}" for k in order) or "-"

    table = Table(title=f"rules believed from the {prior} prior and this memory "
                        f"({sum(b == g for _, b, g in rows)} of {len(rows)} right)")
    for col in ("rule", "believed", "the game's", ""):
        table.add_column(col)
    for rule, believed, game in rows:
        table.add_row(rule, text(believed), text(game), "ok" if believed == game else "[red]differs[/red]")
    _print(table)
