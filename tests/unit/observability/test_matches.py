"""`RuleMatches`: who each rule granted, with counts and the last time, in bounded memory."""

from __future__ import annotations

from rolegate.authn.principal import Principal
from rolegate.observability.matches import RuleMatches
from tests.support.clock import FakeClock


def who(subject: str) -> Principal:
    return Principal(issuer="corp", subject=subject)


def test_matches_are_counted_per_rule_and_principal_most_recent_first():
    clock = FakeClock(1000.0)
    matches = RuleMatches(capacity=10, clock=clock)
    matches.record("users", who("alice"))
    clock.advance(5)
    matches.record("users", who("bob"))
    clock.advance(5)
    matches.record("users", who("alice"))
    matches.record("admins", who("alice"))

    seen = matches.by_rule()

    assert [(m.subject, m.count, m.last_seen) for m in seen["users"]] == [
        ("alice", 2, 1010.0), ("bob", 1, 1005.0)]
    assert [(m.subject, m.count) for m in seen["admins"]] == [("alice", 1)]


def test_past_capacity_the_pair_seen_longest_ago_is_forgotten():
    matches = RuleMatches(capacity=2, clock=FakeClock(0.0))
    for subject in ("alice", "bob", "alice", "carol"):
        matches.record("users", who(subject))

    assert [m.subject for m in matches.by_rule()["users"]] == ["carol", "alice"]
