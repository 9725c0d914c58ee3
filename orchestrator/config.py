"""Settings: the only module that reads the process environment.

Every other module receives a ``Settings`` (or a value taken from it) or calls
``secret(name)`` / ``scrubbed_env()`` here. Environment variables use the ``TANDEM_``
prefix, e.g. ``TANDEM_HOME=/srv/tandem`` or ``TANDEM_REDIS_URL=redis://localhost:6379/0``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Literal, get_args

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Variables a verification command may inherit. Everything else (API keys, tokens,
# cloud credentials) is dropped: model-written code must never see secrets.
_SAFE_ENV_VARS = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "TMPDIR", "USER")

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(BaseSettings):
    """Process-wide settings, from ``TANDEM_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="TANDEM_", extra="ignore")

    home: Path = Field(
        default_factory=lambda: Path.home() / ".tandem",
        description="Tandem's home: job worktrees, the SQLite graph store, event logs.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL for the queue and the shared graph store; unset = embedded mode.",
    )
    policy: str | None = Field(
        default=None,
        description="Default policy name or path when a command is given none.",
    )
    sqlite_synchronous: Literal["FULL", "NORMAL"] = Field(
        default="NORMAL",
        description="SQLite graph store durability: NORMAL survives a killed process; FULL "
        "also a power loss, at an fsync per graph step.",
    )
    log_level: LogLevel = Field(
        default="WARNING", description="Python logging level for tandem (any case)."
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        """``debug`` is ``DEBUG``; anything else is refused as the user wrote it."""
        if isinstance(value, str) and value.upper() in get_args(LogLevel):
            return value.upper()
        return value

    @property
    def user_policy_path(self) -> Path:
        """The user-level policy layer (between built-in and repository layers)."""
        return self.home / "policy.yaml"

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @property
    def worktrees_dir(self) -> Path:
        return self.home / "worktrees"

    @property
    def sqlite_path(self) -> Path:
        return self.home / "state.sqlite"


_current: Settings | None = None


def get_settings() -> Settings:
    """The settings of this process (read from the environment once)."""
    global _current
    if _current is None:
        settings = _read_settings()
        if settings.home.exists() and not settings.home.is_dir():
            from orchestrator.errors import ConfigError

            raise ConfigError(f"TANDEM_HOME {settings.home} is a file: it must name a folder "
                              "(it is created if missing)")
        _current = settings
    return _current


def _read_settings() -> Settings:
    """``Settings()``, with a bad value said as one line naming its variable."""
    try:
        return Settings()
    except ValidationError as exc:
        from orchestrator.errors import ConfigError

        err = exc.errors()[0]
        name = "TANDEM_" + "_".join(str(p) for p in err["loc"]).upper()
        expected = err.get("ctx", {}).get("expected")
        allowed = f"set it to {expected}" if expected else str(err["msg"]).lower()
        raise ConfigError(f"{name}={err.get('input')!r} is not valid: {allowed}, "
                          "or unset it") from None


def reset_settings() -> None:
    """Forget the settings: the next ``get_settings()`` reads the environment again."""
    global _current
    _current = None


def use_settings(**changes: object) -> Settings:
    """Replace this process's settings with a copy changed as given (benchmarks)."""
    global _current
    _current = get_settings().model_copy(update=changes)
    return _current


def secret(env_name: str) -> str | None:
    """The value of the environment variable ``env_name`` (an API key), or None.

    Policies name the variable, never the value, so keys never land in files or logs.
    """
    value = os.environ.get(env_name)
    return value or None


def scrubbed_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A minimal environment for running untrusted commands (tests, linters)."""
    env = {k: os.environ[k] for k in _SAFE_ENV_VARS if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["GIT_TERMINAL_PROMPT"] = "0"
    if extra:
        env.update(extra)
    return env


def protect_environment() -> bool:
    """Keep this process's environment (the API keys) from the commands it runs.

    ``scrubbed_env`` gives a verification command none of the keys, but a process of the
    same user can still read ``/proc/<pid>/environ`` of its parent (the environment the
    process started with, whatever ``os.environ`` holds since) or attach to it with a
    debugger. Marking the process not dumpable (``PR_SET_DUMPABLE`` 0, Linux) closes
    both to everyone but root; it also turns off core dumps. Returns whether it took
    effect (False off Linux).
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    pr_set_dumpable = 4
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(pr_set_dumpable, 0, 0, 0, 0) == 0)


def secret_values(names: list[str] | tuple[str, ...]) -> list[str]:
    """Values of the named secret variables that are set (for redaction)."""
    return [v for v in (secret(n) for n in names) if v]
