"""Every Redis key Tandem uses, with its lifetime.

All keys start with a deployment prefix (``tandem`` by default) so that several
deployments, or tests, can share one Redis. Free-form parts (thread ids, namespaces,
run ids) are percent-quoted, so a ``:`` inside them can never make two keys collide.

Lifetimes: Redis is the durable store (AOF on), so nothing a job needs expires on its
own unless stated below. Checkpoint keys expire only when the saver is given ``ttl_s``
(every write of a thread then pushes the expiry of all of that thread's keys forward).
"""

from __future__ import annotations

from urllib.parse import quote

DEFAULT_PREFIX = "tandem"

# The consumer group every worker reads the job stream with (a name, not a key).
WORKER_GROUP = "workers"

# Cancel markers and event streams outlive the job by this long, so `tandem show` and a
# late worker still see them; then they go.
JOB_AUX_TTL_S = 7 * 24 * 3600


def _q(part: str) -> str:
    return quote(str(part), safe="")


# --- LangGraph checkpoints (orchestrator/store/redis_saver.py) --------------------------


def lg_threads(prefix: str) -> str:
    """SET of every thread id with checkpoints (for ``list(None)``). No TTL; entries of
    expired threads are skipped when read."""
    return f"{prefix}:lg:threads"


def lg_namespaces(prefix: str, thread_id: str) -> str:
    """SET of the checkpoint namespaces of one thread. TTL: the saver's ``ttl_s``."""
    return f"{prefix}:lg:t:{_q(thread_id)}:nss"


def lg_ids(prefix: str, thread_id: str, ns: str) -> str:
    """ZSET (all scores 0, ordered by member) of the checkpoint ids of one thread and
    namespace; ids are time-ordered UUIDv6 strings, so lexical order is age order.
    TTL: the saver's ``ttl_s``."""
    return f"{prefix}:lg:t:{_q(thread_id)}:n:{_q(ns)}:ids"


def lg_blobs(prefix: str, thread_id: str, ns: str) -> str:
    """HASH ``[channel, version]`` -> serialized channel value, one entry per channel
    version (versions are unique per branch, so forks never overwrite each other).
    TTL: the saver's ``ttl_s``."""
    return f"{prefix}:lg:t:{_q(thread_id)}:n:{_q(ns)}:blobs"


def lg_checkpoint_prefix(prefix: str, thread_id: str, ns: str) -> str:
    """Common start of the checkpoint keys of one thread and namespace."""
    return f"{prefix}:lg:t:{_q(thread_id)}:n:{_q(ns)}:cp:"


def lg_checkpoint(prefix: str, thread_id: str, ns: str, checkpoint_id: str) -> str:
    """HASH of one checkpoint: the checkpoint, its metadata, its parent id, and its
    pending writes (``w:[task_id, idx]`` fields). TTL: the saver's ``ttl_s``."""
    return lg_checkpoint_prefix(prefix, thread_id, ns) + checkpoint_id


def lg_run(prefix: str, run_id: str) -> str:
    """SET of ``[thread, ns, checkpoint]`` written by one run (for ``delete_for_runs``).
    TTL: the saver's ``ttl_s``."""
    return f"{prefix}:lg:run:{_q(run_id)}"


# --- the job queue (orchestrator/queue/) -------------------------------------------------


def job_stream(prefix: str) -> str:
    """STREAM of submitted jobs (one entry per submission), read by the ``workers``
    group. Entries are acknowledged on a terminal state; the stream is trimmed to
    ``MAXLEN ~ 100000``."""
    return f"{prefix}:q:jobs"


def dead_letters(prefix: str) -> str:
    """STREAM of jobs that hit the delivery cap (``MAXLEN ~ 10000``). No TTL."""
    return f"{prefix}:q:dead"


def jobs_index(prefix: str) -> str:
    """ZSET job id -> submission time in ms (for ``tandem jobs``). No TTL."""
    return f"{prefix}:q:index"


def job(prefix: str, job_id: str) -> str:
    """HASH of one job: spec, state, attempts, worker, times, result. No TTL: it is the
    job's record (deleted only by an explicit clean-up)."""
    return f"{prefix}:job:{_q(job_id)}"


def lease(prefix: str, job_id: str) -> str:
    """STRING ``<worker>:<token>``: who runs the job now. Expires (``PX``) unless renewed
    by its worker's heartbeat, about three heartbeats after the worker dies."""
    return f"{prefix}:lease:{_q(job_id)}"


def fence(prefix: str, job_id: str) -> str:
    """STRING counter, INCR'd for every lease granted: the fencing token. No TTL (a reset
    counter could hand an old token out again)."""
    return f"{prefix}:fence:{_q(job_id)}"


def cancel_flag(prefix: str, job_id: str) -> str:
    """STRING set when a user cancels the job. TTL: ``JOB_AUX_TTL_S``."""
    return f"{prefix}:cancel:{_q(job_id)}"


def cancel_channel(prefix: str) -> str:
    """Pub/sub channel announcing cancelled job ids (not stored)."""
    return f"{prefix}:cancel"


def job_events(prefix: str, job_id: str) -> str:
    """STREAM of a job's events (``MAXLEN ~ 10000``) for ``tandem show --follow``.
    TTL: ``JOB_AUX_TTL_S`` after the last event."""
    return f"{prefix}:events:{_q(job_id)}"


# --- steering (orchestrator/control.py) ---------------------------------------------------


def steer_channel(prefix: str, job_id: str) -> str:
    """Pub/sub channel on which ``tandem steer`` reaches a job running on a worker (not
    stored: a steer sent while no worker runs the job is refused, never kept)."""
    return f"{prefix}:steer:{_q(job_id)}"


def steer_reply_channel(prefix: str, nonce: str) -> str:
    """Pub/sub channel on which the job acknowledges one steer to its sender (not stored;
    ``nonce`` is random per steer)."""
    return f"{prefix}:steer-reply:{_q(nonce)}"
