"""The wiring of the self-evolving loop.

    perceive -> retrieve -> plan -> act -> diagnose -> anchor -> distill -> route
        ^                                                                     |
        +---------------- (next subgoal) <------------------------------------+
                                  replan (local repair) <-- trigger ----------+
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import START, StateGraph

from agents.evolving import nodes
from agents.evolving.context import AgentContext
from agents.evolving.state import AgentState

RECURSION_LIMIT = 1_000_000  # 8 nodes a subgoal, thousands of subgoals an episode


def build_graph(checkpointer: Any = None) -> Any:
    """The compiled graph; the checkpointer is passed here so a test can swap it."""
    g = StateGraph(AgentState, context_schema=AgentContext)
    g.add_node("perceive", nodes.perceive)
    g.add_node("retrieve", nodes.retrieve)
    g.add_node("plan", nodes.plan)
    g.add_node("act", nodes.act)
    g.add_node("diagnose", nodes.diagnose_node)
    g.add_node("anchor", nodes.anchor)
    g.add_node("distill", nodes.distill)
    g.add_node("route", nodes.route)
    g.add_node("replan", nodes.replan)
    g.add_edge(START, "perceive")
    for a, b in (("perceive", "retrieve"), ("retrieve", "plan"), ("plan", "act"), ("act", "diagnose"),
                 ("diagnose", "anchor"), ("anchor", "distill"), ("distill", "route"), ("replan", "retrieve")):
        g.add_edge(a, b)
    g.add_conditional_edges("route", nodes.next_after_route)
    return g.compile(checkpointer=checkpointer)
