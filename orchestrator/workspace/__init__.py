"""The job workspace: per-job git worktrees, checkpoints and safe edit application.

    from orchestrator.workspace import Workspace, parse_edits

    ws = Workspace.open_or_create(repo, job_id, slug)
    result = ws.apply_edits(parse_edits(model_text))
    info = ws.checkpoint("step 1: ...", receipt.trailers(), result.changed_paths)
"""

from orchestrator.workspace.apply import ApplyResult
from orchestrator.workspace.commits import CheckpointInfo
from orchestrator.workspace.edits import EditBlock, parse_edits
from orchestrator.workspace.workspace import Workspace

__all__ = ["ApplyResult", "CheckpointInfo", "EditBlock", "Workspace", "parse_edits"]
