"""Admin for payments (owned by the payments work; imported by billing/admin.py)."""
