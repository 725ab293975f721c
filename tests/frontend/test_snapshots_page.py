"""The snapshot page through Django's test client: who may open it, what it carries, the links to it."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import add_member, make_project, make_user
from tests.frontend.helpers import browser, inline_scripts

pytestmark = pytest.mark.django_db

EVIL_NAME = '<img src=x onerror="window.__x=1">'
EVIL_LABEL = "<script>window.__y=1</script>"


def url(project) -> str:
    return f"/projects/{project.pk}/snapshots"


def config_of(html: str) -> dict:
    block = re.search(r'<script id="snapshots-config" type="application/json">(.*?)</script>', html, re.S)
    assert block is not None
    return json.loads(block.group(1))


def test_anonymous_is_sent_to_the_login_page(project):
    r = browser().get(url(project))
    assert r.status_code == 302
    assert r["Location"].startswith("/login/?next=")


def test_non_members_and_unknown_projects_get_404(project):
    assert browser(make_user()).get(url(project)).status_code == 404
    assert browser(make_user()).get("/projects/999999/snapshots").status_code == 404


@pytest.mark.parametrize(
    ("role", "status"), [("annotator", 403), ("reviewer", 403), ("engineer", 200), ("manager", 200)]
)
def test_only_roles_that_may_export_open_it(project, role, status):
    user = make_user()
    add_member(project, user, role)
    assert browser(user).get(url(project)).status_code == status


def test_staff_open_it(project, staff):
    assert browser(staff).get(url(project)).status_code == 200


def test_the_page_loads_its_module_and_no_inline_script(project, manager):
    r = browser(manager).get(url(project))
    html = r.content.decode()
    assert "/static/frontend/snapshots/main.js" in html
    assert "script-src 'self'" in r["Content-Security-Policy"]
    assert inline_scripts(html) == []
    # the session's CSRF cookie is set: the page's POST to the API needs it
    assert "csrftoken" in r.cookies
    config = config_of(html)
    assert config == {"project": project.pk, "taskType": "classification", "labels": ["sports", "politics", "tech"]}
    # the filters offered: every item status (approved checked), every final-label source, every label
    assert re.findall(r'name="status" value="(\w+)"', html) == ["open", "in_progress", "in_review", "approved"]
    assert re.search(r'name="status" value="approved" checked', html)
    assert re.findall(r'name="source" value="(\w+)"', html) == [
        "consensus",
        "review",
        "gold",
        "adjudication",
        "imported",
    ]
    assert re.findall(r'name="labels" value="(\w+)"', html) == ["sports", "politics", "tech"]


def test_names_and_labels_are_escaped(manager):
    project = make_project(manager, name=EVIL_NAME, labels=[EVIL_LABEL, "ok"])
    html = browser(manager).get(url(project)).content.decode()
    assert EVIL_NAME not in html
    assert EVIL_LABEL not in html
    assert "&lt;img src=x onerror=&quot;window.__x=1&quot;&gt;" in html
    assert config_of(html)["labels"][0] == EVIL_LABEL  # intact as data, escaped in the page
    assert inline_scripts(html) == []


def test_managers_reach_it_from_the_nav_engineers_from_the_export_page(project, manager):
    link = f'href="/projects/{project.pk}/snapshots"'
    for page in ("settings", "import", "export", "snapshots"):
        html = browser(manager).get(f"/projects/{project.pk}/{page}").content.decode()
        assert link in html, page
    html = browser(manager).get(url(project)).content.decode()
    assert f'{link} aria-current="page">Snapshots</a>' in html
    engineer = make_user()
    add_member(project, engineer, "engineer")
    export = browser(engineer).get(f"/projects/{project.pk}/export").content.decode()
    assert f"<a {link}>snapshot</a>" in export
    html = browser(engineer).get(url(project)).content.decode()
    assert f'{link} aria-current="page">Snapshots</a>' in html
    assert f'href="/projects/{project.pk}/settings"' not in html  # the manager nav is for managers


def test_conll_is_mentioned_only_for_span_projects(manager):
    spans = make_project(manager, task_type="spans")
    classes = make_project(manager)
    assert "CoNLL" in browser(manager).get(url(spans)).content.decode()
    assert "CoNLL" not in browser(manager).get(url(classes)).content.decode()
    assert config_of(browser(manager).get(url(spans)).content.decode())["taskType"] == "spans"


def test_the_settings_page_has_the_license_field(manager):
    project = make_project(manager)
    html = browser(manager).get(f"/projects/{project.pk}/settings").content.decode()
    assert 'id="f-license" name="license" data-field="license"' in html
