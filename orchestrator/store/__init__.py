"""Graph-state stores: LangGraph checkpoint savers on core Redis types.

``RedisSaver`` / ``AsyncRedisSaver`` (``redis_saver.py``) take a client or URL, a key
prefix, an optional ``ttl_s`` and an optional ``Fence`` (the job's lease) checked
atomically with every write. May import ``orchestrator.keys``, ``orchestrator.errors``;
nothing else in Tandem.
"""
