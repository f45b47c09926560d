from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    # The database cache (shared rate budget and task coalescing on the embedded default) needs
    # its table wherever the database is migrated, test databases included. No-op with Redis.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("integrations", "0002_sweep_schedule")]

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
