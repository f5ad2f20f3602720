"""The HTTP side of the bot: request checks before any parser, health and metrics."""
