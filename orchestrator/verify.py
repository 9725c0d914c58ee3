"""Verification commands (tests, linters) run in the job worktree.

The commands are the repository's own tests, so they are not trusted code. Each runs with a
scrubbed environment (no API keys or tokens), in its own process group, under a wall-clock
deadline:

- Output is read as it comes, into a buffer that keeps only the tail, so a command that
  prints gigabytes cannot grow this process (the model only ever sees the tail anyway).
- It runs under ``reaper.py`` (a child subreaper): when the command exits, or at the
  deadline, every process it started is killed, those that left its process group or
  session (``setsid``, a daemon's double fork) included. Nothing outlives verification
  holding files or ports, or writing to the worktree while the next step runs; the
  command's own exit code decides the result.
- At the deadline reading stops after a short grace even if something still holds the
  pipe: the job must not hang.
- The tail is redacted (``redact``) before it is cut to its final length, so a secret
  that straddled the cut is not left half shown.

A failure is an observation for the model: the tail of the output plus a *signature* (the
failing test ids, or the normalised last lines) used to detect "no progress".
"""

from __future__ import annotations

import hashlib
import os
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path

from pydantic import BaseModel

from orchestrator.config import scrubbed_env

_OUTPUT_TAIL_CHARS = 4000
# Bytes kept while reading: enough for the last _OUTPUT_TAIL_CHARS characters of utf-8,
# plus a margin before them that is redacted with the tail and then dropped (a secret
# starting in the margin and ending in the tail is recognised whole).
_REDACT_MARGIN_BYTES = 8 * 1024
_OUTPUT_TAIL_BYTES = 4 * _OUTPUT_TAIL_CHARS + _REDACT_MARGIN_BYTES
_REAPER = str(Path(__file__).with_name("reaper.py"))
# After SIGTERM, how long the reaper has to kill the command's processes and exit before
# its own group is killed outright.
_REAPER_GRACE_S = 2.0
_READ_CHUNK_BYTES = 64 * 1024
# How long one wait on the pipe may last: the bound on noticing an exit or the deadline.
_POLL_S = 0.05
# After the command ended (or was killed), how long to keep reading what is left in the pipe.
# Short because a descendant that escaped the group can hold the pipe open for ever.
_DRAIN_GRACE_S = 0.5
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


class _Tail:
    """The last bytes of a stream, and how many bytes it had in all."""

    def __init__(self, limit_bytes: int = _OUTPUT_TAIL_BYTES) -> None:
        self._limit = limit_bytes
        self._buf = bytearray()
        self.total_bytes = 0

    def add(self, chunk: bytes) -> None:
        self.total_bytes += len(chunk)
        self._buf += chunk
        if len(self._buf) > self._limit:
            del self._buf[: len(self._buf) - self._limit]

    def text(self, redact: Callable[[str], str] | None = None) -> tuple[str, int]:
        """The last ``_OUTPUT_TAIL_CHARS`` characters (redacted first, with the margin
        before them), and how many bytes of output came before them."""
        # surrogateescape maps every byte to a character and back, so the count of bytes
        # cut is exact; "replace" (what the model reads) is applied to the kept part only.
        kept = self._buf.decode("utf-8", "surrogateescape")
        if redact is not None:
            kept = redact(kept)
        kept = kept[-_OUTPUT_TAIL_CHARS:]
        kept_bytes = kept.encode("utf-8", "surrogateescape")
        return kept_bytes.decode("utf-8", "replace"), max(self.total_bytes - len(kept_bytes), 0)


def _argv(cmd: str | list[str]) -> list[str]:
    argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
    # `{python}` names the interpreter running Tandem (useful for portable policies).
    return [sys.executable if a == "{python}" else a for a in argv]


def failure_signature(output: str) -> str:
    """A short stable id of *how* a run failed, to spot the same failure twice."""
    ids = sorted({next(g for g in m.groups() if g) for m in _FAILED_ID.finditer(output)})
    basis = "\n".join(ids) if ids else _NOISE.sub("", "\n".join(output.strip().splitlines()[-5:]))
    return hashlib.sha256(basis.encode()).hexdigest()[:16]


def _executable(name: str, cwd: Path, path: str) -> str | None:
    """Where ``name`` would be run from (PATH, or relative to ``cwd``), or None."""
    if os.sep in name:
        found = name if os.path.isabs(name) else str(cwd / name)
        return found if os.access(found, os.X_OK) and not os.path.isdir(found) else None
    return shutil.which(name, path=path)


