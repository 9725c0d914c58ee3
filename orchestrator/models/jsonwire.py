"""Decoding the JSON of server events, the hot path of every stream.

``orjson`` parses an event several times faster than the stdlib; anything it refuses
(``NaN``, lone surrogates, integers beyond 64 bits) goes to ``json.loads``, which accepts
what the stdlib accepts and raises the ``json.JSONDecodeError`` that callers translate
(also for JSON nested too deeply to parse, where the stdlib would hit the recursion limit).
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(raw: bytes | str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            return json.loads(raw)
        except RecursionError:
            raise json.JSONDecodeError("JSON nested too deeply", "", 0) from None
