"""Server-rendered pages through Django's test client: login, membership, CSP, sanitized Markdown."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from annotation.models import Annotation, Item
from frontend.markdown import markdown_render
from tests.conftest import add_member, make_project, make_user

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_pages_need_login():
    project = make_project()
    for url in ["/", f"/projects/{project.pk}/label"]:
        r = Client().get(url)
        assert r.status_code == 302
        assert r["Location"].startswith("/login/?next=")


def test_label_page_is_404_for_non_members_and_200_for_members():
    project = make_project(name="secret project")
    outsider = make_user()
    r = logged_in(outsider).get(f"/projects/{project.pk}/label")
    assert r.status_code == 404
    assert b"secret project" not in r.content
    member = make_user()
    add_member(project, member)
    r = logged_in(member).get(f"/projects/{project.pk}/label")
    assert r.status_code == 200
    assert r.context["project"].pk == project.pk
    assert logged_in(member).get("/projects/999999/label").status_code == 404


def test_every_html_page_has_a_strict_csp():
    project = make_project()
    user = make_user()
    add_member(project, user)
    pages = [Client().get("/login/"), logged_in(user).get("/"), logged_in(user).get(f"/projects/{project.pk}/label")]
    for r in pages:
        assert r.status_code == 200
        csp = r["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'"
        assert "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp
        assert directives["object-src"] == "'none'"
        # and the page itself holds no inline script (only JSON data blocks) and no inline handlers
        html = r.content.decode()
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, tag
        assert not re.search(r"\son[a-z]+\s*=", html)
    # JSON answers do not need one
    assert "Content-Security-Policy" not in logged_in(user).get("/api/projects/")


def test_pages_load_only_their_own_modules_and_carry_the_csrf_token():
    """No page loads a library it does not use (htmx and Alpine.js are gone); page code is ES modules."""
    project = make_project()
    user = make_user()
    add_member(project, user)
    for url in ["/", f"/projects/{project.pk}/label"]:
        html = logged_in(user).get(url).content.decode()
        assert "htmx" not in html.lower()
        assert "alpine" not in html.lower()
        assert "/static/vendor/" not in html
        for tag in re.findall(r"<script\b[^>]*\bsrc=[^>]*>", html):
            assert 'type="module"' in tag, tag
        # the one place the modules read the CSRF token from (lib/http.js)
        assert re.search(r'<meta name="csrf-token" content="[^"]+">', html)
    html = logged_in(user).get(f"/projects/{project.pk}/label").content.decode()
    assert '<script type="module" src="/static/frontend/label/main.js">' in html


def test_page_modules_are_found_by_staticfiles():
    from django.contrib.staticfiles import finders

    for path in [
        "frontend/label/main.js",
        "frontend/review/main.js",
        "frontend/manage/main.js",
        "frontend/lib/http.js",
        "frontend/lib/dom.js",
        "frontend/lib/offsets.js",
        "frontend/app.css",
    ]:
        assert finders.find(path), path
    assert not finders.find("vendor/htmx/htmx.min.js")


def test_guidelines_markdown_is_rendered_and_sanitized():
    project = make_project(
        guidelines=(
            "# Rules\n\nLabel **sports** news.\n\n<script>window.pwned=1</script>\n"
            '<img src=x onerror="alert(1)">\n\n[bad](javascript:alert(1)) [good](https://example.org)'
        )
    )
    user = make_user()
    add_member(project, user)
    html = logged_in(user).get(f"/projects/{project.pk}/label").content.decode()
    assert "<h1>Rules</h1>" in html
    assert "<strong>sports</strong>" in html
    assert "<script>window.pwned" not in html
    assert "onerror" not in html
    assert "javascript:" not in html
    assert 'href="https://example.org"' in html
    assert 'rel="noopener noreferrer"' in html


def test_markdown_helper_allow_list():
    out = str(
        markdown_render(
            'Hi <b onclick="x()">there</b> <iframe src="//evil"></iframe>\n\n| a | b |\n|---|---|\n| 1 | 2 |'
        )
    )
    assert "<b>there</b>" in out
    assert "onclick" not in out
    assert "iframe" not in out
    assert "<table>" in out
    assert str(markdown_render(None)) == ""


def test_label_page_escapes_project_and_label_names():
    project = make_project(name="<img src=x onerror=alert(1)>", labels=["</script><script>alert(1)</script>", "ok"])
    user = make_user()
    add_member(project, user)
    html = logged_in(user).get(f"/projects/{project.pk}/label").content.decode()
    assert "<img src=x" not in html
    assert "</script><script>alert(1)" not in html
    config = json.loads(
        re.search(r'<script id="label-config" type="application/json">(.*?)</script>', html, re.S).group(1)
    )
    assert config["labels"][0]["name"] == "</script><script>alert(1)</script>"
    assert config["taskType"] == "classification"


def test_project_list_shows_items_left_for_me_and_progress():
    manager = make_user()
    project = make_project(manager, name="news")
    me = make_user()
    add_member(project, me)
    items = Item.objects.bulk_create(
        [Item(project=project, external_id=f"e{i}", data={"text": f"t{i}"}) for i in range(4)]
    )
    Annotation.objects.create(item=items[0], annotator=me, value={"label": "sports"})
    Item.objects.filter(pk=items[3].pk).update(status="approved")
    r = logged_in(me).get("/")
    assert r.status_code == 200
    (row,) = r.context["projects"]
    assert row["left_for_me"] == 2  # items 1 and 2: 0 is annotated by me, 3 is done
    assert row["percent_done"] == 25
    assert row["role"] == "annotator"
    assert row["can"] == {
        "view": True,
        "annotate": True,
        "review": False,
        "manage": False,
        "export": False,
        "model": False,
        "inspect": False,
    }
    page = r.content.decode()
    assert f'href="/projects/{project.pk}/label"' in page
    assert f'href="/projects/{project.pk}/review"' not in page  # the links follow the access API
    assert f'href="/projects/{project.pk}/dashboard"' not in page  # annotators label blind
    assert f'href="/projects/{project.pk}/settings"' not in page
    other = make_project(name="not mine")
    assert "not mine" not in r.content.decode()
    assert other.pk
