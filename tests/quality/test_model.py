"""Model statistics per version, the learning curve and the live accuracy (issue 13, point 6), against the
recorded evaluation and statsmodels' Wilson interval called directly."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint  # type: ignore[import-untyped]

from annotation.models import FinalLabel
from annotation.models.item import FinalLabelSource
from annotation.quality.model import learning_curve_section, live_section, model_section
from annotation.quality.window import Window
from modelsvc.evaluation import classification_metrics
from modelsvc.models import ModelVersion, VersionKind, VersionStatus
from tests.quality.helpers import DAY0, annotate, days, final, items, project_with, users

pytestmark = pytest.mark.django_db

LABELS = ["sports", "politics", "tech"]


def version(project, number: int, *, kind=VersionKind.FINE_TUNED, status=VersionStatus.RETIRED, metrics=None):
    return ModelVersion.objects.create(
        project=project,
        version=number,
        kind=kind,
        base_model="test",
        labels=[{"name": n} for n in project.label_names],
        task_type=project.task_type,
        status=status,
        metrics=metrics or {},
    )


def suggestion(number: int, value: dict[str, Any], kind: str = "fine_tuned") -> dict[str, Any]:
    return {"model_version": number, "kind": kind, "value": value, "confidence": 0.9}


def wilson(successes: float, n: int) -> list[float]:
    return list(proportion_confint(successes, n, alpha=0.05, method="wilson"))


def decide(item, value: dict[str, Any], at) -> FinalLabel:
    label = final(item, value)
    FinalLabel.objects.filter(pk=label.pk).update(created_at=at)
    return label


# ---------------------------------------------------------------- nothing yet


def test_no_version_gives_empty_sections_and_null_live():
    project = project_with()
    assert model_section(project) == []
    assert learning_curve_section(project) == []
    empty = {"n": 0, "accuracy": None, "ci": [None, None]}
    assert live_section(project, Window()) == {"model_version": None, "gold": empty, "final": empty}


def test_active_version_without_any_trial_is_null_not_zero():
    project = project_with()
    version(project, 1, kind=VersionKind.ZERO_SHOT, status=VersionStatus.ACTIVE)
    live = live_section(project, Window())
    assert live["model_version"] == 1
    assert live["gold"] == {"n": 0, "accuracy": None, "ci": [None, None]}
    assert live["final"] == {"n": 0, "accuracy": None, "ci": [None, None]}


# ---------------------------------------------------------------- per version


def test_model_section_reads_each_versions_evaluation_newest_first():
    project = project_with()
    rng = np.random.default_rng(5)
    p = rng.dirichlet([1, 1, 1], size=40)
    evaluated = classification_metrics(p, rng.integers(0, 3, size=40).tolist(), LABELS)
    version(project, 1, kind=VersionKind.ZERO_SHOT)  # never evaluated
    version(project, 2, status=VersionStatus.ACTIVE, metrics={**evaluated, "n_train": 30, "n_validation": 40})
    # trained before the reliability diagram was recorded
    old = {k: v for k, v in evaluated.items() if k != "reliability"}
    version(project, 3, status=VersionStatus.CANDIDATE, metrics={**old, "n_train": 50})

    rows = model_section(project)
    assert [r["model_version"] for r in rows] == [3, 2, 1]
    assert [r["status"] for r in rows] == ["candidate", "active", "retired"]
    v3, v2, v1 = rows
    assert v2 == {
        "model_version": 2,
        "status": "active",
        "accuracy": evaluated["accuracy"],
        "macro_f1": evaluated["macro_f1"],
        "ece": evaluated["ece"],
        "per_label_f1": evaluated["per_label_f1"],
        "confusion": evaluated["confusion_matrix"],
        "reliability": evaluated["reliability"],
    }
    assert len(v2["reliability"]) == 10
    assert v3["reliability"] is None
    assert v3["accuracy"] == evaluated["accuracy"]
    assert {k: v for k, v in v1.items() if k not in ("model_version", "status")} == dict.fromkeys(
        ("accuracy", "macro_f1", "ece", "per_label_f1", "confusion", "reliability")
    )


def test_learning_curve_is_fine_tuned_versions_in_order():
    project = project_with()
    version(project, 1, kind=VersionKind.ZERO_SHOT, metrics={"accuracy": 0.4, "n_train": 0})
    version(project, 3, metrics={"accuracy": 0.8, "n_train": 200})
    version(project, 2, metrics={"accuracy": 0.7, "n_train": 100})
    version(project, 4)  # registered without metrics
    assert learning_curve_section(project) == [
        {"model_version": 2, "n_train": 100, "accuracy": 0.7},
        {"model_version": 3, "n_train": 200, "accuracy": 0.8},
        {"model_version": 4, "n_train": None, "accuracy": None},
    ]


# ---------------------------------------------------------------- live


def test_live_gold_scores_every_served_gold_answer_of_the_active_version():
    project = project_with()
    version(project, 1, kind=VersionKind.ZERO_SHOT)
    version(project, 2, status=VersionStatus.ACTIVE)
    people = users(project, "ann", "bob", "cat", "dan")
    g1, g2 = items(project, ["gold one", "gold two"], prefix="g")
    final(g1, {"label": "sports"}, FinalLabelSource.GOLD)
    final(g2, {"label": "tech"}, FinalLabelSource.GOLD)
    # g1: v2 suggested right to ann and bob (whatever they answered), wrong to cat; dan saw v1's
    annotate(g1, people["ann"], {"label": "politics"}, suggestion=suggestion(2, {"label": "sports"}))
    annotate(g1, people["bob"], {"label": "sports"}, suggestion=suggestion(2, {"label": "sports"}))
    annotate(g1, people["cat"], {"label": "sports"}, suggestion=suggestion(2, {"label": "politics"}))
    annotate(g1, people["dan"], {"label": "sports"}, suggestion=suggestion(1, {"label": "sports"}, "zero_shot"))
    # g2: v2 wrong to ann, and bob was served no suggestion
    annotate(g2, people["ann"], {"label": "tech"}, suggestion=suggestion(2, {"label": "sports"}))
    annotate(g2, people["bob"], {"label": "tech"})
    # an answer on a day outside the window below
    annotate(g2, people["cat"], {"label": "tech"}, suggestion=suggestion(2, {"label": "tech"}), at=DAY0 + days(5))

    live = live_section(project, Window())
    assert live["model_version"] == 2
    assert live["gold"] == {"n": 5, "accuracy": pytest.approx(3 / 5), "ci": pytest.approx(wilson(3, 5))}

    day = Window(since=DAY0.date(), until=DAY0.date())
    assert live_section(project, day)["gold"] == {"n": 4, "accuracy": 0.5, "ci": pytest.approx(wilson(2, 4))}
    assert live["final"]["n"] == 0  # gold items are never decided items


def test_live_final_takes_the_first_counting_annotation_of_the_last_n_decided_items(settings):
    settings.TANDEM_LIVE_LAST_N = 4
    project = project_with(annotations_per_item=2)
    version(project, 1, kind=VersionKind.ZERO_SHOT)
    version(project, 2, status=VersionStatus.ACTIVE)
    people = users(project, "ann", "bob")
    ann, bob = people["ann"], people["bob"]
    made = items(project, [f"t{i}" for i in range(7)])
    sports, politics = {"label": "sports"}, {"label": "politics"}

    def item(i, first, second, truth, decided_day):
        # first and second: the suggestions served with the item's first and second annotation
        annotate(made[i], ann, truth, suggestion=first, at=DAY0 + days(decided_day) - days(1))
        annotate(made[i], bob, truth, suggestion=second, at=DAY0 + days(decided_day) - timedelta(hours=12))
        decide(made[i], truth, DAY0 + days(decided_day))

    item(0, suggestion(2, sports), None, sports, 1)  # right; but the oldest decision: beyond the last 4
    item(1, suggestion(2, politics), suggestion(2, sports), sports, 2)  # wrong (the first one counts)
    item(2, suggestion(1, sports, "zero_shot"), suggestion(2, sports), sports, 3)  # first served by v1: no trial
    item(3, suggestion(2, sports), suggestion(2, sports), sports, 4)  # right
    item(4, None, suggestion(2, politics), politics, 5)  # first served without suggestion: no trial
    item(5, suggestion(2, politics), None, politics, 6)  # right
    # item 6: its first annotation was rejected (counts false): bob's, served v2's wrong suggestion, is the first
    annotate(made[6], ann, sports, suggestion=suggestion(2, sports), at=DAY0, counts=False)
    annotate(made[6], bob, sports, suggestion=suggestion(2, politics), at=DAY0 + days(1))
    decide(made[6], sports, DAY0 + days(7))
    # an undecided item is no trial
    undecided = items(project, ["open"], prefix="o")[0]
    annotate(undecided, ann, sports, suggestion=suggestion(2, sports))

    live = live_section(project, Window())
    # the last 4 decided items with a v2 trial: 6 (wrong), 5 (right), 3 (right), 1 (wrong)
    assert live["final"] == {"n": 4, "accuracy": 0.5, "ci": pytest.approx(wilson(2, 4))}

    settings.TANDEM_LIVE_LAST_N = 500
    assert live_section(project, Window())["final"]["n"] == 5  # item 0 joins: 3 right of 5
    assert live_section(project, Window())["final"]["accuracy"] == pytest.approx(3 / 5)
    # decisions inside the window only: days 4 to 6 hold items 3 and 5
    window = Window(since=(DAY0 + days(4)).date(), until=(DAY0 + days(6)).date())
    assert live_section(project, window)["final"] == {"n": 2, "accuracy": 1.0, "ci": pytest.approx(wilson(2, 2))}


def test_live_multilabel_exact_match_and_spans_by_token():
    multi = project_with("multilabel", name="multi")
    version(multi, 1, status=VersionStatus.ACTIVE)
    ann = users(multi, "ann")["ann"]
    a, b = items(multi, ["x", "y"])
    annotate(a, ann, {"labels": ["tech", "sports"]}, suggestion=suggestion(1, {"labels": ["sports", "tech"]}))
    annotate(b, ann, {"labels": ["tech"]}, suggestion=suggestion(1, {"labels": ["sports", "tech"]}))
    decide(a, {"labels": ["tech", "sports"]}, DAY0)
    decide(b, {"labels": ["tech"]}, DAY0)
    assert live_section(multi, Window())["final"]["accuracy"] == 0.5  # order-free exact match

    spans = project_with("spans", labels=("PER", "LOC"), name="spans")
    version(spans, 1, status=VersionStatus.ACTIVE)
    bob = users(spans, "bob")["bob"]
    (g,) = items(spans, ["Ada met Bob there"], prefix="g")
    final(g, {"spans": [{"start": 0, "end": 3, "label": "PER"}, {"start": 8, "end": 11, "label": "PER"}]}, "gold")
    # suggested Ada only: 3 of 4 tokens labeled alike (Bob missed)
    annotate(g, bob, {"spans": []}, suggestion=suggestion(1, {"spans": [{"start": 0, "end": 3, "label": "PER"}]}))
    live = live_section(spans, Window())
    assert live["gold"] == {"n": 1, "accuracy": 0.75, "ci": pytest.approx(wilson(0.75, 1))}
