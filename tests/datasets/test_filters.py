"""Each snapshot filter, on a small project built through the ORM, and the definition's checks (400 with the field)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection

from annotation.datasets.filters import FILTER_DEFAULTS, SPLIT_DEFAULTS, definition_normalize, filter_sql
from annotation.exceptions import InvalidInput
from annotation.models import FinalLabel, Item
from tests.conftest import add_member, make_project, make_user
from tests.datasets.helpers import item, label

pytestmark = pytest.mark.django_db

SPORTS, POLITICS, TECH = {"label": "sports"}, {"label": "politics"}, {"label": "tech"}


def _at(day: int) -> datetime:
    return datetime(2026, 1, day, 12, 0, tzinfo=UTC)


@pytest.fixture
def world():
    manager = make_user("f_manager")
    project = make_project(manager, annotations_per_item=2)
    alice, bob, carol, idle = (make_user(n) for n in ("f_alice", "f_bob", "f_carol", "f_idle"))
    for user in (alice, bob, carol, idle):
        add_member(project, user)
    i1 = item(project, "i1", source="web", lang="en")
    label(i1, SPORTS, (alice, SPORTS), (bob, SPORTS))  # agreement 1
    i2 = item(project, "i2", source="rss", lang="en")
    label(i2, POLITICS, (alice, POLITICS), (bob, TECH), source="review")  # agreement 0.5
    i3 = item(project, "i3", status="in_review", source="web")
    label(i3, None, (carol, TECH))
    i4 = item(project, "i4")
    Item.objects.filter(pk=i4.pk).update(is_gold=True)
    label(i4, TECH, source="gold")
    i5 = item(project, "i5", source="web", lang="de")
    label(i5, SPORTS, source="imported")  # no annotation: no agreement
    for n, it in enumerate((i1, i2, i3, i4, i5), start=1):
        Item.objects.filter(pk=it.pk).update(created_at=_at(n))
        FinalLabel.objects.filter(item=it).update(updated_at=_at(10 + n))
    return {"project": project, "manager": manager, "alice": alice, "bob": bob, "carol": carol, "idle": idle}


def matching(project, filters=None, **body) -> list[str]:
    """The external ids the filters select, by item id (the build's own condition)."""
    definition = definition_normalize(project=project, body={"name": "f", "filters": filters or {}, **body})
    condition, params = filter_sql(
        project=project, filters=definition["filters"], annotator_ids=definition["annotator_ids"]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.external_id FROM annotation_item i LEFT JOIN annotation_finallabel fl ON fl.item_id = i.id "
            f"WHERE {condition} ORDER BY i.id",
            params,
        )
        return [r[0] for r in cursor.fetchall()]


def test_defaults_approved_items(world):
    assert matching(world["project"]) == ["i1", "i2", "i4", "i5"]
    definition = definition_normalize(project=world["project"], body={"name": " n "})
    assert definition["filters"] == FILTER_DEFAULTS
    assert definition["split"] == SPLIT_DEFAULTS
    assert (definition["name"], definition["pseudonymize"]) == ("n", False)


def test_status(world):
    assert matching(world["project"], {"status": "in_review"}) == ["i3"]
    assert matching(world["project"], {"status": ["in_review", "approved"]}) == ["i1", "i2", "i3", "i4", "i5"]
    assert matching(world["project"], {"status": []}) == ["i1", "i2", "i3", "i4", "i5"]  # none given: any


def test_source(world):
    assert matching(world["project"], {"source": "review"}) == ["i2"]
    assert matching(world["project"], {"source": ["gold", "imported"]}) == ["i4", "i5"]


def test_labels_any_of(world):
    assert matching(world["project"], {"labels": "sports"}) == ["i1", "i5"]
    assert matching(world["project"], {"labels": ["politics", "tech"]}) == ["i2", "i4"]


def test_labels_multilabel_and_spans():
    manager, ann = make_user(), make_user()
    multi = make_project(manager, task_type="multilabel", labels=["a", "b", "c"])
    label(item(multi, "m1"), {"labels": ["a", "b"]}, (ann, {"labels": ["a", "b"]}))
    label(item(multi, "m2"), {"labels": ["c"]}, (ann, {"labels": ["c"]}))
    label(item(multi, "m3"), {"labels": []}, (ann, {"labels": []}))
    assert matching(multi, {"labels": ["b"]}) == ["m1"]
    assert matching(multi, {"labels": ["b", "c"]}) == ["m1", "m2"]
    spans = make_project(manager, task_type="spans", labels=["PER", "ORG"])
    label(item(spans, "s1", "Ada at ACME"), {"spans": [{"start": 0, "end": 3, "label": "PER"}]})
    label(item(spans, "s2", "ACME"), {"spans": [{"start": 0, "end": 4, "label": "ORG"}]})
    label(item(spans, "s3", "nothing"), {"spans": []})
    assert matching(spans, {"labels": "ORG"}) == ["s2"]
    assert matching(spans, {"labels": ["PER", "ORG"]}) == ["s1", "s2"]


def test_annotators_any_of(world):
    assert matching(world["project"], {"annotators": "f_bob"}) == ["i1", "i2"]
    assert matching(world["project"], {"annotators": [world["carol"].pk], "status": "in_review"}) == ["i3"]
    definition = definition_normalize(
        project=world["project"], body={"name": "x", "filters": {"annotators": ["f_bob", world["alice"].pk]}}
    )
    assert definition["filters"]["annotators"] == ["f_alice", "f_bob"]
    hidden = definition_normalize(
        project=world["project"], body={"name": "x", "filters": {"annotators": "f_bob"}, "pseudonymize": True}
    )
    assert hidden["filters"]["annotators"][0].startswith("annotator-")  # no name stored when names are hidden
    assert hidden["annotator_ids"] == [world["bob"].pk]


def test_unknown_annotators_are_listed(world):
    with pytest.raises(InvalidInput) as err:
        matching(world["project"], {"annotators": ["f_bob", "f_idle", "nobody", 999999]})
    [error] = err.value.errors
    assert error["field"] == "filters.annotators"
    assert "f_idle" in error["message"]  # a member who never annotated here
    assert "nobody" in error["message"]
    assert "999999" in error["message"]
    assert "f_bob" not in error["message"]


def test_created_range(world):
    assert matching(world["project"], {"created_after": "2026-01-02", "created_before": "2026-01-04"}) == ["i2"]
    assert matching(world["project"], {"created_after": "2026-01-04T12:00:00Z"}) == ["i4", "i5"]
    assert matching(world["project"], {"created_before": "2026-01-01T13:00:00+01:00"}) == []  # 12:00 UTC: excluded


def test_decided_range(world):
    assert matching(world["project"], {"decided_after": "2026-01-14"}) == ["i4", "i5"]
    assert matching(world["project"], {"decided_before": "2026-01-12T12:00:01"}) == ["i1", "i2"]


def test_meta_equality(world):
    assert matching(world["project"], {"meta": {"source": "web"}}) == ["i1", "i5"]
    assert matching(world["project"], {"meta": {"source": "web", "lang": "de"}}) == ["i5"]
    assert matching(world["project"], {"meta": {"o'k": "x); DROP TABLE annotation_item; --"}}) == []
    assert Item.objects.count() == 5


def test_gold(world):
    assert matching(world["project"], {"gold": "include"}) == ["i1", "i2", "i4", "i5"]
    assert matching(world["project"], {"gold": "exclude"}) == ["i1", "i2", "i5"]
    assert matching(world["project"], {"gold": "only"}) == ["i4"]


def test_min_agreement(world):
    assert matching(world["project"], {"min_agreement": 0.6}) == ["i1"]
    assert matching(world["project"], {"min_agreement": 0.5}) == ["i1", "i2"]  # no annotation: no agreement
    assert matching(world["project"], {"min_agreement": 0}) == ["i1", "i2", "i4", "i5"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"filters": {"foo": 1}}, "filters.foo"),
        ({"split": {"bar": 1}}, "split.bar"),
        ({"nme": "x"}, "nme"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"filters": {"status": "done"}}, "filters.status"),
        ({"filters": {"source": ["machine"]}}, "filters.source"),
        ({"filters": {"labels": ["cooking"]}}, "filters.labels"),
        ({"filters": {"min_agreement": 1.5}}, "filters.min_agreement"),
        ({"filters": {"min_agreement": "high"}}, "filters.min_agreement"),
        ({"filters": {"created_after": "yesterday"}}, "filters.created_after"),
        ({"filters": {"decided_before": "2026-02-30"}}, "filters.decided_before"),
        ({"filters": {"meta": {"a": {"b": 1}}}}, "filters.meta"),
        ({"filters": {"meta": ["a"]}}, "filters.meta"),
        ({"filters": {"gold": "some"}}, "filters.gold"),
        ({"filters": []}, "filters"),
        ({"split": {"train": 0.8, "validation": 0.1, "test": 0.2}}, "split"),
        ({"split": {"train": 1.2, "validation": -0.1, "test": -0.1}}, "split.train"),
        ({"split": {"seed": 1.5}}, "split.seed"),
        ({"split": {"stratify": "yes"}}, "split.stratify"),
        ({"split": {"group_by": 3}}, "split.group_by"),
        ({"pseudonymize": "no"}, "pseudonymize"),
    ],
)
def test_bad_definitions_name_their_field(world, body, field):
    with pytest.raises(InvalidInput) as err:
        definition_normalize(project=world["project"], body={"name": "ok", **body})
    assert field in [e["field"] for e in err.value.errors]


def test_ratios_within_tolerance(world):
    ok = definition_normalize(
        project=world["project"], body={"name": "x", "split": {"train": 0.7, "validation": 0.2, "test": 0.1000001}}
    )
    assert ok["split"]["test"] == 0.1000001
