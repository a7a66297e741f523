"""Worker processes that play episodes: spawned, and gone when their parent is.

A ``ProcessPoolExecutor`` worker outlives a parent killed with SIGKILL: it plays on the
episodes it was handed and writes them into the run directory that a resumed run is
writing too. Workers made here ask Linux to kill them when their parent dies
(``prctl(PR_SET_PDEATHSIG)``); elsewhere they stay as the standard library makes them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def spawn_pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` spawned processes (nothing inherited from torch's threads) that die
    with this one."""
    return ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_die_with_parent,
                               initargs=(os.getpid(),))
