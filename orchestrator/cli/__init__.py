"""The ``tandem`` command line.

Sub-commands live in their own modules and are imported only when used, so a quick
``tandem --help`` stays quick and each area owns its file. Every ``TandemError`` is
printed as one line (``tandem: error: ...``) with exit status 2; anything else is a bug
and keeps its traceback. With ``--json``, a command that fails before printing its result
also prints ``{"error": ..., "exit_code": ...}`` on stdout, so a script always reads JSON.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import sys
from typing import Any

import click

from orchestrator.errors import TandemError

# name -> "module:attribute"; a module that does not exist is not listed.
COMMANDS: dict[str, str] = {
    "run": "orchestrator.cli.jobs:run",
    "demo": "orchestrator.cli.jobs:demo",
    "resume": "orchestrator.cli.jobs:resume",
    "rollback": "orchestrator.cli.jobs:rollback",
    "jobs": "orchestrator.cli.jobs:jobs",
    "show": "orchestrator.cli.jobs:show",
    "submit": "orchestrator.cli.queue:submit",
    "worker": "orchestrator.cli.queue:worker",
    "cancel": "orchestrator.cli.queue:cancel",
    "pr": "orchestrator.cli.pr:pr",
    "steer": "orchestrator.cli.live:steer",
    "chat": "orchestrator.cli.live:chat",
    "approve": "orchestrator.cli.live:approve",
    "reject": "orchestrator.cli.live:reject",
    "sim": "orchestrator.cli.sim:sim",
    "models": "orchestrator.cli.models:models",
    "policy": "orchestrator.cli.policy:policy",
    "bench": "orchestrator.cli.bench:bench",
}


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def _available(self) -> dict[str, str]:
        out = {}
        for name, target in self.lazy.items():
            module = target.split(":")[0]
            if importlib.util.find_spec(module) is not None:
                out[name] = target
        return out

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._available()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            return cmd
        target = self._available().get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            cmd = getattr(importlib.import_module(module_name), attr)
        except AttributeError:
            return None
        return cmd if isinstance(cmd, click.Command) else None


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tandem")
def cli() -> None:
    """Tandem: route coding steps between a fast and a deep model, checkpoint every step
    in git, and finish with a reviewed pull request.

    Start with `tandem demo` (simulated models, no keys, no network).
    """


_json_emitted = False


def emit_json(obj: Any) -> None:
    """Print one JSON document on stdout (for ``--json`` output)."""
    global _json_emitted
    _json_emitted = True
    click.echo(json.dumps(obj, indent=2, sort_keys=False, default=str))


def _wants_json(argv: list[str]) -> bool:
    """``--json`` among the options (not after ``--``, where it is an argument)."""
    return "--json" in (argv[:argv.index("--")] if "--" in argv else argv)


def _fail(message: str, code: int, *, json_out: bool, shown: bool = False) -> None:
    """One line on stderr (unless ``shown`` already); with ``--json`` and no result printed
    yet, the same on stdout as a JSON document. Then exit with ``code``."""
    if not shown:
        click.echo(message, err=True)
    if json_out and not _json_emitted:
        text = message.removeprefix("tandem: ").removeprefix("error: ")
        try:
            click.echo(json.dumps({"error": text, "exit_code": code}))
        except OSError:  # stdout closed by the reader: the exit status still says it
            pass
    sys.exit(code)


def check_env_redis_url() -> None:
    """A malformed TANDEM_REDIS_URL is one clear error before a command that listens on
    it starts (redis is imported only when the variable is set)."""
    from orchestrator.config import get_settings

    url = get_settings().redis_url
    if url:
        from orchestrator.cli.queue import check_redis_url

        check_redis_url(url, "TANDEM_REDIS_URL")


# click >= 8.2 shows a group's help as this usage error when it gets no sub-command.
_NO_ARGS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _usage_line(exc: click.UsageError) -> str:
    """A usage error as the one line every error is, with click's pointer to the help
    (instead of its usage block, which ``--help`` shows)."""
    line = f"tandem: error: {exc.format_message()}"
    if exc.ctx is not None:
        line += f" (try '{exc.ctx.command_path} --help')"
    return line


def _setup_logging() -> None:
    from orchestrator.config import get_settings

    try:
        level = get_settings().log_level.upper()
    except TandemError:  # a bad setting: said by the command that needs the settings
        level = "WARNING"
    logging.basicConfig(level=level, format="tandem: %(levelname)s: %(message)s")


def main(argv: list[str] | None = None) -> None:
    global _json_emitted
    _json_emitted = False
    _setup_logging()
    args = list(sys.argv[1:] if argv is None else argv)
    json_out = _wants_json(args)
    try:
        cli.main(args=args, prog_name="tandem", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("tandem: aborted", 130, json_out=json_out)
    except click.ClickException as exc:
        if isinstance(exc, click.UsageError) and not isinstance(exc, _NO_ARGS_HELP):
            click.echo(_usage_line(exc), err=True)
        else:  # `tandem policy` alone shows its help
            exc.show()
        _fail(exc.format_message(), exc.exit_code, json_out=json_out, shown=True)
    except TandemError as exc:
        _fail(f"tandem: error: {exc}", 2, json_out=json_out)
    except KeyboardInterrupt:
        _fail("tandem: interrupted", 130, json_out=json_out)
