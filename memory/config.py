"""The memory section of the run configuration (defaults in ``configs/memory.yaml``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MemoryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(None, description="embedded store directory; default: RUN_DIR/memory")
    url: str | None = Field(None, description="a Chroma server (http://127.0.0.1:PORT) shared by processes")
    embedder: str = Field("minilm", description="minilm (all-MiniLM-L6-v2, offline) or hashing")
