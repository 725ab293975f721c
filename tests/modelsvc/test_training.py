"""Training, the registry, promotion, rollback and the triggers, with the real MiniLM on tiny data and
few steps (in-process; tests/integration/test_training_worker.py kills a real worker mid-run)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django_celery_beat.models import PeriodicTask

from annotation.models import FinalLabel, Item, Job
from annotation.models.job import JobStatus
from modelsvc.models import ModelVersion, TrainedItem, TrainingState, ValidationItem
from modelsvc.promotion import beats
from modelsvc.services.training import train_start, training_check
from modelsvc.splits import training_split
from tests.conftest import add_member, client_for, make_project, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.ml]

FRUIT = ["apple pie for lunch", "a ripe banana", "fresh apple juice", "banana bread", "green apple", "apple tart"]
CARS = ["engine oil change", "the car engine stalled", "new tyres for the car", "diesel engine noise", "car wash"]


def labeled_project(manager, n=40, **fields):
    project = make_project(manager, labels=("fruit", "cars"), exploration_rate=0.0, **fields)
    for i in range(n):
        label = "fruit" if i % 2 == 0 else "cars"
        text = (FRUIT if label == "fruit" else CARS)[i % 5] + f" #{i}"
        item = Item.objects.create(project=project, external_id=f"t{i}", data={"text": text}, status="approved")
        FinalLabel.objects.create(item=item, value={"label": label}, source="consensus")
    for i in range(6):
        Item.objects.create(project=project, external_id=f"open{i}", data={"text": (FRUIT + CARS)[i]})
    return project


@pytest.fixture
def hf(settings, eager_tasks, tmp_path):
    settings.TANDEM_MODEL_BACKEND = "hf"
    settings.MODEL_DIR = tmp_path / "models"
    settings.TANDEM_TRAIN_MAX_EPOCHS = 2
    settings.TANDEM_TRAIN_BATCH_SIZE = 8
    settings.TANDEM_CPU_THREADS = 2
    settings.TANDEM_COLD_START_PICKS = 0
    settings.TANDEM_EXPLAIN_HEAD = 0
    return settings


def run_training(project, user, callbacks) -> Job:
    with callbacks(execute=True):
        job = train_start(project=project, user=user)
    job.refresh_from_db()
    return job


def test_the_validation_split_is_fixed_stratified_and_never_trained_on(settings, db):
    settings.TANDEM_VALIDATION_FRACTION = 0.25
    manager = make_user("sp")
    project = labeled_project(manager, n=40)
    gold = Item.objects.create(
        project=project, external_id="g", data={"text": "gold apple"}, is_gold=True, status="approved"
    )
    FinalLabel.objects.create(item=gold, value={"label": "fruit"}, source="gold")
    train, validation = training_split(project)
    val_ids = {i for i, _, _ in validation}
    assert gold.pk in val_ids
    assert not val_ids & {i for i, _, _ in train}
    assert len(train) + len(validation) == 41
    per_label = {t: sum(1 for _, _, x in validation if x == t) for t in (0, 1)}
    assert per_label[0] >= 5
    assert per_label[1] >= 5
    # more labels arrive: earlier assignments never change, the ratio is kept per label
    for i in range(40, 60):
        item = Item.objects.create(project=project, external_id=f"t{i}", data={"text": f"apple {i}"}, status="approved")
        FinalLabel.objects.create(item=item, value={"label": "fruit"}, source="consensus")
    train2, validation2 = training_split(project)
    assert val_ids <= {i for i, _, _ in validation2}
    assert {i for i, _, _ in train} <= {i for i, _, _ in train2}
    assert not set(ValidationItem.objects.values_list("item_id", flat=True)) & set(
        TrainedItem.objects.values_list("item_id", flat=True)
    )


def test_train_registers_a_candidate_with_metrics_and_promotes_it(hf, django_capture_on_commit_callbacks):
    hf.TANDEM_PROMOTION_MARGIN = -1.0  # any candidate beats the zero-shot baseline: the promotion path
    manager = make_user("tr")
    project = labeled_project(manager)
    job = run_training(project, manager, django_capture_on_commit_callbacks)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.result["promoted"] is True
    versions = {v.version: v for v in ModelVersion.objects.filter(project=project)}
    assert versions[1].kind == "zero_shot"
    assert versions[1].status == "retired"
    v2 = versions[2]
    assert (v2.kind, v2.status) == ("fine_tuned", "active")
    for key in (
        "accuracy",
        "macro_f1",
        "per_label_f1",
        "confusion_matrix",
        "ece",
        "reliability",
        "temperature",
        "n_train",
    ):
        assert key in v2.metrics, key
    assert v2.metrics["n_train"] + v2.metrics["n_validation"] == 40
    # the reliability diagram's 10 bins hold every validation item once
    assert sum(b["n"] for b in v2.metrics["reliability"]) == v2.metrics["n_validation"]
    assert np.array(v2.metrics["confusion_matrix"]).sum() == v2.metrics["n_validation"]
    assert v2.metrics["compared_with"]["version"] == 1
    from pathlib import Path

    from modelsvc.runtime.export import sha256_file

    artifact = Path(v2.artifact_path)
    assert artifact.parent.name == str(project.pk)
    assert artifact.name == "2"
    assert {"model.safetensors", "config.json", "tokenizer.json", "tandem.json"} <= {p.name for p in artifact.iterdir()}
    assert sha256_file(artifact / "model.safetensors") == v2.sha256
    assert not list(artifact.glob("*.bin"))  # safetensors only
    # promotion re-scored the open items with the new version
    assert set(
        Item.objects.filter(project=project, status="open").values_list("prediction__model_version", flat=True)
    ) == {2}
    state = TrainingState.objects.get(project=project)
    assert state.running_job_id is None
    assert state.labels_at_last_run == 40

    # rollback through the API: version 1 active again, the pool re-scored by it
    client = client_for(manager)
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(f"/api/projects/{project.pk}/model-versions/1/activate")
    assert r.status_code == 202, r.content
    assert dict(ModelVersion.objects.filter(project=project).values_list("version", "status")) == {
        1: "active",
        2: "retired",
    }
    assert set(
        Item.objects.filter(project=project, status="open").values_list("prediction__model_version", flat=True)
    ) == {1}
    body = client.get(f"/api/projects/{project.pk}/model-versions").json()
    assert [v["version"] for v in body["results"]] == [2, 1]
    assert [p["version"] for p in body["learning_curve"]] == [1, 2]
    assert body["learning_curve"][1]["n_train"] == v2.metrics["n_train"]


def test_a_candidate_that_does_not_beat_the_active_version_stays_a_candidate(hf, django_capture_on_commit_callbacks):
    hf.TANDEM_PROMOTION_MARGIN = 1.0  # nothing beats accuracy + 1
    manager = make_user("np")
    project = labeled_project(manager)
    job = run_training(project, manager, django_capture_on_commit_callbacks)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.result["promoted"] is False
    assert dict(ModelVersion.objects.filter(project=project).values_list("version", "status")) == {
        1: "active",
        2: "candidate",
    }


def test_training_is_deterministic_for_a_seed(tmp_path):
    from modelsvc.training import Example, TrainConfig, train

    data = [Example(t, i % 2) for i, t in enumerate(FRUIT + CARS + FRUIT)]
    config = TrainConfig(
        task_type="classification", labels=["fruit", "cars"], max_epochs=1, batch_size=8, seed=3, cpu_threads=2
    )
    a = train(config, data[:12], data[12:], tmp_path / "a")
    b = train(config, data[:12], data[12:], tmp_path / "b")
    assert a.sha256 == b.sha256
    assert a.temperature == b.temperature
    meta = json.loads((tmp_path / "a" / "tandem.json").read_text())
    assert meta["labels"] == ["fruit", "cars"]


def test_word_embeddings_stay_as_pretrained_unless_asked(tmp_path):
    from safetensors.numpy import load_file

    from modelsvc.runtime.config import default_model_path
    from modelsvc.training import Example, TrainConfig, train

    data = [Example(t, i % 2) for i, t in enumerate(FRUIT + CARS)]
    base = load_file(str(next(default_model_path().glob("*.safetensors"))))
    word = next(k for k in base if k.endswith("word_embeddings.weight"))
    layer = next(k for k in base if k.endswith("layer.0.attention.self.query.weight"))
    for freeze in (True, False):
        config = TrainConfig(
            task_type="classification",
            labels=["fruit", "cars"],
            max_epochs=1,
            batch_size=4,
            seed=1,
            learning_rate=0.001,
            freeze_word_embeddings=freeze,
        )
        train(config, data, data[:4], tmp_path / str(freeze))
        tuned = load_file(str(tmp_path / str(freeze) / "model.safetensors"))
        tuned_word = next(v for k, v in tuned.items() if k.endswith("word_embeddings.weight"))
        tuned_layer = next(v for k, v in tuned.items() if k.endswith("layer.0.attention.self.query.weight"))
        assert np.array_equal(tuned_word, base[word]) is freeze
        assert not np.array_equal(tuned_layer, base[layer])


def test_multilabel_and_spans_train(tmp_path):
    from modelsvc.training import Example, TrainConfig, train

    multi = [
        Example("red and blue", [0, 1]),
        Example("just red", [0]),
        Example("blue sky", [1]),
        Example("grey", []),
    ] * 3
    r = train(
        TrainConfig(task_type="multilabel", labels=["red", "blue"], max_epochs=1, batch_size=4),
        multi,
        multi[:4],
        tmp_path / "m",
    )
    assert r.steps == 3
    text = "Ada Lovelace met 😀 Charles Babbage in London"
    spans = [Example(text, [(0, 12, 0), (20, 35, 0), (39, 45, 1)])] * 4
    r = train(
        TrainConfig(task_type="spans", labels=["PER", "LOC"], max_epochs=1, batch_size=2),
        spans,
        spans[:1],
        tmp_path / "s",
    )
    assert (tmp_path / "s" / "model.safetensors").is_file()
    assert r.steps == 2


def test_bio_tags_align_with_character_offsets():
    from transformers import AutoTokenizer

    from modelsvc.runtime.config import default_model_path
    from modelsvc.training import Example, TrainConfig, _encode

    tok = AutoTokenizer.from_pretrained(default_model_path(), local_files_only=True)
    config = TrainConfig(task_type="spans", labels=["PER", "LOC"])
    text = "😀 Ada Lovelace in London"
    enc = _encode(tok, config, [Example(text, [(2, 14, 0), (18, 24, 1)])])
    tokens = tok.convert_ids_to_tokens(enc["input_ids"][0])
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    got = [(t, tags[y]) for t, y in zip(tokens, enc["labels"][0].tolist(), strict=True) if y != -100]
    assert got[0][1] == "O"  # the emoji
    assert [tag for t, tag in got if tag != "O"][:1] == ["B-PER"]
    per = [t for t, tag in got if tag.endswith("PER")]
    assert "".join(per).replace("#", "") == "adalovelace"
    loc = [tag for t, tag in got if tag.endswith("LOC")]
    assert loc[0] == "B-LOC"
    assert all(tag == "I-LOC" for tag in loc[1:])


def test_one_training_at_a_time_and_the_triggers(hf, django_capture_on_commit_callbacks):
    manager = make_user("sf")
    project = labeled_project(manager, n=12)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = train_start(project=project, user=manager)
        second = train_start(project=project, user=manager)
    assert first.pk == second.pk
    assert len(callbacks) == 1
    assert Job.objects.filter(project=project, kind="train").count() == 1
    # a stale heartbeat (the worker was lost) fails the run and releases the lock
    from datetime import timedelta

    from django.utils import timezone

    TrainingState.objects.filter(project=project).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    project.min_new_labels = 10
    project.save(update_fields=["min_new_labels"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        out = training_check()
    assert out["reaped"] == [project.pk]
    first.refresh_from_db()
    assert first.status == "failed"
    assert "lost" in first.error
    assert out["started"] == [project.pk]  # 12 approved labels >= min_new_labels 10
    assert len(callbacks) == 1


def test_a_failed_training_keeps_the_active_version_and_releases_the_lock(
    hf, django_capture_on_commit_callbacks, tmp_path
):
    manager = make_user("ff")
    project = labeled_project(manager)
    hf.TANDEM_MODEL = str(tmp_path / "missing-model")
    job = run_training(project, manager, django_capture_on_commit_callbacks)
    assert job.status == JobStatus.FAILED
    assert "could not be loaded" in job.error
    assert TrainingState.objects.get(project=project).running_job_id is None
    assert not ModelVersion.objects.filter(project=project, kind="fine_tuned").exists()


def test_train_api_schedule_api_and_permissions(hf, django_capture_on_commit_callbacks):
    manager = make_user("api")
    project = labeled_project(manager, n=4)
    annotator = make_user("api_ann")
    add_member(project, annotator, "annotator")
    assert client_for(annotator).post(f"/api/projects/{project.pk}/train").status_code == 403
    assert client_for(make_user("api_out")).post(f"/api/projects/{project.pk}/train").status_code == 404
    client = client_for(manager)
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(f"/api/projects/{project.pk}/train")
    assert r.status_code == 202
    job = client.get(f"/api/jobs/{r.json()['job']}").json()
    assert job["status"] == "succeeded"
    assert "needs at least" in job["result"]["skipped"]

    url = f"/api/projects/{project.pk}/training-schedule"
    assert client.get(url).json() == {"enabled": False, "every_minutes": None, "cron": None}
    assert client.put(url, {"every_minutes": 60}, format="json").json() == {
        "enabled": True,
        "every_minutes": 60,
        "cron": None,
    }
    task = PeriodicTask.objects.get(name=f"tandem: train project {project.pk}")
    assert task.task == "modelsvc.tasks.train_scheduled_task"
    assert json.loads(task.args) == [project.pk]
    assert client.put(url, {"cron": "0 3 * * 1"}, format="json").json()["cron"] == "0 3 * * 1"
    r = client.put(url, {"cron": "0 99 * * *"}, format="json")
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "cron"
    r = client.put(url, {"every_minutes": 5, "cron": "0 3 * * *"}, format="json")
    assert r.status_code == 400
    assert client_for(annotator).put(url, {"every_minutes": 5}, format="json").status_code == 403
    assert client.put(url, {"enabled": False}, format="json").json()["enabled"] is False
    assert not PeriodicTask.objects.filter(name=f"tandem: train project {project.pk}").exists()
    assert client.post(f"/api/projects/{project.pk}/model-versions/9/activate").status_code == 404


def test_beats_uses_the_configured_metric_and_margin(settings):
    settings.TANDEM_PROMOTION_METRIC = "macro_f1"
    settings.TANDEM_PROMOTION_MARGIN = 0.01
    assert beats({"macro_f1": 0.8, "accuracy": 0.1}, {"macro_f1": 0.78, "accuracy": 0.9})
    assert not beats({"macro_f1": 0.785, "accuracy": 0.9}, {"macro_f1": 0.78, "accuracy": 0.1})
    assert beats({"macro_f1": 0.1, "accuracy": 0.1}, None)


def test_a_tie_at_the_bar_goes_to_the_lower_log_loss(settings):
    settings.TANDEM_PROMOTION_METRIC = "accuracy"
    settings.TANDEM_PROMOTION_MARGIN = 0.0
    active = {"accuracy": 1.0, "log_loss": 0.30}
    assert beats({"accuracy": 1.0, "log_loss": 0.12}, active)
    assert not beats({"accuracy": 1.0, "log_loss": 0.31}, active)
    assert not beats({"accuracy": 1.0, "log_loss": 0.30}, active)  # no better on either: stays a candidate
    assert not beats({"accuracy": 0.8, "log_loss": 0.01}, active)  # the metric comes first
    assert not beats({"accuracy": 1.0, "log_loss": None}, active)  # spans have no log loss: ties lose
    settings.TANDEM_PROMOTION_MARGIN = 0.1
    assert beats({"accuracy": 0.9, "log_loss": 0.2}, {"accuracy": 0.8, "log_loss": 0.3})  # 0.8 + 0.1, tied
    assert not beats({"accuracy": 0.85, "log_loss": 0.01}, {"accuracy": 0.8, "log_loss": 0.3})


def test_temperature_recovers_a_known_scale_and_stays_1_without_errors():
    import torch

    from modelsvc.training import fit_temperature

    generator = torch.Generator().manual_seed(3)
    true_logits = torch.randn(4000, 3, generator=generator) * 2
    labels = torch.multinomial(torch.softmax(true_logits, -1), 1, generator=generator).squeeze(1)
    # a model 3x overconfident: its logits are the calibrated ones times 3
    assert fit_temperature(true_logits * 3, labels, "classification") == pytest.approx(3.0, rel=0.1)
    assert fit_temperature(true_logits / 2, labels, "classification") == pytest.approx(0.5, rel=0.1)
    # every validation item right: the NLL falls without end as T -> 0, nothing to fit
    right = true_logits.argmax(-1)
    assert fit_temperature(true_logits, right, "classification") == 1.0
    assert fit_temperature(true_logits, (true_logits > 0).long(), "multilabel") == 1.0


def test_training_check_queries_do_not_grow_with_projects(db, django_assert_max_num_queries):
    manager = make_user("many")
    for n in range(6):
        project = labeled_project(manager, n=4, name=f"p{n}", min_new_labels=100)
        TrainingState.objects.create(project=project, labels_at_last_run=0)
    with django_assert_max_num_queries(4):  # stale runs, label counts, states, projects
        out = training_check()
    assert out == {"reaped": [], "started": []}
