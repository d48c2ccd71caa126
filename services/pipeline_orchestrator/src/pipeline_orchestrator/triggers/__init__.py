"""Triggers: schedules, webhooks, alert routes and AlertManager's webhook."""
