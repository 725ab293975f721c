"""Queue and submit services called directly."""

import pytest

from annotation.exceptions import Conflict
from annotation.models import Assignment, FinalLabel, Item
from annotation.services.queue import item_next_for_annotator
from annotation.services.submitting import annotation_submit, annotation_update, item_skip
from tests.conftest import add_member, make_project, make_user

pytestmark = pytest.mark.django_db


def items(project, n):
    Item.objects.bulk_create([Item(project=project, external_id=f"i{i}", data={"text": f"t{i}"}) for i in range(n)])
    return list(Item.objects.filter(project=project).order_by("id"))


def users(project, n):
    out = []
    for _ in range(n):
        u = make_user()
        add_member(project, u)
        out.append(u)
    return out


def test_lease_bookkeeping_on_the_item_row():
    project = make_project(annotations_per_item=2)
    [item] = items(project, 1)
    a, b = users(project, 2)
    got = item_next_for_annotator(project=project, user=a)
    assert got.item.pk == item.pk
    item.refresh_from_db()
    assert item.lease_count == 1
    assert item.lease_expires_at == got.expires_at
    item_next_for_annotator(project=project, user=b)
    item.refresh_from_db()
    assert item.lease_count == 2
    annotation_submit(item_id=item.pk, user=a, value={"label": "sports"})
    item.refresh_from_db()
    assert item.lease_count == 1
    assert item.annotation_count == 1
    assert item.status == "in_progress"
    item_skip(item_id=item.pk, user=b)
    item.refresh_from_db()
    assert item.lease_count == 0
    assert item.lease_expires_at is None
    assert Assignment.objects.count() == 0


def test_skip_is_idempotent():
    project = make_project()
    [item] = items(project, 1)
    [a] = users(project, 1)
    item_skip(item_id=item.pk, user=a)
    item_skip(item_id=item.pk, user=a)
    assert item_next_for_annotator(project=project, user=a) is None


def test_submit_beyond_k_is_refused_even_without_leases():
    project = make_project(annotations_per_item=2)
    [item] = items(project, 1)
    a, b, c = users(project, 3)
    annotation_submit(item_id=item.pk, user=a, value={"label": "sports"})
    annotation_submit(item_id=item.pk, user=b, value={"label": "sports"})
    with pytest.raises(Conflict):
        annotation_submit(item_id=item.pk, user=c, value={"label": "sports"})
    item.refresh_from_db()
    assert item.annotation_count == 2
    assert item.status == "approved"


def test_update_re_decides_consensus():
    project = make_project(annotations_per_item=3)
    [item] = items(project, 1)
    a, b, c = users(project, 3)
    anns = [
        annotation_submit(item_id=item.pk, user=u, value={"label": lab}).annotation
        for u, lab in [(a, "tech"), (b, "tech"), (c, "sports")]
    ]
    assert FinalLabel.objects.get(item=item).value == {"label": "tech"}
    annotation_update(annotation_id=anns[0].pk, user=a, value={"label": "sports"})
    assert FinalLabel.objects.get(item=item).value == {"label": "sports"}
    item.refresh_from_db()
    assert item.status == "approved"


def test_update_of_someone_elses_annotation_is_not_found():
    from annotation.exceptions import NotFound

    project = make_project()
    [item] = items(project, 1)
    a, b = users(project, 2)
    ann = annotation_submit(item_id=item.pk, user=a, value={"label": "tech"}).annotation
    with pytest.raises(NotFound):
        annotation_update(annotation_id=ann.pk, user=b, value={"label": "sports"})


def test_update_validates_the_value_against_the_project():
    """annotation_update checks the value itself (400, the field named); the annotation is left as it was."""
    from annotation.exceptions import InvalidInput

    project = make_project()
    [item] = items(project, 1)
    [a] = users(project, 1)
    ann = annotation_submit(item_id=item.pk, user=a, value={"label": "tech"}).annotation
    for bad in ({"label": "nope"}, {"labels": ["tech"]}, "tech"):
        with pytest.raises(InvalidInput) as err:
            annotation_update(annotation_id=ann.pk, user=a, value=bad)
        assert err.value.status_code == 400
        assert all(e.get("field", "").startswith("value") for e in err.value.errors), err.value.errors
        assert err.value.errors
    ann.refresh_from_db()
    assert (ann.value, ann.history) == ({"label": "tech"}, [])
    assert FinalLabel.objects.get(item=item).value == {"label": "tech"}


def test_idempotent_submit_returns_first():
    project = make_project()
    [item] = items(project, 1)
    [a] = users(project, 1)
    first = annotation_submit(item_id=item.pk, user=a, value={"label": "tech"}, idempotency_key="k")
    again = annotation_submit(item_id=item.pk, user=a, value={"label": "tech"}, idempotency_key="k")
    assert first.created
    assert not again.created
    assert again.annotation.pk == first.annotation.pk


@pytest.mark.django_db(transaction=True)
def test_concurrent_next_never_shares_a_slot():
    """Many experts asking at once (real transactions, one connection each): a slot goes to one expert only."""
    import threading

    from django.db import connection

    project = make_project(annotations_per_item=2)
    all_items = items(project, 5)
    experts = users(project, 14)
    results, errors = {}, []
    barrier = threading.Barrier(len(experts))

    def ask(user):
        try:
            barrier.wait(timeout=10)
            got = item_next_for_annotator(project=project, user=user)
            results[user.pk] = got.item.pk if got else None
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(u,)) for u in experts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    served = [v for v in results.values() if v is not None]
    assert all(served.count(i.pk) <= 2 for i in all_items), results
    # whoever was turned away while others held row locks gets a free slot when asking again
    for user in experts:
        if results[user.pk] is None:
            got = item_next_for_annotator(project=project, user=user)
            results[user.pk] = got.item.pk if got else None
    served = [v for v in results.values() if v is not None]
    assert len(served) == 10, results  # 5 items x k=2 slots, 14 experts
    assert all(served.count(i.pk) == 2 for i in all_items), results
    assert Assignment.objects.count() == 10
    for item in Item.objects.filter(project=project):
        assert item.lease_count == 2


@pytest.mark.django_db(transaction=True)
def test_next_is_not_empty_while_a_free_slot_is_only_briefly_locked():
    """204 means "nothing left for you". An item with a free slot whose row another expert's
    transaction holds for a moment is not "nothing left": next must not answer None for it."""
    import threading

    from django.db import connection, transaction

    project = make_project(annotations_per_item=2)
    [item] = items(project, 1)
    [expert] = users(project, 1)
    locked, release = threading.Event(), threading.Event()

    def holder():
        try:
            with transaction.atomic():
                Item.objects.select_for_update().get(pk=item.pk)
                locked.set()
                release.wait(5)
        finally:
            connection.close()

    t = threading.Thread(target=holder)
    t.start()
    assert locked.wait(5)
    threading.Timer(0.3, release.set).start()
    try:
        got = item_next_for_annotator(project=project, user=expert)
    finally:
        release.set()
        t.join(10)
    assert got is not None
    assert got.item.pk == item.pk
