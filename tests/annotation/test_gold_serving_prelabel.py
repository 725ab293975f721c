"""Gold items are pre-labeled like any item (so `next` cannot tell them apart), and the prediction contract carries
the version's kind and the confidence of its value, which the lease records as the suggestion served."""

from __future__ import annotations

import pytest

from annotation.models import Assignment, FinalLabel, Item
from annotation.models.item import FinalLabelSource, ItemStatus
from config.celery import app
from modelsvc.models import Prediction
from modelsvc.services.prelabel import prelabel_start
from tests.conftest import add_member, client_for, make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager_fake_model(settings):
    settings.TANDEM_MODEL_BACKEND = "fake"
    settings.TANDEM_COLD_START_PICKS = 0
    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous


def test_gold_items_are_prelabeled_and_served_with_their_suggestion(
    eager_fake_model, django_capture_on_commit_callbacks
):
    manager = make_user()
    project = make_project(manager, labels=("sports", "politics", "tech"), gold_rate=1.0, exploration_rate=0.0)
    normal, gold = Item.objects.bulk_create(
        [
            Item(project=project, external_id="n", data={"text": "tech stocks rally"}),
            Item(project=project, external_id="g", data={"text": "the sports final"}, is_gold=True, status="approved"),
        ]
    )
    FinalLabel.objects.create(item=gold, value={"label": "sports"}, source=FinalLabelSource.GOLD)
    with django_capture_on_commit_callbacks(execute=True):
        job = prelabel_start(project=project, user=manager)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert Prediction.objects.filter(item=gold).count() == 1
    for item in (normal, gold):
        item.refresh_from_db()
        p = item.prediction
        assert p["kind"] == "zero_shot"
        assert p["confidence"] == max(p["probabilities"].values())
    gold.refresh_from_db()
    assert (gold.status, gold.is_gold) == (ItemStatus.APPROVED, True)  # the pre-label changes nothing else

    user = make_user()
    add_member(project, user)
    client = client_for(user)
    r = client.get(f"/api/projects/{project.pk}/next")
    assert r.json()["id"] == gold.pk
    assert r.json()["prediction"] == {**gold.prediction, "preselect": False}  # zero-shot: never pre-selected
    assert Assignment.objects.get(item=gold, user=user).suggestion == {
        "model_version": gold.prediction["model_version"],
        "kind": "zero_shot",
        "value": gold.prediction["value"],
        "confidence": gold.prediction["confidence"],
    }
