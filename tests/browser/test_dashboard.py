"""The quality dashboard in a real Chromium, against the live server and the real metrics and annotators APIs.

The data is made the way users make it: annotators take items from `next` and submit through the REST API (so
the server records the suggestion it served, scores gold answers and pauses whoever falls below the bar), and
the page must show exactly the figures `GET /api/projects/{id}/metrics` answers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from annotation.models import Item, Membership
from annotation.services.gold import gold_set
from modelsvc.models import ModelVersion, VersionKind, VersionStatus
from tests.browser.conftest import ARTIFACTS, project_with_items, screenshot
from tests.conftest import add_member, client_for, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PANELS = ("agreement", "throughput", "annotators", "model", "live", "learning", "slices", "stopping")
LABELS = ("spam", "ham")
# (text, source, the truth); ann labels the truth, bob disagrees on the last two (ties: they go to review)
NORMAL = [
    ("WIN a FREE prize now, reply YES", "sms", "spam"),
    ("see you at lunch?", "sms", "ham"),
    ("cheap meds online, click here", "web", "spam"),
    ("the minutes of today's meeting", "web", "ham"),
    ("URGENT: your account is locked, log in at", "web", "spam"),
    ("happy birthday! call me later", "sms", "ham"),
    ("limited offer: 90% off watches", "web", "spam"),
    ("can you send me the report", "sms", "ham"),
]
BOB_DISAGREES = {6, 7}
GOLD = [
    ("claim your lottery winnings today", "spam"),
    ("dinner at 8 then?", "ham"),
    ("free ringtones txt 8888", "spam"),
]


def pct(x: float | None) -> str:
    """dashboard/format.js's pct."""
    return "—" if x is None else f"{x * 100:.1f} %"


def coef(x: float | None) -> str:
    """dashboard/format.js's coef."""
    return "—" if x is None else f"{x:.3f}"


def version_metrics(accuracy: float, n_train: int) -> dict[str, Any]:
    """ModelVersion.metrics as modelsvc/evaluation.py and training record them."""
    return {
        "accuracy": accuracy,
        "macro_f1": round(accuracy - 0.05, 4),
        "ece": round(1 - accuracy, 4) / 2,
        "per_label_f1": {"spam": accuracy, "ham": round(accuracy - 0.1, 4)},
        "confusion_matrix": [[8, 2], [3, 7]],
        "reliability": [
            {"bin": 5, "confidence": 0.55, "accuracy": 0.5, "n": 6},
            {"bin": 7, "confidence": 0.75, "accuracy": 0.7, "n": 10},
            {"bin": 9, "confidence": 0.95, "accuracy": 0.9, "n": 4},
        ],
        "n_train": n_train,
    }


def label_through_the_api(project, user, answers: dict[int, str]) -> str:
    """`user` takes items from next and submits `answers[item id]` until next answers 204 or 403; returns why it
    stopped ("done" or "paused")."""
    client = client_for(user)
    for n in range(50):
        r = client.get(f"/api/projects/{project.pk}/next")
        if r.status_code == 204:
            return "done"
        if r.status_code == 403:
            assert r.json().get("paused") is True, r.json()
            return "paused"
        assert r.status_code == 200, r.content
        item = r.json()
        s = client.post(
            f"/api/items/{item['id']}/annotations",
            {"value": {"label": answers[item["id"]]}, "lead_time_ms": 2000 + 100 * n},
            format="json",
            HTTP_IDEMPOTENCY_KEY=f"{user.username}-{item['id']}",
        )
        assert s.status_code == 201, s.content
    raise AssertionError("next never ran out")


