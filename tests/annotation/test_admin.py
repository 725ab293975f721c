"""The Django admin shows items, annotations and leases but cannot change them: edits there would bypass the
services that keep the queue's counters (annotation_count, lease_count) equal to the rows."""

import pytest
from django.test import Client

from annotation.models import Annotation, Item
from annotation.services.submitting import annotation_submit
from tests.conftest import add_member, make_project, make_user

pytestmark = pytest.mark.django_db


def test_admin_is_read_only_for_items_annotations_and_leases():
    root = make_user("root-admin", staff=True)
    root.is_superuser = True
    root.save()
    project = make_project(labels=("a", "b"))
    item = Item.objects.create(project=project, external_id="x", data={"text": "t"})
    annotator = make_user()
    add_member(project, annotator)
    annotation = annotation_submit(item_id=item.pk, user=annotator, value={"label": "a"}).annotation
    client = Client()
    client.force_login(root)
    assert client.get(f"/admin/annotation/item/{item.pk}/change/").status_code == 200  # viewable
    assert client.get("/admin/annotation/item/add/").status_code == 403
    assert client.get("/admin/annotation/annotation/add/").status_code == 403
    assert client.get("/admin/annotation/assignment/add/").status_code == 403
    assert client.get("/admin/annotation/finallabel/add/").status_code == 403
    assert client.get("/admin/annotation/job/add/").status_code == 403
    # the overlap k changes only through the project service, which re-queues or decides items
    page = client.get(f"/admin/annotation/project/{project.pk}/change/").content.decode()
    assert 'name="annotations_per_item"' not in page
    assert 'name="name"' in page
    r = client.post(f"/admin/annotation/item/{item.pk}/change/", {"status": "open", "annotation_count": 0})
    assert r.status_code == 403
    r = client.post(f"/admin/annotation/annotation/{annotation.pk}/delete/", {"post": "yes"})
    assert r.status_code == 403
    item.refresh_from_db()
    assert (item.status, item.annotation_count) == ("approved", 1)
    assert Annotation.objects.filter(pk=annotation.pk).exists()
