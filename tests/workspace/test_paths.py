"""Every path-safety refusal; a refused edit writes nothing."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from orchestrator.errors import UnsafePath
from orchestrator.workspace import Workspace, parse_edits


def edit(path: str) -> str:
    return f"{path}\n<<<<<<< SEARCH\n=======\npwned\n>>>>>>> REPLACE\n"


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def assert_refused(ws: Workspace, path: str, fragment: str, outside: Path | None = None) -> None:
    """The unsafe block is refused and the valid block before it is not written either."""
    before = snapshot(ws.path)
    outside_before = snapshot(outside) if outside else {}
    text = "app.py\n<<<<<<< SEARCH\n    return a + b\n=======\n    return 0\n>>>>>>> REPLACE\n"
    with pytest.raises(UnsafePath) as err:
        ws.apply_edits(parse_edits(text + edit(path)))
    assert fragment in str(err.value)
    assert snapshot(ws.path) == before
    if outside:
        assert snapshot(outside) == outside_before


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/etc/passwd", "absolute"),
        ("C:\\Windows\\x.txt", "absolute"),
        ("~/.bashrc", "absolute"),
        ("../outside.txt", "'..'"),
        ("src/../../outside.txt", "'..'"),
        (".git/config", ".git"),
        ("sub/.GIT/hooks/pre-commit", ".git"),
        (".", "repository root"),
    ],
)
def test_lexical_refusals(ws: Workspace, path: str, fragment: str) -> None:
    assert_refused(ws, path, fragment)


def test_git_file_of_worktree_refused(ws: Workspace) -> None:
    assert_refused(ws, ".git", ".git")


def test_symlinked_file_outside_worktree(ws: Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("keep\n")
    (ws.path / "leak.txt").symlink_to(outside / "secret.txt")
    assert_refused(ws, "leak.txt", "outside the worktree", outside)


def test_symlinked_directory_outside_worktree(ws: Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (ws.path / "vendor").symlink_to(outside, target_is_directory=True)
    assert_refused(ws, "vendor/new.txt", "outside the worktree", outside)
    assert list(outside.iterdir()) == []


def test_symlink_into_git_dir(ws: Workspace) -> None:
    (ws.path / "sneaky").symlink_to(".git")
    assert_refused(ws, "sneaky", ".git")


def test_fifo_refused(ws: Workspace) -> None:
    os.mkfifo(ws.path / "pipe")
    assert_refused(ws, "pipe", "not a regular file")


def test_socket_refused(ws: Workspace) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(ws.path / "sock"))
        assert_refused(ws, "sock", "not a regular file")


def test_device_file_refused(ws: Workspace) -> None:
    (ws.path / "null").symlink_to("/dev/null")
    assert_refused(ws, "null", "outside the worktree")


def test_binary_target_refused(ws: Workspace) -> None:
    (ws.path / "image.bin").write_bytes(b"\x89PNG\0\0\x01binary")
    assert_refused(ws, "image.bin", "binary")


def test_directory_target_refused(ws: Workspace) -> None:
    (ws.path / "pkg").mkdir()
    assert_refused(ws, "pkg", "directory")


def test_oversized_target_refused(git_repo: Path, tmp_path: Path) -> None:
    ws = Workspace.open_or_create(git_repo, "job-2", "x", home=tmp_path / "h", max_file_bytes=64)
    (ws.path / "big.txt").write_text("x" * 100)
    text = "big.txt\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n"
    with pytest.raises(UnsafePath, match="over the 64-byte limit"):
        ws.apply_edits(parse_edits(text))


def test_name_too_long_and_symlink_loop_refused(ws: Workspace) -> None:
    """Errors of the file system itself are refusals the model can fix, not a crash."""
    assert_refused(ws, "a" * 300 + ".py", "File name too long")
    (ws.path / "loop").symlink_to("loop")
    assert_refused(ws, "loop/x.py", "refused edit path")


def test_git_runs_no_command_named_by_the_repository_config(ws: Workspace,
                                                            tmp_path: Path) -> None:
    """A verification command can write the repository's git config: Tandem's own git
    calls must not run what it names (a hook, a file-system monitor)."""
    import subprocess

    marker = tmp_path / "ran"
    script = tmp_path / "evil.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(0o755)
    for key in ("core.fsmonitor", "core.hooksPath"):
        value = str(script) if key == "core.fsmonitor" else str(tmp_path)
        subprocess.run(["git", "config", key, value], cwd=ws.path, check=True)
    (tmp_path / "pre-commit").write_text(f"#!/bin/sh\ntouch {marker}\n")
    (tmp_path / "pre-commit").chmod(0o755)
    (ws.path / "app.py").write_text("def add(a, b):\n    return b + a\n")
    assert "app.py" in ws.changed_paths()
    ws.checkpoint("step", {"Tandem-Step": "1"})
    assert not marker.exists()
