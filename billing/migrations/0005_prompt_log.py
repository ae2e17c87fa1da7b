# Prompt logging (issue 13, item 1): opted-in organizations' encrypted request and response bodies.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0004_payments_faults"),
        ("organizations", "0005_log_prompts_retention"),
    ]

    operations = [
        migrations.CreateModel(
            name="PromptLog",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("generation_id", models.CharField(max_length=64, unique=True)),
                ("payload", models.TextField()),
                ("created_at", models.DateTimeField(db_index=True)),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="prompt_logs",
                        to="organizations.organization",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at"],
                "indexes": [models.Index(fields=["organization", "created_at"], name="promptlog_org_created")],
            },
        ),
    ]
