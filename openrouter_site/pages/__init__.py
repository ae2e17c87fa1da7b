"""Browser pages that combine several apps, so they live above all of them.

The Keys page shows an organization's keys (organizations) with what each has spent (billing's live
counters); the Settings page shows the user's account (accounts) and the current organization's
privacy switch (organizations). Pages that belong to one app stay in that app.
"""
