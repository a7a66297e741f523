"""A record of every LLM call: who asked, which model, tokens, latency, outcome.

Kept in memory and, once the agent attaches a file (``RUN_DIR/llm_calls.jsonl``), also
appended there one JSON line per call. Records never hold an API key or request
headers: the client only hands this module facts it chose to record.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Outcome = Literal["ok", "invalid", "refusal", "error", "fallback"]


class CallRecord(BaseModel):
    """One chat-completions call, or one fallback decided after failed calls.

    ``outcome``: ``ok`` (a usable reply), ``invalid`` (a reply that did not validate),
    ``refusal`` (a refusal, or a reply with no JSON), ``error`` (no reply: timeout,
    connection, HTTP error), ``fallback`` (the step was handed to the fallback).
    """

    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    time: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))
    role: str
    model: str
    base_url: str = ""
    purpose: str = ""
    outcome: Outcome
    attempts: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float | None = Field(None, description="the answered request alone")
    wall_s: float | None = Field(None, description="including retries and backoff")
    error: str | None = None
    messages: list[dict[str, Any]] | None = None  # only with llm.log_text
    reply: str | None = None  # only with llm.log_text


class CallLog:
    """Call records in order; thread-safe; optionally mirrored to a JSONL file."""

    def __init__(self, path: str | Path | None = None) -> None:
        self._records: list[CallRecord] = []
        self._lock = threading.Lock()
        self.path: Path | None = None
        if path is not None:
            self.attach(path)

    def attach(self, path: str | Path) -> None:
        """Append to ``path`` from now on, starting with the records already kept."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self.path = path
            with path.open("a", encoding="utf-8") as f:
                for record in self._records:
                    f.write(record.model_dump_json() + "\n")

    def add(self, record: CallRecord) -> None:
        with self._lock:
            self._records.append(record)
            if self.path is not None:
                # One open per record: a killed run keeps every call made before it.
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(record.model_dump_json() + "\n")

    @property
    def records(self) -> list[CallRecord]:
        with self._lock:
            return list(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def totals(self) -> dict[str, Any]:
        """Calls, tokens and latency summed, and counts per outcome: for run summaries."""
        records = self.records
        outcomes: dict[str, int] = {}
        for r in records:
            outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
        return {
            "calls": sum(1 for r in records if r.outcome != "fallback"),
            "prompt_tokens": sum(r.prompt_tokens or 0 for r in records),
            "completion_tokens": sum(r.completion_tokens or 0 for r in records),
            "latency_s": round(sum(r.latency_s or 0.0 for r in records), 3),
            "outcomes": outcomes,
        }
