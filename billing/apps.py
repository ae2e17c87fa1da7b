from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        # Callbacks that run upward (the ledger notifies the gate above it; the embedded gate settles
        # with the settlement service above it) are wired here rather than imported by the lower module.
        from billing import gate, ledger, settlement

        ledger.on_credits_changed(gate.org_balance_sync)
        gate.settle_embedded_with(settlement.settle_pending)
        # Registers the payment settings check: a scanner misconfiguration is refused at start.
        from billing.payments import checks  # noqa: F401
