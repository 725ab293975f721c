"""A real worker SIGKILLed in the middle of a training run: the run is marked failed with its reason,
the lock is released, the previous version stays active and nothing is registered."""

from __future__ import annotations

import os
import signal

import pytest

from annotation.models import FinalLabel, Item, Job
from modelsvc.models import ModelVersion, TrainingState
from modelsvc.services.training import train_start
from modelsvc.services.versions import version_ensure_active
from tests.conftest import make_project, make_user
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.ml, pytest.mark.django_db(transaction=True)]


def test_a_worker_killed_mid_training_fails_the_run_and_keeps_the_active_version(start_worker):
    manager = make_user("kt_manager")
    project = make_project(manager, labels=("fruit", "cars"))
    for i in range(60):
        label = "fruit" if i % 2 else "cars"
        item = Item.objects.create(
            project=project, external_id=f"k{i}", data={"text": f"{label} text number {i}"}, status="approved"
        )
        FinalLabel.objects.create(item=item, value={"label": label}, source="consensus")
    active = version_ensure_active(project)
    # long enough to be killed in the middle: many epochs of small batches
    first = start_worker("worker1", TANDEM_TRAIN_MAX_EPOCHS="200", TANDEM_TRAIN_BATCH_SIZE="4")
    job = train_start(project=project, user=manager)
    wait_for(lambda: Job.objects.filter(pk=job.pk, progress__gt=2).exists(), "training steps", 240, [first])
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    job.refresh_from_db()
    assert job.status == "running"
    assert TrainingState.objects.get(project=project).running_job_id == job.pk

    second = start_worker("worker2")  # the redelivered message finds the run already started by a lost worker
    job = wait_for(
        lambda: Job.objects.filter(pk=job.pk, status__in=("succeeded", "failed")).first(),
        "the run's end",
        120,
        [second],
    )
    assert job.status == "failed"
    assert "lost" in job.error
    assert TrainingState.objects.get(project=project).running_job_id is None
    assert list(ModelVersion.objects.filter(project=project).values_list("version", "status")) == [
        (active.version, "active")
    ]
