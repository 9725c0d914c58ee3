"""Run one command and leave nothing of it behind: ``python -S -s -P reaper.py ARGV...``.

A verification command runs the repository's code, which can start processes that leave
its process group and session (``setsid``, a daemon's double fork): killing the group
misses them, and they would outlive the job (holding ports and files, or rewriting the
worktree while the next step runs). This small process stands between Tandem and the
command (Linux):

- it marks itself a *child subreaper* (``PR_SET_CHILD_SUBREAPER``), so every orphan of the
  command's process tree is re-parented to it instead of to init, wherever it went;
- it starts the command in a process group of its own and waits;
- when the command exits, or when this process gets SIGTERM (the deadline passed, the job
  was interrupted), it kills the command's group, then every process still its child, and
  again each child's children as they fall to it, until none is left;
- it exits as the command did (the same exit code, or the same signal); after SIGTERM it
  ends by SIGKILL, as a command killed at its deadline.

It runs with the standard library only (``-S -s -P``), so starting it costs about 10 ms; the
command gets the environment and signal dispositions Tandem gave this process.
Without a subreaper (not Linux) it still kills the command's group and its direct
children. A process that leaves by other means (another user, a service manager) is out
of its reach.
"""

from __future__ import annotations

import os
import signal
import sys
import time

_PR_SET_CHILD_SUBREAPER = 36
_KILL_FOR_S = 5.0  # give up on a tree that keeps forking faster than it is killed


# Python ignores these at start-up, and an ignored signal stays ignored across exec: the
# command gets them back at their default, as ``subprocess`` does (``restore_signals``).
_RESET_SIGNALS = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ")
                       if hasattr(signal, name))
# Set by Tandem for this process only: without it, Python would put LC_CTYPE=C.UTF-8 into
# the environment under a C locale (PEP 538), and the command would inherit it.
_NO_COERCION = "PYTHONCOERCECLOCALE"


def _command_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop(_NO_COERCION, None)
    return env


class _Stop(Exception):
    """SIGTERM: kill everything now."""


def _on_term(_signum: int, _frame: object) -> None:
    raise _Stop


def _become_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _children() -> list[int]:
    """The pids whose parent is this process (read from /proc; [] without it)."""
    me = os.getpid()
    listed = f"/proc/{me}/task/{me}/children"
    try:
        with open(listed) as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        pass
    found = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        # The parent pid is the second field after the parenthesised command name.
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == str(me):
            found.append(int(name))
    return found


def _reap() -> bool:
    """Collect every child that has ended; False once there is no child at all."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def _kill_all(group: int) -> None:
    """Kill the command's group, then every child (the orphans that came to this
    process), repeatedly: a killed process's own children fall to this one next."""
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    give_up = time.monotonic() + _KILL_FOR_S
    while time.monotonic() < give_up:
        for pid in _children():
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if not _reap():
            return
        time.sleep(0.002)


def _exit_like(status: int) -> None:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        sys.exit(128 + sig)  # not reached, unless the signal is ignored regardless
    sys.exit(os.waitstatus_to_exitcode(status))


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: reaper.py COMMAND [ARG...]")
    # SIGTERM waits until the command is started and the handler is in place.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    _become_subreaper()
    try:
        pid = os.posix_spawnp(argv[0], argv, _command_env(), setpgroup=0, setsigmask=(),
                              setsigdef=_RESET_SIGNALS)
    except OSError as exc:
        print(f"could not start {argv[0]!r}: {exc}", file=sys.stderr, flush=True)
        sys.exit(127)
    signal.signal(signal.SIGTERM, _on_term)
    status: int | None = None
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        while status is None:
            got, code = os.waitpid(-1, 0)  # reap orphans as they end, until the command does
            if got == pid:
                status = code
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except _Stop:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _kill_all(pid)
        os.kill(os.getpid(), signal.SIGKILL)  # ends as a command killed at its deadline
    _kill_all(pid)
    assert status is not None
    _exit_like(status)


if __name__ == "__main__":
    main(sys.argv[1:])
