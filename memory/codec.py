"""Records to Chroma rows and back.

A row is ``(id, document, metadata)``: the document is the embedded text, for people
(experiences store none: Chroma's full-text index on documents costs ~40% of ingest, and
their text is their situation's document). The metadata holds the filterable indices
(task, subgoal kind and target, outcome, cause, condition signature, spatial cells,
tags, confidence) and ``record``, the whole record as JSON, which is what is read back.
Chroma rejects ``None`` and empty lists as metadata values, so they are left out.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import ValidationError

from memory import indices
from memory.errors import CorruptStoreError
from memory.models import ExperienceTuple, Guardrail, Knowledge, Record, Skill, Summary

ANY = "*"  # the task of knowledge that applies to any task


def _clean(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if v is not None and v != [] and v != ""}


def situation_id(text: str) -> str:
    """The id of an experience text's vector in the situations collection."""
    return "si-" + hashlib.sha1(text.encode()).hexdigest()[:20]


def experience_row(exp: ExperienceTuple, writer: str, wseq: int) -> tuple[str, dict]:
    """Experiences are the bulk of the store, so they carry few indexed values: every
    metadata value is a row (and an array one row per element) in Chroma's indexed SQLite
    tables, and those rows bound the ingest rate (~4,900 rows/s with the record alone,
    ~1,900/s with tags and cells as arrays, ~2,700/s as here). Tags and coarser cells stay
    in the record; filters on them scan."""
    meta = {
        "record": exp.model_dump_json(), "task": exp.task, "kind": exp.subgoal.kind,
        "outcome": exp.diagnosis.outcome, "cause": exp.diagnosis.failure_cause,
        "sig": exp.condition_signature, "cell": exp.spatial_cell, "writer": writer, "wseq": wseq,
    }
    text = indices.experience_text(exp)
    meta["sit"] = situation_id(text)
    return text, _clean(meta)


def knowledge_row(item: Knowledge) -> tuple[str, dict]:
    t = item.trigger
    meta = {
        "record": item.model_dump_json(), "kind": t.subgoal_kind, "target": t.subgoal_target,
        "task": t.task or ANY, "sig": item.condition_signature, "cells": t.cells, "tags": item.tags,
        "confidence": item.confidence, "support": item.support, "updated_at": item.updated_at,
        "sources": item.source_experiences,
    }
    if isinstance(item, Guardrail):
        meta.update(cause=item.failure_cause, scope=item.scope)
        return indices.guardrail_text(item), _clean(meta)
    assert isinstance(item, Skill)
    meta["name"] = item.name
    return indices.skill_text(item), _clean(meta)


def summary_row(shard: Summary, writer: str) -> tuple[str, dict]:
    meta = {"record": shard.model_dump_json(), "type": "summary", "scope": shard.scope, "key": shard.key,
            "writer": writer}
    return indices.summary_text(shard), meta


def shard_id(summary: Summary, writer: str) -> str:
    return f"{summary.id}@{writer}"


def decode(model: type[Record], meta: dict[str, Any] | None, rid: str) -> Any:
    """The record stored in a row; :class:`CorruptStoreError` when it does not parse."""
    try:
        return model.model_validate_json(meta["record"])  # type: ignore[index]
    except (ValidationError, KeyError, TypeError) as err:
        raise CorruptStoreError(f"record {rid}: unreadable ({str(err).splitlines()[0]})") from None
