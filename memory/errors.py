"""Errors of the experience store, each phrased as one line for a person."""

from __future__ import annotations


class StoreError(RuntimeError):
    """Anything that stops a store from opening or an operation from running."""


class StoreNotFoundError(StoreError):
    """No store where one was expected (and creating one was not asked for)."""


class ForeignStoreError(StoreError):
    """A directory or database that is not a steve memory store."""


class CorruptStoreError(StoreError):
    """A store that cannot be read."""


class EmbedderMismatchError(StoreError):
    """The store was built with another embedder: its vectors would not compare."""


class StoreLockedError(StoreError):
    """An embedded store already open in another process."""


class ServerUnreachableError(StoreError):
    """No Chroma server answers at the configured URL."""


class ImportFileError(StoreError):
    """A JSONL file with malformed lines; ``problems`` lists them with line numbers."""

    def __init__(self, path: str, problems: list[str]):
        self.problems = problems
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        super().__init__(f"{path}: {len(problems)} bad line(s), nothing imported: {shown}")
