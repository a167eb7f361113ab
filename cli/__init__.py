"""The `raftlog` command line (``raftlog.cli.main``).

Ctrl-C while the command line is still loading (grpc, protobufs and the commands take
a moment to import) exits quietly with 130 instead of printing a KeyboardInterrupt
traceback from some import; :func:`loaded` hands SIGINT back to Python once every
command is imported, and each command handles Ctrl-C itself from there on. Only when
run as the `raftlog` program: importing ``raftlog.cli`` as a library changes nothing.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    # Not SystemExit: raised inside a C extension's module init (grpc's Cython one)
    # it turns into an ImportError traceback. Nothing needs cleaning up yet.
    os._exit(128 + signum)


def _running_as_program() -> bool:
    # `python -m raftlog.cli`: argv[0] is "-m" while the package imports;
    # the `raftlog` console script: argv[0] is its path.
    argv0 = sys.argv[0] if sys.argv else ""
    return argv0 == "-m" or Path(argv0).name == "raftlog"


def loaded() -> None:
    """Every command is imported: Ctrl-C raises KeyboardInterrupt again (click turns it
    into "Aborted!"; long-running commands install their own handlers)."""
    if signal.getsignal(signal.SIGINT) is _exit_quietly:
        signal.signal(signal.SIGINT, signal.default_int_handler)


if (_running_as_program() and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
    signal.signal(signal.SIGINT, _exit_quietly)
