"""`make help` lists every target, with colour codes only when stdout is a terminal."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "MAKEFLAGS", "MAKELEVEL")}


def test_make_help_into_a_pipe_has_no_colour_codes() -> None:
    out = subprocess.run(
        ["make", "-s", "help"], cwd=ROOT, env=ENV, capture_output=True, text=True, check=True
    )
    assert "\x1b" not in out.stdout
    assert "  test " in out.stdout and "  run " in out.stdout


def test_make_help_on_a_terminal_is_coloured() -> None:
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            ["make", "-s", "help"], cwd=ROOT, env=ENV, stdout=follower, timeout=30, check=True
        )
        assert proc.returncode == 0
        os.close(follower)
        follower = -1
        out = b""
        while chunk := _read(leader):
            out += chunk
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert b"\x1b[36mtest" in out


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the terminal's other end is closed and everything was read
        return b""
