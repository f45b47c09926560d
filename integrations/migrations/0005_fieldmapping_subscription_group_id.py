from django.db import migrations, models

STOPGAP_KEY = "_subscription_groups"


def move_groups_to_column(apps, schema_editor):
    """Subscription groups briefly lived in Hub.engagement_attributes; move them to the column."""
    Hub = apps.get_model("integrations", "Hub")
    FieldMapping = apps.get_model("integrations", "FieldMapping")
    for hub in Hub.objects.all():
        settings = hub.engagement_attributes
        if not isinstance(settings, dict) or STOPGAP_KEY not in settings:
            continue
        groups = settings.pop(STOPGAP_KEY) or {}
        for attribute, group_id in groups.items():
            FieldMapping.objects.filter(hub=hub, attribute=attribute).update(
                subscription_group_id=group_id
            )
        hub.engagement_attributes = settings
        hub.save(update_fields=["engagement_attributes"])


class Migration(migrations.Migration):
    dependencies = [("integrations", "0004_issue_3_4_5_fields")]

    operations = [
        migrations.AddField(
            model_name="fieldmapping",
            name="subscription_group_id",
            field=models.CharField(
                blank=True,
                default="",
                help_text="Subscription type only: also set this Braze subscription group.",
                max_length=100,
                verbose_name="subscription group",
            ),
        ),
        migrations.RunPython(move_groups_to_column, migrations.RunPython.noop),
    ]