def build_project() -> tuple[Any, dict[str, Any]]:
    """Two annotators' overlapping labels, gold items answered by three (one paused), two fine-tuned versions."""
    manager = make_user("dana")
    suggestion = {
        "model_version": 2,
        "kind": "fine_tuned",
        "value": {"label": "spam"},
        "probabilities": {"spam": 0.7, "ham": 0.3},
        "confidence": 0.7,
        "uncertainty": 0.3,
        "scores": {"least_confidence": 0.3, "margin": 0.6, "entropy": 0.88},
    }
    texts = [{"text": t, "source": s} for t, s, _ in NORMAL] + [{"text": t, "source": "gold"} for t, _ in GOLD]
    project, items = project_with_items(
        texts,
        owner=manager,
        labels=LABELS,
        predictions=dict.fromkeys(range(len(texts)), suggestion),
        name="SMS quality",
        annotations_per_item=2,
        gold_rate=1.0,  # every next serves an unanswered gold item first: the order is fixed
        gold_pause_below=0.6,
        gold_pause_min=2,
    )
    normal, gold = items[: len(NORMAL)], items[len(NORMAL) :]
    for item, (_, value) in zip(gold, GOLD, strict=True):
        gold_set(item=item, value={"label": value})
    ModelVersion.objects.create(
        project=project, version=1, kind=VersionKind.FINE_TUNED, base_model="test", labels=[{"name": n} for n in LABELS],
        task_type="classification", status=VersionStatus.RETIRED, metrics=version_metrics(0.7, 20),
    )  # fmt: skip
    ModelVersion.objects.create(
        project=project, version=2, kind=VersionKind.FINE_TUNED, base_model="test", labels=[{"name": n} for n in LABELS],
        task_type="classification", status=VersionStatus.ACTIVE, metrics=version_metrics(0.85, 40),
    )  # fmt: skip

    truth = {item.pk: label for item, (_, _, label) in zip(normal, NORMAL, strict=True)}
    gold_truth = {item.pk: label for item, (_, label) in zip(gold, GOLD, strict=True)}
    flip = {"spam": "ham", "ham": "spam"}
    people = {name: make_user(name) for name in ("ann", "bob", "cat")}
    for user in people.values():
        add_member(project, user, "annotator")
    reviewer = make_user("rita")
    add_member(project, reviewer, "reviewer")

    assert label_through_the_api(project, people["ann"], truth | gold_truth) == "done"
    # cat answers every gold item wrongly: paused after gold_pause_min (2) answers, below gold_pause_below (gold is
    # served only while the normal queue has work for cat: before bob takes the second slots)
    assert label_through_the_api(project, people["cat"], {pk: flip[v] for pk, v in gold_truth.items()}) == "paused"
    bob = {pk: flip[v] if i in BOB_DISAGREES else v for i, (pk, v) in enumerate(truth.items())}
    bob_gold = {pk: flip[v] if i == 2 else v for i, (pk, v) in enumerate(gold_truth.items())}  # 2 of 3 right
    assert label_through_the_api(project, people["bob"], bob | bob_gold) == "done"
    assert Membership.objects.get(project=project, user=people["cat"]).paused
    assert Item.objects.filter(pk__in=[normal[i].pk for i in BOB_DISAGREES], status="in_review").count() == 2

    # the figures the page must show: what the API answers (this request also computes and caches them)
    r = client_for(manager).get(f"/api/projects/{project.pk}/metrics")
    assert r.status_code == 200, r.content
    return project, {"metrics": r.json(), "manager": manager, "reviewer": reviewer, **people}


def open_dashboard(page: Page, live_server, project, query: str = "") -> Page:
    page.goto(f"{live_server.url}/projects/{project.pk}/dashboard{query}")
    for name in PANELS:
        expect(page.locator(f"#panel-{name}")).to_have_attribute("aria-busy", "false")
    return page


def table_row(page: Page, table: str, first_cell: str):
    return page.locator(f"#table-{table} tbody tr").filter(has=page.locator("th", has_text=first_cell))


