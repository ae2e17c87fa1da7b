# Payments that survive their providers' faults (issue 15): evidence-only orphaning, cursors that
# cannot skip, chain availability, bounded auto top-up attempts, operator dismissals.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_usage_deadletter"),
    ]

    operations = [
        migrations.AddField(
            model_name="topup",
            name="attempts",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="topup",
            name="idempotency_key",
            field=models.CharField(blank=True, max_length=100),
        ),
        migrations.AlterField(
            model_name="stripeevent",
            name="outcome",
            field=models.CharField(
                choices=[
                    ("applied", "Applied"),
                    ("ignored", "Ignored"),
                    ("deferred", "Deferred until its top-up is paid"),
                    ("rejected", "Rejected (needs an operator)"),
                    ("dismissed", "Dismissed by an operator"),
                ],
                max_length=10,
            ),
        ),
        migrations.AlterField(
            model_name="chaincursor",
            name="next_block",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="chaincursor",
            name="updated_at",
            field=models.DateTimeField(auto_now=True, help_text="Heartbeat: moves on every scan attempt"),
        ),
        migrations.AddField(
            model_name="chaincursor",
            name="last_ok_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="chaincursor",
            name="last_error",
            field=models.CharField(blank=True, help_text="Set while the chain is unreachable", max_length=500),
        ),
        migrations.AddField(
            model_name="chaincursor",
            name="last_error_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="cryptodeposit",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending confirmations"),
                    ("credited", "Credited"),
                    ("orphaned", "Dropped by a reorg"),
                    ("below_minimum", "Below the minimum (needs an operator)"),
                    ("dismissed", "Dismissed by an operator"),
                ],
                default="pending",
                max_length=15,
            ),
        ),
        migrations.AddField(
            model_name="cryptodeposit",
            name="note",
            field=models.CharField(blank=True, help_text="Why it is not credited, or who acted on it", max_length=500),
        ),
    ]
