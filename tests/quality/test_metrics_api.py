"""GET /api/projects/{id}/metrics: the contract's shape, nulls for an empty project, access, dates, the cache."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from annotation.models import MetricsCache
from annotation.models.item import FinalLabelSource
from annotation.quality.agreement import agreement_section
from annotation.quality.annotators import annotators_section, throughput_section
from annotation.quality.metrics import project_metrics
from annotation.quality.model import learning_curve_section, live_section, model_section
from annotation.quality.slices import slices_section
from annotation.quality.stopping import stopping_section
from annotation.quality.window import ALL, Window
from tests.conftest import add_member, client_for, make_user
from tests.quality.helpers import DAY0, annotate, days, final, items, project_with, users

# Issue 13's "## Contract", as nested key sets: a dict is an object with exactly these keys ("*": any key), a
# one-element list a list of such objects, None a leaf.
PAIR = {"a": None, "b": None, "kappa": None, "n": None}
CONTRACT: dict[str, Any] = {
    "computed_at": None,
    "agreement": {
        "krippendorff_alpha": None,
        "fleiss_kappa": None,
        "pairwise_cohen_kappa": [PAIR],
        "per_label": {"*": {"krippendorff_alpha": None}},
        "n_items": None,
        "over_time": [{"day": None, "krippendorff_alpha": None, "n_items": None}],
    },
    "annotators": [
        {
            "username": None,
            "annotations": None,
            "per_hour": None,
            "median_lead_time_ms": None,
            "gold_answers": None,
            "gold_accuracy": None,
            "paused": None,
            "agreement_with_final": None,
            "suggestion_accepted_rate": None,
            "wrong_suggestion_accepted_rate": None,
        }
    ],
    "throughput": [{"day": None, "annotations": None, "reviews": None}],
    "model": [
        {
            "model_version": None,
            "status": None,
            "accuracy": None,
            "macro_f1": None,
            "ece": None,
            "per_label_f1": None,
            "confusion": None,
            "reliability": [{"bin": None, "confidence": None, "accuracy": None, "n": None}],
        }
    ],
    "live": {
        "model_version": None,
        "gold": {"n": None, "accuracy": None, "ci": None},
        "final": {"n": None, "accuracy": None, "ci": None},
    },
    "learning_curve": [{"model_version": None, "n_train": None, "accuracy": None}],
    "slices": {
        "*": {
            "truncated": None,
            "rows": [
                {
                    "value": None,
                    "n": None,
                    "agreement": None,
                    "agreement_ci": None,
                    "gold_accuracy": None,
                    "gold_ci": None,
                    "model_accuracy": None,
                    "model_ci": None,
                    "flagged": None,
                }
            ],
        }
    },
    "stopping": {
        "kappa_history": [{"model_version": None, "kappa": None}],
        "stable": None,
        "sample_size": None,
        "sentence": None,
    },
}


def mismatches(spec: Any, value: Any, path: str = "") -> list[str]:
    """Where `value` departs from the contract's key sets (empty: it has exactly the contract's shape)."""
    if spec is None:
        return []
    if isinstance(spec, list):
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        return [m for i, v in enumerate(value) for m in mismatches(spec[0], v, f"{path}[{i}]")]
    if not isinstance(value, dict):
        return [f"{path}: expected an object, got {type(value).__name__}"]
    if "*" in spec:
        return [m for k, v in value.items() for m in mismatches(spec["*"], v, f"{path}.{k}" if path else k)]
    out = [f"{path}: keys {sorted(set(value))} != {sorted(spec)}"] if set(value) != set(spec) else []
    for k in sorted(spec.keys() & value.keys()):
        out += mismatches(spec[k], value[k], f"{path}.{k}" if path else k)
    return out


def test_the_shape_checker_finds_a_missing_and_an_extra_key():
    assert mismatches({"a": None, "b": [{"c": None}]}, {"a": 1, "b": [{"c": 1}]}) == []
    assert mismatches({"a": None, "b": [{"c": None}]}, {"a": 1, "b": [{"d": 1}]}) == ["b[0]: keys ['d'] != ['c']"]
    assert mismatches({"a": None}, {"a": 1, "x": 2}) == [": keys ['a', 'x'] != ['a']"]
    assert mismatches({"*": {"a": None}}, {"f": {"a": 1}, "g": {}}) == ["g: keys [] != ['a']"]


def url(project, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/projects/{project.pk}/metrics" + (f"?{query}" if query else "")


@pytest.fixture
def small(db):
    """Three annotators on four items (overlap 2, one disagreement), a gold item answered twice, a final label
    per decided item, a reviewer and an engineer."""
    project = project_with(annotations_per_item=2)
    people = users(project, "ann_a", "ann_b", "ann_c")
    people.update(users(project, "rev", role="reviewer"))
    people.update(users(project, "eng", role="engineer"))
    work = items(project, ["the match", "the vote", "the chip", "the goal"])
    answers = [("sports", "sports"), ("politics", "politics"), ("tech", "politics"), ("sports", "sports")]
    for n, (item, (a, b)) in enumerate(zip(work, answers, strict=True)):
        annotate(item, people["ann_a"], {"label": a}, at=DAY0 + days(n % 2), lead_time_ms=1000 + n)
        annotate(item, people["ann_b" if n % 2 else "ann_c"], {"label": b}, at=DAY0 + days(n % 2), lead_time_ms=900)
        if a == b:
            final(item, {"label": a})
    (gold,) = items(project, ["gold text"], gold=True, prefix="g")
    final(gold, {"label": "tech"}, FinalLabelSource.GOLD)
    annotate(gold, people["ann_a"], {"label": "tech"}, at=DAY0)
    annotate(gold, people["ann_b"], {"label": "sports"}, at=DAY0 + days(1))
    return project, people


def test_the_answer_has_exactly_the_contracts_shape_and_the_sections_figures(small):
    project, people = small
    r = client_for(people["rev"]).get(url(project))
    assert r.status_code == 200, r.content
    body = r.json()
    assert mismatches(CONTRACT, body) == []
    assert body["computed_at"].endswith("Z")
    # the assembly passes each section's own figures through (their values are tested against the libraries)
    expected = {
        "agreement": agreement_section(project, ALL),
        "annotators": annotators_section(project, ALL),
        "throughput": throughput_section(project, ALL),
        "model": model_section(project),
        "live": live_section(project, ALL),
        "learning_curve": learning_curve_section(project),
        "slices": slices_section(project, ALL),
        "stopping": stopping_section(project),
    }
    assert {k: body[k] for k in expected} == json.loads(json.dumps(expected))
    assert body["agreement"]["n_items"] == 4
    assert body["agreement"]["krippendorff_alpha"] is not None
    assert sorted(a["username"] for a in body["annotators"]) == ["ann_a", "ann_b", "ann_c"]


def test_a_day_range_covers_only_its_days(small):
    project, people = small
    client = client_for(people["eng"])
    first = client.get(url(project, since=DAY0.date().isoformat(), until=DAY0.date().isoformat())).json()
    assert mismatches(CONTRACT, first) == []
    assert first["agreement"] == json.loads(json.dumps(agreement_section(project, Window(DAY0.date(), DAY0.date()))))
    assert [row["day"] for row in first["throughput"]] == [DAY0.date().isoformat()]
    whole = client.get(url(project)).json()
    assert first["agreement"]["n_items"] < whole["agreement"]["n_items"]
    open_ended = client.get(url(project, since=(DAY0 + days(1)).date().isoformat())).json()
    assert [row["day"] for row in open_ended["throughput"]] == [(DAY0 + days(1)).date().isoformat()]


NUMBERS_THAT_ARE_COUNTS = {"n", "n_items", "annotations", "reviews", "gold_answers", "sample_size"}


def _numbers(value: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in _numbers(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [x for i, v in enumerate(value) for x in _numbers(v, f"{path}[{i}]")]
    return [(path, value)] if isinstance(value, int | float) and not isinstance(value, bool) else []


def test_a_project_with_nothing_answers_nulls_and_empty_lists(db):
    project = project_with()
    manager = project.created_by  # project_create makes its creator a manager
    r = client_for(manager).get(url(project))
    assert r.status_code == 200
    body = r.json()
    assert mismatches(CONTRACT, body) == []
    for key in ("annotators", "throughput", "model", "learning_curve"):
        assert body[key] == [], key
    assert body["agreement"]["pairwise_cohen_kappa"] == []
    assert body["agreement"]["over_time"] == []
    assert body["stopping"]["kappa_history"] == []
    # no figure is made up: every number left is a count, and it is 0
    assert [(p, v) for p, v in _numbers(body) if p.rsplit(".", 1)[-1] not in NUMBERS_THAT_ARE_COUNTS] == []
    assert all(v == 0 for _, v in _numbers(body))
    assert body["agreement"]["krippendorff_alpha"] is None
    assert body["agreement"]["fleiss_kappa"] is None
    assert body["live"]["gold"]["accuracy"] is None
    assert body["live"]["final"]["ci"] == [None, None]


@pytest.mark.parametrize("role", ["reviewer", "manager", "engineer"])
def test_inspecting_roles_and_staff_may_read_it(small, role):
    project, _ = small
    user = make_user(f"x_{role}")
    add_member(project, user, role)
    assert client_for(user).get(url(project)).status_code == 200
    assert client_for(make_user("boss", staff=True)).get(url(project)).status_code == 200


def test_an_annotator_gets_403_and_a_non_member_404(small):
    project, people = small
    r = client_for(people["ann_a"]).get(url(project))
    assert r.status_code == 403
    assert set(r.json()) == {"detail", "errors"}
    r = client_for(make_user("stranger")).get(url(project))
    assert r.status_code == 404
    assert client_for(make_user("nobody")).get("/api/projects/999999999/metrics").status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "2026-13-01"}, "since"),
        ({"until": "yesterday"}, "until"),
        ({"since": "2026-11-02T00:00:00"}, "since"),
        ({"since": "2026-11-05", "until": "2026-11-02"}, "since"),
        ({"sinse": "2026-11-02"}, "sinse"),
    ],
)
def test_bad_dates_answer_400_naming_the_field(small, params, field):
    project, people = small
    r = client_for(people["rev"]).get(url(project, **params))
    assert r.status_code == 400, r.content
    assert [e["field"] for e in r.json()["errors"]] == [field]
    assert not MetricsCache.objects.filter(project=project).exists()


def test_a_single_day_is_a_valid_range(small):
    project, people = small
    day = date(2026, 11, 3).isoformat()
    assert client_for(people["rev"]).get(url(project, since=day, until=day)).status_code == 200


def test_a_second_request_is_served_from_the_cache(small, django_assert_max_num_queries):
    project, people = small
    client = client_for(people["rev"])
    first = client.get(url(project)).json()
    assert MetricsCache.objects.filter(project=project, key="all").exists()
    with django_assert_max_num_queries(2):  # the access check and the cached row
        second = client.get(url(project))
    assert second.json() == first


def test_a_cached_day_range_is_served_from_the_cache(small, django_assert_max_num_queries):
    project, people = small
    client = client_for(people["rev"])
    params = {"since": "2026-11-02", "until": "2026-11-03"}
    first = client.get(url(project, **params)).json()
    assert MetricsCache.objects.filter(project=project, key="2026-11-02..2026-11-03").exists()
    with django_assert_max_num_queries(3):  # the access check, the cached row and the refresh check's state
        second = client.get(url(project, **params))
    assert second.json() == first


def test_project_metrics_stores_what_it_computes(small):
    project, _ = small
    payload = project_metrics(project, ALL)
    row = MetricsCache.objects.get(project=project, key="all")
    assert row.payload == payload
    assert row.computed_at.isoformat().replace("+00:00", "Z") == payload["computed_at"]


def test_the_schema_documents_the_endpoint(db):
    from django.test import Client

    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    get = schema["paths"]["/api/projects/{id}/metrics/"]["get"]
    assert {p["name"] for p in get["parameters"] if p["in"] == "query"} == {"since", "until"}
    ref = get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(schema["components"]["schemas"][ref]["properties"]) == set(CONTRACT)
