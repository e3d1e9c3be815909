"""Which discoveries become tasks: the deterministic similarity and the bounds."""

from __future__ import annotations

from omoi.policies.supervision.discovery import Limits, duplicate_of, refusal, similarity

KNOWN = {
    "auth-jwt": "Add JWT authentication middleware that verifies the bearer token on every request",
    "user-model": "User model with a hashed password in app/models.py",
    "disc-1": "Password reset emails leak whether an account exists (user enumeration)",
}


def test_the_same_work_reported_again_is_a_duplicate_naming_what_it_duplicates() -> None:
    again = "JWT middleware: verify the bearer token on every request (authentication)"
    assert duplicate_of(again, KNOWN) == "auth-jwt"
    assert duplicate_of("Reset emails leak whether an account exists: user enumeration", KNOWN) == "disc-1"


def test_different_work_on_the_same_module_is_not_a_duplicate() -> None:
    other = "Rate-limit login attempts per IP address to stop password guessing"
    assert duplicate_of(other, KNOWN) is None
    assert similarity(other, KNOWN["user-model"]) < 0.6
    assert similarity("", "anything") == 0.0
    assert similarity("Token expiry", "token EXPIRY!") == 1.0, "case and punctuation do not count"


def test_discovered_work_is_bounded_per_run_per_task_and_in_depth() -> None:
    limits = Limits(per_run=3, per_task=2, depth=2)
    assert refusal("bug", 1, 0, 0, limits) is None
    assert refusal("bug", 2, 0, 0, limits) is None
    assert "3 deep (OMOI_DISCOVERY_DEPTH is 2)" in (refusal("bug", 3, 0, 0, limits) or "")
    assert "OMOI_DISCOVERY_MAX is 3" in (refusal("security", 1, 3, 0, limits) or "")
    assert "OMOI_DISCOVERY_PER_TASK is 2" in (refusal("security", 1, 2, 2, limits) or "")
    assert "unknown type 'idea'" in (refusal("idea", 1, 0, 0, limits) or "")
