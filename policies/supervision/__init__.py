"""Supervision's decisions: the guardian's deterministic signals, each a pure function with its
default threshold."""
