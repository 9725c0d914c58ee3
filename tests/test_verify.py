"""Verification commands: real subprocesses, no mocks.

The commands stand for a repository's tests, which are not trusted: they may hang, print
without end, leave background children, or start descendants that leave the process group.
Descendants are plain Python children that write their pid to a file, so each test can
check them and clean up after itself.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.config import scrubbed_env
from orchestrator.verify import (
    _OUTPUT_TAIL_CHARS,
    CommandSpec,
    VerifyResult,
    failure_signature,
    run_command,
)

# Started by a command: sleeps in a child (its own session if asked), writes its pid to
# child.pid, prints, then does what argv[2] says ("exit" or "sleep").
_SPAWN = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                         start_new_session=sys.argv[1] == "escape")
open("child.pid", "w").write(str(child.pid))
print("spawned", flush=True)
if sys.argv[2] == "sleep":
    time.sleep(60)
"""


def _run(tmp_path: Path, cmd: str | list[str], timeout_s: float = 10.0) -> VerifyResult:
    return run_command(CommandSpec(name="t", cmd=cmd, timeout_s=timeout_s), tmp_path)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie counts as dead (PID 1 may be slow to reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:  # the state follows the parenthesised command name
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return not stat.parent.parent.is_dir()  # no /proc (macOS): trust kill()


def _wait_dead(pid: int, within_s: float = 2.0) -> bool:
    end = time.monotonic() + within_s
    while _alive(pid):
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


def _child_pid(tmp_path: Path) -> int:
    return int((tmp_path / "child.pid").read_text())


@pytest.fixture
def reap_child(tmp_path: Path) -> Iterator[None]:
    """Kill the child a command spawned (see ``_SPAWN``), whatever the test saw."""
    yield
    if (tmp_path / "child.pid").exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(_child_pid(tmp_path), signal.SIGKILL)


def test_pass_keeps_output_and_exit_code(tmp_path: Path) -> None:
    # A string command: shlex-split, with {python} replaced by this interpreter.
    r = _run(tmp_path, "{python} -c \"print('hello from the tests')\"")
    assert r.passed and r.exit_code == 0 and not r.timed_out
    assert r.output_tail == "hello from the tests\n"
    assert r.signature == "" and r.summary == "passed"


def test_failure_reports_exit_code_tail_and_signature(tmp_path: Path) -> None:
    script = "import sys; print('2 items'); print('FAILED tests/t.py::test_a'); sys.exit(3)"
    r = _run(tmp_path, ["{python}", "-c", script])
    assert not r.passed and r.exit_code == 3 and not r.timed_out
    assert "FAILED tests/t.py::test_a" in r.output_tail
    assert r.signature == failure_signature(r.output_tail)
    assert r.summary == "exit 3: FAILED tests/t.py::test_a"


def test_command_that_cannot_start(tmp_path: Path) -> None:
    r = _run(tmp_path, [str(tmp_path / "no-such-program")])
    assert not r.passed and r.exit_code is None
    assert r.signature == "not-started" and "could not start" in r.output_tail


def test_timeout_kills_the_command(tmp_path: Path) -> None:
    start = time.monotonic()
    r = _run(tmp_path, ["sh", "-c", "echo started; sleep 30"], timeout_s=0.5)
    assert time.monotonic() - start < 1.5
    assert r.timed_out and not r.passed and r.summary == "timed out"
    assert r.exit_code == -signal.SIGKILL
    assert r.output_tail == "started\n"


@pytest.mark.usefixtures("reap_child")
def test_timeout_holds_when_a_descendant_escapes_the_group(tmp_path: Path) -> None:
    # The escaped child holds the pipe open and survives the group kill: reading must stop.
    start = time.monotonic()
    r = _run(tmp_path, ["{python}", "-c", _SPAWN, "escape", "sleep"], timeout_s=1.0)
    assert time.monotonic() - start < 3.0
    assert r.timed_out and not r.passed
    assert "spawned" in r.output_tail
    assert _wait_dead(_child_pid(tmp_path))  # the reaper caught it where the group kill cannot


@pytest.mark.usefixtures("reap_child")
def test_exit_zero_kills_a_descendant_that_escaped_the_group(tmp_path: Path) -> None:
    # A test suite that starts a server with setsid and forgets it: it must not outlive
    # verification (it would hold its port, or write to the worktree during the next step).
    start = time.monotonic()
    r = _run(tmp_path, ["{python}", "-c", _SPAWN, "escape", "exit"], timeout_s=10.0)
    assert time.monotonic() - start < 3.0
    assert r.passed and r.exit_code == 0 and r.output_tail == "spawned\n"
    assert _wait_dead(_child_pid(tmp_path))


# A daemon's double fork: the middle process starts a grandchild in its own session and
# exits at once, so the grandchild is an orphan outside the command's group.
_DOUBLE_FORK = """
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open("child.pid", "w").write(str(os.getpid()))
        time.sleep(60)
    os._exit(0)
os.wait()
while not os.path.exists("child.pid"):
    time.sleep(0.01)
print("daemon started", flush=True)
"""


@pytest.mark.usefixtures("reap_child")
def test_a_double_forked_daemon_is_killed(tmp_path: Path) -> None:
    r = _run(tmp_path, ["{python}", "-c", _DOUBLE_FORK], timeout_s=10.0)
    assert r.passed and r.output_tail == "daemon started\n"
    assert _wait_dead(_child_pid(tmp_path))


def test_a_command_killed_by_a_signal_reports_it(tmp_path: Path) -> None:
    r = _run(tmp_path, ["sh", "-c", "kill -TERM $$"])
    assert not r.passed and r.exit_code == -signal.SIGTERM and not r.timed_out


def test_a_relative_command_runs_from_the_worktree(tmp_path: Path) -> None:
    script = tmp_path / "run-tests.sh"
    script.write_text("#!/bin/sh\necho from the worktree\n")
    script.chmod(0o755)
    r = _run(tmp_path, ["./run-tests.sh"])
    assert r.passed and r.output_tail == "from the worktree\n"


@pytest.mark.usefixtures("reap_child")
def test_exit_zero_with_background_child_passes_and_kills_it(tmp_path: Path) -> None:
    # The child stays in the group and holds the pipe; the command itself is done.
    start = time.monotonic()
    r = _run(tmp_path, ["{python}", "-c", _SPAWN, "stay", "exit"], timeout_s=10.0)
    assert time.monotonic() - start < 2.0
    assert r.passed and r.exit_code == 0 and not r.timed_out
    assert r.output_tail == "spawned\n"
    assert _wait_dead(_child_pid(tmp_path))


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux counts KiB


def test_large_output_keeps_only_the_tail(tmp_path: Path) -> None:
    # About 200 MB; the old code held all of it (and more, while decoding) in memory.
    script = (
        "import sys\n"
        "line = b'x' * 1023 + b'\\n'\n"
        "block = line * 1024\n"
        "for _ in range(200):\n"
        "    sys.stdout.buffer.write(block)\n"
        "print('FAILED tests/t.py::test_last', flush=True)\n"
        "sys.exit(1)\n"
    )
    before = _peak_rss_bytes()
    r = _run(tmp_path, ["{python}", "-c", script], timeout_s=30.0)
    growth = _peak_rss_bytes() - before
    assert not r.passed and r.exit_code == 1 and not r.timed_out
    first, rest = r.output_tail.split("\n", 1)
    cut = 200 * 1024 * 1024 + len("FAILED tests/t.py::test_last\n") - len(rest.encode())
    assert first == f"[... {cut} bytes of earlier output not kept]"
    assert len(rest) == _OUTPUT_TAIL_CHARS
    assert rest.endswith("FAILED tests/t.py::test_last\n")
    assert r.signature == failure_signature(rest)
    assert growth < 64 * 1024 * 1024


def test_a_secret_straddling_the_cut_is_redacted_whole(tmp_path: Path) -> None:
    # The secret starts before the last _OUTPUT_TAIL_CHARS characters and ends inside them:
    # redacting only the cut tail would leave its second half for the model to read.
    secret = "sk-" + "Q7" * 40
    tail_filler = "z" * (_OUTPUT_TAIL_CHARS - 30)
    script = f"print('x' * 50000 + {secret!r} + {tail_filler!r})"
    r = run_command(CommandSpec(name="t", cmd=["{python}", "-c", script]), tmp_path,
                    redact=lambda text: text.replace(secret, "[REDACTED]"))
    assert r.passed
    assert secret[-20:] not in r.output_tail and secret[:20] not in r.output_tail
    assert r.output_tail.endswith(tail_filler + "\n")
    assert "[REDACTED]" in r.output_tail


def test_signature_ignores_how_much_output_was_cut(tmp_path: Path) -> None:
    # Same failure, different amounts of earlier output: the byte count must not matter.
    script = "import sys; print(('y' * 99 + '\\n') * int(sys.argv[1]) + 'boom'); sys.exit(2)"
    short = _run(tmp_path, ["{python}", "-c", script, "100"])
    long = _run(tmp_path, ["{python}", "-c", script, "1000"])
    assert short.output_tail != long.output_tail  # different notes
    assert short.signature == long.signature


def test_environment_is_scrubbed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-for-the-tests")
    monkeypatch.setenv("TANDEM_SOMETHING", "also-private")
    script = (
        "import os; print(os.environ.get('OPENAI_API_KEY'), os.environ.get('TANDEM_SOMETHING'),"
        " os.environ.get('GIT_TERMINAL_PROMPT'), 'PATH' in os.environ)"
    )
    r = _run(tmp_path, ["{python}", "-c", script])
    assert r.passed
    assert r.output_tail == "None None 0 True\n"


def test_the_command_gets_the_environment_and_signals_it_would_get_directly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reaper between Tandem and the command is a Python process: Python's locale
    # coercion (LC_CTYPE=C.UTF-8 under a C locale) and the SIGPIPE it ignores must not
    # reach the command.
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        monkeypatch.delenv(name, raising=False)
    r = _run(tmp_path, ["env"])
    assert r.passed, r.output_tail
    given = dict(line.split("=", 1) for line in r.output_tail.splitlines())
    assert given == scrubbed_env()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_the_command_does_not_inherit_ignored_signals(tmp_path: Path) -> None:
    r = _run(tmp_path, ["grep", "^SigIgn:", "/proc/self/status"])
    assert r.passed, r.output_tail
    ignored = int(r.output_tail.split()[1], 16)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        assert not ignored & (1 << (sig - 1)), f"{sig!r} is ignored in the command"


def test_stop_ends_the_command_at_once(tmp_path: Path) -> None:
    """An interrupted job sets ``stop``: the command's group is killed, as at a timeout."""
    import threading

    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    start = time.monotonic()
    result = run_command(CommandSpec(name="t", cmd=["sleep", "30"], timeout_s=30), tmp_path,
                         stop)
    assert time.monotonic() - start < 5 and result.timed_out and not result.passed
