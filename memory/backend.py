"""Chroma underneath: an embedded ``PersistentClient`` or a ``chroma run`` server.

One store is six collections named ``<namespace>-<part>``: experiences, situations,
skills, guardrails, summaries, and meta, whose ``identity`` record says what built the
store (schema version, embedder, spatial resolutions). Chroma never embeds: every
collection is created with ``embedding_function=None`` and gets precomputed vectors.

Experiences repeat their situation a lot (the same subgoal in the same state), and an
HNSW graph over thousands of identical vectors both builds slowly (2,000 rows/s) and
loses recall. So the vector of each distinct experience text lives once in
``situations``; an experience row names its situation (``sit``) and carries a 1-d
placeholder vector (Chroma wants one), which makes it ~3x cheaper to write.

Embedded Chroma is not safe with two processes on one directory, so an embedded store
is held under an exclusive file lock for as long as it is open; a second process gets
a clear refusal naming the holder. Several processes share a store through a server.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from memory.config import MemoryConfig
from memory.errors import (CorruptStoreError, EmbedderMismatchError, ForeignStoreError, StoreError,
                           StoreLockedError, StoreNotFoundError, ServerUnreachableError)
from memory.models import SCHEMA_VERSION

log = logging.getLogger(__name__)

PARTS = ("experiences", "situations", "skills", "guardrails", "summaries", "meta")
LOCK_NAME = "steve-memory.lock"
_SQLITE = "chroma.sqlite3"
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def _settings():
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False)


PREFIX = {"experiences": "e_", "situations": "x_", "skills": "s_", "guardrails": "g_", "summaries": "u_", "meta": "m_"}


def _prefixed(prefix: str, clause: Any) -> Any:
    if isinstance(clause, dict):
        return {k if k.startswith("$") else prefix + k: _prefixed(prefix, v) for k, v in clause.items()}
    if isinstance(clause, list):
        return [_prefixed(prefix, c) for c in clause]
    return clause


class Part:
    """A Chroma collection whose metadata keys carry a per-collection prefix.

    Embedded Chroma keeps the metadata of every collection in one SQLite table indexed
    by (key, value): with shared key names, a filter on the 20-row skills collection
    walks the matching rows of 100k experiences too (10 ms instead of 1.5 ms). The
    prefix is added on the way in and removed on the way out; callers use plain names.
    """

    def __init__(self, collection: Any, prefix: str):
        self.collection, self.prefix = collection, prefix

    def _in(self, metas: list[dict] | None) -> list[dict] | None:
        return None if metas is None else [{self.prefix + k: v for k, v in m.items()} for m in metas]

    def _out(self, meta: dict | None) -> dict | None:
        n = len(self.prefix)
        return None if meta is None else {k[n:]: v for k, v in meta.items() if k.startswith(self.prefix)}

    def add(self, ids: list[str], embeddings: Any, metadatas: list[dict] | None = None,
            documents: list[str] | None = None) -> None:
        self.collection.add(ids=ids, embeddings=embeddings, metadatas=self._in(metadatas), documents=documents)

    def upsert(self, ids: list[str], embeddings: Any, metadatas: list[dict] | None = None,
               documents: list[str] | None = None) -> None:
        self.collection.upsert(ids=ids, embeddings=embeddings, metadatas=self._in(metadatas), documents=documents)

    def get(self, ids: list[str] | None = None, where: dict | None = None, limit: int | None = None,
            offset: int | None = None, include: list[str] | None = None) -> dict:
        got = self.collection.get(ids=ids, where=_prefixed(self.prefix, where), limit=limit, offset=offset,
                                  include=include if include is not None else ["metadatas"])
        if got.get("metadatas") is not None:
            got["metadatas"] = [self._out(m) for m in got["metadatas"]]
        return got

    def query(self, query_embeddings: Any, n_results: int, where: dict | None = None,
              include: list[str] | None = None) -> dict:
        got = self.collection.query(query_embeddings=query_embeddings, n_results=n_results,
                                    where=_prefixed(self.prefix, where),
                                    include=include or ["metadatas", "distances"])
        if got.get("metadatas") is not None:
            got["metadatas"] = [[self._out(m) for m in row] for row in got["metadatas"]]
        return got

    def delete(self, ids: list[str]) -> None:
        self.collection.delete(ids=ids)

    def count(self) -> int:
        return self.collection.count()


@dataclass
class Backend:
    """An open Chroma client, the store's collections, and what built the store."""

    client: Any
    collections: dict[str, Any]
    identity: dict[str, Any]
    mode: str  # embedded | server
    where: str  # the directory or the URL
    lock: Any = None
    created: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # closing must not fail on a half-broken store
            log.debug("closing the Chroma client failed", exc_info=True)
        if self.lock is not None:
            fcntl.flock(self.lock, fcntl.LOCK_UN)
            self.lock.close()
            self.lock = None


