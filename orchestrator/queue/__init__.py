"""The job queue on Redis Streams: ``JobQueue`` (submit, cancel, status, events),
``Worker`` (takes jobs, runs a handler under a fenced lease), ``JobContext`` and
``JobResult`` (the handler's seam). Key names live in ``orchestrator/keys.py``.
"""

from orchestrator.queue.context import Handler, JobContext, JobResult
from orchestrator.queue.jobs import TERMINAL, JobQueue
from orchestrator.queue.lease import Lease
from orchestrator.queue.worker import Worker

__all__ = ["TERMINAL", "Handler", "JobContext", "JobQueue", "JobResult", "Lease", "Worker"]
