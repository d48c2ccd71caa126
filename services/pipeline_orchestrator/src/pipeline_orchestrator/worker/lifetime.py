"""Process lifetime on Linux: parent-death signals, process identities that survive pid reuse, and
stopping every process of a session.

A pid alone does not name a process for long: pids are reused. ``(pid, start ticks)`` does: the
start time (``/proc/<pid>/stat`` field 22, clock ticks since boot) of a reused pid differs. Off
Linux none of this can be checked, and every function here degrades to doing nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1
LINUX = sys.platform.startswith("linux")
PROC = Path("/proc")

_prctl: Callable[..., int] | None = None
if LINUX:
    with contextlib.suppress(OSError, AttributeError):
        _prctl = ctypes.CDLL(None, use_errno=True).prctl


def set_parent_death_signal(sig: int) -> bool:
    """Ask the kernel to send `sig` to this process when the *thread* that forked it ends (for a
    process forked from the main thread: when its parent process dies). False when unsupported."""
    if _prctl is None:
        return False
    return _prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess.Popen``: the child gets `sig` when the forking thread
    ends, and also when that already happened before the signal was armed."""
    if _prctl is None:
        return None
    parent = os.getpid()

    def arm() -> None:
        set_parent_death_signal(sig)
        if os.getppid() != parent:  # the parent died between fork and prctl
            os.kill(os.getpid(), sig)

    return arm


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after ``comm``: [state, ppid, pgrp, session, ...]."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    return text[text.rfind(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot), or None if it does not exist (or a
    zombie, which has finished) or this is not Linux."""
    fields = _stat(pid)
    if fields is None or len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def is_alive(pid: int, started: int | None) -> bool:
    """Whether the process recorded as `(pid, started)` still runs (not a newer one reusing the pid)."""
    return started is not None and start_ticks(pid) == started


def boot_id() -> str:
    """This boot of this machine: processes recorded under another boot are long gone."""
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def session_members(sid: int) -> list[int]:
    """The live (non-zombie) processes of session `sid`."""
    members = []
    with contextlib.suppress(OSError):
        for entry in PROC.iterdir():
            if not entry.name.isdigit():
                continue
            fields = _stat(int(entry.name))
            if fields and len(fields) > 3 and fields[0] not in ("Z", "X") and fields[3] == str(sid):
                members.append(int(entry.name))
    return members


def kill_session(sid: int, *, spare: int | None = None) -> list[int]:
    """SIGKILL every process of session `sid` (but `spare`); returns the pids signalled."""
    killed = [pid for pid in session_members(sid) if pid != spare]
    for pid in killed:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return killed


def stop_session(leader: int, started: int | None, timeout: float = 10.0) -> int | None:
    """Kill the session led by the process recorded as `(leader, started)` and wait until every
    member is gone; returns how many processes were found running, or None if some would not
    go. A session whose leader's pid now names a newer process is not ours, and is left alone.
    (While any member lives, the kernel does not reuse the session's id, so a dead leader's
    session is still the recorded one.)"""
    if not LINUX:
        return None
    if started is None:  # it had gone before it could be recorded
        return 0
    now = start_ticks(leader)
    if now is not None and now != started:
        return 0
    deadline = time.monotonic() + timeout
    found = set(kill_session(leader)) | ({leader} if _kill_if(leader, started) else set())
    while kill_session(leader) or _kill_if(leader, started):
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)
    return len(found)


def _kill_if(pid: int, started: int) -> bool:
    """SIGKILL the process recorded as `(pid, started)` if it still runs (a leader that had not
    made its session yet); True when it was signalled."""
    if not is_alive(pid, started):
        return False
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    return True