def _lock(path: Path):
    handle = open(path / LOCK_NAME, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise StoreLockedError(
            f"memory store {path} is open in another process (pid {holder}); embedded Chroma allows one "
            "process per directory: share a store through a server (memory.url)") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _check_directory(path: Path, create: bool) -> None:
    if path.exists() and not path.is_dir():
        raise ForeignStoreError(f"{path} is a file, not a memory store directory")
    entries = {p.name for p in path.iterdir()} - {LOCK_NAME} if path.exists() else set()
    if not entries:
        if not create:
            raise StoreNotFoundError(f"no memory store at {path}")
        return
    if _SQLITE not in entries:
        raise ForeignStoreError(f"{path} is not a memory store (no {_SQLITE}; found "
                                f"{', '.join(sorted(entries)[:3])}); refusing to touch it")
    with open(path / _SQLITE, "rb") as handle:
        if handle.read(16) != b"SQLite format 3\x00":
            raise CorruptStoreError(f"{path / _SQLITE} is not an SQLite database: the store is corrupt")


def _connect_embedded(path: Path):
    import chromadb

    try:
        return chromadb.PersistentClient(path=str(path), settings=_settings())
    except Exception as err:
        raise CorruptStoreError(f"cannot open memory store {path}: {_first_line(err)}") from None


def _connect_server(url: str):
    import chromadb

    parsed = urlparse(url if "://" in url else f"http://{url}")
    if not parsed.hostname or not parsed.port:
        raise StoreError(f"memory.url {url!r}: expected http://HOST:PORT")
    try:
        client = chromadb.HttpClient(host=parsed.hostname, port=parsed.port, ssl=parsed.scheme == "https",
                                     settings=_settings())
        client.heartbeat()
    except Exception as err:
        raise ServerUnreachableError(
            f"no Chroma server answers at {url} ({_first_line(err)}); start one with "
            f"`chroma run --host {parsed.hostname} --port {parsed.port} --path DIR`") from None
    return client


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


def open_backend(cfg: MemoryConfig, embedder_identity: str | None, create: bool,
                 new_identity: str | None = None) -> Backend:
    """Connect, check what the store is, create it if asked. ``embedder_identity`` None:
    any; a store created then records ``new_identity``."""
    if cfg.url:
        client, mode, where, lock = _connect_server(cfg.url), "server", cfg.url, None
    else:
        if not cfg.path:
            raise StoreError("no memory store given: set memory.path (or --memory DIR) or memory.url")
        path = Path(cfg.path).expanduser()
        _check_directory(path, create)
        path.mkdir(parents=True, exist_ok=True)
        lock = _lock(path)
        try:
            client = _connect_embedded(path)
        except BaseException:
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock.close()
            raise
        mode, where = "embedded", str(path)
    backend = Backend(client, {}, {}, mode, where, lock)
    try:
        _open_collections(backend, cfg, embedder_identity, create, new_identity)
    except BaseException:
        backend.close()
        raise
    return backend


def _open_collections(backend: Backend, cfg: MemoryConfig, embedder_identity: str | None,
                      create: bool, new_identity: str | None) -> None:
    ns, client = cfg.namespace, backend.client
    try:
        existing = {c.name for c in client.list_collections()}
    except Exception as err:
        raise CorruptStoreError(f"cannot read memory store {backend.where}: {_first_line(err)}") from None
    names = {part: f"{ns}-{part}" for part in PARTS}
    if names["meta"] not in existing:
        ours = sorted({n.rsplit("-", 1)[0] for n in existing if n.endswith("-meta")})
        if backend.mode == "embedded" and existing and not ours:
            raise ForeignStoreError(f"{backend.where} is a Chroma database but not a memory store "
                                    f"(no {names['meta']!r} collection)")
        if not create:
            also = f" (namespaces there: {', '.join(ours)})" if ours else ""
            raise StoreNotFoundError(f"no memory store {ns!r} at {backend.where}{also}")
    config = {"hnsw": {"space": "cosine", "ef_construction": cfg.hnsw_ef_construction}}
    placeholder = {"hnsw": {"space": "l2", "ef_construction": 16}}  # experiences: 1-d, never searched
    try:
        for part, name in names.items():
            backend.collections[part] = Part(client.get_or_create_collection(
                name, embedding_function=None, configuration=placeholder if part == "experiences" else config),
                PREFIX[part])
        meta = backend.collections["meta"].get(ids=["identity"], include=["metadatas"])
    except Exception as err:
        raise CorruptStoreError(f"cannot read memory store {backend.where}: {_first_line(err)}") from None
    if meta["ids"]:
        backend.identity = _decode_identity(meta["metadatas"][0], backend.where)
    else:
        backend.identity = {"format": "steve-memory", "schema_version": SCHEMA_VERSION,
                            "embedder": embedder_identity or new_identity,
                            "spatial_resolutions": list(cfg.spatial_resolutions),
                            "created_at": time.time()}
        backend.collections["meta"].upsert(ids=["identity"], embeddings=[[1.0]],
                                           metadatas=[{"identity": json.dumps(backend.identity)}])
        backend.created = True
        log.info("created memory store %r at %s (embedder %s)", ns, backend.where, embedder_identity)
    _check_identity(backend, embedder_identity, cfg)


def _decode_identity(meta: dict[str, Any], where: str) -> dict[str, Any]:
    try:
        identity = json.loads(meta["identity"])
        assert identity["format"] == "steve-memory"
        return identity
    except Exception:
        raise CorruptStoreError(f"memory store {where}: its identity record is unreadable") from None


def _check_identity(backend: Backend, embedder_identity: str | None, cfg: MemoryConfig) -> None:
    ident = backend.identity
    if ident.get("schema_version", 0) > SCHEMA_VERSION:
        raise StoreError(f"memory store {backend.where} has schema v{ident['schema_version']}, newer than "
                         f"this code (v{SCHEMA_VERSION}): upgrade steve")
    if embedder_identity is not None and ident["embedder"] != embedder_identity:
        from memory.embeddings import name_of

        raise EmbedderMismatchError(
            f"memory store {backend.where} was built with embedder {name_of(ident['embedder'])!r} "
            f"({ident['embedder']}), not {name_of(embedder_identity)!r}: its vectors would not compare; "
            f"use --embedder {name_of(ident['embedder'])} (memory.embedder) or another store")
    if list(cfg.spatial_resolutions) != ident["spatial_resolutions"]:
        log.warning("memory store %s uses spatial resolutions %s (fixed at creation), not %s",
                    backend.where, ident["spatial_resolutions"], cfg.spatial_resolutions)
