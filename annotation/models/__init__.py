from annotation.models.item import Assignment, FinalLabel, Item, Skip
from annotation.models.job import Job
from annotation.models.labeling import Annotation, Review, ReviewLease
from annotation.models.project import Membership, Project
from annotation.models.quality import MetricsCache
from annotation.models.snapshot import Snapshot, SnapshotStatus

__all__ = [
    "Annotation",
    "Assignment",
    "FinalLabel",
    "Item",
    "Job",
    "Membership",
    "MetricsCache",
    "Project",
    "Review",
    "ReviewLease",
    "Skip",
    "Snapshot",
    "SnapshotStatus",
]
