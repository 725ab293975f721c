from annotation.models.item import Assignment, FinalLabel, Item, Skip
from annotation.models.job import Job
from annotation.models.labeling import Annotation, Review
from annotation.models.project import Membership, Project

__all__ = [
    "Annotation",
    "Assignment",
    "FinalLabel",
    "Item",
    "Job",
    "Membership",
    "Project",
    "Review",
    "Skip",
]
