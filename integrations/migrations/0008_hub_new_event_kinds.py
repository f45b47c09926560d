from django.db import migrations, models

# The event kinds Komo documents when this migration was written (integrations.spec).
DOCUMENTED = {
    "CompetitionEntrySuccess", "SignUpSuccess", "PrizeAwarded", "CouponIssued", "QuizStarted",
    "InstantWinStarted", "ScratchAndWinStarted", "TriviaGameplayStarted", "PredictiveStarted",
    "CardViewed", "CardCoverClicked", "SiteViewed",
}


def confirm_kinds_in_use(apps, schema_editor):
    """Hubs already delivering undocumented kinds keep them: they count as confirmed."""
    Hub = apps.get_model("integrations", "Hub")
    for hub in Hub.objects.all():
        used = [*(hub.events or []), *(hub.event_rules or {}), *(hub.transactional or {})]
        unknown = [kind for kind in dict.fromkeys(used) if kind not in DOCUMENTED]
        if unknown:
            hub.new_event_kinds = unknown
            hub.save(update_fields=["new_event_kinds"])


class Migration(migrations.Migration):
    dependencies = [("integrations", "0007_volume_indexes")]

    operations = [
        migrations.AddField(
            model_name="hub",
            name="new_event_kinds",
            field=models.JSONField(blank=True, default=list, verbose_name="new Komo event kinds"),
        ),
        migrations.RunPython(confirm_kinds_in_use, migrations.RunPython.noop),
    ]
