"""Payment-provider edges. The only place Stripe cents and token base units exist."""
