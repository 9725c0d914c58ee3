"""Verification commands (tests, linters) run in the job worktree.

Each command runs with a scrubbed environment (no API keys or tokens: model-written code
is not trusted), its own process group, and a timeout that kills the whole group. A
failure is an observation for the model: the tail of the output plus a *signature* (the
failing test ids, or the normalised last lines) used to detect "no progress".
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from orchestrator.config import scrubbed_env

_OUTPUT_TAIL_CHARS = 4000
_FAILED_ID = re.compile(
    r"^(?:FAILED|ERROR)[: ]+(\S+)|^(?:FAIL|ERROR): (\S+ \([^)]*\))|^--- FAIL: (\S+)", re.M
)
_NOISE = re.compile(r"0x[0-9a-f]+|\d+(?:\.\d+)?s\b|\d+ ?ms\b|/tmp/\S+", re.I)


class CommandSpec(BaseModel):
    name: str
    cmd: str | list[str]
    timeout_s: float = 300.0


class VerifyResult(BaseModel):
    name: str
    passed: bool
    exit_code: int | None
    duration_ms: float
    timed_out: bool = False
    output_tail: str = ""
    signature: str = ""

    @property
    def summary(self) -> str:
        if self.passed:
            return "passed"
        if self.timed_out:
            return "timed out"
        last = self.output_tail.strip().splitlines()[-1:] or [""]
        return f"exit {self.exit_code}: {last[0][:200]}"


def _argv(cmd: str | list[str]) -> list[str]:
    argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
    # `{python}` names the interpreter running Tandem (useful for portable policies).
    return [sys.executable if a == "{python}" else a for a in argv]


def failure_signature(output: str) -> str:
    """A short stable id of *how* a run failed, to spot the same failure twice."""
    ids = sorted({next(g for g in m.groups() if g) for m in _FAILED_ID.finditer(output)})
    basis = "\n".join(ids) if ids else _NOISE.sub("", "\n".join(output.strip().splitlines()[-5:]))
    return hashlib.sha256(basis.encode()).hexdigest()[:16]


def run_command(spec: CommandSpec, cwd: Path) -> VerifyResult:
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(
            _argv(spec.cmd), cwd=cwd, env=scrubbed_env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
    except OSError as exc:
        return VerifyResult(
            name=spec.name, passed=False, exit_code=None, duration_ms=0.0,
            output_tail=f"could not start {spec.cmd!r}: {exc}", signature="not-started",
        )
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=spec.timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    text = out.decode("utf-8", "replace")[-_OUTPUT_TAIL_CHARS:]
    passed = proc.returncode == 0 and not timed_out
    return VerifyResult(
        name=spec.name, passed=passed, exit_code=proc.returncode,
        duration_ms=(time.perf_counter() - start) * 1000, timed_out=timed_out,
        output_tail=text, signature="" if passed else failure_signature(text),
    )


def run_all(specs: Sequence[CommandSpec], cwd: Path) -> list[VerifyResult]:
    """Run every command (even after a failure, so the model sees all of them)."""
    return [run_command(s, cwd) for s in specs]
