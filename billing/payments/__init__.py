"""Buying credits: card top-ups through Stripe, USDC deposits on EVM chains, auto top-up.

Modules, lowest first (each imports only those above it in this list):
- stripe_api, chain: the SDK edges (the only importers of `stripe` and of web3/eth libraries)
- quotes: amount rules, the card fee, PaymentError
- topups: a card top-up paid, refunded, disputed (ledger entries); the rule effects of those events
- checkout: the hand-made card top-up (Checkout Session)
- webhooks: Stripe events applied once, deferred and replayed
- auto_topup: the rule and the off-session charge (replays deferred events after it)
- crypto: deposit addresses and the chain scan; selectors: reads for the pages
- tasks (the `payments` Celery queue), views, urls, admin
"""
