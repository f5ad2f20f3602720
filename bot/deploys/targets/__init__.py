"""Deploy targets behind one interface (``base.Target``); ``make_target`` picks the one set
by ``OPSBOT_DEPLOY_TARGET``."""

from __future__ import annotations

from sqlalchemy import Engine

from bot.deploys.targets.base import Target
from bot.settings import Settings


def make_target(settings: Settings, engine: Engine) -> Target:
    from bot.deploys.serving import Serving

    name = settings.deploy.target
    if name == "kubernetes":
        from bot.deploys.targets.kubernetes import KubernetesTarget

        return KubernetesTarget(settings.deploy)
    if name == "vllm-lora":
        from bot.deploys.targets.vllm_lora import VllmLoraTarget

        return VllmLoraTarget(settings, Serving(engine))
    from bot.deploys.targets.local import LocalTarget

    return LocalTarget(settings, Serving(engine))
