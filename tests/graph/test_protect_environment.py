"""A job's process keeps its start-up environment (the API keys) from the commands it
runs: a command of the same user cannot read ``/proc/<parent>/environ`` once the process
is marked not dumpable. Root can read any process's files, so as root the check runs in a
child that first becomes the unprivileged user ``nobody``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = r"""
import ctypes, os, subprocess, sys
from orchestrator.config import protect_environment
if os.geteuid() == 0:
    os.setgid(65534); os.setuid(65534)
    ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # dumpable again, as any process it starts
if sys.argv[1] == "protect":
    assert protect_environment()
got = subprocess.run(["cat", f"/proc/{os.getpid()}/environ"], capture_output=True)
print("readable" if b"TANDEM_PROBE_KEY=sk-probe" in got.stdout else "unreadable")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc and prctl")
@pytest.mark.parametrize(("mode", "expected"), [("plain", "readable"),
                                                ("protect", "unreadable")])
def test_a_child_cannot_read_the_protected_parents_environment(mode: str,
                                                               expected: str) -> None:
    env = {**os.environ, "TANDEM_PROBE_KEY": "sk-probe-1234567890"}
    out = subprocess.run([sys.executable, "-c", PROBE, mode], env=env, capture_output=True,
                         text=True, timeout=60, cwd="/")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected
