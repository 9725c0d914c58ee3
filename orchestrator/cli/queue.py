"""``tandem submit``, ``tandem worker`` and ``tandem cancel``: jobs on a shared Redis."""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from orchestrator import keys
from orchestrator.cli import emit_json
from orchestrator.config import get_settings
from orchestrator.errors import ConfigError
from orchestrator.queue import Handler, JobQueue, Worker
from orchestrator.store.connection import async_client, redis_errors, safe_url

T = TypeVar("T")
DEFAULT_HANDLER = "orchestrator.queue.graph_job:run_queued_job"
REDIS_SCHEMES = ("redis", "rediss", "unix")


def check_redis_url(url: str, source: str = "--redis-url") -> str:
    """``url`` if redis-py can open it; otherwise one ``ConfigError`` naming ``source`` (the
    option or variable the URL came from) instead of redis-py's ``ValueError``."""
    from redis.connection import parse_url

    try:
        shown = safe_url(url)
    except ValueError:  # a malformed port or host: redact the whole authority
        shown = url.split("@")[-1] if "@" in url else url
    use = "use redis://host:port/db, rediss:// or unix://"
    if not url.lower().startswith(tuple(f"{s}://" for s in REDIS_SCHEMES)):
        raise ConfigError(f"{source} {shown!r}: not a Redis URL ({use})")
    try:
        parse_url(url)
    except ValueError as exc:
        raise ConfigError(f"{source} {shown!r}: not a valid Redis URL: {exc} ({use})") from None
    return url


def redis_url_callback(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> str | None:
    return None if value is None else check_redis_url(value)


redis_url_option = click.option(
    "--redis-url", metavar="URL", callback=redis_url_callback,
    help="Redis holding the queue (default: TANDEM_REDIS_URL), e.g. redis://host:6379/0.",
)
prefix_option = click.option(
    "--prefix", default=keys.DEFAULT_PREFIX, show_default=True,
    help="Key prefix of the deployment (several deployments can share one Redis).",
)


def resolve_redis_url(redis_url: str | None) -> str:
    """The URL given, else TANDEM_REDIS_URL; either checked to be a Redis URL."""
    env_url = get_settings().redis_url
    url = redis_url or env_url
    if not url:
        raise ConfigError("no Redis configured: pass --redis-url or set TANDEM_REDIS_URL")
    # callers may pass the variable's value on as if given (`tandem jobs`, `tandem show`)
    return check_redis_url(url, "TANDEM_REDIS_URL" if url == env_url else "--redis-url")


def run_with_queue(
    redis_url: str | None, prefix: str, body: Callable[[JobQueue], Awaitable[T]]
) -> T:
    """Run ``body`` with a queue on a reachable Redis (one clear error otherwise)."""
    url = resolve_redis_url(redis_url)

    async def main() -> T:
        client = async_client(url)
        with redis_errors(safe_url(url)):
            await client.ping()
        return await body(JobQueue(client, prefix))

    return asyncio.run(main())


@click.command()
@click.argument("repo")
@click.argument("task")
@click.option("--policy", help="Policy name or path for the job (default: the configured one).")
@click.option("--base-ref", default="HEAD", show_default=True, help="Ref the job branches from.")
@click.option("--test", "test_cmd", help="Verification command run after every step.")
@click.option("--set", "-s", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Policy override for this job (repeatable).")
@click.option("--pr", "pr_kind", type=click.Choice(["bundle", "github", "gitlab", "none"]),
              default="bundle", show_default=True, help="Where the result goes.")
@click.option("--tape", type=click.Path(exists=True, dir_okay=False, resolve_path=True),
              help="Scripted answers for the simulated provider (tiers at sim://); the "
                   "workers read it at this path.")
@redis_url_option
@prefix_option
@click.option("--json", "as_json", is_flag=True, help="Print the job as JSON.")
def submit(
    repo: str, task: str, policy: str | None, base_ref: str, test_cmd: str | None,
    overrides: tuple[str, ...], pr_kind: str, tape: str | None, redis_url: str | None,
    prefix: str, as_json: bool,
) -> None:
    """Queue TASK on REPO for the workers of a shared Redis; prints the job id.

    REPO is a path every worker can reach (or a git URL); TASK `-` reads the task from
    stdin. Follow the job with
    `tandem show JOB --follow`; stop it with `tandem cancel JOB`.
    """
    from orchestrator.cli.jobs import check_task, check_test_cmd, read_task

    task = read_task(task)
    check_task(task)
    check_test_cmd(test_cmd)
    local = Path(repo).expanduser()
    _check_submission(local, policy, overrides, base_ref)
    if tape is not None:
        from orchestrator.sim import load_tape

        load_tape(tape)  # a worker would fail the job on it: say so now
    spec: dict[str, Any] = {
        "repo": str(local.resolve()) if local.exists() else repo,
        "task": task,
        "policy": policy or get_settings().policy,
        "base_ref": base_ref,
        "test_cmd": test_cmd,
        "overrides": list(overrides),
        "pr": pr_kind,
        "tape": tape,
    }
    job_id = run_with_queue(redis_url, prefix, lambda q: q.submit(spec))
    if as_json:
        emit_json({"job_id": job_id, "state": "queued", **spec})
    else:
        click.echo(job_id)


@click.command()
@click.argument("job_id")
@redis_url_option
@prefix_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def cancel(job_id: str, redis_url: str | None, prefix: str, as_json: bool) -> None:
    """Cancel JOB_ID: a queued job never starts; a running one stops within a heartbeat
    (its last checkpoint and commits stay). Without Redis, a job running on this machine
    is stopped as by Ctrl-C, and stays resumable."""
    if not (redis_url or get_settings().redis_url):
        _stop_local(job_id, as_json)
        return
    state = run_with_queue(redis_url, prefix, lambda q: q.cancel(job_id))
    if as_json:
        emit_json({"job_id": job_id, "state_before": state, "cancel_requested": True})
    else:
        click.echo(f"{job_id}: cancel requested (was {state})")


def _check_submission(
    local: Path, policy: str | None, overrides: tuple[str, ...], base_ref: str
) -> None:
    """What can be checked here before a worker takes the job: the policy with its
    overrides, and, when REPO is a folder on this machine, that it is a repository's
    root with BASE_REF in it. (A path only the workers have is passed on as it is.)"""
    from orchestrator.policy import load_policy
    from orchestrator.workspace.worktree import check_repo_root, resolve_commit

    root = None
    if local.exists():
        root = check_repo_root(local, tool="tandem submit")
        resolve_commit(root, base_ref)
    load_policy(policy or get_settings().policy, repo=root, overrides=overrides)


def _stop_local(job_id: str, as_json: bool) -> None:
    import os
    import signal

    from orchestrator.jobstore import load_job, running_pid

    job = load_job(job_id)
    pid = running_pid(job)
    if pid is None or pid <= 0:
        raise ConfigError(f"job {job.job_id} is not running on this machine (status: "
                          f"{job.status}); a job on the shared queue needs --redis-url")
    os.kill(pid, signal.SIGTERM)
    if as_json:
        emit_json({"job_id": job.job_id, "pid": pid, "stop_requested": True})
    else:
        click.echo(f"{job.job_id}: stop requested (SIGTERM to pid {pid}); it is kept as "
                   f"interrupted: `tandem resume {job.job_id}` continues it")


def load_handler(spec: str) -> Handler:
    """``module:function`` -> the job handler."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"job handler {spec!r} cannot be imported ({exc}); pass --handler module:function"
        ) from exc
    handler = getattr(module, attr or "run_job", None)
    if not callable(handler):
        raise ConfigError(f"job handler {spec!r}: {module_name} has no function {attr!r}")
    return handler


@click.command()
@click.option("--concurrency", "-c", default=1, show_default=True, type=click.IntRange(1, 256),
              help="Jobs run at the same time by this worker.")
@click.option("--heartbeat-s", default=5.0, show_default=True, type=click.FloatRange(0.1),
              help="Lease renewal period; a dead worker's jobs move on after ~3 of these.")
@click.option("--max-deliveries", default=5, show_default=True, type=click.IntRange(1),
              help="Starts of one job before it goes to the dead-letter stream.")
@click.option("--handler", default=DEFAULT_HANDLER, show_default=True,
              help="module:function run for each job.")
@redis_url_option
@prefix_option
def worker(
    concurrency: int, heartbeat_s: float, max_deliveries: int, handler: str,
    redis_url: str | None, prefix: str,
) -> None:
    """Take jobs from the shared Redis and run them until stopped (Ctrl-C / SIGTERM).

    Run one per machine or container; jobs of a worker that dies resume from their last
    checkpoint on another one. Redis outages are waited out with backoff.
    """
    job_handler = load_handler(handler)
    logging.basicConfig(level=get_settings().log_level,
                        format="%(asctime)s %(levelname)s %(message)s")

    async def body(queue: JobQueue) -> None:
        w = Worker(queue, job_handler, concurrency=concurrency, heartbeat_s=heartbeat_s,
                   max_deliveries=max_deliveries)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, w.stop)
        click.echo(f"worker {w.worker_id}: taking jobs from {queue.where} "
                   f"(prefix {prefix}, concurrency {concurrency})", err=True)
        await w.run()

    run_with_queue(redis_url, prefix, body)