def test_dashboard_shows_the_api_figures_filters_by_date_and_unpauses(page: Page, live_server, logged_in, errors):
    project, ctx = build_project()
    m = ctx["metrics"]
    logged_in(ctx["manager"])
    open_dashboard(page, live_server, project)
    expect(page.locator("#dash-status")).to_have_text("Showing the whole project.")
    expect(page.locator("#dash-no-charts")).to_be_hidden()

    # agreement: the headline figures and one chart, from the API's numbers
    agreement = m["agreement"]
    assert agreement["n_items"] == len(NORMAL)
    assert agreement["krippendorff_alpha"] is not None
    figures = page.locator("#panel-agreement .figures dd")
    expect(figures.nth(0)).to_have_text(coef(agreement["krippendorff_alpha"]))
    expect(figures.nth(1)).to_have_text(coef(agreement["fleiss_kappa"]))
    expect(figures.nth(2)).to_have_text(str(agreement["n_items"]))
    pair = agreement["pairwise_cohen_kappa"][0]
    expect(table_row(page, "agreement-pairs", pair["a"])).to_contain_text(coef(pair["kappa"]))

    # throughput: today's annotations
    day = m["throughput"][-1]
    expect(table_row(page, "throughput", day["day"])).to_contain_text(str(day["annotations"]))

    # annotators: gold accuracy, the automation-bias pair, and who is paused
    by_name = {a["username"]: a for a in m["annotators"]}
    assert by_name["ann"]["gold_accuracy"] == 1.0
    assert by_name["bob"]["gold_answers"] == 3
    for name in ("ann", "bob"):
        row = table_row(page, "annotators", name)
        expect(row).to_contain_text(pct(by_name[name]["gold_accuracy"]))
        expect(row).to_contain_text(pct(by_name[name]["suggestion_accepted_rate"]))
        expect(row).to_contain_text(pct(by_name[name]["wrong_suggestion_accepted_rate"]))
    expect(table_row(page, "annotators", "cat")).to_contain_text("paused")
    expect(page.locator('#dash-paused li[data-username="cat"]')).to_contain_text(
        "cat: paused, gold accuracy 0.0 % over 2"
    )

    # model versions, the reliability diagram of the active one, the learning curve
    expect(table_row(page, "model-versions", "v2")).to_contain_text("active")
    expect(table_row(page, "model-versions", "v2")).to_contain_text(pct(0.85))
    expect(page.locator("#panel-model .figures dd").first).to_have_text(coef(m["model"][0]["ece"]))
    expect(page.locator("#table-model-v2-reliability tbody tr")).to_have_count(3)
    expect(table_row(page, "model-v2-confusion", "spam")).to_contain_text("8")
    page.select_option("#dash-version", "1")
    expect(page.locator("#table-model-v1-reliability")).to_be_visible()
    expect(page.locator("#dash-version")).to_be_focused()
    expect(table_row(page, "learning-curve", "v1")).to_contain_text("20")
    expect(table_row(page, "learning-curve", "v2")).to_contain_text("40")

    # live accuracy: against gold (every gold answer was served v2's suggestion) and the inflated final
    live = m["live"]
    assert live["model_version"] == 2
    assert live["gold"]["n"] == 8
    expect(table_row(page, "live-accuracy", "gold value")).to_contain_text(pct(live["gold"]["accuracy"]))
    expect(table_row(page, "live-accuracy", "inflated by automation bias")).to_contain_text(str(live["final"]["n"]))

    # slices: the imported field `source`
    assert m["slices"]["source"]["rows"]
    expect(page.locator("#table-slice-source")).to_be_visible()
    for row in m["slices"]["source"]["rows"]:
        expect(table_row(page, "slice-source", str(row["value"]))).to_contain_text(str(row["n"]))
    flagged = sum(len(r["flagged"]) for r in m["slices"]["source"]["rows"])
    expect(page.locator("#table-slice-source .flagged")).to_have_count(flagged)

    # stopping: the sentence, or why there is none
    stopping = m["stopping"]
    said = stopping["sentence"][1:] if stopping["sentence"] else "at least two model versions"  # capitalised
    if stopping["kappa_history"]:
        expect(page.locator("#panel-stopping .stopping-sentence")).to_contain_text(said)
    else:
        expect(page.locator("#panel-stopping .panel-empty")).to_contain_text(said)

    # every chart was drawn by Chart.js (served from node_modules through staticfiles)
    drawn = page.evaluate(
        "() => [...document.querySelectorAll('canvas')].map(c => !!(window.Chart && Chart.getChart(c)))"
    )
    # agreement, throughput, gold, per-label F1, reliability, live, learning curve, one per slice field
    assert len(drawn) >= 7 + len(m["slices"]), drawn
    assert all(drawn), drawn

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name in PANELS:
        page.locator(f"#panel-{name}").screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"))
    screenshot(page, "dashboard")

    # CSV: the annotators table, built in the browser from the same JSON
    with page.expect_download() as download:
        page.click('[data-csv="annotators"]')
    assert download.value.suggested_filename == f"project-{project.pk}-annotators.csv"
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith("Annotator,Annotations,Per hour (active),Median lead time (ms),Gold answers")
    ann = next(line for line in lines if line.startswith("ann,"))
    assert ann.split(",")[4:6] == [str(by_name["ann"]["gold_answers"]), "1"]  # raw figures: 3 answers, accuracy 1

    # un-pause, with the keyboard: a manager's button; cat's gold answers count again from now
    page.locator('#dash-paused button[aria-label="Un-pause cat"]').focus()
    page.keyboard.press("Enter")
    expect(page.locator("#dash-status")).to_have_text("cat is un-paused: their gold answers count again from now.")
    expect(page.locator("#dash-paused")).to_contain_text("No annotator is paused.")
    expect(page.locator("#dash-paused")).to_be_focused()  # not lost with the button
    expect(table_row(page, "annotators", "cat")).to_contain_text("active")
    assert not Membership.objects.get(project=project, user=ctx["cat"]).paused

    # the date filter: a range with no work shows the empty states, and the query string carries it
    page.fill("#dash-since", "2000-01-01")
    page.fill("#dash-until", "2000-01-02")
    page.click("#dash-range button[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/projects/{project.pk}/dashboard?since=2000-01-01&until=2000-01-02")
    for name in PANELS:
        expect(page.locator(f"#panel-{name}")).to_have_attribute("aria-busy", "false")
    expect(page.locator("#dash-status")).to_have_text("Showing from 2000-01-01 to 2000-01-02.")
    expect(page.locator("#dash-since")).to_have_value("2000-01-01")
    expect(page.locator("#panel-throughput")).to_contain_text("No annotations or reviews in this range.")
    expect(page.locator("#panel-agreement")).to_contain_text("agreement needs overlap ≥ 2")
    # model versions are not by date
    expect(table_row(page, "model-versions", "v2")).to_be_visible()
    screenshot(page, "dashboard-range")
    assert errors == []

    # a range that ends before it starts: the API's 400 in words, and no panel left waiting
    page.goto(f"{live_server.url}/projects/{project.pk}/dashboard?since=2026-12-07&until=2026-12-01")
    expect(page.locator("#dash-error")).to_contain_text("since is after until")
    expect(page.locator("#panel-agreement")).to_have_attribute("aria-busy", "false")
    assert errors  # the browser logs the failed request itself ...
    assert all("status of 400" in e for e in errors), errors  # ... and nothing else went wrong


