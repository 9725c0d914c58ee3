"""The one exception tree of Tandem.

Foreign errors (httpx, websockets, redis, git, yaml) are translated where they enter,
chained with ``raise ... from exc``. Everything a user can cause or fix is a
``TandemError``; the CLI prints its ``str()`` as one line and exits non-zero. Anything
else is a programming error and crashes loudly with a traceback.

    TandemError
    ├── ConfigError                   bad settings or command-line input
    │   ├── PolicyError               a policy file that does not validate (file, line, field)
    │   └── SimConfigError            a bad simulator tape, profile or fault (file in the message)
    ├── ModelError                    talking to a model provider (endpoint in the message)
    │   ├── ModelConnectError         endpoint unreachable / handshake failed
    │   ├── ModelTLSError             TLS handshake refused: untrusted certificate, not TLS
    │   ├── ModelTimeout              connect, first-token or idle timeout
    │   ├── ModelProtocolError        the server is not speaking the expected protocol
    │   ├── ModelHTTPError            an HTTP-equivalent error status (``status``)
    │   │   ├── AuthenticationError   401 / 403: check the key's env var
    │   │   ├── ModelNotFound         404: unknown model or wrong base URL
    │   │   ├── RateLimited           429 (``retry_after_s``)
    │   │   └── ServerError           5xx
    │   ├── StreamInterrupted         the stream ended before a terminal event
    │   ├── ResponseFailed            terminal ``failed`` / ``incomplete`` event
    │   ├── PreviousResponseNotFound  server lost the chained response state
    │   ├── ConnectionLimitReached    WebSocket connection lifetime limit
    │   ├── InvalidModelOutput        a structured answer that did not validate after repairs
    │   └── ServedModelMismatch       the provider served another model than requested
    ├── WorkspaceError                git worktrees, checkpoints, edits
    │   ├── GitError                  a git command failed
    │   │   ├── CheckpointPushFailed  pushing refs/tandem/jobs/<job> to the shared remote
    │   │   └── CheckpointMissing     a checkpoint neither local nor fetchable from the remote
    │   ├── UnsafePath                an edit path outside the worktree, under .git, ...
    │   └── EditApplyError            an edit that does not apply (an observation for the model)
    ├── StoreError                    graph-state storage and the job queue
    │   ├── RedisUnavailable          Redis not reachable (URL in the message)
    │   └── LeaseLost                 this worker's fencing token is stale
    ├── JobError                      job bookkeeping
    │   ├── JobNotFound
    │   └── JobNotRunning             no live process of the job to steer (job id in the message)
    ├── ForgeError                    pushing and opening pull requests (``status``)
    │   ├── PushRejected
    │   ├── SecretDetected            a secret would leave the machine: blocked
    │   ├── ForgeAuthError            401 / 403: check the token's env var and scopes
    │   ├── ForgeNotFound             404: wrong repository, API URL, or no access
    │   ├── ForgeValidationError      422: the forge refused the request's content
    │   └── ForgeRateLimited          429, or 403 with no requests left (``retry_after_s``)
    └── ControlFlow                   caught in one place, the graph's step runner
        ├── Escalate                  (``reason``)
        ├── BudgetExceeded            (``budget``, ``used``, ``limit``)
        ├── ApprovalRequired          (``rule_id``, ``reason``)
        └── JobCancelled
"""

from __future__ import annotations


class TandemError(Exception):
    """Base of every error a user can cause or fix."""


# --- configuration -----------------------------------------------------------------


class ConfigError(TandemError):
    """Bad settings or command-line input."""


class PolicyError(ConfigError):
    """A policy that does not validate; the message names file, line and field."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.field = field
        where = file or "<policy>"
        if line is not None:
            where += f":{line}"
        if field:
            where += f": {field}"
        super().__init__(f"{where}: {message}")


class SimConfigError(ConfigError):
    """A simulator tape, speed profile or fault that does not validate."""


# --- models ------------------------------------------------------------------------


class ModelError(TandemError):
    """Talking to a model provider failed."""

    def __init__(self, message: str, *, endpoint: str | None = None) -> None:
        self.endpoint = endpoint
        super().__init__(f"{message} [{endpoint}]" if endpoint else message)


class ModelConnectError(ModelError):
    """The endpoint could not be reached, or the handshake failed."""


class ModelTLSError(ModelError):
    """The TLS handshake failed (an untrusted certificate, a plain server on a TLS port):
    a setting to fix, so never retried and never a reason to leave the WebSocket."""


class ModelTimeout(ModelError):
    """A connect, first-token or idle timeout expired."""


class ModelProtocolError(ModelError):
    """The server answered, but not in the protocol the client speaks."""


class ModelHTTPError(ModelError):
    """An HTTP(-equivalent) error status from the provider."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        endpoint: str | None = None,
        code: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        super().__init__(message, endpoint=endpoint)


