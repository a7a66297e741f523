"""``steve memory ...``: inspect the experience store (see memory/)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Inspect the experience store: skills, guardrails, experiences, summaries.",
                  no_args_is_help=True)
