"""The edit format: parse a model's response into search/replace, new-file and delete blocks.

The format is documented in docs/EDIT_FORMAT.md. The parser is tolerant of what models
do around the blocks (fences, ``File:`` prefixes, backticks, CRLF, trailing spaces) and
strict inside them; a malformed block raises ``EditApplyError`` with a message written for
the model: which block, which line of its response, and what to fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from orchestrator.errors import EditApplyError

_SEARCH = re.compile(r"^\s*<{5,9} ?SEARCH\s*$")
_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_REPLACE = re.compile(r"^\s*>{5,9} ?REPLACE\s*$")
_DELETE_OPEN = re.compile(r"^\s*<{5,9} ?DELETE\s*$")
_DELETE_CLOSE = re.compile(r"^\s*>{5,9} ?DELETE\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)[\w+.-]*\s*$")
_PATH_PREFIX = re.compile(r"^(?:#+\s*)?(?:file(?:name)?|path)\s*:\s*", re.IGNORECASE)


@dataclass(frozen=True)
class EditBlock:
    """One operation from a model's response, in the order it was written.

    ``search`` empty means "create this file" (or fill an empty one); ``delete`` means
    remove the file. ``index`` is 1-based; ``line`` is the block's first line in the response.
    """

    path: str
    search: str
    replace: str
    delete: bool = False
    index: int = 0
    line: int = 0

    @property
    def is_create(self) -> bool:
        return not self.delete and self.search == ""


def parse_edits(text: str) -> list[EditBlock]:
    """Parse every block in ``text``; text outside blocks is ignored."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    blocks: list[EditBlock] = []
    i = 0
    while i < len(lines):
        if _SEARCH.match(lines[i]):
            block, i = _parse_search(lines, i, blocks)
            blocks.append(block)
        elif _DELETE_OPEN.match(lines[i]):
            block, i = _parse_delete(lines, i, blocks)
            blocks.append(block)
        elif _REPLACE.match(lines[i]) or _DELETE_CLOSE.match(lines[i]):
            raise _malformed(len(blocks) + 1, i, "a closing marker without its opening "
                             "'<<<<<<< SEARCH' or '<<<<<<< DELETE' line")
        else:
            i += 1
    return blocks


def _parse_search(lines: list[str], start: int, done: list[EditBlock]) -> tuple[EditBlock, int]:
    number = len(done) + 1
    path = _path_before(lines, start, done, number)
    divider = _find(lines, start + 1, _DIVIDER, number, "'=======' after the SEARCH lines")
    end = _find(lines, divider + 1, _REPLACE, number, "'>>>>>>> REPLACE' closing the block")
    search = _join(lines[start + 1 : divider])
    replace = _join(lines[divider + 1 : end])
    block = EditBlock(path, search, replace, index=number, line=start + 1)
    return block, end + 1


def _parse_delete(lines: list[str], start: int, done: list[EditBlock]) -> tuple[EditBlock, int]:
    number = len(done) + 1
    path = _path_before(lines, start, done, number)
    end = start + 1
    while end < len(lines) and not lines[end].strip():
        end += 1
    if end >= len(lines) or not _DELETE_CLOSE.match(lines[end]):
        raise _malformed(number, start, "'<<<<<<< DELETE' must be followed directly by "
                         "'>>>>>>> DELETE'")
    return EditBlock(path, "", "", delete=True, index=number, line=start + 1), end + 1


def _find(lines: list[str], start: int, marker: re.Pattern[str], number: int, what: str) -> int:
    for j in range(start, len(lines)):
        if marker.match(lines[j]):
            return j
        if _SEARCH.match(lines[j]) or _DELETE_OPEN.match(lines[j]):
            break
    raise _malformed(number, start - 1, f"missing {what}")


def _path_before(lines: list[str], start: int, done: list[EditBlock], number: int) -> str:
    """The path line above a block: skip blank and fence lines; reuse the last path when
    the previous block ends right there (several blocks for one file)."""
    j = start - 1
    while j >= 0 and (not lines[j].strip() or _FENCE.match(lines[j])):
        j -= 1
    if j >= 0 and (_REPLACE.match(lines[j]) or _DELETE_CLOSE.match(lines[j])) and done:
        return done[-1].path
    path = _clean_path(lines[j]) if j >= 0 else ""
    if not path or (" " in path and not _looks_like_path(path)):
        raise _malformed(number, start, "no file path on the line before the block; put the "
                         "path alone on that line")
    return path


def _clean_path(line: str) -> str:
    path = _PATH_PREFIX.sub("", line.strip())
    path = path.strip().strip("`*").strip()
    return path.rstrip(":").strip()


def _looks_like_path(path: str) -> bool:
    return "/" in path or "." in path.rsplit(" ", 1)[-1]


def _join(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def _malformed(number: int, index: int, what: str) -> EditApplyError:
    return EditApplyError(
        f"edit block {number} (line {index + 1} of your response) is malformed: {what}. "
        "Nothing was applied; resend the whole edit."
    )
