"""Decisions as pure functions over plain data: no I/O, no Ray, no clock reads."""