def _kill_group(pgid: int) -> None:
    # The group may be gone already (ESRCH), or hold only zombies (EPERM on macOS).
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _has_exited(pid: int) -> bool:
    """Whether the process has ended, without reaping it.

    Left unreaped, its pid cannot be reused, so the group can still be killed by that id.
    """
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped elsewhere (a SIGCHLD handler): it has ended
        return True


def _read_some(sel: selectors.BaseSelector, fd: int, tail: _Tail, wait_s: float) -> bool:
    """Wait up to ``wait_s`` for output and keep it; False once the pipe is at EOF."""
    if not sel.select(max(wait_s, 0.0)):
        return True
    chunk = os.read(fd, _READ_CHUNK_BYTES)
    tail.add(chunk)
    return bool(chunk)


def _drain(sel: selectors.BaseSelector, fd: int, tail: _Tail, open_: bool) -> None:
    """Read what is left until EOF, for at most ``_DRAIN_GRACE_S``."""
    end = time.perf_counter() + _DRAIN_GRACE_S
    while open_ and (left_s := end - time.perf_counter()) > 0:
        open_ = _read_some(sel, fd, tail, min(left_s, _POLL_S))


def _pump(proc: subprocess.Popen[bytes], fd: int, tail: _Tail, deadline: float,
          stop: threading.Event | None = None) -> bool:
    """Read output until the command exits or the deadline passes; True if it timed out.

    Either way the command's process group is killed before returning.
    """
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        open_ = True
        timed_out = False
        pause_s = 0.001
        while not _has_exited(proc.pid):
            left_s = deadline - time.perf_counter()
            if left_s <= 0 or (stop is not None and stop.is_set()):
                timed_out = True
                break
            if open_:
                open_ = _read_some(sel, fd, tail, min(left_s, _POLL_S))
            else:  # output closed, the process not ended yet: it usually is in a moment
                time.sleep(min(left_s, pause_s))
                pause_s = min(pause_s * 2, _POLL_S)
        if timed_out:
            _stop_reaper(proc.pid)
        _kill_group(proc.pid)
        _drain(sel, fd, tail, open_)
    return timed_out


def _stop_reaper(pid: int) -> None:
    """Ask the reaper to kill everything the command started, and wait a moment for it."""
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    end = time.perf_counter() + _REAPER_GRACE_S
    while not _has_exited(pid) and time.perf_counter() < end:
        time.sleep(0.005)


def run_command(spec: CommandSpec, cwd: Path, stop: threading.Event | None = None,
                redact: Callable[[str], str] | None = None) -> VerifyResult:
    """Run one command; ``stop`` set (the job was interrupted) ends it as a timeout does.
    ``redact`` is applied to the output before it is cut to the tail."""
    start = time.perf_counter()
    argv, env = _argv(spec.cmd), scrubbed_env()
    try:
        if not argv or _executable(argv[0], cwd, env["PATH"]) is None:
            raise FileNotFoundError(f"{argv[0] if argv else 'an empty command'!r} is not "
                                    f"an executable file (PATH={env['PATH']})")
        proc = subprocess.Popen(
            [sys.executable, "-S", "-s", "-P", _REAPER, *argv], cwd=cwd,
            env={**env, "PYTHONCOERCECLOCALE": "0"},  # the reaper passes ``env`` on as is
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return VerifyResult(
            name=spec.name, passed=False, exit_code=None, duration_ms=0.0,
            output_tail=f"could not start {spec.cmd!r}: {exc}", signature="not-started",
        )
    assert proc.stdout is not None
    tail = _Tail()
    with proc.stdout:
        timed_out = _pump(proc, proc.stdout.fileno(), tail, start + spec.timeout_s, stop)
    # Killed or exited: reaping is immediate unless the process is stuck in the kernel.
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=_DRAIN_GRACE_S)
    text, cut_bytes = tail.text(redact)
    passed = proc.returncode == 0 and not timed_out
    note = f"[... {cut_bytes} bytes of earlier output not kept]\n" if cut_bytes else ""
    return VerifyResult(
        name=spec.name, passed=passed, exit_code=proc.returncode,
        duration_ms=(time.perf_counter() - start) * 1000, timed_out=timed_out,
        output_tail=note + text, signature="" if passed else failure_signature(text),
    )


def run_all(specs: Sequence[CommandSpec], cwd: Path, stop: threading.Event | None = None,
            redact: Callable[[str], str] | None = None) -> list[VerifyResult]:
    """Run every command (even after a failure, so the model sees all of them)."""
    return [run_command(s, cwd, stop, redact) for s in specs]
