"""Retraining policies: which signals (model monitoring, alerts, a schedule) start a model's
retraining pipeline, through one gate per model, and the record of every decision."""