def test_a_reviewer_sees_the_figures_but_no_unpause_button(page: Page, live_server, logged_in, errors):
    project, ctx = build_project()
    logged_in(ctx["reviewer"])
    open_dashboard(page, live_server, project)
    expect(page.locator('#dash-paused li[data-username="cat"]')).to_be_visible()
    expect(page.locator("#dash-paused button")).to_have_count(0)
    expect(page.locator("#dash-paused")).to_contain_text("A manager can un-pause them.")
    assert errors == []


def test_an_empty_project_explains_each_panel(page: Page, live_server, logged_in, errors):
    manager = make_user()
    project, _ = project_with_items(["one", "two"], owner=manager, labels=LABELS)
    logged_in(manager)
    open_dashboard(page, live_server, project)
    expect(page.locator("#panel-agreement .panel-empty")).to_contain_text(
        "Fewer than two annotators on any item: agreement needs overlap ≥ 2"
    )
    expect(page.locator("#panel-model .panel-empty")).to_contain_text("No model version yet: pre-label or train")
    expect(page.locator("#panel-throughput .panel-empty")).to_be_visible()
    expect(page.locator("#panel-learning .panel-empty")).to_be_visible()
    expect(page.locator("#panel-live .panel-empty")).to_be_visible()
    screenshot(page, "dashboard-empty")
    assert errors == []


def test_dashboard_passes_axe_wcag_aa(browser, live_server):
    from tests.browser.test_manage_pages import AXE, axe_violations

    if not AXE.exists():
        pytest.skip("axe-core is missing: run `npm ci`")
    project, ctx = build_project()

    def loaded(page):
        for name in PANELS:
            expect(page.locator(f"#panel-{name}")).to_have_attribute("aria-busy", "false")

    found = axe_violations(
        browser,
        live_server,
        ctx["manager"],
        [
            ("dashboard", f"/projects/{project.pk}/dashboard", loaded),
            ("dashboard, empty range", f"/projects/{project.pk}/dashboard?since=2000-01-01&until=2000-01-01", loaded),
        ],
    )
    assert found == {}, json.dumps(found, indent=1)
