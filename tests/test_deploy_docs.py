"""The Slack app manifest matches what the bot listens to and calls."""

from __future__ import annotations

from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def test_manifest_points_everything_at_the_one_request_url() -> None:
    manifest = yaml.safe_load((DEPLOY / "slack-manifest.yaml").read_text())
    settings = manifest["settings"]
    urls = {
        manifest["features"]["slash_commands"][0]["url"],
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
    }
    assert len(urls) == 1 and urls.pop().endswith("/slack/events")
    assert manifest["features"]["slash_commands"][0]["command"] == "/ops"


def test_manifest_asks_for_the_events_and_scopes_the_bot_uses() -> None:
    manifest = yaml.safe_load((DEPLOY / "slack-manifest.yaml").read_text())
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert events == {"app_mention", "message.channels", "message.groups"}
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"app_mentions:read", "chat:write", "commands", "channels:history"} <= scopes
    assert not scopes & {"admin", "users:read.email", "channels:manage", "chat:write.customize"}


def test_the_example_checks_file_loads_with_its_gate_and_checks() -> None:
    from tools.deploy.analysis import load_checks

    checks = load_checks(Path(__file__).parents[1] / "deploy" / "deploy-checks.example.yaml")
    assert [g.name for g in checks.gates_for("gemma", "production")] == ["completions"]
    assert [c.name for c in checks.for_("gemma", "production")] == ["error-share", "p95-latency"]
