"""The Bolt app: signature-checked requests in, Web API calls out (to OPSBOT_SLACK_API_URL)."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.services import Services
from bot.slack.intake import register_intake


def build_slack_app(services: Services) -> AsyncApp:
    settings = services.settings
    assert settings.slack.signing_secret is not None
    app = AsyncApp(
        client=services.client,
        signing_secret=settings.slack.signing_secret.get_secret_value(),
        # Intake's listeners only validate, record a job and ack, so Bolt runs them before it
        # answers: the HTTP response leaves once the job is in the database, for events as
        # for commands (with False, Bolt acks an event before its listener runs, and waits
        # for other acks by polling every 10 ms, which set the floor of ack latency).
        process_before_response=True,
        raise_error_for_unhandled_request=False,
    )
    register_intake(app, services)
    return app
