"""The review loop re-queues rejected items (issue 13): items that an earlier version left in the terminal state
`rejected` are sent back the way `reject` does it now (annotation/services/reviewing.py), and the overlap trigger
counts only the annotations that count.

- Data: each `rejected` item's rejected annotations (those with a `reject` Review) get counts = false, its
  `rejections` is the number of its reject Reviews, `annotation_count` the number of its counting annotations, any
  non-gold FinalLabel goes; it becomes `in_progress` (or `open` with no counting annotation left), or stays in review
  awaiting adjudication (`in_review`, adjudication = true) when it reached the project's max_rejections or no
  member who may annotate it is left (not paused, no annotation or skip on it).
- Trigger (migration 0002): a rejected annotation (counts = false) no longer takes a slot, so the trigger that
  refuses a k+1-th annotation counts only counting annotations; a gold item stands outside the overlap (every
  annotator answers it once), so the trigger leaves gold items alone.

The function below uses the historical models only (no import of the app's services), so it keeps working however
those change later.
"""

from django.db import migrations

PG_TRIGGER_UP = """
CREATE OR REPLACE FUNCTION tandem_annotation_overlap() RETURNS trigger AS $$
DECLARE
    k integer;
    gold boolean;
    n integer;
BEGIN
    SELECT p.annotations_per_item, i.is_gold INTO k, gold
      FROM annotation_item i JOIN annotation_project p ON p.id = i.project_id
     WHERE i.id = NEW.item_id
       FOR UPDATE OF i;
    IF gold THEN
        RETURN NEW;
    END IF;
    SELECT count(*) INTO n FROM annotation_annotation WHERE item_id = NEW.item_id AND counts;
    IF n >= k THEN
        RAISE EXCEPTION 'item % already has % annotations (overlap k = %)', NEW.item_id, n, k
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""

# migration 0002's function, as it was
PG_TRIGGER_DOWN = """
CREATE OR REPLACE FUNCTION tandem_annotation_overlap() RETURNS trigger AS $$
DECLARE
    k integer;
    n integer;
BEGIN
    SELECT p.annotations_per_item INTO k
      FROM annotation_item i JOIN annotation_project p ON p.id = i.project_id
     WHERE i.id = NEW.item_id
       FOR UPDATE OF i;
    SELECT count(*) INTO n FROM annotation_annotation WHERE item_id = NEW.item_id;
    IF n >= k THEN
        RAISE EXCEPTION 'item % already has % annotations (overlap k = %)', NEW.item_id, n, k
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""


def requeue_rejected(apps, schema_editor) -> int:
    """Re-queue every `rejected` item as the review loop's reject does (see the module docstring); returns how
    many items it changed. Idempotent: a second run finds no `rejected` item."""
    Item = apps.get_model("annotation", "Item")
    Annotation = apps.get_model("annotation", "Annotation")
    Review = apps.get_model("annotation", "Review")
    FinalLabel = apps.get_model("annotation", "FinalLabel")
    Membership = apps.get_model("annotation", "Membership")
    Skip = apps.get_model("annotation", "Skip")
    changed = 0
    for item in Item.objects.filter(status="rejected").select_related("project").order_by("id").iterator():
        rejects = Review.objects.filter(annotation__item_id=item.pk, verdict="reject")
        Annotation.objects.filter(pk__in=rejects.values("annotation_id")).update(counts=False)
        counting = Annotation.objects.filter(item_id=item.pk, counts=True).count()
        rejections = rejects.count()
        FinalLabel.objects.filter(item_id=item.pk).exclude(source="gold").delete()
        # every role may annotate (annotation.access: Capability.ANNOTATE is granted to all of them)
        eligible = (
            Membership.objects.filter(project_id=item.project_id, paused=False)
            .exclude(user_id__in=Annotation.objects.filter(item_id=item.pk).values("annotator_id"))
            .exclude(user_id__in=Skip.objects.filter(item_id=item.pk).values("user_id"))
            .exists()
        )
        if rejections >= item.project.max_rejections or not eligible:
            status, adjudication = "in_review", True
        else:
            status, adjudication = ("in_progress" if counting else "open"), False
        Item.objects.filter(pk=item.pk).update(
            status=status, adjudication=adjudication, rejections=rejections, annotation_count=counting
        )
        changed += 1
    return changed


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":  # Tandem runs on PostgreSQL only (see migration 0002)
        schema_editor.execute(PG_TRIGGER_UP, params=None)
    requeue_rejected(apps, schema_editor)


def backwards(apps, schema_editor):
    # the re-queued items stay where they are (the old terminal state is not restored); the trigger goes back
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_TRIGGER_DOWN, params=None)


class Migration(migrations.Migration):
    dependencies = [("annotation", "0008_quality")]

    operations = [migrations.RunPython(forwards, backwards)]
