"""`/projects/{id}/history` through Django's test client: your own work with the reviewers' verdicts, a rejected
annotation marked and explained, nobody else's work, escaping, access."""

from __future__ import annotations

import pytest
from django.test import Client

from annotation.models import Annotation, Item
from annotation.services.reviewing import review_submit
from tests.annotation.apis.helpers import annotate, make_items
from tests.conftest import add_member, make_project, make_user
from tests.frontend.helpers import browser

pytestmark = pytest.mark.django_db


def test_the_annotator_sees_the_rejection_and_the_comment_and_nothing_of_others(manager):
    project = make_project(manager, name="h", review_policy="all", annotations_per_item=1)
    first, second, third = make_items(project, 3)
    alice, bob, rev = make_user("alice"), make_user("bob"), make_user("rev")
    for user, role in ((alice, "annotator"), (bob, "annotator"), (rev, "reviewer")):
        add_member(project, user, role)
    rejected = annotate(first, alice, {"label": "sports"})
    annotate(second, alice, {"label": "tech"})
    annotate(third, bob, {"label": "politics"})
    Item.objects.filter(pk=first.pk).update(status="in_review")  # decided by consensus into review (policy all)
    review_submit(
        annotation=rejected, project=project, reviewer=rev, verdict="reject", comment="<b>politics</b>, see §2"
    )
    assert not Annotation.objects.get(pk=rejected.pk).counts

    r = browser(alice).get(f"/projects/{project.pk}/history")
    assert r.status_code == 200
    html = r.content.decode()
    assert f'data-annotation="{rejected.pk}" class="rejected"' in html
    assert "no longer counts" in html
    assert "&lt;b&gt;politics&lt;/b&gt;, see §2" in html  # escaped
    assert "<b>politics</b>" not in html
    assert first.external_id in html
    assert second.external_id in html
    assert third.external_id not in html  # bob's

    only = browser(alice).get(f"/projects/{project.pk}/history?verdict=reject").content.decode()
    assert first.external_id in only
    assert second.external_id not in only
    empty = browser(bob).get(f"/projects/{project.pk}/history?verdict=approve").content.decode()
    assert 'id="history-empty"' in empty


def test_non_members_get_404_and_anonymous_the_login_page(manager):
    project = make_project(manager, name="h2")
    stranger = make_user("stranger")
    assert browser(stranger).get(f"/projects/{project.pk}/history").status_code == 404
    r = Client().get(f"/projects/{project.pk}/history")
    assert r.status_code == 302
