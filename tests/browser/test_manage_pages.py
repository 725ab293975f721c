"""Manager pages in a real Chromium: create a project with the label editor, members, import with its
progress bar, export downloads."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from annotation.models import Item, Membership, Project
from annotation.services.importing import import_run
from tests.browser.conftest import project_with_items, screenshot
from tests.conftest import add_member, make_project, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def page_errors(errors: list[str]) -> list[str]:
    """Console errors other than the browser's own note of an HTTP error answer the test provoked."""
    return [e for e in errors if "Failed to load resource" not in e]


def label_row(page: Page, n: int):
    return page.locator("#label-rows tr").nth(n)


def test_create_a_project_with_the_label_editor(page: Page, live_server, logged_in, errors):
    owner = make_user()
    logged_in(owner).goto(f"{live_server.url}/projects/new")
    page.fill("#f-name", "Support tickets")
    page.select_option("#f-task_type", "classification")
    label_row(page, 0).locator(".label-name").fill("billing")
    page.click("#label-add")
    expect(label_row(page, 1).locator(".label-name")).to_be_focused()
    page.keyboard.type("bug")
    label_row(page, 1).locator(".label-hotkey").fill("b")
    page.click("#label-add")
    page.keyboard.type("other")
    label_row(page, 2).locator(".label-color").fill("#123456")
    # move "bug" to the top with the keyboard-reachable arrow button
    label_row(page, 1).locator("[data-action=up]").click()
    expect(label_row(page, 0).locator(".label-name")).to_have_value("bug")
    # remove "other", add it again as "misc"
    label_row(page, 2).locator("[data-action=remove]").click()
    expect(page.locator("#label-rows tr")).to_have_count(2)
    page.click("#label-add")
    page.keyboard.type("misc")
    page.fill("#f-annotations_per_item", "2")
    page.select_option("#f-review_policy", "disagreements")
    page.select_option("#f-sampling", "sequential")
    page.fill("#f-exploration_rate", "0.25")
    page.fill("#f-guidelines", "# Read carefully\nBilling means money.")
    screenshot(page, "manage-new-project")
    page.click("#project-save")
    page.wait_for_url("**/projects/*/settings")
    project = Project.objects.get(name="Support tickets")
    assert [(label["name"], label.get("hotkey")) for label in project.labels] == [
        ("bug", "b"),
        ("billing", "2"),  # an empty hotkey gets the free key of its position (services.projects)
        ("misc", "3"),
    ]
    assert (project.annotations_per_item, project.review_policy, project.sampling) == (2, "disagreements", "sequential")
    assert project.exploration_rate == 0.25
    assert project.guidelines.startswith("# Read carefully")
    assert Membership.objects.get(project=project, user=owner).role == "manager"
    # the settings page shows what was saved
    expect(label_row(page, 0).locator(".label-name")).to_have_value("bug")
    expect(page.locator("#f-annotations_per_item")).to_have_value("2")
    assert errors == []


def test_settings_errors_are_shown_by_field_and_saves_apply(page: Page, live_server, logged_in, errors):
    manager = make_user()
    project = make_project(manager, name="news")
    logged_in(manager).goto(f"{live_server.url}/projects/{project.pk}/settings")
    label_row(page, 1).locator(".label-hotkey").fill("s")  # reserved for skip
    label_row(page, 2).locator(".label-name").fill("sports")  # duplicate
    page.click("#project-save")
    expect(page.locator("#project-errors")).to_be_visible()
    expect(page.locator("#project-errors")).to_contain_text("labels[1].hotkey")
    expect(page.locator("#project-errors")).to_contain_text("Duplicate label name")
    expect(label_row(page, 1).locator(".label-hotkey")).to_have_attribute("aria-invalid", "true")
    label_row(page, 1).locator(".label-hotkey").fill("p")
    label_row(page, 2).locator(".label-name").fill("science")
    page.fill("#f-name", "news v2")
    page.click("#project-save")
    expect(page.locator("#project-status")).to_have_text("Saved.")
    expect(page.locator("#project-errors")).to_be_hidden()
    screenshot(page, "manage-settings")
    project.refresh_from_db()
    assert project.name == "news v2"
    assert [(label["name"], label["hotkey"]) for label in project.labels] == [
        ("sports", "1"),
        ("politics", "p"),
        ("science", "3"),
    ]
    assert page_errors(errors) == []


