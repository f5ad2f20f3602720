"""What a deploy target does, whatever it runs on: one small interface, one module a target.

An execution (``bot/deploys/execute.py``) drives it in this order, each step recorded in the
job's progress so that a retried job (the bot died mid-deploy) continues instead of starting
the new version twice::

    before = current(model, env)      # what serves now (kept to restore it)
    started = start(plan)             # the new version runs beside the old one
    health(started, timeout)          # it answers; else abandon(started): the old one serves
    switch(model, env, started)       # the stable address sends traffic to it, atomically
    ... verification ...              # on failure: restore(model, env, before); abandon(started)
    retire(model, env, before)        # the old version is drained and stopped

``preflight(plan)`` says before anything runs (and before anyone approves) why a plan cannot
run on this target. Errors a user can act on are ``TargetError`` with the reason (and the
tail of a server log where there is one); the old version keeps serving.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


class TargetError(Exception):
    """The new version could not be started or never turned healthy; the old one serves."""


@dataclass
class Started:
    """A version that runs (or rolls out) and may not serve traffic yet."""

    version: str
    served_name: str
    upstream: str  #: base URL of the OpenAI-compatible API (``…/v1``) serving this version
    ref: dict[str, Any] = field(default_factory=dict)  #: the target's own handle (JSON)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Started:
        return cls(data["version"], data["served_name"], data["upstream"], dict(data["ref"]))


#: What serves a model and environment now: the same fields as a started version.
Live = Started


def served_name(plan: dict[str, Any]) -> str:
    """The name the version answers to (``model`` in OpenAI requests and responses)."""
    params = plan.get("params") or {}
    return str(params.get("served_name") or f"{plan['model']}-{plan['version']}")


class Target(Protocol):
    name: str

    def preflight(self, plan: dict[str, Any]) -> None:
        """Raise TargetError when this target cannot run the plan (nothing is changed)."""

    def current(self, model: str, env: str) -> Live | None:
        """What serves the model in the environment now (None: nothing)."""

    def start(self, plan: dict[str, Any]) -> Started:
        """Run the plan's version beside the live one."""

    def running(self, started: Started) -> bool:
        """Whether a version started by an earlier attempt of the job still runs."""

    def health(self, started: Started, timeout: float) -> None:
        """Return once the version answers; raise TargetError after ``timeout`` seconds."""

    def switch(self, model: str, env: str, started: Started) -> None:
        """Send the stable address's traffic to the started version, atomically."""

    def restore(self, model: str, env: str, before: Live | None) -> None:
        """Send the traffic back to what served before the switch."""

    def abandon(self, started: Started) -> None:
        """Undo a started version that does not (or no longer) serve: stop or unload it."""

    def retire(self, model: str, env: str, before: Live | None) -> None:
        """After a successful switch: drain and stop the version that served before."""

    def address(self, model: str, env: str) -> str:
        """The stable OpenAI-compatible base URL of the model in the environment."""
