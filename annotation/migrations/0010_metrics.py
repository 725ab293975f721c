"""Tables and indexes of the quality metrics, where the metrics work needs more than 0008's MetricsCache.

MetricsState: the refresh check's memory per project. The three indexes let that check find what changed since
its last look (annotations written or edited, reviews, final labels set) by a range scan over the recent rows
only, never a scan of a project's rows. They are plain SQL: they serve one query of annotation/quality/metrics.py,
not the models' own lookups, so the models' Meta does not list them.

item_stop_set: the stopping signal's fixed sample (annotation/quality/stopping.py, `stop_set`) is the project's
non-gold items with the smallest sha256 of "<project id>:<item id>"; ordered by this index it is read in ~50 ms
instead of hashing and sorting every item (3 s at 1M items). PostgreSQL indexes only immutable expressions, so
the query must hash `(project_id::text || ':' || id::text)::bytea`: the same bytes as `convert_to(..., 'UTF8')`
(digits and a colon), hence the same sample, but convert_to is only STABLE."""

import django.db.models.deletion
from django.db import migrations, models

_INDEXES = [
    ("annotation_annotation", "annotation_updated_at"),
    ("annotation_review", "review_created_at"),
    ("annotation_finallabel", "finallabel_updated_at"),
]
_COLUMN = {
    "annotation_updated_at": "updated_at",
    "review_created_at": "created_at",
    "finallabel_updated_at": "updated_at",
}


class Migration(migrations.Migration):
    dependencies = [("annotation", "0009_requeue_rejected")]

    operations = [
        migrations.CreateModel(
            name="MetricsState",
            fields=[
                (
                    "project",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="annotation.project",
                    ),
                ),
                ("checked_at", models.DateTimeField()),
                ("changed_at", models.DateTimeField(blank=True, null=True)),
            ],
        ),
        *(
            migrations.RunSQL(
                f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({_COLUMN[name]})",
                f"DROP INDEX IF EXISTS {name}",
            )
            for table, name in _INDEXES
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS item_stop_set ON annotation_item "
            "(project_id, sha256((project_id::text || ':' || id::text)::bytea)) WHERE NOT is_gold",
            "DROP INDEX IF EXISTS item_stop_set",
        ),
    ]
