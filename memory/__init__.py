"""The experience store: experiences, skills and guardrails, summaries, over Chroma.

Importing ``memory`` is light (the config and the record models); Chroma and the
embedders load when a store is opened.

    from memory import ExperienceStore, RetrievalContext
    with ExperienceStore.open("runs/x/memory", embedder="hashing") as store:
        store.add_experiences([...])
"""

from __future__ import annotations

from typing import Any

from memory.config import MemoryConfig, RetrievalConfig
from memory.errors import (CorruptStoreError, EmbedderMismatchError, ForeignStoreError, ImportFileError,
                           ServerUnreachableError, StoreError, StoreLockedError, StoreNotFoundError)
from memory.models import (SCHEMA_VERSION, Diagnosis, ExperienceTuple, Guardrail, RecordError, Skill,
                           StateSnapshot, SubgoalRef, Summary, Trigger)

_LAZY = {
    "ExperienceStore": "memory.store",
    "RetrievalContext": "memory.retrieval",
    "Retrieved": "memory.retrieval",
    "Scored": "memory.retrieval",
    "MergeResult": "memory.merging",
    "Evidence": "memory.reads",
    "StoreStats": "memory.reads",
    "CheckReport": "memory.io",
    "ImportReport": "memory.io",
}

__all__ = [
    "SCHEMA_VERSION", "CorruptStoreError", "Diagnosis", "EmbedderMismatchError", "ExperienceTuple",
    "ForeignStoreError", "Guardrail", "ImportFileError", "MemoryConfig", "RecordError", "RetrievalConfig",
    "ServerUnreachableError", "Skill", "StateSnapshot", "StoreError", "StoreLockedError",
    "StoreNotFoundError", "SubgoalRef", "Summary", "Trigger", *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'memory' has no attribute {name!r}")
