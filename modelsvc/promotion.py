"""The promotion policy: whether a newly trained candidate replaces the active version.

Both are evaluated on the same fixed validation set (modelsvc.splits). The candidate is promoted when it
beats the active version by more than TANDEM_PROMOTION_MARGIN on TANDEM_PROMOTION_METRIC; a version made
for other labels cannot be compared, so any candidate beats it.
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings


def beats(candidate: dict[str, Any], active: dict[str, Any] | None) -> bool:
    """The candidate beats the active version by more than the margin on the promotion metric; a tie
    exactly at that bar goes to the lower validation log loss. On the few validation items of an early
    round accuracy ties are common (both all right); without the tie-break a tie would keep the version
    trained on fewer labels, or (promoting every tie) take one that is no better on anything measured."""
    if active is None:
        return True
    metric = settings.TANDEM_PROMOTION_METRIC
    value, bar = float(candidate[metric]), float(active[metric]) + settings.TANDEM_PROMOTION_MARGIN
    if not math.isclose(value, bar, rel_tol=0.0, abs_tol=1e-9):
        return value > bar
    mine, theirs = candidate.get("log_loss"), active.get("log_loss")
    return mine is not None and theirs is not None and float(mine) < float(theirs)
