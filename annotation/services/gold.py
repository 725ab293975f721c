"""Gold items: setting and clearing them, scoring annotators' answers, and the auto-pause.

A gold item has `is_gold` and a FinalLabel with source `gold` holding its gold value; it keeps status `approved`
and is served at the project's gold_rate to every annotator once, outside the overlap (services/queue.py). An
answer scores 1 or 0 for single- and multi-label (exact match), and the share of whitespace tokens labeled alike
(`O` outside spans) for spans. A member's accuracy is the mean score of their gold answers since
Membership.gold_since (an un-pause restarts the count).

Owned by the gold work (issue 13, point 3). The signatures below are what the submit path, the review queue and
the metrics call; they are filled in by that work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from annotation.models import Item, Project


@dataclass(frozen=True)
class GoldScore:
    answers: int
    correct: float  # the sum of the answers' scores
    accuracy: float | None  # correct / answers, None without answers


def gold_answer_score(*, task_type: str, text: str, answer: Any, gold: Any) -> float:
    """One answer's score in [0, 1] against the gold value (see the module docstring)."""
    raise NotImplementedError


def gold_scores(*, project: Project, user_ids: list[int] | None = None) -> dict[int, GoldScore]:
    """Per member (user id) who answered gold items since their gold_since: their GoldScore."""
    raise NotImplementedError


def gold_answer_check(*, project: Project, user_id: int) -> bool:
    """After a gold answer was committed: pause the member when the project's gold_pause_below is set, they have
    at least gold_pause_min answers and their accuracy is below it. Returns whether they are paused now."""
    raise NotImplementedError


def gold_set(*, item: Item, value: Any) -> Item:
    """Make the item gold with this value (validated against the project, 400) or change its gold value."""
    raise NotImplementedError


def gold_clear(*, item: Item) -> Item:
    """Remove the gold value: the gold FinalLabel goes and the item returns to the queue."""
    raise NotImplementedError
