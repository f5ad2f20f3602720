"""The Bolt app: signature-checked requests in, Web API calls out (to OPSBOT_SLACK_API_URL)."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings
from bot.slack.listeners import Services, register_listeners
from bot.store import Store


def services_for(settings: Settings, store: Store | None = None) -> Services:
    """What the listeners use, from settings; the agent is added when the server starts."""
    return Services(
        store=store or Store(settings.database_url),
        max_concurrent_answers=settings.max_concurrent_answers,
        bot_token=settings.slack.bot_token.get_secret_value() if settings.slack.bot_token else "",
        uploads_dir=settings.uploads_dir,
    )


def build_slack_app(settings: Settings, services: Services) -> AsyncApp:
    settings.require_slack()
    assert settings.slack.bot_token is not None and settings.slack.signing_secret is not None
    token = settings.slack.bot_token.get_secret_value()
    client = AsyncWebClient(token=token, base_url=settings.slack.api_url)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=3))
    app = AsyncApp(
        client=client,
        signing_secret=settings.slack.signing_secret.get_secret_value(),
        process_before_response=False,
    )
    register_listeners(app, services)
    return app
