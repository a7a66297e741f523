"""The self-evolving agent (Steve-Evolving): a LangGraph loop over subgoals with an
experience store it retrieves from and writes to. See ``graph.py`` for the wiring."""
