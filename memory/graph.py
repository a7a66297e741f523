"""What the agent has learned, as a graph: items -> skills -> subgoals -> items, and the
guardrails that watch subgoals.

Nodes are ``item:wood``, ``skill:<id>``, ``guardrail:<id>`` and ``subgoal:craft wood_pickaxe``.
Edges: an item a skill needs (a precondition such as ``wood>=1`` or ``near:table``) points
to the skill; a skill points to the subgoal it achieves; a subgoal points to the item it
yields (its target); a guardrail points to the subgoal it guards, labelled with its
failure cause. Read left to right it is the tech tree as experience taught it.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx

from memory.facts import FactError, parse
from memory.models import Guardrail, Skill

COLORS = {"item": "#f2c14e", "skill": "#5fad56", "guardrail": "#d1495b", "subgoal": "#4d9de0"}


def _subgoal(kind: str, target: str | None) -> str:
    return f"subgoal:{kind} {target}" if target else f"subgoal:{kind}"


def _item(fact: str) -> str | None:
    try:
        name = parse(fact).name
    except FactError:
        return None
    return "item:" + (name.split(":", 1)[1] if name.startswith("near:") else name)


def build(skills: list[Skill], guardrails: list[Guardrail]) -> nx.DiGraph:
    g = nx.DiGraph()

    def node(name: str, kind: str, label: str, **attrs: object) -> None:
        g.add_node(name, kind=kind, label=label, **attrs)

    def subgoal(kind: str, target: str | None) -> str:
        name = _subgoal(kind, target)
        if name not in g:
            node(name, "subgoal", name.split(":", 1)[1])
            if target:
                node("item:" + target, "item", target)
                g.add_edge(name, "item:" + target, relation="yields")
        return name

    for s in skills:
        name = f"skill:{s.id}"
        node(name, "skill", f"{s.name}\n{s.confidence:.2f} x{s.support}", confidence=s.confidence,
             support=s.support)
        g.add_edge(name, subgoal(s.trigger.subgoal_kind, s.trigger.subgoal_target), relation="achieves")
        for fact in s.preconditions:
            item = _item(fact)
            if item:
                if item not in g:
                    node(item, "item", item.split(":", 1)[1])
                g.add_edge(item, name, relation=f"needs {fact}")
    for r in guardrails:
        name = f"guardrail:{r.id}"
        node(name, "guardrail", f"{r.failure_cause}\n{' & '.join(r.risk_pattern) or 'always'}",
             confidence=r.confidence, support=r.support)
        g.add_edge(name, subgoal(r.trigger.subgoal_kind, r.trigger.subgoal_target), relation=r.failure_cause)
    return g


def write_dot(g: nx.DiGraph, path: Path) -> None:
    """Graphviz DOT, written directly (no pydot needed)."""
    def q(text: object) -> str:
        return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    lines = ["digraph memory {", "  rankdir=LR;", "  node [style=filled, fontname=Helvetica];"]
    for name, data in sorted(g.nodes(data=True)):
        shape = "box" if data["kind"] in ("skill", "guardrail") else "ellipse"
        lines.append(f"  {q(name)} [label={q(data['label'])}, shape={shape}, fillcolor={q(COLORS[data['kind']])}];")
    for a, b, data in sorted(g.edges(data=True)):
        lines.append(f"  {q(a)} -> {q(b)} [label={q(data.get('relation', ''))}];")
    lines.append("}")
    path.write_text("\n".join(lines) + "\n")


def _rounds(g: nx.DiGraph) -> tuple[dict[str, int], dict[str, int]]:
    """When each subgoal becomes doable and each item obtainable, starting from raw items.

    A subgoal is doable in round r once every item its skills need was obtainable before
    r; what it yields is obtainable from round r. When nothing is doable (a cycle, such
    as ``collect stone`` needing ``near:stone``), the places the most nearly doable
    subgoals need to be near are taken as features of the world, there from the start.
    """
    subs = [n for n, d in g.nodes(data=True) if d["kind"] == "subgoal"]
    needs: dict[str, dict[str, bool]] = {s: {} for s in subs}  # item -> only needed as a place
    for s in subs:
        for sk in g.predecessors(s):
            if g.nodes[sk]["kind"] == "skill":
                for i in g.predecessors(sk):
                    place = g.edges[i, sk].get("relation", "").startswith("needs near:")
                    needs[s][i] = needs[s].get(i, True) and place
    avail = {n: 0 for n, d in g.nodes(data=True) if d["kind"] == "item" and not any(
        g.nodes[p]["kind"] == "subgoal" for p in g.predecessors(n))}
    done: dict[str, int] = {}
    r = 1
    while len(done) < len(subs):
        ready = [s for s in subs if s not in done and all(avail.get(i, r) < r for i in needs[s])]
        if not ready:
            blocked = {s: [i for i in needs[s] if avail.get(i, r) >= r] for s in subs if s not in done}
            places = [i for s, miss in blocked.items() if all(needs[s][i] for i in miss) for i in miss]
            for i in places or min(blocked.values(), key=len):
                avail[i] = 0
            continue
        for s in ready:
            done[s] = r
            for item in g.successors(s):
                avail.setdefault(item, r)
        r += 1
    return done, avail


def _columns(g: nx.DiGraph) -> dict[str, int]:
    """Left to right: raw items, then per round its skills and guardrails, its subgoals,
    and the items they yield."""
    done, avail = _rounds(g)
    col: dict[str, int] = {}
    for n, d in g.nodes(data=True):
        if d["kind"] == "subgoal":
            col[n] = 3 * done[n]
        elif d["kind"] in ("skill", "guardrail"):
            col[n] = 3 * min((done[s] for s in g.successors(n)), default=1) - 1
        else:
            col[n] = 3 * avail[n] + 1 if avail.get(n) else 0
    return col


def draw_png(g: nx.DiGraph, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layer = _columns(g)
    columns: dict[int, list[str]] = {}
    for n in sorted(g.nodes, key=lambda n: (g.nodes[n]["kind"] == "guardrail", g.nodes[n]["label"])):
        columns.setdefault(layer[n], []).append(n)
    pos = {n: (x, -y + len(col) / 2) for x, col in columns.items() for y, n in enumerate(col)}
    tallest = max((len(c) for c in columns.values()), default=1)
    width = max(layer.values(), default=0) + 1
    fig, ax = plt.subplots(figsize=(min(60, max(8, 1.6 * width)), min(40, max(5, 0.6 * tallest))))
    colors = [COLORS[g.nodes[n]["kind"]] for n in g.nodes]
    nx.draw_networkx_edges(g, pos, ax=ax, arrows=True, arrowsize=10, edge_color="#999999",
                           connectionstyle="arc3,rad=0.05", node_size=900)
    nx.draw_networkx_nodes(g, pos, ax=ax, node_color=colors, node_size=900, alpha=0.9)
    nx.draw_networkx_labels(g, pos, labels={n: g.nodes[n]["label"] for n in g.nodes}, font_size=7, ax=ax)
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=k) for k, c in COLORS.items()]
    ax.legend(handles=handles, loc="upper left", fontsize=8, frameon=False)
    ax.set_title(f"memory: {sum(1 for _, d in g.nodes(data=True) if d['kind'] == 'skill')} skills, "
                 f"{sum(1 for _, d in g.nodes(data=True) if d['kind'] == 'guardrail')} guardrails")
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write(g: nx.DiGraph, path: Path) -> None:
    """``.dot`` or ``.png``, by the file's suffix."""
    if path.suffix == ".dot":
        write_dot(g, path)
    elif path.suffix == ".png":
        draw_png(g, path)
    else:
        raise ValueError(f"{path}: expected a .png or .dot file")
