"""Pure validation services: project labels and annotation values (no database)."""

import pytest

from annotation.exceptions import InvalidInput
from annotation.services.projects import labels_normalize
from annotation.services.values import value_validate


def fields_of(exc_info):
    return [e["field"] for e in exc_info.value.errors]


# ------------------------------------------------------------------ labels


def test_labels_defaults_and_order():
    labels = labels_normalize(["a", {"name": " b ", "color": "#ABCDEF"}, {"name": "c", "hotkey": "1"}])
    assert [label["name"] for label in labels] == ["a", "b", "c"]
    # an explicit hotkey is kept; the others take the first free keys in order
    assert [label["hotkey"] for label in labels] == ["2", "3", "1"]
    assert labels[1]["color"] == "#ABCDEF"
    assert all(label["color"].startswith("#") and len(label["color"]) == 7 for label in labels)


def test_more_than_nine_labels_get_letters_but_never_reserved_keys():
    labels = labels_normalize([f"l{i}" for i in range(30)])
    keys = [label.get("hotkey") for label in labels]
    assert keys[:9] == [str(i) for i in range(1, 10)]
    given = [k for k in keys if k]
    assert len(given) == len(set(given))
    assert not {"s", "u", "?"} & set(given)


def test_duplicate_hotkeys_rejected():
    with pytest.raises(InvalidInput) as exc:
        labels_normalize([{"name": "a", "hotkey": "x"}, {"name": "b", "hotkey": "X"}])
    assert "labels" in fields_of(exc)


def test_every_problem_is_reported_at_once():
    with pytest.raises(InvalidInput) as exc:
        labels_normalize([{"name": "a", "color": "blue", "hotkey": "s"}, {"name": ""}, {"name": "c", "size": 2}])
    assert {"labels[0].color", "labels[0].hotkey", "labels[1].name", "labels[2]"} <= set(fields_of(exc))


@pytest.mark.parametrize("raw", [None, [], {}, "a", [None]])
def test_bad_label_lists(raw):
    with pytest.raises(InvalidInput):
        labels_normalize(raw)


# ------------------------------------------------------------------ values


def test_classification_value():
    assert value_validate(task_type="classification", label_names=["a", "b"], value={"label": "b"}, text="t") == {
        "label": "b"
    }
    with pytest.raises(InvalidInput) as exc:
        value_validate(task_type="classification", label_names=["a", "b"], value={"label": "c"}, text="t")
    assert fields_of(exc) == ["value.label"]


def test_multilabel_value_is_canonical():
    out = value_validate(task_type="multilabel", label_names=["a", "b", "c"], value={"labels": ["c", "a"]}, text="t")
    assert out == {"labels": ["a", "c"]}
    assert value_validate(task_type="multilabel", label_names=["a"], value={"labels": []}, text="t") == {"labels": []}


def test_spans_value_sorted_and_checked_against_text():
    text = "Ada in Paris"
    out = value_validate(
        task_type="spans",
        label_names=["PER", "LOC"],
        value={"spans": [{"start": 7, "end": 12, "label": "LOC"}, {"start": 0, "end": 3, "label": "PER"}]},
        text=text,
    )
    assert out == {"spans": [{"start": 0, "end": 3, "label": "PER"}, {"start": 7, "end": 12, "label": "LOC"}]}
    with pytest.raises(InvalidInput) as exc:
        value_validate(
            task_type="spans",
            label_names=["PER"],
            value={"spans": [{"start": 0, "end": 13, "label": "PER"}]},
            text=text,
        )
    assert fields_of(exc) == ["value.spans[0].end"]


def test_duplicate_spans_rejected():
    span = {"start": 0, "end": 1, "label": "X"}
    with pytest.raises(InvalidInput) as exc:
        value_validate(task_type="spans", label_names=["X"], value={"spans": [span, dict(span)]}, text="ab")
    assert "value.spans" in fields_of(exc)


def test_overlapping_spans_with_different_labels_allowed():
    value = {"spans": [{"start": 0, "end": 2, "label": "X"}, {"start": 1, "end": 2, "label": "Y"}]}
    assert len(value_validate(task_type="spans", label_names=["X", "Y"], value=value, text="ab")["spans"]) == 2


@pytest.mark.parametrize(
    ("start", "end"), [(True, 1), (0, False), (0.0, 1), (0, 1.0), (None, 1), (-1, 1), (1, 1), (2, 1)]
)
def test_span_offsets_must_be_proper_ints(start, end):
    with pytest.raises(InvalidInput):
        value_validate(
            task_type="spans",
            label_names=["X"],
            value={"spans": [{"start": start, "end": end, "label": "X"}]},
            text="abc",
        )
