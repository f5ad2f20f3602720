"""Alertmanager's webhook: a firing alert group opens a triage thread in Slack."""