def test_members_add_change_role_and_remove(page: Page, live_server, logged_in, errors):
    manager = make_user("boss")
    project = make_project(manager, name="news")
    make_user("carol")
    logged_in(manager).goto(f"{live_server.url}/projects/{project.pk}/settings")
    expect(page.locator('#member-rows tr[data-username="boss"]')).to_be_visible()
    page.fill("#m-username", "nobody")
    page.click("#member-form button[type=submit]")
    expect(page.locator("#members-errors")).to_be_visible()
    page.fill("#m-username", "carol")
    page.select_option("#m-role", "reviewer")
    page.click("#member-form button[type=submit]")
    row = page.locator('#member-rows tr[data-username="carol"]')
    expect(row).to_be_visible()
    expect(page.locator("#members-errors")).to_be_hidden()
    assert Membership.objects.get(project=project, user__username="carol").role == "reviewer"
    row.locator("select").select_option("manager")
    expect(page.locator("#members-status")).to_have_text("carol is now manager.")
    assert Membership.objects.get(project=project, user__username="carol").role == "manager"
    row.get_by_role("button", name="Remove carol").click()
    expect(row).to_have_count(0)
    assert not Membership.objects.filter(project=project, user__username="carol").exists()
    assert page_errors(errors) == []


def _run_job_when_queued(queued: list[int]) -> object:
    """Play the worker: wait until the page's upload queued its import Job, then run it here."""
    deadline = time.monotonic() + 30
    while not queued and time.monotonic() < deadline:
        time.sleep(0.05)
    assert queued, "the upload queued no import Job"
    return import_run(job_id=queued[0])


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    """Import Jobs the web process queued; the test runs them itself instead of a Celery worker
    (so nothing is left in the broker for another test's worker)."""
    from annotation.tasks import import_items_task

    jobs: list[int] = []
    monkeypatch.setattr(import_items_task, "delay", jobs.append)
    return jobs


def test_import_a_file_and_watch_the_progress_bar_reach_done(page: Page, live_server, logged_in, errors, queued):
    manager = make_user()
    project = make_project(manager, name="news")
    Item.objects.create(project=project, external_id="dup", data={"text": "already here"})
    rows = [{"external_id": f"r{i}", "text": f"row {i} " + "words " * 20} for i in range(300)]
    rows.append({"external_id": "dup", "text": "a duplicate"})
    body = "".join(json.dumps(r) + "\n" for r in rows)
    body += '{"external_id": "bad1"}\n' + "{not json\n"  # lines 302 and 303 are wrong
    logged_in(manager).goto(f"{live_server.url}/projects/{project.pk}/import")
    page.select_option("#import-on-error", "skip")
    page.set_input_files(
        "#import-file", files=[{"name": "tickets.jsonl", "mimeType": "application/x-ndjson", "buffer": body.encode()}]
    )
    page.click("#import-start")
    expect(page.locator("#import-progress-text")).to_have_text("Waiting for a worker…")
    expect(page.locator("#import-filename")).to_have_text("tickets.jsonl")
    job = _run_job_when_queued(queued)
    assert job.status == "succeeded", (job.error, job.result)
    expect(page.locator("#import-progress-text")).to_have_text("Done.")
    expect(page.locator("#manage-import")).to_have_attribute("data-job-status", "succeeded")
    bar = page.locator("#import-progress")
    assert bar.evaluate("b => b.value === b.max && b.max > 0")
    expect(page.locator("#import-created")).to_have_text("300")
    expect(page.locator("#import-duplicates")).to_have_text("1")
    expect(page.locator("#import-error-count")).to_have_text("2")
    error_rows = page.locator("#import-error-rows tr")
    expect(error_rows).to_have_count(2)
    expect(error_rows.nth(0).locator("td").nth(0)).to_have_text("302")
    expect(error_rows.nth(0).locator("td").nth(1)).to_have_text("text")
    expect(error_rows.nth(1).locator("td").nth(0)).to_have_text("303")
    screenshot(page, "manage-import-done")
    assert Item.objects.filter(project=project).count() == 301
    assert errors == []


