"""What was delivered last time, so a second delivery updates the same PR in place.

One small JSON file per job (``<state_dir>/pr.json``), written atomically. It holds no
secret: the forge kind, PR number/iid and URL, the branch, the SHA last pushed (the lease
for the next force-with-lease push) and the SHA of a push begun but not known to have
finished (written before pushing: a delivery killed in mid-push leaves the remote branch at
a SHA the next delivery still knows as its own).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ValidationError

from orchestrator.errors import JobError

STATE_FILE = "pr.json"


class DeliveryState(BaseModel):
    kind: str
    branch: str
    remote: str | None = None
    repo: str | None = None
    number: int | None = None
    url: str | None = None
    pushed_sha: str | None = None
    pushing_sha: str | None = None
    bundle_dir: str | None = None


def load_state(state_dir: Path) -> DeliveryState | None:
    path = state_dir / STATE_FILE
    if not path.exists():
        return None
    try:
        return DeliveryState.model_validate_json(path.read_text())
    except (OSError, ValidationError) as exc:
        raise JobError(f"{path}: unreadable PR delivery state ({exc.__class__.__name__}); "
                       "delete the file to start a new PR") from exc


def save_state(state_dir: Path, state: DeliveryState) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(state.model_dump_json(indent=2))
    os.replace(tmp, path)
