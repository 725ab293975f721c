"""The review queue's lease under concurrency: reviewers on their own threads and database connections ask for the
next item at the same instant; no item is ever handed to two of them (annotation/services/reviewing.py)."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connections
from rest_framework.test import APIClient

from annotation.models import Item, ReviewLease
from annotation.services.submitting import annotation_submit
from tests.annotation.apis.helpers import make_items
from tests.conftest import add_member, make_project, make_user

pytestmark = pytest.mark.django_db(transaction=True)

REVIEWERS = 4
ROUNDS = 3


def test_concurrent_reviewers_are_never_handed_the_same_item():
    """Each round, every reviewer asks for the next item at once (a barrier), then asks again (the same item: their
    lease), then approves it. Items are never shared within a round; over all rounds each item is reviewed once."""
    manager = make_user("boss")
    project = make_project(manager, name="race", review_policy="all")
    items = make_items(project, REVIEWERS * ROUNDS)
    for item in items:
        user = make_user()
        add_member(project, user)
        annotation_submit(item_id=item.pk, user=user, value={"label": "sports"})
    assert Item.objects.filter(project=project, status="in_review").count() == len(items)
    reviewers = [make_user(f"rev{i}") for i in range(REVIEWERS)]
    for user in reviewers:
        add_member(project, user, "reviewer")

    start = threading.Barrier(REVIEWERS)
    handed: list[list[int]] = [[] for _ in range(ROUNDS)]
    leases_seen: list[dict[int, int]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def work(user) -> None:
        client = APIClient()
        client.force_authenticate(user)
        try:
            for round_ in range(ROUNDS):
                start.wait(timeout=60)
                r = client.get(f"/api/projects/{project.pk}/review/next")
                if r.status_code != 200:
                    errors.append(f"next {r.status_code} {r.content[:200]!r}")
                    return
                task = r.json()
                again = client.get(f"/api/projects/{project.pk}/review/next").json()
                if (again["item"]["id"], again["expires_at"]) != (task["item"]["id"], task["expires_at"]):
                    errors.append(f"second next gave {again['item']['id']}, not {task['item']['id']}")
                with lock:
                    handed[round_].append(task["item"]["id"])
                start.wait(timeout=60)  # everyone holds their lease now
                if round_ == 0 and user == reviewers[0]:
                    with lock:
                        leases_seen.append(dict(ReviewLease.objects.values_list("item_id", "reviewer_id")))
                start.wait(timeout=60)
                r = client.post(f"/api/annotations/{task['annotations'][0]['id']}/review", {"verdict": "approve"})
                if r.status_code != 201:
                    errors.append(f"verdict {r.status_code} {r.content[:200]!r}")
        except threading.BrokenBarrierError:
            errors.append("barrier broken")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(u,)) for u in reviewers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[:5]

    for round_items in handed:
        assert len(round_items) == REVIEWERS
        assert len(set(round_items)) == REVIEWERS, round_items  # nobody shares an item
    assert Counter(i for r in handed for i in r) == Counter({i.pk: 1 for i in items})
    [leases] = leases_seen
    assert set(leases) == set(handed[0])
    assert sorted(leases.values()) == sorted(u.pk for u in reviewers)
    assert not ReviewLease.objects.exists()  # every verdict released its lease
    assert not Item.objects.filter(project=project).exclude(status="approved").exists()


def test_a_lease_committed_while_another_reviewer_waited_for_the_item_is_respected():
    """Two connections, step by step: reviewer 1's transaction holds the only item in review (its row lock) and has
    written its lease; reviewer 2's review/next finds every candidate locked, so it waits for that lock (the second,
    waiting pass). Reviewer 1 commits. The row itself did not change, so PostgreSQL hands reviewer 2 the row without
    re-checking the query's lease condition (which its older snapshot evaluated): the conditional upsert of the lease
    must refuse, and reviewer 2 gets nothing."""
    from datetime import timedelta

    from django.db import connection, transaction
    from django.utils import timezone

    from annotation.services.reviewing import review_next_for_reviewer

    manager = make_user("boss")
    project = make_project(manager, name="wait", review_policy="all")
    [item] = make_items(project, 1)
    author = make_user("author")
    add_member(project, author)
    annotation_submit(item_id=item.pk, user=author, value={"label": "sports"})
    first, second = make_user("r1"), make_user("r2")
    for user in (first, second):
        add_member(project, user, "reviewer")

    holding, release = threading.Event(), threading.Event()
    outcome: list[object] = []

    def hold() -> None:
        try:
            with transaction.atomic():
                Item.objects.select_for_update().get(pk=item.pk)
                ReviewLease.objects.create(
                    item=item, reviewer=first, project=project, expires_at=timezone.now() + timedelta(minutes=10)
                )
                holding.set()
                release.wait(timeout=120)
        finally:
            connections.close_all()

    def ask() -> None:
        try:
            outcome.append(review_next_for_reviewer(project=project, reviewer=second))
        except Exception as exc:  # reported below
            outcome.append(exc)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(timeout=60)
    asker = threading.Thread(target=ask)
    asker.start()
    # wait until reviewer 2's statement is blocked on the row lock (a condition, not a time)
    with connection.cursor() as cursor:
        for _ in range(600):
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0] >= 1:
                break
            threading.Event().wait(0.05)
        else:
            release.set()
            pytest.fail("reviewer 2 never waited for the row lock")
    release.set()
    holder.join(timeout=60)
    asker.join(timeout=60)
    assert outcome == [None], outcome
    lease = ReviewLease.objects.get()
    assert (lease.item_id, lease.reviewer_id) == (item.pk, first.pk)
