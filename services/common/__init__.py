"""Mechanics shared by every service: envelope, outbox/inbox, DB, caller context, logs."""
