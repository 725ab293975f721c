"""Tables and indexes of the quality metrics, where the metrics work needs more than 0008's MetricsCache.

MetricsState: the refresh check's memory per project. The three indexes let that check find what changed since
its last look (annotations written or edited, reviews, final labels set) by a range scan over the recent rows
only, never a scan of a project's rows. They are plain SQL (on PostgreSQL only): they serve one query of annotation/quality/metrics.py,
not the models' own lookups, so the models' Meta does not list them.

item_stop_set: the stopping signal's fixed sample (annotation/quality/stopping.py, `stop_set`) is the project's
non-gold items with the smallest sha256 of "<project id>:<item id>"; ordered by this index it is read in ~50 ms
instead of hashing and sorting every item (3 s at 1M items). PostgreSQL indexes only immutable expressions, so
the query must hash `(project_id::text || ':' || id::text)::bytea`: the same bytes as `convert_to(..., 'UTF8')`
(digits and a colon), hence the same sample, but convert_to is only STABLE."""

import django.db.models.deletion
from django.db import migrations, models

# (name, table, what it indexes)
_INDEXES = [
    ("annotation_updated_at", "annotation_annotation", "(updated_at)"),
    ("review_created_at", "annotation_review", "(created_at)"),
    ("finallabel_updated_at", "annotation_finallabel", "(updated_at)"),
    (
        "item_stop_set",
        "annotation_item",
        "(project_id, sha256((project_id::text || ':' || id::text)::bytea)) WHERE NOT is_gold",
    ),
]


def forwards(apps, schema_editor):
    # PostgreSQL only, as migration 0002: the quick start's copy of an earlier SQLite database migrates its copy
    # there first, and needs none of these
    if schema_editor.connection.vendor == "postgresql":
        for name, table, what in _INDEXES:
            schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} {what}", params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, _, _ in _INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}", params=None)


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
        migrations.RunPython(forwards, backwards),
    ]
