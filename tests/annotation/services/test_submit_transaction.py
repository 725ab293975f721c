"""The API's submit on PostgreSQL opens its own transaction in the lock's round trip ("BEGIN; EXECUTE ...") when
Django is in autocommit mode, and commits it in the write's ("EXECUTE ...; COMMIT"). Every way out must leave
the connection idle: committed, or rolled back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from psycopg2.extensions import TRANSACTION_STATUS_IDLE

from annotation.exceptions import ApplicationError
from annotation.models import Annotation, Assignment, FinalLabel, Item
from annotation.services.queue import item_next_for_annotator
from annotation.services.submitting import annotation_submit
from tests.conftest import add_member, make_project, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def idle() -> bool:
    return connection.connection.info.transaction_status == TRANSACTION_STATUS_IDLE


@pytest.fixture
def setup():
    assert connection.vendor == "postgresql"
    project = make_project(labels=("a", "b"))
    Item.objects.bulk_create([Item(project=project, external_id=f"x{i}", data={"text": f"t{i}"}) for i in range(2)])
    user = make_user()
    add_member(project, user)
    assert connection.get_autocommit()
    assert not connection.in_atomic_block
    return project, user, list(Item.objects.filter(project=project).order_by("id"))


def test_submit_commits_in_two_round_trips(setup):
    project, user, (item, _) = setup
    item_next_for_annotator(project=project, user=user)
    annotation_submit(item_id=item.pk, user=user, value={"label": "b"}, idempotency_key="warm")
    other = item_next_for_annotator(project=project, user=user).item
    with CaptureQueriesContext(connection) as ctx:
        result = annotation_submit(item_id=other.pk, user=user, value={"label": "a"}, idempotency_key="k1")
    assert result.created
    sqls = [q["sql"] for q in ctx.captured_queries]
    assert [s.split("(")[0] for s in sqls] == [
        "BEGIN; EXECUTE tandem_submit_lock",
        "EXECUTE tandem_submit_write",
    ]
    assert sqls[1].endswith("; COMMIT"), sqls
    assert idle()
    # committed: visible to a fresh connection
    connection.close()
    assert Annotation.objects.filter(item=other, annotator=user).count() == 1
    assert FinalLabel.objects.get(item=other).value == {"label": "a"}
    assert Assignment.objects.count() == 0


def test_every_refusal_rolls_back(setup):
    project, user, (item, second) = setup
    stranger = make_user()
    cases = [
        (dict(item_id=999_999_999, user=user, value={"label": "a"}), 404),
        (dict(item_id=item.pk, user=stranger, value={"label": "a"}), 404),
        (dict(item_id=item.pk, user=user, value={"label": "nope"}), 400),
    ]
    for kwargs, status in cases:
        with pytest.raises(ApplicationError) as err:
            annotation_submit(**kwargs)
        assert err.value.status_code == status
        assert idle(), kwargs
    # a full item (k=1): 409, nothing written, item row lock released
    other = make_user()
    add_member(project, other)
    assert annotation_submit(item_id=item.pk, user=other, value={"label": "a"}).created
    with pytest.raises(ApplicationError) as err:
        annotation_submit(item_id=item.pk, user=user, value={"label": "b"}, idempotency_key="k2")
    assert err.value.status_code == 409
    assert idle()
    # a key already used for another item: 409 from inside the transaction
    assert annotation_submit(item_id=second.pk, user=user, value={"label": "b"}, idempotency_key="k3").created
    with pytest.raises(ApplicationError) as err:
        annotation_submit(item_id=item.pk, user=user, value={"label": "b"}, idempotency_key="k3")
    assert err.value.status_code == 409
    assert idle()
    # the repeat of a submit answers the first annotation, created=False
    again = annotation_submit(item_id=second.pk, user=user, value={"label": "b"}, idempotency_key="k3")
    assert not again.created
    assert idle()
    assert Annotation.objects.count() == 2
    # nothing was left locked: another connection can lock both rows without waiting
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '1s'")
        cursor.execute("SELECT id FROM annotation_item WHERE id IN (%s, %s) FOR UPDATE NOWAIT", [item.pk, second.pk])
        assert len(cursor.fetchall()) == 2


def test_a_write_that_finds_no_free_slot_is_undone_whole(setup):
    """k=1, the item holds another user's expired lease and a third user's live one: the write deletes the
    expired lease, then finds no free slot, fails (SQLSTATE T0409, answered 409), and the COMMIT sent with it
    does not run, so the expired lease and the item's lease columns are as they were."""
    project, user, (item, _) = setup
    gone, holder = make_user(), make_user()
    now = timezone.now()
    Assignment.objects.bulk_create(
        [
            Assignment(item=item, user=gone, project=project, expires_at=now - timedelta(minutes=1)),
            Assignment(item=item, user=holder, project=project, expires_at=now + timedelta(minutes=10)),
        ]
    )
    Item.objects.filter(pk=item.pk).update(lease_count=2, lease_expires_at=now - timedelta(minutes=1))
    with CaptureQueriesContext(connection) as ctx, pytest.raises(ApplicationError) as err:
        annotation_submit(item_id=item.pk, user=user, value={"label": "a"}, idempotency_key="late")
    assert err.value.status_code == 409
    assert "others took it" in str(err.value.detail)
    assert ctx.captured_queries[-1]["sql"] == "ROLLBACK"
    assert ctx.captured_queries[-2]["sql"].endswith("; COMMIT")
    assert idle()
    connection.close()
    assert not Annotation.objects.exists()
    assert set(Assignment.objects.values_list("user_id", flat=True)) == {gone.pk, holder.pk}
    item.refresh_from_db()
    assert (item.lease_count, item.annotation_count, item.status) == (2, 0, "open")


