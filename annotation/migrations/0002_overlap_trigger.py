"""A database trigger that makes an annotation beyond the project's overlap k impossible,
whatever code path writes it (the services also check it while holding the item's row lock). PostgreSQL only:
elsewhere it does nothing (the one other database it meets is the copy of an earlier quick start's SQLite file
that scripts/embedded.py migrates before it copies the rows into PostgreSQL)."""

from django.db import migrations

PG_UP = """
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
CREATE TRIGGER annotation_overlap BEFORE INSERT ON annotation_annotation
    FOR EACH ROW EXECUTE FUNCTION tandem_annotation_overlap();
"""
PG_DOWN = """
DROP TRIGGER IF EXISTS annotation_overlap ON annotation_annotation;
DROP FUNCTION IF EXISTS tandem_annotation_overlap();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":  # Tandem runs on PostgreSQL only
        schema_editor.execute(PG_UP, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_DOWN, params=None)


class Migration(migrations.Migration):
    dependencies = [("annotation", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
