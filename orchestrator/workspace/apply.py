"""Applying parsed edit blocks to a worktree, all-or-nothing.

``prepare_edits`` checks every path, reads every file once and computes every new content
in memory; any failure raises before a single byte is written. ``EditPlan.write`` then
re-checks that no file changed on disk since it was read (a verification command may
still be writing) and writes each file atomically (temp file + rename), undoing earlier
writes if a later one fails.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import EditApplyError, UnsafePath
from orchestrator.workspace.edits import EditBlock
from orchestrator.workspace.match import NoMatch, closest_lines, replace_once
from orchestrator.workspace.paths import safe_target

DEFAULT_MAX_EDIT_BYTES = 2 * 1024 * 1024
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass
class ApplyResult:
    """What an applied edit changed. Paths are relative to the worktree root."""

    changed_paths: list[str]
    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    fuzzy_blocks: list[int] = field(default_factory=list)
    blocks_applied: int = 0


@dataclass
class _FileState:
    rel: str
    abs_path: Path
    original: bytes | None  # None: did not exist
    stamp: tuple[int, int, int] | None
    crlf: bool
    text: str | None  # None: deleted (or never created)


@dataclass
class EditPlan:
    """Every file's new content, computed and checked, not yet written."""

    files: dict[str, _FileState]
    fuzzy_blocks: list[int]
    blocks_applied: int

    def contents(self) -> dict[str, bytes | None]:
        """Each file's content once written (None: deleted, or never created)."""
        return {rel: _new_bytes(state) for rel, state in self.files.items()}

    def write(self) -> ApplyResult:
        changed = [f for f in self.files.values() if _new_bytes(f) != f.original]
        for state in changed:
            _check_unchanged(state)
        done: list[_FileState] = []
        try:
            for state in changed:
                _write_one(state)
                done.append(state)
        except OSError as exc:
            for state in reversed(done):
                _undo_one(state)
            raise EditApplyError(f"could not write {state.rel}: {exc.strerror}; "
                                 "nothing was applied") from exc
        return ApplyResult(
            changed_paths=[s.rel for s in changed],
            created=[s.rel for s in changed if s.original is None],
            deleted=[s.rel for s in changed if s.text is None],
            fuzzy_blocks=self.fuzzy_blocks,
            blocks_applied=self.blocks_applied,
        )


def prepare_edits(
    root: Path, blocks: list[EditBlock], max_file_bytes: int = DEFAULT_MAX_EDIT_BYTES
) -> EditPlan:
    """Check and compute every block; raises UnsafePath / EditApplyError, writes nothing."""
    root = Path(os.path.realpath(root))
    files: dict[str, _FileState] = {}
    fuzzy: list[int] = []
    problems: list[str] = []
    for block in blocks:
        state = _state_for(root, block, files, max_file_bytes)
        try:
            if _apply_block(state, block):
                fuzzy.append(block.index)
        except NoMatch as exc:
            problems.append(_describe_failure(block, state, exc.reason))
    if problems:
        raise EditApplyError(
            f"{len(problems)} of {len(blocks)} edit blocks did not apply; nothing was "
            "written. Resend all blocks, fixed.\n" + "\n".join(problems)
        )
    # What an edit writes is bounded like what it reads: a model cannot create or grow a
    # file past the limit (which the gate could not scan and the checkpoint would leave out).
    too_big = [(rel, n) for rel, n in ((rel, len(_new_bytes(st) or b"")) for rel, st in
                                       files.items()) if n > max_file_bytes]
    if too_big:
        raise EditApplyError(
            "the edit would make " + ", ".join(f"{rel} {n} bytes" for rel, n in too_big)
            + f", over the {max_file_bytes}-byte limit for edited files; nothing was "
            "written. Resend the blocks with smaller files."
        )
    return EditPlan(files, fuzzy, len(blocks))


def _state_for(
    root: Path, block: EditBlock, files: dict[str, _FileState], max_file_bytes: int
) -> _FileState:
    rel, abs_path = safe_target(root, block.path)
    if rel in files:
        return files[rel]
    try:
        st = abs_path.stat()
    except FileNotFoundError:
        files[rel] = _FileState(rel, abs_path, None, None, False, None)
        return files[rel]
    if st.st_size > max_file_bytes:
        raise UnsafePath(f"refused edit path {rel!r}: {st.st_size} bytes is over the "
                         f"{max_file_bytes}-byte limit for edited files")
    raw = abs_path.read_bytes()
    crlf = raw.count(b"\r\n") * 2 > raw.count(b"\n")
    text = raw.decode("utf-8", "surrogateescape").replace("\r\n", "\n")
    files[rel] = _FileState(rel, abs_path, raw, (st.st_mtime_ns, st.st_size, st.st_ino),
                            crlf, text)
    return files[rel]


def _apply_block(state: _FileState, block: EditBlock) -> bool:
    """Apply one block to the in-memory state; True when matched ignoring whitespace."""
    if "\0" in block.replace:
        # A NUL byte makes git (and the gate's diff) treat the file as binary: its
        # content would pass the gate unseen. Edits are text.
        raise NoMatch("the replacement holds a NUL byte; edits are text only")
    if _SURROGATE.search(block.replace):
        # Not text: it cannot be encoded (a crash at write time) or, as an escaped byte,
        # would smuggle bytes that are not UTF-8 into the file.
        raise NoMatch("the replacement holds a lone surrogate (not valid Unicode); "
                      "edits are UTF-8 text")
    if block.delete:
        if state.text is None:
            raise NoMatch("the file to delete does not exist")
        state.text = None
        return False
    if block.is_create:
        if state.text:
            raise NoMatch("the SEARCH section is empty but the file already exists and is "
                          "not empty; quote the lines to replace")
        state.text = block.replace
        return False
    if state.text is None:
        raise NoMatch("the file does not exist; to create it, leave the SEARCH section empty")
    result = replace_once(state.text, block.search, block.replace)
    state.text = result.text
    return result.fuzzy


def _describe_failure(block: EditBlock, state: _FileState, reason: str) -> str:
    head = f"- block {block.index} ({block.path}, line {block.line} of your response): {reason}."
    if not state.text or not block.search:
        return head
    first, text = closest_lines(state.text, block.search)
    if not text:
        return head
    return f"{head}\n  Closest lines in {state.rel} (from line {first}):\n" + "\n".join(
        f"  | {line}" for line in text.splitlines()
    )


def _new_bytes(state: _FileState) -> bytes | None:
    if state.text is None:
        return None
    text = state.text.replace("\n", "\r\n") if state.crlf else state.text
    return text.encode("utf-8", "surrogateescape")


def _check_unchanged(state: _FileState) -> None:
    try:
        st = state.abs_path.stat()
        now: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
    except FileNotFoundError:
        now = None
    if now != state.stamp:
        raise EditApplyError(
            f"{state.rel} changed on disk while the edit was being applied (is a command "
            "still writing to it?); nothing was written. Re-read the file and resend."
        )


def _write_one(state: _FileState) -> None:
    data = _new_bytes(state)
    if data is None:
        state.abs_path.unlink()
        return
    state.abs_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(state.abs_path, data)


def _undo_one(state: _FileState) -> None:
    try:
        if state.original is None:
            state.abs_path.unlink(missing_ok=True)
        else:
            _atomic_write(state.abs_path, state.original)
    except OSError:
        pass  # best effort: the original error is what the caller must see


def _atomic_write(path: Path, data: bytes) -> None:
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    # A short name of its own: one built from the file's would pass the 255-byte limit on
    # names for files whose own name is near it.
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tandem-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode if mode is not None else 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
