"""The metrics' refresh: the beat's change check queues one METRICS Job per changed project, the Job computes and
stores, a failure ends the Job failed with its reason; day ranges are recomputed once the check saw a change."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.models import FinalLabel, Job, Membership, MetricsCache, Review
from annotation.models.job import JobKind, JobStatus
from annotation.models.quality import MetricsState
from annotation.quality import metrics
from annotation.quality.metrics import metrics_check, metrics_refresh, project_metrics
from annotation.quality.window import ALL, Window
from annotation.tasks import metrics_check_task, metrics_refresh_task
from modelsvc.models import ModelVersion
from tests.quality.helpers import DAY0, annotate, final, items, project_with, users


@pytest.fixture(autouse=True)
def _no_margin(monkeypatch):
    # the margin covers writes still in flight in other transactions when a snapshot is taken; these tests have
    # none, and write their changes milliseconds after a refresh
    monkeypatch.setattr(metrics, "CHANGE_MARGIN", timedelta(0))


def labeled_project(name: str):
    project = project_with(name=name, annotations_per_item=2)
    people = users(project, f"{name}_a", f"{name}_b")
    (item,) = items(project, ["a text"], prefix=name)
    for user in people.values():
        annotate(item, user, {"label": "sports"})
    final(item, {"label": "sports"})
    return project, people, item


def metrics_jobs(project=None, status=None) -> list[Job]:
    jobs = Job.objects.filter(kind=JobKind.METRICS)
    if project is not None:
        jobs = jobs.filter(project=project)
    if status is not None:
        jobs = jobs.filter(status=status)
    return list(jobs.order_by("id"))


def run_all_queued() -> None:
    for job in metrics_jobs(status=JobStatus.QUEUED):
        metrics_refresh(job_id=job.pk)


@pytest.fixture
def two(db):
    """Two projects, each refreshed once and known to the check: nothing is due."""
    a = labeled_project("pa")
    b = labeled_project("pb")
    metrics_check()
    run_all_queued()
    return a, b


def test_a_project_never_computed_gets_a_job_and_the_job_fills_the_cache(db, django_capture_on_commit_callbacks):
    project, _, _ = labeled_project("p1")
    with django_capture_on_commit_callbacks() as queued:
        out = metrics_check()
    (job,) = metrics_jobs(project)
    assert out["queued"] == [project.pk]
    assert job.status == JobStatus.QUEUED
    assert len(queued) == 1  # the task is sent once the Job is committed
    metrics_refresh(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    row = MetricsCache.objects.get(project=project, key="all")
    assert job.result["computed_at"] == row.payload["computed_at"]
    assert row.payload["agreement"]["n_items"] == 1
    assert row.payload == project_metrics(project, ALL)  # the request now reads what the Job stored


def test_nothing_is_queued_when_nothing_changed(two):
    assert metrics_check()["queued"] == []
    assert metrics_jobs(status=JobStatus.QUEUED) == []


def test_one_job_for_the_changed_project_only(two):
    (a, people, _item), (_b, _, _) = two
    (other,) = items(a, ["another text"], prefix="more")
    annotate(other, people["pa_a"], {"label": "tech"})
    assert metrics_check()["queued"] == [a.pk]
    assert [j.project_id for j in metrics_jobs(status=JobStatus.QUEUED)] == [a.pk]
    run_all_queued()
    assert MetricsCache.objects.get(project=a, key="all").payload["annotators"][0]["annotations"] == 2
    assert metrics_check()["queued"] == []


@pytest.mark.parametrize(
    "change",
    [
        "annotation edited",
        "review",
        "final label",
        "un-pause",
        "new member",
        "project settings",
        "model version",
        "import finished",
    ],
)
def test_each_kind_of_change_is_seen(two, change):
    (a, people, item), _ = two
    annotation = item.annotations.first()
    now = timezone.now()
    if change == "annotation edited":
        annotation.value = {"label": "tech"}
        annotation.save(update_fields=["value", "updated_at"])
    elif change == "review":
        Review.objects.create(annotation=annotation, reviewer=people["pa_b"], verdict="approve")
    elif change == "final label":
        label = FinalLabel.objects.get(item=item)
        label.value = {"label": "tech"}
        label.save(update_fields=["value", "updated_at"])
    elif change == "un-pause":
        Membership.objects.filter(project=a, user=people["pa_a"]).update(paused=False, gold_since=now)
    elif change == "new member":
        users(a, "newcomer")
    elif change == "project settings":
        a.gold_pause_min = 3
        a.save(update_fields=["gold_pause_min", "updated_at"])
    elif change == "model version":
        ModelVersion.objects.create(project=a, version=1, kind="zero_shot", base_model="m", task_type="classification")
    elif change == "import finished":
        Job.objects.create(project=a, kind=JobKind.IMPORT, status=JobStatus.SUCCEEDED, finished_at=now)
    assert metrics_check()["queued"] == [a.pk]


def test_no_second_job_while_one_is_queued_and_the_change_is_remembered(two):
    (a, people, item), _ = two
    Review.objects.create(annotation=item.annotations.first(), reviewer=people["pa_b"], verdict="approve")
    assert metrics_check()["queued"] == [a.pk]
    (job,) = metrics_jobs(a, JobStatus.QUEUED)
    assert metrics_check()["queued"] == []  # one is queued: no second
    # the Job ran on a snapshot taken before a later change (its computed_at is older than the change)
    metrics_refresh(job_id=job.pk)
    MetricsCache.objects.filter(project=a, key="all").update(computed_at=timezone.now() - timedelta(minutes=5))
    Review.objects.filter(annotation__item=item).update(created_at=timezone.now() - timedelta(minutes=1))
    MetricsState.objects.filter(project=a).update(changed_at=timezone.now() - timedelta(minutes=1))
    # the check's own lower bound has moved past the change, but its state still holds it: a refresh is due
    assert metrics_check()["queued"] == [a.pk]


def test_a_running_job_also_blocks_a_second(two):
    (a, _people, _), _ = two
    users(a, "late")
    job = Job.objects.create(project=a, kind=JobKind.METRICS, status=JobStatus.RUNNING)
    assert metrics_check()["queued"] == []
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING


def test_a_lost_job_is_failed_and_replaced(two, settings):
    (a, _, _), _ = two
    users(a, "late")
    lost = Job.objects.create(project=a, kind=JobKind.METRICS)
    Job.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(days=1))
    out = metrics_check()
    lost.refresh_from_db()
    assert out["lost"] == [lost.pk]
    assert lost.status == JobStatus.FAILED
    assert "lost" in lost.error
    assert out["queued"] == [a.pk]


def test_cached_metrics_older_than_the_max_age_are_refreshed(two, settings):
    (a, _, _), _ = two
    MetricsCache.objects.filter(project=a, key="all").update(
        computed_at=timezone.now() - timedelta(seconds=settings.TANDEM_METRICS_MAX_AGE_SECONDS + 60)
    )
    assert metrics_check()["queued"] == [a.pk]


def test_the_check_costs_the_same_queries_for_more_projects(two, django_assert_max_num_queries):
    for n in range(5):
        labeled_project(f"extra{n}")
    metrics_check()
    run_all_queued()
    for n in range(5):  # every project changed: one Job each, plus a fixed number of queries
        users(project_with(name=f"x{n}"), f"x{n}_user")
    # fixed: the clock, lost Jobs, open Jobs, states, cached rows, changes, projects, states written, old ranges
    # dropped, and the savepoint around it all (2); then one INSERT per Job queued
    with django_assert_max_num_queries(11 + 5):
        out = metrics_check()
    assert len(out["queued"]) == 5


def test_a_failing_section_fails_the_job_with_a_readable_reason(db, monkeypatch):
    project, _, _ = labeled_project("pf")
    metrics_check()
    (job,) = metrics_jobs(project)

    def broken(project, window, **kwargs):
        raise ValueError("no slices today")

    monkeypatch.setattr("annotation.quality.slices.slices_section", broken)
    metrics_refresh(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error == "Computing the quality metrics failed: ValueError: no slices today"
    assert not MetricsCache.objects.filter(project=project).exists()


def test_a_job_delivered_twice_computes_once(db):
    project, _, _ = labeled_project("pd")
    metrics_check()
    (job,) = metrics_jobs(project)
    metrics_refresh(job_id=job.pk)
    computed = MetricsCache.objects.get(project=project, key="all").computed_at
    metrics_refresh(job_id=job.pk)  # a second delivery: the Job has ended, nothing is done
    assert MetricsCache.objects.get(project=project, key="all").computed_at == computed


def test_an_earlier_computation_never_overwrites_a_later_one(db):
    project, _, _ = labeled_project("po")
    project_metrics(project, ALL)
    row = MetricsCache.objects.get(project=project, key="all")
    later = row.computed_at + timedelta(hours=1)
    MetricsCache.objects.filter(pk=row.pk).update(computed_at=later, payload={"marker": 1})
    metrics.metrics_compute(project=project, window=ALL)
    row.refresh_from_db()
    assert row.payload == {"marker": 1}
    assert row.computed_at == later


def range_jobs(project, window) -> list[Job]:
    return list(Job.objects.filter(project=project, kind=JobKind.METRICS, params__window=window.key))


def test_a_changed_day_range_is_served_at_once_and_recomputed_by_a_job(two, django_capture_on_commit_callbacks):
    """Stale-while-revalidate: after the check saw a change, the cached range is served as it is (its computed_at
    says when it holds) and one METRICS Job for that range recomputes it; a second request queues no second Job."""
    (a, people, item), _ = two
    window = Window(since=DAY0.date(), until=DAY0.date())
    first = project_metrics(a, window)
    assert project_metrics(a, window) == first  # cached
    Review.objects.create(annotation=item.annotations.first(), reviewer=people["pa_b"], verdict="approve")
    assert project_metrics(a, window) == first  # the check has not looked yet
    assert range_jobs(a, window) == []
    metrics_check()
    with django_capture_on_commit_callbacks():
        assert project_metrics(a, window) == first  # stale, served at once
        assert project_metrics(a, window) == first
    [job] = range_jobs(a, window)
    assert job.status == JobStatus.QUEUED
    metrics_refresh(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    again = project_metrics(a, window)
    assert again["computed_at"] > first["computed_at"]


def test_a_cached_day_range_without_the_checks_state_lasts_one_refresh_period(db, settings):
    project, _, _ = labeled_project("pr")
    window = Window(since=DAY0.date(), until=DAY0.date())
    first = project_metrics(project, window)
    assert project_metrics(project, window) == first
    assert range_jobs(project, window) == []
    MetricsCache.objects.filter(project=project, key=window.key).update(
        computed_at=timezone.now() - timedelta(seconds=settings.TANDEM_METRICS_REFRESH_SECONDS + 1)
    )
    project_metrics(project, window)  # served as it is, and recomputed by a Job
    [job] = range_jobs(project, window)
    metrics_refresh(job_id=job.pk)
    assert project_metrics(project, window)["computed_at"] > first["computed_at"]


def test_old_day_ranges_are_dropped_by_the_check(two, settings):
    (a, _, _), _ = two
    project_metrics(a, Window(since=DAY0.date(), until=DAY0.date()))
    MetricsCache.objects.filter(project=a).exclude(key="all").update(
        computed_at=timezone.now() - timedelta(seconds=settings.TANDEM_METRICS_MAX_AGE_SECONDS + 60)
    )
    metrics_check()
    assert list(MetricsCache.objects.filter(project=a).values_list("key", flat=True)) == ["all"]


def test_the_tasks_are_registered_and_routed_to_the_default_queue(settings):
    from celery import current_app

    assert metrics_refresh_task.name == "annotation.tasks.metrics_refresh_task"
    assert settings.CELERY_BEAT_SCHEDULE["tandem-metrics-check"] == {
        "task": metrics_check_task.name,
        "schedule": float(settings.TANDEM_METRICS_REFRESH_SECONDS),
    }
    assert current_app.amqp.router.route({}, metrics_refresh_task.name)["queue"].name == "default"


def test_a_day_range_takes_the_whole_project_sections_from_fresh_whole_project_metrics(two):
    (a, people, item), _ = two  # refreshed, and known to the check: the whole-project metrics are fresh
    marker = {"kappa_history": [], "stable": True, "sample_size": 7, "sentence": "from the cache"}
    row = MetricsCache.objects.get(project=a, key="all")
    row.payload = {**row.payload, "stopping": marker, "learning_curve": [{"model_version": 9}]}
    row.save(update_fields=["payload"])
    window = Window(since=DAY0.date(), until=DAY0.date())
    got = project_metrics(a, window)
    assert got["stopping"] == marker
    assert got["learning_curve"] == [{"model_version": 9}]
    # once the check has seen a change, they are computed again
    Review.objects.create(annotation=item.annotations.first(), reviewer=people["pa_b"], verdict="approve")
    metrics_check()
    other = Window(since=DAY0.date(), until=None)
    got = project_metrics(a, other)
    assert got["stopping"] != marker
    assert got["learning_curve"] == []


def test_a_request_that_waited_for_another_computation_reads_its_result(db, monkeypatch):
    project, _, _ = labeled_project("pw")
    window = Window(since=DAY0.date(), until=DAY0.date())
    computed = []
    real_compute = metrics.metrics_compute

    def counting_compute(**kwargs):
        computed.append(kwargs["window"].key)
        return real_compute(**kwargs)

    real_lock = metrics._computing

    @contextmanager
    def lock_won_after_another_stored(project_id, key):
        with real_lock(project_id, key):
            real_compute(project=project, window=window)  # what the request holding the lock before us stored
            yield

    monkeypatch.setattr(metrics, "metrics_compute", counting_compute)
    monkeypatch.setattr(metrics, "_computing", lock_won_after_another_stored)
    got = project_metrics(project, window)
    assert computed == []
    assert got == MetricsCache.objects.get(project=project, key=window.key).payload


def test_the_computation_lock_is_released_after_a_failure(db, monkeypatch):
    from django.db import connection

    project, _, _ = labeled_project("pl")

    def broken(project, window, **kwargs):
        raise ValueError("boom")

    monkeypatch.setattr("annotation.quality.slices.slices_section", broken)
    with pytest.raises(ValueError, match="boom"):
        project_metrics(project, Window(since=DAY0.date()))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        assert cursor.fetchone()[0] == 0


def test_day_ranges_reuse_the_slices_project_wide_part_while_it_is_fresh(two, monkeypatch):
    from annotation.quality import slices

    (a, people, item), _ = two  # refreshed, and known to the check: the whole-project metrics are fresh
    stored = MetricsCache.objects.get(project=a, key=metrics.SLICE_STRUCTURE)
    assert stored.computed_at == MetricsCache.objects.get(project=a, key=ALL.key).computed_at
    assert stored.payload == slices.slice_structure(a)
    # the project-wide part comes from the cache: a marker in it shows in the range's answer, and no scan runs
    marker = {"fields": {"kind": {"truncated": True, "slices": [["marked", 7]]}}, "lengths": None}
    stored.payload = marker
    stored.save(update_fields=["payload"])
    real = slices.slice_structure
    calls = []

    def counting(project):
        calls.append(project.pk)
        return real(project)

    monkeypatch.setattr(slices, "slice_structure", counting)
    window = Window(since=DAY0.date(), until=DAY0.date())
    got = project_metrics(a, window)
    assert calls == []
    assert got["slices"] == {
        "kind": {"truncated": True, "rows": [{**got["slices"]["kind"]["rows"][0], "value": "marked", "n": 7}]}
    }
    assert metrics.SLICE_STRUCTURE not in got
    # once the check has seen a change, the first range computes it again and stores it for the next ones
    Review.objects.create(annotation=item.annotations.first(), reviewer=people["pa_b"], verdict="approve")
    metrics_check()
    first = project_metrics(a, Window(since=DAY0.date(), until=None))
    assert calls == [a.pk]
    assert "kind" not in first["slices"]
    assert "text_length" in first["slices"]
    assert MetricsCache.objects.get(project=a, key=metrics.SLICE_STRUCTURE).payload == real(a)
    project_metrics(a, Window(since=None, until=DAY0.date()))
    assert calls == [a.pk]


def test_the_whole_project_always_computes_the_slices_project_wide_part(two, monkeypatch):
    from annotation.quality import slices

    (a, _, _), _ = two
    stored = MetricsCache.objects.get(project=a, key=metrics.SLICE_STRUCTURE)
    stored.payload = {"fields": {}, "lengths": None}
    stored.save(update_fields=["payload"])
    payload = metrics.metrics_compute(project=a, window=ALL)
    assert "text_length" in payload["slices"]
    assert MetricsCache.objects.get(project=a, key=metrics.SLICE_STRUCTURE).payload == slices.slice_structure(a)
