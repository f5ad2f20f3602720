"""Who may approve a deploy in an environment: Slack user ids and user-group ids
(``OPSBOT_DEPLOY_APPROVERS``), groups resolved with ``usergroups.users.list`` and cached
for a minute. The requester never approves their own request."""

from __future__ import annotations

import logging
import time

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import DeploySettings

log = logging.getLogger(__name__)
GROUP_CACHE_S = 60.0


class Approvers:
    def __init__(self, settings: DeploySettings, client: AsyncWebClient) -> None:
        self.settings, self.client = settings, client
        self._groups: dict[str, tuple[float, set[str]]] = {}

    async def members(self, group: str) -> set[str]:
        cached = self._groups.get(group)
        if cached and time.monotonic() - cached[0] < GROUP_CACHE_S:
            return cached[1]
        try:
            response = await self.client.usergroups_users_list(usergroup=group)
            users = set(response.get("users") or [])
        except SlackApiError as exc:
            log.warning("could not list user group %s: %s", group, exc.response.get("error"))
            users = cached[1] if cached else set()
        self._groups[group] = (time.monotonic(), users)
        return users

    async def refusal(self, env: str, user: str, requester: str) -> str | None:
        """Why ``user`` may not approve in ``env`` (None: they may)."""
        if user == requester:
            return "you asked for this deploy, so someone else has to approve it"
        allowed = self.settings.approvers.get(env, [])
        if not allowed:
            return f"no one may approve deploys to {env}: set OPSBOT_DEPLOY_APPROVERS"
        if user in allowed:
            return None
        for group in (g for g in allowed if g.startswith("S")):
            if user in await self.members(group):
                return None
        return f"you are not an approver for {env}"
