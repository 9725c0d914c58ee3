"""The job's event log never holds a secret: each string of an event is redacted on its
own, so secrets spread over lines (a private key, a ``password: ...`` line in a block of
text) are caught as well as one-line ones and the known key values."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.events import EventLog

KEY_BODY = "MIIEpAIBAAKCAQEA7bq9Zx3Rk2YtLw8pQm4vN6sJfH1uXcTgDy0aBeKoPiWlSrMn"
PEM = ("-----BEGIN RSA PRIVATE KEY-----\n" + KEY_BODY + "\n" + KEY_BODY[::-1]
       + "\n-----END RSA PRIVATE KEY-----\n")


def test_multi_line_and_line_anchored_secrets_are_redacted(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.jsonl", "job-1", known_secrets=["sk-known-value-123"])
    plan_text = f"Step one.\ndb_password: Xk9mQ2vR7pLw4ZtB\nKey:\n{PEM}then done"
    event = log.emit("plan", text=plan_text, nested={"items": [PEM, "uses sk-known-value-123"]})
    log.close()
    written = (tmp_path / "events.jsonl").read_text()
    for secret in (KEY_BODY, KEY_BODY[::-1], "Xk9mQ2vR7pLw4ZtB", "sk-known-value-123"):
        assert secret not in written
        assert secret not in json.dumps(event)  # listeners get the redacted event
    logged = json.loads(written)
    assert logged["text"].startswith("Step one.\n") and logged["text"].endswith("then done")
    assert "[REDACTED:" in logged["nested"]["items"][0]
    assert logged["nested"]["items"][1].startswith("uses [REDACTED:")


def test_ordinary_events_are_unchanged(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.jsonl", "job-1", known_secrets=["sk-known-value-123"])
    event = log.emit("step.start", step=2, intent="Round prices\nto the cent", files=["a.py"],
                     path=Path("shop/a.py"))
    log.close()
    assert event["intent"] == "Round prices\nto the cent" and event["step"] == 2
    assert event["path"] == "shop/a.py"  # non-JSON values are logged as their text
    assert json.loads((tmp_path / "events.jsonl").read_text()) == event
