"""The review page through Django's test client: access, escaping, no inline script."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import add_member, make_project, make_user
from tests.frontend.helpers import browser, inline_scripts

pytestmark = pytest.mark.django_db

EVIL_LABEL = "<script>window.__y=1</script>"
EVIL_NAME = '<img src=x onerror="window.__x=1">'


def url(project) -> str:
    return f"/projects/{project.pk}/review"


def test_anonymous_is_sent_to_the_login_page(project):
    r = browser().get(url(project))
    assert r.status_code == 302
    assert r["Location"].startswith("/login/?next=")


def test_non_members_get_404(project):
    assert browser(make_user()).get(url(project)).status_code == 404
    assert browser(make_user()).get("/projects/999999/review").status_code == 404


@pytest.mark.parametrize("role", ["annotator", "engineer"])
def test_roles_that_may_not_review_get_403(project, role):
    user = make_user()
    add_member(project, user, role)
    assert browser(user).get(url(project)).status_code == 403


@pytest.mark.parametrize("role", ["reviewer", "manager"])
def test_reviewers_and_managers_get_the_page(project, role):
    user = make_user()
    add_member(project, user, role)
    r = browser(user).get(url(project))
    assert r.status_code == 200
    html = r.content.decode()
    assert 'id="review-app"' in html
    assert "/static/frontend/review/main.js" in html
    assert inline_scripts(html) == []
    assert "script-src 'self'" in r["Content-Security-Policy"]
    config = json.loads(re.search(r'<script id="review-config" type="application/json">(.*?)</script>', html).group(1))
    assert config["project"] == project.pk
    assert [label["name"] for label in config["labels"]] == ["sports", "politics", "tech"]
    assert config["labels"][0]["hotkey"] == "1"
    # only managers see the settings link
    assert (f"/projects/{project.pk}/settings" in html) is (role == "manager")


def test_staff_gets_the_page(project, staff):
    assert browser(staff).get(url(project)).status_code == 200


def test_labels_and_project_names_are_escaped(manager):
    project = make_project(manager, name=EVIL_NAME, labels=[EVIL_LABEL, "ok"])
    r = browser(manager).get(url(project))
    assert r.status_code == 200
    html = r.content.decode()
    assert EVIL_LABEL not in html
    assert EVIL_NAME not in html
    assert "&lt;img src=x onerror=&quot;window.__x=1&quot;&gt;" in html
    assert "\\u003Cscript\\u003Ewindow.__y=1\\u003C/script\\u003E" in html  # json_script escapes < and >
    assert inline_scripts(html) == []
