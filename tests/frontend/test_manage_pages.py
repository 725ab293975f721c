"""Manager pages through Django's test client: access per role, escaping, the export links."""

from __future__ import annotations

import json
import re

import pytest

from annotation.models import Annotation, FinalLabel, Item, Job
from tests.conftest import add_member, make_project, make_user
from tests.frontend.helpers import browser, inline_scripts

pytestmark = pytest.mark.django_db

EVIL_LABEL = "<script>window.__y=1</script>"
EVIL_NAME = '<img src=x onerror="window.__x=1">'
PAGES = ("settings", "import", "export")


def page(project, name: str) -> str:
    return f"/projects/{project.pk}/{name}"


def config_of(html: str) -> dict:
    return json.loads(re.search(r'<script id="manage-config" type="application/json">(.*?)</script>', html).group(1))


@pytest.mark.parametrize("name", [*PAGES, "new"])
def test_login_required(project, name):
    target = "/projects/new" if name == "new" else page(project, name)
    r = browser().get(target)
    assert r.status_code == 302
    assert r["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("name", PAGES)
def test_non_members_get_404(project, name):
    assert browser(make_user()).get(page(project, name)).status_code == 404


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("annotator", set()),
        ("reviewer", set()),
        ("engineer", {"export"}),
        ("manager", {"settings", "import", "export"}),
    ],
)
def test_each_role_sees_only_its_pages(project, role, allowed):
    user = make_user()
    add_member(project, user, role)
    client = browser(user)
    for name in PAGES:
        r = client.get(page(project, name))
        assert r.status_code == (200 if name in allowed else 403), (role, name, r.status_code)


def test_staff_sees_every_page(project, staff):
    for name in PAGES:
        assert browser(staff).get(page(project, name)).status_code == 200


def test_new_project_page_for_any_user(db):
    r = browser(make_user()).get("/projects/new")
    assert r.status_code == 200
    html = r.content.decode()
    config = config_of(html)
    assert config["project"] is None
    assert config["fields"]["annotations_per_item"] == 1
    assert {c["value"] for c in config["choices"]["task_type"]} == {"classification", "multilabel", "spans"}
    assert "/static/frontend/manage/main.js" in html
    assert inline_scripts(html) == []


def test_settings_page_carries_the_project(manager):
    project = make_project(manager, name="news", annotations_per_item=3, review_policy="all", guidelines="# Be kind")
    r = browser(manager).get(page(project, "settings"))
    html = r.content.decode()
    fields = config_of(html)["fields"]
    assert fields["annotations_per_item"] == 3
    assert fields["review_policy"] == "all"
    assert fields["guidelines"] == "# Be kind"
    assert [label["name"] for label in fields["labels"]] == ["sports", "politics", "tech"]
    assert 'id="member-form"' in html
    assert "script-src 'self'" in r["Content-Security-Policy"]
    assert inline_scripts(html) == []


def test_names_labels_and_file_names_are_escaped(manager):
    project = make_project(manager, name=EVIL_NAME, labels=[EVIL_LABEL, "ok"])
    Job.objects.create(
        kind="import", project=project, status="succeeded", params={"filename": "<b onclick=x()>rows</b>.jsonl"}
    )
    for name in PAGES:
        html = browser(manager).get(page(project, name)).content.decode()
        assert EVIL_NAME not in html, name
        assert EVIL_LABEL not in html, name
        assert "&lt;img src=x onerror=&quot;window.__x=1&quot;&gt;" in html, name
        assert inline_scripts(html) == [], name
    html = browser(manager).get(page(project, "import")).content.decode()
    assert "<b onclick" not in html
    assert "&lt;b onclick=x()&gt;rows&lt;/b&gt;.jsonl" in html
    html = browser(manager).get(page(project, "settings")).content.decode()
    assert config_of(html)["fields"]["labels"][0]["name"] == EVIL_LABEL  # intact as data, escaped in the page


def test_export_links_download_the_rows(manager):
    project = make_project(manager, name="news")
    item = Item.objects.create(project=project, external_id="a1", data={"text": "hello"})
    Item.objects.create(project=project, external_id="a2", data={"text": "bye"})
    Annotation.objects.create(item=item, annotator=manager, value={"label": "tech"})
    FinalLabel.objects.create(item=item, value={"label": "tech"}, source="consensus")
    client = browser(manager)
    html = client.get(page(project, "export")).content.decode()
    assert "2 items, 1 with a final label" in html
    links = re.findall(r'href="(/api/projects/\d+/export\?format=(?:jsonl|csv))"', html)
    assert links == [f"/api/projects/{project.pk}/export?format=jsonl", f"/api/projects/{project.pk}/export?format=csv"]
    rows = [json.loads(line) for line in b"".join(client.get(links[0]).streaming_content).splitlines()]
    assert [(r["external_id"], r["final"]) for r in rows] == [("a1", {"label": "tech"}), ("a2", None)]
    csv_body = b"".join(client.get(links[1]).streaming_content).decode()
    assert csv_body.splitlines()[0].startswith("id,external_id,text")
    assert len(csv_body.strip().splitlines()) == 3
