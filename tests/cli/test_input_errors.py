"""Bad input through the real `tandem` in a subprocess: a task or a setting that cannot be
used, a demo folder that cannot be made, a chat whose policy cannot run, a usage error.
Each is one line on stderr with exit status 2, JSON on stdout with ``--json``, and leaves
no job record or half-made folder behind; the user's git config does not break the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.demo import TAPE_PATH
from orchestrator.jobstore import list_jobs


def _tandem(*args: str, env: dict[str, str] | None = None, stdin: bytes | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, "-m", "orchestrator", *args],
                         env={**os.environ, **(env or {})}, input=stdin,
                         capture_output=True, timeout=timeout)
    return subprocess.CompletedProcess(out.args, out.returncode,
                                       out.stdout.decode(errors="replace"),
                                       out.stderr.decode(errors="replace"))


def _one_line_error(out: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and out.stderr.count("\n") == 1, out.stderr
    for needle in needles:
        assert needle in out.stderr, out.stderr
    return out.stderr.strip()


def _json_error(out: subprocess.CompletedProcess[str], *needles: str) -> str:
    _one_line_error(out, *needles)
    doc = json.loads(out.stdout)  # the whole of stdout is one JSON document
    assert doc["exit_code"] == 2 and str(doc["error"]) in out.stderr, out.stdout
    return str(doc["error"])


def test_a_task_that_is_not_utf8_is_refused_before_a_job_exists(
    demo_repo: Path, tmp_path: Path,
) -> None:
    latin1 = b"caf\xe9 fix"
    as_arg = _tandem("run", str(demo_repo), os.fsdecode(latin1), "--tape", str(TAPE_PATH),
                     "--pr", "none", "--json")
    _json_error(as_arg, "the task is not UTF-8 text")
    on_stdin = _tandem("run", str(demo_repo), "-", "--tape", str(TAPE_PATH), "--pr", "none",
                       "--json", stdin=latin1)
    _json_error(on_stdin, "the task is not UTF-8 text")
    strict_stdin = _tandem("run", str(demo_repo), "-", "--tape", str(TAPE_PATH), "--pr", "none",
                           "--json", stdin=latin1, env={"PYTHONIOENCODING": "utf-8:strict"})
    _json_error(strict_stdin, "the task is not UTF-8 text")
    assert list_jobs() == [] and not (Path(os.environ["TANDEM_HOME"]) / "jobs").exists()


def test_a_bad_setting_is_one_line_naming_the_variable() -> None:
    level = _tandem("jobs", "--json", env={"TANDEM_LOG_LEVEL": "bogus"})
    _json_error(level, "TANDEM_LOG_LEVEL='bogus'", "'DEBUG', 'INFO', 'WARNING'")
    sync = _tandem("jobs", "--json", env={"TANDEM_SQLITE_SYNCHRONOUS": "OFF"})
    _json_error(sync, "TANDEM_SQLITE_SYNCHRONOUS='OFF'", "'FULL' or 'NORMAL'")
    assert _tandem("jobs", env={"TANDEM_LOG_LEVEL": "debug"}).returncode == 0


def test_help_and_version_work_whatever_the_settings() -> None:
    bad = {"TANDEM_LOG_LEVEL": "bogus", "TANDEM_SQLITE_SYNCHRONOUS": "OFF"}
    version = _tandem("--version", env=bad)
    assert version.returncode == 0 and "version" in version.stdout, version.stderr
    helped = _tandem("run", "--help", env=bad)
    assert helped.returncode == 0 and "Usage:" in helped.stdout, helped.stderr


def test_a_demo_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    under_file = _tandem("demo", "--dir", str(a_file / "shop"), "--json")
    _json_error(under_file, f"cannot create the sample repository in {a_file / 'shop'}",
                "Not a directory", "choose another --dir")
    in_proc = _tandem("demo", "--dir", "/proc/tandem-shop")
    _one_line_error(in_proc, "/proc/tandem-shop", "choose another --dir")
    assert list_jobs() == []


def test_a_demo_that_fails_half_way_leaves_no_folder(tmp_path: Path) -> None:
    target = tmp_path / "shop"
    no_git = _tandem("demo", "--dir", str(target), "--json", env={"PATH": str(tmp_path)})
    _json_error(no_git, "cannot run git")
    assert not target.exists() and list_jobs() == []


def test_the_demo_does_not_depend_on_the_users_git_config(tmp_path: Path) -> None:
    home = tmp_path / "home"
    hooks = home / "hooks"
    hooks.mkdir(parents=True)
    (hooks / "pre-commit").write_text("#!/bin/sh\nexit 1\n")
    (hooks / "pre-commit").chmod(0o755)
    (home / ".gitconfig").write_text(f"[commit]\n\tgpgsign = true\n[gpg]\n\tprogram = false\n"
                                     f"[core]\n\thooksPath = {hooks}\n")
    out = _tandem("demo", "--pr", "none", "--json", env={"HOME": str(home)}, timeout=120)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert json.loads(out.stdout)["status"] == "done"


def test_demos_started_in_the_same_second_get_their_own_folders() -> None:
    demo_dir = Path(os.environ["TANDEM_HOME"]) / "demo"
    now = time.time()
    for second in range(6):  # as left by demos started in the seconds this one starts in
        taken = demo_dir / time.strftime("shop-%Y%m%d-%H%M%S", time.localtime(now + second))
        taken.mkdir(parents=True)
        (taken / "README.md").write_text("another demo\n")
    out = _tandem("demo", "--pr", "none", "--json", timeout=120)
    assert out.returncode == 0, out.stderr
    repo = Path(json.loads(out.stdout)["repo"])
    assert repo.parent == demo_dir.resolve() and (repo / ".git").is_dir()


def test_chat_checks_its_policy_before_the_prompt(demo_repo: Path) -> None:
    unknown = _tandem("chat", str(demo_repo), "--policy", "nosuch", stdin=b"fix it\n")
    _one_line_error(unknown, "nosuch: no such policy file")
    assert "tandem>" not in unknown.stdout
    no_tape = _tandem("chat", str(demo_repo), stdin=b"fix it\n")
    _one_line_error(no_tape, "--tape FILE")
    assert list_jobs() == []


def test_tandem_policy_is_named_when_it_names_no_policy(demo_repo: Path) -> None:
    out = _tandem("run", str(demo_repo), "x", "--json", env={"TANDEM_POLICY": "nosuch"})
    _json_error(out, "TANDEM_POLICY=nosuch: no such policy file or built-in name")


def test_a_usage_error_is_one_line_with_the_hint(demo_repo: Path) -> None:
    plain = _tandem("run", str(demo_repo), "x", "--pr", "bogus")
    line = _one_line_error(plain, "(try 'tandem run --help')")
    assert line.startswith("tandem: error: Invalid value for '--pr': 'bogus' is not one of")
    assert plain.stdout == ""
    as_json = _tandem("run", str(demo_repo), "x", "--pr", "bogus", "--json")
    assert _json_error(as_json).startswith("Invalid value for '--pr'")
    # A group without its sub-command still shows its help.
    bare = _tandem("policy")
    assert bare.stderr.startswith("Usage: tandem policy") and "  check " in bare.stderr
