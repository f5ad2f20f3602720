"""Which channel an alert group's thread goes to (OPSBOT_ALERTS_ROUTES, then the default)."""

from __future__ import annotations

from bot.alertmanager.payload import Notification
from bot.settings import AlertsSettings


class UnroutableError(Exception):
    """No route matches and there is no default channel."""


def channel_for(notification: Notification, alerts: AlertsSettings) -> str:
    """The first route whose ``receiver=NAME`` or ``LABEL=VALUE`` matches, else the default."""
    labels = {**notification.common_labels, **notification.group_labels}
    for key, channel in alerts.routes.items():
        name, _, wanted = key.partition("=")
        name, wanted = name.strip(), wanted.strip()
        if name == "receiver" and notification.receiver == wanted:
            return channel
        if name != "receiver" and labels.get(name) == wanted:
            return channel
    if alerts.channel:
        return alerts.channel
    raise UnroutableError(
        f"no channel for receiver {notification.receiver!r}: set OPSBOT_ALERTS_CHANNEL or a "
        "matching OPSBOT_ALERTS_ROUTES entry"
    )
