"""A function the submit's write statement calls to fail when it inserted nothing (every slot of the item is
taken), so that the statement can be sent together with its COMMIT in one round trip: an error stops the
COMMIT, while a statement that merely returned no row would have been committed."""

from django.db import migrations

PG_UP = """
CREATE OR REPLACE FUNCTION tandem_slot_taken(item bigint) RETURNS integer AS $$
BEGIN
    RAISE EXCEPTION 'tandem: every slot of item % is taken', item USING ERRCODE = 'T0409';
END;
$$ LANGUAGE plpgsql VOLATILE;
"""
PG_DOWN = "DROP FUNCTION IF EXISTS tandem_slot_taken(bigint);"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_UP, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_DOWN, params=None)


class Migration(migrations.Migration):
    dependencies = [("annotation", "0004_item_prediction_uncertainty_measure")]
    operations = [migrations.RunPython(forwards, backwards)]
