"""The dashboard page through Django's test client: who may open it, the project list's link, Chart.js present
or not, no inline script."""

from __future__ import annotations

import json
import re

import pytest

from frontend.views_dashboard import CHART_JS
from tests.conftest import add_member, make_project, make_user
from tests.frontend.helpers import browser, inline_scripts

pytestmark = pytest.mark.django_db

EVIL_NAME = '<img src=x onerror="window.__x=1">'


def url(project) -> str:
    return f"/projects/{project.pk}/dashboard"


def config_of(html: str) -> dict:
    block = re.search(r'<script id="dashboard-config" type="application/json">(.*?)</script>', html, re.S)
    assert block is not None
    return json.loads(block.group(1))


def test_anonymous_is_sent_to_the_login_page(project):
    r = browser().get(url(project))
    assert r.status_code == 302
    assert r["Location"].startswith("/login/?next=")


def test_non_members_get_404(project):
    assert browser(make_user()).get(url(project)).status_code == 404
    assert browser(make_user()).get("/projects/999999/dashboard").status_code == 404


def test_annotators_get_403(project, annotator):
    # blind labeling: an annotator sees no one else's work, so no quality figures either
    assert browser(annotator).get(url(project)).status_code == 403


@pytest.mark.parametrize("role", ["reviewer", "manager", "engineer", "staff"])
def test_inspecting_roles_get_the_page(project, role):
    if role == "staff":
        user = make_user(staff=True)
    else:
        user = make_user()
        add_member(project, user, role)
    r = browser(user).get(url(project))
    assert r.status_code == 200
    html = r.content.decode()
    assert inline_scripts(html) == []
    assert "frontend/dashboard/main.js" in html
    for panel in ("agreement", "throughput", "annotators", "model", "live", "learning", "slices", "stopping"):
        assert f'id="panel-{panel}"' in html
    config = config_of(html)
    assert config["project"] == project.pk
    assert config["labels"] == ["sports", "politics", "tech"]
    assert config["canManage"] is (role in ("manager", "staff"))
    # only those who may review see the Review link
    assert (f'href="/projects/{project.pk}/review"' in html) is (role in ("reviewer", "manager", "staff"))


def test_project_name_is_escaped(manager):
    project = make_project(manager, name=EVIL_NAME)
    html = browser(manager).get(url(project)).content.decode()
    assert EVIL_NAME not in html
    assert "&lt;img src=x" in html


def test_chart_js_is_loaded_from_static_when_installed(project, manager, settings, tmp_path):
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "chart.umd.min.js").write_text("/* chart */")
    (tmp_path / "empty-root").mkdir()
    settings.STATICFILES_DIRS = [("vendor/chart.js", dist)]
    settings.STATIC_ROOT = str(tmp_path / "empty-root")
    html = browser(manager).get(url(project)).content.decode()
    assert f'<script src="/static/{CHART_JS}" defer></script>' in html
    assert 'id="dash-no-charts" hidden' in html  # shown only if the script then fails to load
    # served by the same pipeline as every static file
    from django.contrib.staticfiles import finders

    assert finders.find(CHART_JS) == str(dist / "chart.umd.min.js")


def test_without_chart_js_the_page_says_so_and_loads_no_script_that_would_404(project, manager, settings, tmp_path):
    (tmp_path / "empty-root").mkdir()
    settings.STATICFILES_DIRS = []
    settings.STATIC_ROOT = str(tmp_path / "empty-root")
    html = browser(manager).get(url(project)).content.decode()
    assert "chart.umd" not in html
    assert "Charts are unavailable: Chart.js is not installed" in html
    assert 'id="dash-no-charts" hidden' not in html


def test_chart_js_collected_without_node_modules_still_counts(project, manager, settings, tmp_path):
    # a deployment that ran collectstatic and then dropped node_modules (the Docker web image)
    root = tmp_path / "root"
    (root / "vendor" / "chart.js").mkdir(parents=True)
    (root / CHART_JS).write_text("/* chart */")
    settings.STATICFILES_DIRS = []
    settings.STATIC_ROOT = str(root)
    html = browser(manager).get(url(project)).content.decode()
    assert f'src="/static/{CHART_JS}"' in html


@pytest.mark.parametrize("role", ["reviewer", "manager", "engineer"])
def test_project_list_links_the_dashboard_for_inspecting_roles(project, role):
    user = make_user()
    add_member(project, user, role)
    html = browser(user).get("/").content.decode()
    assert f'href="/projects/{project.pk}/dashboard"' in html


def test_project_list_has_no_dashboard_link_for_annotators(project, annotator):
    html = browser(annotator).get("/").content.decode()
    assert f'href="/projects/{project.pk}/label"' in html
    assert "/dashboard" not in html