def test_the_kth_annotation_decides_with_the_others_values(setup):
    """k=3: the lock statement brings the other annotations' values; the third submit (a dissent) writes the
    majority of all three, not its own value."""
    project, user, (item, _) = setup
    project.annotations_per_item = 3
    project.save()
    users = [user, make_user(), make_user()]
    for u in users[1:]:
        add_member(project, u)
    for u, label in zip(users, ["a", "a", "b"], strict=True):
        result = annotation_submit(item_id=item.pk, user=u, value={"label": label})
        assert result.created
        assert idle()
    connection.close()
    assert FinalLabel.objects.get(item=item).value == {"label": "a"}
    item.refresh_from_db()
    assert (item.annotation_count, item.status) == (3, "approved")


def test_the_kth_submit_that_waited_for_the_lock_counts_the_annotation_it_waited_for():
    """k=2, two annotators with different values. The first submit holds the item's row lock (its transaction
    still open) while the second submit arrives and waits on it. Once the first commits, the second must decide
    the item from both values: a tie, so review. (Its lock statement's subquery still has the older snapshot,
    which lacks the first annotation; deciding from that alone would approve the item with one value.)"""
    import threading

    from django.db import connections, transaction

    project = make_project(labels=("a", "b"), annotations_per_item=2)
    item = Item.objects.create(project=project, external_id="race", data={"text": "t"})
    first, second = make_user(), make_user()
    add_member(project, first)
    add_member(project, second)
    first_written, release_first = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first_submit() -> None:
        try:
            with transaction.atomic():
                annotation_submit(item_id=item.pk, user=first, value={"label": "a"})
                first_written.set()
                assert release_first.wait(30)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    def second_submit() -> None:
        try:
            annotation_submit(item_id=item.pk, user=second, value={"label": "b"})
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    a = threading.Thread(target=first_submit)
    a.start()
    assert first_written.wait(30)
    b = threading.Thread(target=second_submit)
    b.start()
    # wait until the second submit is blocked on the item's row lock, then let the first commit
    for _ in range(300):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            if cursor.fetchone()[0]:
                break
        threading.Event().wait(0.05)
    else:
        pytest.fail("the second submit never waited for the lock")
    release_first.set()
    a.join(30)
    b.join(30)
    assert not errors, errors
    item.refresh_from_db()
    assert item.annotation_count == 2
    assert item.status == "in_review"  # a tie of a and b goes to review
    assert not FinalLabel.objects.filter(item=item).exists()
