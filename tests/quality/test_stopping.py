"""The stopping signal (issue 13, point 8): the stabilizing-predictions rule against hand-computed kappas and
scikit-learn's cohen_kappa_score called directly."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sklearn.metrics import cohen_kappa_score

from annotation.models import Item
from annotation.quality.stopping import KAPPA, WINDOW, kappa_average, stable_kappa, stop_set, stopping_section
from modelsvc.models import ModelVersion, Prediction, VersionKind, VersionStatus
from tests.quality.helpers import items, project_with

pytestmark = pytest.mark.django_db


def versions_predicting(project, made: list[Item], per_version: list[list[Any]], first: int = 1) -> None:
    """Version first + i predicts per_version[i][j] for made[j] (None: no prediction of that item); the last
    one is active."""
    ModelVersion.objects.filter(project=project).update(status=VersionStatus.RETIRED)
    for number, values in enumerate(per_version, start=first):
        version = ModelVersion.objects.create(
            project=project,
            version=number,
            kind=VersionKind.ZERO_SHOT if number == 1 else VersionKind.FINE_TUNED,
            base_model="test",
            labels=[{"name": n} for n in project.label_names],
            task_type=project.task_type,
            status=VersionStatus.ACTIVE if number == first + len(per_version) - 1 else VersionStatus.RETIRED,
        )
        Prediction.objects.bulk_create(
            [
                Prediction(
                    item=item,
                    model_version=version,
                    value=value,
                    probabilities={},
                    least_confidence=0.5,
                    margin=0.5,
                    entropy=0.5,
                    uncertainty=0.5,
                )
                for item, value in zip(made, values, strict=True)
                if value is not None
            ]
        )


def labels(*names: str) -> list[dict[str, str]]:
    return [{"label": n} for n in names]


def test_no_versions_and_one_version():
    project = project_with()
    assert stopping_section(project) == {
        "kappa_history": [],
        "stable": False,
        "sample_size": 0,
        "sentence": "not enough versions yet (0 of 4 needed): the signal compares the predictions of 4 successive "
        "versions on a fixed sample of 0 items",
    }
    made = items(project, ["a", "b"])
    versions_predicting(project, made, [labels("sports", "tech")])
    section = stopping_section(project)
    assert section["kappa_history"] == []
    assert section["stable"] is False
    assert section["sample_size"] == 2
    assert section["sentence"].startswith("not enough versions yet (1 of 4 needed)")


def test_stop_set_is_the_smallest_sha256_among_non_gold_items():
    project = project_with()
    made = items(project, [f"t{i}" for i in range(12)])
    items(project, ["gold"], gold=True, prefix="g")
    expected = sorted(made, key=lambda i: hashlib.sha256(f"{project.pk}:{i.pk}".encode()).hexdigest())[:5]
    assert stop_set(project, size=5) == [i.pk for i in expected]
    assert len(stop_set(project)) == 12  # the gold item is never in it


def test_kappa_by_hand_and_the_rule():
    # v1 a a b b, v2 a b b b: p_o = 3/4, p_e = 2/4 * 1/4 + 2/4 * 3/4 = 1/2, kappa = (3/4 - 1/2) / (1 - 1/2) = 1/2
    assert stable_kappa(list("aabb"), list("abbb")) == pytest.approx(0.5)
    assert stable_kappa(list("aabb"), list("abbb")) == pytest.approx(cohen_kappa_score(list("aabb"), list("abbb")))
    # one and the same label throughout: scikit-learn divides by zero; identical predictions are kappa 1
    assert stable_kappa(list("aaaa"), list("aaaa")) == 1.0
    # v a a a b against a a b b: p_o = 3/4, p_e = 3/4 * 2/4 + 1/4 * 2/4 = 1/2: 1/2 again
    assert stable_kappa(list("aaab"), list("aabb")) == pytest.approx(0.5)
    assert stable_kappa([], []) is None
    assert (WINDOW, KAPPA) == (3, 0.99)
    assert kappa_average([0.5, 1.0]) is None  # fewer than 3
    assert kappa_average([0.2, 0.5, 1.0, 1.0]) == pytest.approx(2.5 / 3)
    assert kappa_average([1.0, None, 1.0]) is None


def test_history_over_successive_versions_and_the_stable_sentence():
    project = project_with()
    made = items(project, ["w", "x", "y", "z"])
    v1 = labels("sports", "sports", "tech", "tech")
    v2 = labels("sports", "tech", "tech", "tech")
    versions_predicting(project, made, [v1, v2, v2, v2])
    section = stopping_section(project)
    assert [h["model_version"] for h in section["kappa_history"]] == [2, 3, 4]
    assert [h["kappa"] for h in section["kappa_history"]] == pytest.approx([0.5, 1.0, 1.0])
    assert section["stable"] is False  # mean 2.5 / 3
    assert section["sentence"] == (
        "the model is still changing: the last 4 versions' predictions on a 4-item sample have a mean Cohen's "
        "kappa of 0.833, below 0.99: more labels still change this model"
    )

    versions_predicting(project, made, [v2], first=5)
    section = stopping_section(project)
    assert [h["kappa"] for h in section["kappa_history"]] == pytest.approx([0.5, 1.0, 1.0, 1.0])
    assert section["stable"] is True
    assert section["sentence"] == (
        "the last 4 versions agree on a 4-item sample (mean Cohen's kappa 1.000, at least 0.99): more labels are "
        "unlikely to change this model"
    )


def test_a_pair_compares_only_the_items_both_versions_predicted():
    project = project_with()
    made = items(project, ["w", "x", "y", "z", "labeled"])
    # the last item was labeled before v2 pre-labeled: v2 and v3 have no prediction of it
    v1 = [*labels("sports", "sports", "tech", "tech"), {"label": "politics"}]
    v2 = [*labels("sports", "tech", "tech", "tech"), None]
    v3 = [*labels("sports", "tech", "tech", "politics"), None]
    versions_predicting(project, made, [v1, v2, v3])
    history = stopping_section(project)["kappa_history"]
    assert history[0]["kappa"] == pytest.approx(0.5)  # over the first four items only
    a = ["sports", "tech", "tech", "tech"]
    b = ["sports", "tech", "tech", "politics"]
    assert history[1]["kappa"] == pytest.approx(cohen_kappa_score(a, b))


def test_multilabel_compares_canonical_label_sets():
    project = project_with("multilabel")
    made = items(project, ["a", "b", "c"])
    v1 = [{"labels": ["tech", "sports"]}, {"labels": []}, {"labels": ["politics"]}]
    v2 = [{"labels": ["sports", "tech"]}, {"labels": []}, {"labels": ["politics"]}]
    v3 = [{"labels": ["sports"]}, {"labels": []}, {"labels": ["politics"]}]
    versions_predicting(project, made, [v1, v2, v3])
    history = stopping_section(project)["kappa_history"]
    assert history[0]["kappa"] == 1.0  # the same sets, listed in another order
    a = ['["sports", "tech"]', "[]", '["politics"]']
    b = ['["sports"]', "[]", '["politics"]']
    assert history[1]["kappa"] == pytest.approx(cohen_kappa_score(a, b))


def test_spans_compare_token_by_token():
    project = project_with("spans", labels=("PER", "LOC"))
    made = items(project, ["Ada met Bob", "in Rome"])
    v1 = [{"spans": [{"start": 0, "end": 3, "label": "PER"}]}, {"spans": [{"start": 3, "end": 7, "label": "LOC"}]}]
    v2 = [{"spans": [{"start": 0, "end": 3, "label": "PER"}, {"start": 8, "end": 11, "label": "PER"}]}, v1[1]]
    versions_predicting(project, made, [v1, v2])
    # units in (item, token) order: Ada met Bob | in Rome
    a = ["PER", "O", "O", "O", "LOC"]
    b = ["PER", "O", "PER", "O", "LOC"]
    assert stopping_section(project)["kappa_history"][0]["kappa"] == pytest.approx(cohen_kappa_score(a, b))


def test_an_imported_version_is_not_a_step_of_the_loop():
    # predictions brought in from Label Studio (an imported version) are left out of the stability history
    project = project_with()
    made = items(project, ["w", "x", "y", "z"])
    v1 = labels("sports", "sports", "tech", "tech")
    versions_predicting(project, made, [v1, v1])
    assert [h["model_version"] for h in stopping_section(project)["kappa_history"]] == [2]
    versions_predicting(project, made, [labels("tech", "tech", "sports", "sports")], first=3)
    ModelVersion.objects.filter(project=project, version=3).update(
        kind=VersionKind.IMPORTED, status=VersionStatus.CANDIDATE
    )
    assert [h["model_version"] for h in stopping_section(project)["kappa_history"]] == [2]
