"""Errors of the distill package, importable without torch: ``steve run`` catches them
for every agent, and most runs never load the student."""


class CheckpointError(RuntimeError):
    """A missing, partial or foreign checkpoint; the message names it."""
