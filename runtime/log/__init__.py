"""The log: every event as a typed model, the durable store that is the source of truth, and a
subscriber's cursor into it."""
