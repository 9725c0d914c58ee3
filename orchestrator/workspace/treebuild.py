"""A commit's tree written in-process: the parent's tree with some files replaced.

Only the trees on the changed paths are read (loose or packed, through ``gitdb``) and
written (as loose objects); nothing walks the worktree or reads the index, so the cost
follows the change, not the size of the repository. Tree entries are git's: ``mode SP
name NUL sha``, sorted as git sorts them (a directory compares as ``name/``).
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from gitdb import GitDB, IStream
from gitdb.exc import BadObject

from orchestrator.errors import WorkspaceError

TREE_MODE = 0o40000
FILE_MODE = 0o100644
EXEC_MODE = 0o100755
GITLINK_MODE = 0o160000  # a submodule's commit

# path (bytes, "/"-separated) -> (mode, binary sha) to write, or None to delete; mode
# None keeps the file's mode in the base tree (executable or not), else 100644
Changes = dict[bytes, "tuple[int | None, bytes] | None"]
_Entries = dict[bytes, tuple[int, bytes]]


@lru_cache(maxsize=16)
def _database(objects_dir: str) -> GitDB:
    # One per object directory and process: pack files stay mapped once, not per job.
    return GitDB(objects_dir)


class ObjectStore:
    """Reads and writes the objects of one repository (SHA-1 object format)."""

    def __init__(self, objects_dir: Path) -> None:
        self._db = _database(os.fspath(objects_dir))

    def read(self, binsha: bytes) -> tuple[bytes, bytes]:
        """``(type, content)`` of an object; a pack written since is found too."""
        try:
            stream = self._db.stream(binsha)
        except BadObject:
            self._db.update_cache(force=True)
            stream = self._db.stream(binsha)
        return stream.type, stream.read()

    def write(self, kind: bytes, data: bytes) -> bytes:
        """Store ``data`` as a loose object unless it exists; returns its binary sha."""
        binsha = hashlib.sha1(b"%s %d\0" % (kind, len(data)) + data).digest()
        if not self._db.has_object(binsha):
            self._db.store(IStream(kind, len(data), BytesIO(data)))
        return binsha

    def tree_of(self, commit_hex: str) -> str:
        kind, data = self.read(bytes.fromhex(commit_hex))
        if kind != b"commit" or not data.startswith(b"tree "):
            raise BadObject(bytes.fromhex(commit_hex))
        return data[5:45].decode()


def build_tree(store: ObjectStore, base_tree: str, changes: Changes) -> str:
    """The tree of ``base_tree`` with ``changes`` applied (hex sha). Directories left
    empty disappear, as in git."""
    binsha = _build(store, bytes.fromhex(base_tree), changes)
    return (binsha or store.write(b"tree", b"")).hex()


def entry_of(store: ObjectStore, tree_hex: str, path: bytes) -> tuple[int, bytes] | None:
    """The ``(mode, sha)`` of ``path`` in a tree, or None."""
    binsha = bytes.fromhex(tree_hex)
    *dirs, name = path.split(b"/")
    for part in dirs:
        found = _entries(store, binsha).get(part)
        if found is None or found[0] != TREE_MODE:
            return None
        binsha = found[1]
    return _entries(store, binsha).get(name)


def gitlink_on(store: ObjectStore, tree_hex: str, path: bytes) -> bytes | None:
    """The part of ``path`` (itself, or a folder above it) that is a submodule (gitlink)
    in the tree, or None."""
    binsha = bytes.fromhex(tree_hex)
    parts = path.split(b"/")
    for i, part in enumerate(parts):
        found = _entries(store, binsha).get(part)
        if found is not None and found[0] == GITLINK_MODE:
            return b"/".join(parts[:i + 1])
        if found is None or found[0] != TREE_MODE:
            return None
        binsha = found[1]
    return None


def _build(store: ObjectStore, tree: bytes | None, changes: Changes) -> bytes | None:
    entries = _entries(store, tree) if tree is not None else {}
    below: dict[bytes, Changes] = {}
    for path, value in changes.items():
        head, sep, rest = path.partition(b"/")
        if sep:
            below.setdefault(head, {})[rest] = value
        elif value is None:
            entries.pop(head, None)
        else:
            _refuse_gitlink(entries, head)
            mode, binsha = value
            if mode is None:
                old = entries.get(head)
                mode = old[0] if old is not None and old[0] == EXEC_MODE else FILE_MODE
            entries[head] = (mode, binsha)
    for name, sub in below.items():
        _refuse_gitlink(entries, name)
        current = entries.get(name)
        subtree = current[1] if current is not None and current[0] == TREE_MODE else None
        new = _build(store, subtree, sub)
        if new is None:
            entries.pop(name, None)
        else:
            entries[name] = (TREE_MODE, new)
    if not entries:
        return None
    return store.write(b"tree", _serialise(entries))


def _refuse_gitlink(entries: _Entries, name: bytes) -> None:
    """A change may not replace a submodule (with a folder of new files, or a file): the
    commit would lose it without a word. Edits are refused before they get here."""
    current = entries.get(name)
    if current is not None and current[0] == GITLINK_MODE:
        raise WorkspaceError(f"{os.fsdecode(name)!r} is a submodule in the parent commit; a "
                             "change at or below it cannot be committed (nothing was)")


def _entries(store: ObjectStore, binsha: bytes) -> _Entries:
    kind, data = store.read(binsha)
    if kind != b"tree":
        raise BadObject(binsha)
    out: _Entries = {}
    i = 0
    while i < len(data):
        space = data.index(b" ", i)
        nul = data.index(b"\0", space)
        out[data[space + 1:nul]] = (int(data[i:space], 8), data[nul + 1:nul + 21])
        i = nul + 21
    return out


def _serialise(entries: _Entries) -> bytes:
    def key(name: bytes) -> bytes:
        return name + b"/" if entries[name][0] == TREE_MODE else name

    return b"".join(b"%o %s\0%s" % (entries[name][0], name, entries[name][1])
                    for name in sorted(entries, key=key))