class AuthenticationError(ModelHTTPError):
    """401/403: the key is missing, wrong or not allowed."""


class ModelNotFound(ModelHTTPError):
    """404: unknown model, or a base URL that does not serve this API."""


class RateLimited(ModelHTTPError):
    """429: too many requests; ``retry_after_s`` when the server said."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 429,
        endpoint: str | None = None,
        code: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message, status=status, endpoint=endpoint, code=code)


class ServerError(ModelHTTPError):
    """5xx from the provider."""


class StreamInterrupted(ModelError):
    """The stream ended (close, EOF, drop) before a terminal event."""


class ResponseFailed(ModelError):
    """The provider ended the response as failed or incomplete."""

    def __init__(
        self, message: str, *, endpoint: str | None = None, reason: str | None = None
    ) -> None:
        self.reason = reason
        super().__init__(message, endpoint=endpoint)


class PreviousResponseNotFound(ModelError):
    """The server no longer holds the state ``previous_response_id`` points at."""


class ConnectionLimitReached(ModelError):
    """The WebSocket reached its lifetime limit; a new connection is needed."""


class InvalidModelOutput(ModelError):
    """A structured answer (a plan, a PR title) that did not validate after its repairs."""


class ServedModelMismatch(ModelError):
    """The provider reports serving another model than the one requested."""

    def __init__(self, requested: str, served: str, *, endpoint: str | None = None) -> None:
        self.requested = requested
        self.served = served
        super().__init__(f"requested model {requested!r} but served {served!r}", endpoint=endpoint)


# --- workspace ---------------------------------------------------------------------


class WorkspaceError(TandemError):
    """Worktrees, checkpoints and edits."""


class GitError(WorkspaceError):
    """A git command failed."""


class CheckpointPushFailed(GitError):
    """A checkpoint could not be pushed to the shared remote (remote named, no credentials)."""


class CheckpointMissing(GitError):
    """A checkpoint is not in the local repository and could not be fetched from the remote."""


class UnsafePath(WorkspaceError):
    """An edit target outside the worktree, under .git, a device, a binary, ..."""


class EditApplyError(WorkspaceError):
    """An edit that does not apply; the message is written for the model to read."""


# --- storage and queue -------------------------------------------------------------


class StoreError(TandemError):
    """Graph-state storage and the job queue."""


class RedisUnavailable(StoreError):
    """Redis could not be reached."""


class LeaseLost(StoreError):
    """This worker no longer holds the job's lease (a newer fencing token exists)."""


# --- jobs --------------------------------------------------------------------------


class JobError(TandemError):
    """Job bookkeeping."""


class JobNotFound(JobError):
    """No job with that id."""


class JobNotRunning(JobError):
    """The job has no live process listening for steering messages."""


class JobBusy(JobError):
    """Another process is running the job on this machine."""


# --- forge -------------------------------------------------------------------------


class ForgeError(TandemError):
    """Pushing a branch or opening a pull request failed."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class PushRejected(ForgeError):
    """The remote rejected the push; the local branch and bundle are intact."""


class SecretDetected(ForgeError):
    """A secret would leave the machine; nothing was sent."""


class ForgeAuthError(ForgeError):
    """401/403 from the forge: the token is missing, wrong or lacks a scope."""


class ForgeNotFound(ForgeError):
    """404 from the forge: unknown repository or pull request, or one the token cannot see."""


class ForgeValidationError(ForgeError):
    """422 from the forge: the request was understood but refused (e.g. unknown base)."""


class ForgeRateLimited(ForgeError):
    """The forge's rate limit was reached; ``retry_after_s`` when the forge said."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message, status=status)


# --- control flow (caught only by the graph's step runner) --------------------------


class ControlFlow(TandemError):
    """Signals that steer the graph; never shown to users as failures."""


class Escalate(ControlFlow):
    def __init__(self, reason: str, *, rule_id: str | None = None) -> None:
        self.reason = reason
        self.rule_id = rule_id
        super().__init__(reason)


class BudgetExceeded(ControlFlow):
    def __init__(self, budget: str, used: float, limit: float) -> None:
        self.budget = budget
        self.used = used
        self.limit = limit
        # The policy setting to raise (``tandem resume JOB -s SETTING=N``).
        self.setting = f"budgets.max_{budget}"
        super().__init__(f"budget {budget} exceeded: {used:g} of {limit:g} "
                         f"(raise {self.setting} to go on)")


class ApprovalRequired(ControlFlow):
    def __init__(self, reason: str, *, rule_id: str | None = None) -> None:
        self.reason = reason
        self.rule_id = rule_id
        super().__init__(reason)


class JobCancelled(ControlFlow):
    """The job was cancelled by a user."""