def test_a_rejected_file_shows_its_errors_and_creates_nothing(page: Page, live_server, logged_in, errors, queued):
    manager = make_user()
    project = make_project(manager, name="news")
    logged_in(manager).goto(f"{live_server.url}/projects/{project.pk}/import")
    name = "<b>evil</b>.txt"
    page.set_input_files("#import-file", files=[{"name": name, "mimeType": "text/plain", "buffer": b"hello"}])
    page.click("#import-start")
    expect(page.locator("#import-errors")).to_be_visible()
    expect(page.locator("#import-errors")).to_contain_text("file")
    assert page.locator("#manage-import b").count() == 0
    assert not Item.objects.filter(project=project).exists()
    assert queued == []
    assert page_errors(errors) == []


def test_export_links_download_the_rows(page: Page, live_server, logged_in, errors, tmp_path):
    project, _ = project_with_items(["one", "two"])
    engineer = make_user()
    add_member(project, engineer, "engineer")
    logged_in(engineer).goto(f"{live_server.url}/projects/{project.pk}/export")
    expect(page.locator(".manage-page")).to_contain_text("2 items, 0 with a final label")
    screenshot(page, "manage-export")
    with page.expect_download() as info:
        page.click("#export-jsonl")
    download = info.value
    assert download.suggested_filename == f"tandem-project-{project.pk}.jsonl"
    path = tmp_path / "export.jsonl"
    download.save_as(path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["external_id"], r["data"]["text"], r["final"]) for r in rows] == [
        ("x0", "one", None),
        ("x1", "two", None),
    ]
    with page.expect_download() as info:
        page.click("#export-csv")
    csv_path = tmp_path / "export.csv"
    info.value.save_as(csv_path)
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("id,external_id,text")
    assert len(lines) == 3
    assert errors == []


AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
AXE_RUN = (
    "async () => (await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}}))"
    ".violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))"
)


def axe_violations(browser, live_server, user, visits) -> dict:
    """axe-core's WCAG 2.1 A/AA violations per page; `visits` is [(name, path, prepare(page) or None)].

    The context bypasses CSP only to inject axe itself; it is closed before the test ends, so no request
    of a page is still running when the test database is flushed."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    context = browser.new_context(bypass_csp=True)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    found = {}
    try:
        page = context.new_page()
        for name, path, prepare in visits:
            page.goto(live_server.url + path)
            if prepare is not None:
                prepare(page)
            page.add_script_tag(path=str(AXE))
            result = page.evaluate(AXE_RUN)
            if result:
                found[name] = result
        page.goto("about:blank")
    finally:
        context.close()
    return found


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is missing: run `npm ci`")
def test_manager_pages_pass_axe_wcag_aa(browser, live_server):
    manager = make_user()
    project = make_project(manager, name="news")
    add_member(project, make_user("dana"), "reviewer")

    def members_loaded(page):
        expect(page.locator('#member-rows tr[data-username="dana"]')).to_be_visible()

    def shows_errors(page):
        page.fill("#f-name", "")
        page.click("#project-save")
        expect(page.locator("#project-errors")).to_be_visible()

    found = axe_violations(
        browser,
        live_server,
        manager,
        [
            ("new project", "/projects/new", None),
            ("settings", f"/projects/{project.pk}/settings", members_loaded),
            ("settings with errors", f"/projects/{project.pk}/settings", shows_errors),
            ("import", f"/projects/{project.pk}/import", None),
            ("export", f"/projects/{project.pk}/export", None),
        ],
    )
    assert found == {}, json.dumps(found, indent=1)
