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
    assert item.lease_count == 1 and item.lease_expires_at == got.expires_at
    item_next_for_annotator(project=project, user=b)
    item.refresh_from_db()
    assert item.lease_count == 2
    annotation_submit(item_id=item.pk, project=project, user=a, value={"label": "sports"})
    item.refresh_from_db()
    assert item.lease_count == 1 and item.annotation_count == 1 and item.status == "in_progress"
    item_skip(item_id=item.pk, user=b)
    item.refresh_from_db()
    assert item.lease_count == 0 and item.lease_expires_at is None
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
    annotation_submit(item_id=item.pk, project=project, user=a, value={"label": "sports"})
    annotation_submit(item_id=item.pk, project=project, user=b, value={"label": "sports"})
    with pytest.raises(Conflict):
        annotation_submit(item_id=item.pk, project=project, user=c, value={"label": "sports"})
    item.refresh_from_db()
    assert item.annotation_count == 2 and item.status == "approved"


def test_update_re_decides_consensus():
    project = make_project(annotations_per_item=3)
    [item] = items(project, 1)
    a, b, c = users(project, 3)
    anns = [
        annotation_submit(item_id=item.pk, project=project, user=u, value={"label": lab}).annotation
        for u, lab in [(a, "tech"), (b, "tech"), (c, "sports")]
    ]
    assert FinalLabel.objects.get(item=item).value == {"label": "tech"}
    annotation_update(annotation_id=anns[0].pk, project=project, user=a, value={"label": "sports"})
    assert FinalLabel.objects.get(item=item).value == {"label": "sports"}
    item.refresh_from_db()
    assert item.status == "approved"


def test_update_of_someone_elses_annotation_is_not_found():
    from annotation.exceptions import NotFound

    project = make_project()
    [item] = items(project, 1)
    a, b = users(project, 2)
    ann = annotation_submit(item_id=item.pk, project=project, user=a, value={"label": "tech"}).annotation
    with pytest.raises(NotFound):
        annotation_update(annotation_id=ann.pk, project=project, user=b, value={"label": "sports"})


def test_idempotent_submit_returns_first():
    project = make_project()
    [item] = items(project, 1)
    [a] = users(project, 1)
    first = annotation_submit(item_id=item.pk, project=project, user=a, value={"label": "tech"}, idempotency_key="k")
    again = annotation_submit(item_id=item.pk, project=project, user=a, value={"label": "tech"}, idempotency_key="k")
    assert first.created and not again.created
    assert again.annotation.pk == first.annotation.pk
