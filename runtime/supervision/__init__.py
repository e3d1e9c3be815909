"""Supervision's mechanics: an agent attempt's trajectory folded from its events, for the
guardian's signals (policies/supervision) to judge."""
