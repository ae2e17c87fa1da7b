from billing import admin_payments  # noqa: F401  (payments registers its models there)
