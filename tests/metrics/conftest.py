"""Fixtures for a real Prometheus (and Alertmanager) over the incident data of
``evals.promstack``. Tests that use them mark themselves ``integration``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from evals.promstack import (
    AlertingStack,
    AlertmanagerServer,
    PromStack,
    RulesArg,
    require_binaries,
    running_stack,
)


@pytest.fixture(scope="session")
def prom_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromStack]:
    """3 hours of backfilled history (incident 20 minutes before the session starts), the
    exporter keeping it live, and Prometheus (``DEFAULT_RULES`` loaded, no Alertmanager),
    already scraped once so ``/api/v1/metadata`` is filled."""
    require_binaries(alertmanager=False)
    with running_stack(tmp_path_factory.mktemp("promstack")) as stack:
        yield stack


@pytest.fixture
def start_alertmanager(tmp_path: Path) -> Iterator[Callable[..., AlertmanagerServer]]:
    """``start_alertmanager(webhook_url, *, bearer_token=None, **kwargs)``: a started
    Alertmanager with fresh storage posting to ``webhook_url``; stopped after the test."""
    require_binaries()
    servers: list[AlertmanagerServer] = []

    def start(
        webhook_url: str, *, bearer_token: str | None = None, **kwargs: Any
    ) -> AlertmanagerServer:
        server = AlertmanagerServer(
            webhook_url,
            bearer_token=bearer_token,
            workdir=tmp_path / f"alertmanager-{len(servers)}",
            **kwargs,
        )
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def alerting_stack(
    prom_stack: PromStack, start_alertmanager: Callable[..., AlertmanagerServer]
) -> Iterator[Callable[..., AlertingStack]]:
    """``alerting_stack(webhook_url, *, bearer_token=None, rules=None)``: a fresh Alertmanager
    posting to ``webhook_url`` and a fresh Prometheus over the same incident data evaluating
    ``rules`` (default ``DEFAULT_RULES``) and sending to it. Notifications start about
    5 to 10 s later; both servers stop after the test."""
    stacks: list[AlertingStack] = []

    def start(
        webhook_url: str, *, bearer_token: str | None = None, rules: RulesArg = None
    ) -> AlertingStack:
        alertmanager = start_alertmanager(webhook_url, bearer_token=bearer_token)
        prometheus = prom_stack.new_prometheus(rules=rules, alertmanager_url=alertmanager.url)
        stack = AlertingStack(prometheus, alertmanager)
        stacks.append(stack)
        return stack

    yield start
    for stack in stacks:
        stack.stop()
