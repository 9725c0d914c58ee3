"""Checkpoint commit messages: subject, body and ``Key: value`` trailers, both ways.

The format is what ``git interpret-trailers`` reads: the trailers are the last paragraph,
one ``Key: value`` per line. Values are flattened to one line; keys are restricted to
letters, digits and dashes so a model-written value can never forge another trailer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from orchestrator.errors import WorkspaceError

STEP_TRAILER = "Tandem-Step"
SKIPPED_TRAILER = "Tandem-Skipped-Files"
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
# Field and record separators for `git log` output (never present in trailers we write).
FS, RS = "\x1f", "\x1e"
LOG_FORMAT = f"%H{FS}%P{FS}%ct{FS}%s{FS}%(trailers:only,unfold){RS}"


@dataclass
class CheckpointInfo:
    """One checkpoint commit on the job branch.

    ``skipped``/``warnings`` and the timings are filled for a checkpoint just made;
    ``created`` is False when nothing changed and the current head was returned.
    """

    sha: str
    step: int | None
    subject: str
    trailers: dict[str, str]
    parent: str | None = None
    created: bool = True
    time: int = 0
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    scan_s: float = 0.0
    commit_s: float = 0.0
    total_s: float = 0.0


def format_message(message: str, trailers: dict[str, str]) -> str:
    """Subject + blank line + body + blank line + trailers."""
    text = message.strip() or "Tandem checkpoint"
    lines = []
    for key, value in trailers.items():
        if not _KEY.match(key):
            raise WorkspaceError(f"invalid checkpoint trailer key {key!r}: use letters, "
                                 "digits and dashes")
        lines.append(f"{key}: {' '.join(str(value).split())}")
    if not lines:
        return text + "\n"
    return f"{text}\n\n" + "\n".join(lines) + "\n"


def parse_trailers(block: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in block.splitlines():
        key, sep, value = line.partition(":")
        if sep and _KEY.match(key.strip()):
            out[key.strip()] = value.strip()
    return out


def step_of(trailers: dict[str, str]) -> int | None:
    value = trailers.get(STEP_TRAILER, "")
    return int(value) if value.isdigit() else None


def parse_log(out: str) -> list[CheckpointInfo]:
    """Parse ``git log --format=LOG_FORMAT`` output, newest first."""
    infos = []
    for record in out.split(RS):
        record = record.strip("\n")
        if not record:
            continue
        sha, parents, ctime, subject, trailer_block = record.split(FS)
        trailers = parse_trailers(trailer_block)
        infos.append(CheckpointInfo(
            sha=sha,
            step=step_of(trailers),
            subject=subject,
            trailers=trailers,
            parent=parents.split()[0] if parents else None,
            time=int(ctime),
        ))
    return infos
