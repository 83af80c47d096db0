"""Flagger's Events pass through client-go's correlator; canarylab's kube adapter makes the same decisions.

The numbers are client-go's (tools/record/events_cache.go, the version Flagger v1.44 ships): aggregation from
the 10th distinct message within 10 minutes, 25 Events per object and type, one more per 5 minutes.
"""

from __future__ import annotations

from canarylab.engine.event_correlator import COMBINED_PREFIX, EventCorrelator

OBJ = ("test", "Canary", "podinfo", "uid-1", "flagger.app/v1beta1")


def record(c: EventCorrelator, message: str, now: float, type: str = "Normal"):  # type: ignore[no-untyped-def]
    return c.correlate(OBJ, type, "Synced", message, now, f"podinfo.{int(now * 1e9):x}")


def test_a_repeated_message_counts_up_on_the_first_event() -> None:
    c = EventCorrelator()
    first = record(c, "Halt advancement", 1.0)
    again = record(c, "Halt advancement", 11.0)
    assert not first.patch and first.count == 1
    assert again.patch and again.name == first.name and again.count == 2 and again.first == 1.0


def test_the_tenth_distinct_message_is_combined_and_later_ones_update_that_one_event() -> None:
    c = EventCorrelator()
    plain = [record(c, f"Advance podinfo.test canary weight {w}", float(w)) for w in range(1, 10)]
    assert all(not d.patch and not d.message.startswith(COMBINED_PREFIX) for d in plain)
    tenth = record(c, "Copying podinfo.test template spec to podinfo-primary.test", 10.0)
    assert tenth.message == COMBINED_PREFIX + "Copying podinfo.test template spec to podinfo-primary.test"
    assert not tenth.patch
    last = record(c, "Promotion completed! Scaling down podinfo.test", 20.0)
    assert last.patch and last.name == tenth.name and last.count == 2
    assert last.message == COMBINED_PREFIX + "Promotion completed! Scaling down podinfo.test"
    # Warnings are aggregated apart from Normal events
    assert record(c, "Halt advancement", 21.0, type="Warning").message == "Halt advancement"


def test_after_ten_quiet_minutes_messages_are_plain_again() -> None:
    c = EventCorrelator()
    for w in range(12):
        record(c, f"message {w}", float(w))
    assert record(c, "fresh start", 12.0 + 601).message == "fresh start"


def test_the_spam_filter_drops_events_past_25_per_object_and_type_then_lets_one_through_per_five_minutes() -> None:
    c = EventCorrelator()
    decisions = [record(c, "Halt advancement waiting for approval", float(t)) for t in range(30)]
    assert [d.skip for d in decisions] == [False] * 25 + [True] * 5
    assert decisions[-1].count == 30  # client-go counts the dropped ones in its cache all the same
    assert not record(c, "Halt advancement waiting for approval", 29.0 + 300).skip
    assert not record(c, "a warning", 29.0, type="Warning").skip  # a bucket per type
