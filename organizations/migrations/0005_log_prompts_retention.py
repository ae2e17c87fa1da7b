# Prompt logging (issue 13, item 1): how long an opted-in organization's prompt logs are kept.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("organizations", "0004_data_policy"),
    ]

    operations = [
        migrations.AddField(
            model_name="organization",
            name="log_prompts_retention_days",
            field=models.PositiveSmallIntegerField(default=30),
        ),
    ]
