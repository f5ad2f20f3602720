"""The local deploy target: one model-server process per live version on this host, behind
the bot's stable address per model and environment.

``start`` runs llama.cpp's OpenAI-compatible server (the ``local-llm`` extra) for a GGUF
version, or ``vllm serve`` for other weights when vLLM is installed (the ``gpu`` extra), on a
free port; ``health`` waits until ``/v1/models`` lists the served name and one short
completion answers (llama-cpp-python's server has no ``/health``; vLLM's must answer 200
too); ``switch`` points the router (``bot/http/router.py``) at it in the database,
atomically; ``retire`` drains and ends the old process. If the new version never turns
healthy, the old one keeps serving and the reason comes with the tail of the server's log.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from bot.deploys.serving import Serving, stable_address
from bot.deploys.targets.base import Live, Started, TargetError, served_name
from bot.llm_server import LocalModelError, llama_server_command
from bot.net import free_port
from bot.settings import Settings
from tools.base import ToolError
from tools.deploy.mlflow_registry import MLFLOW_SCHEMES, fetch_artifact

DRAIN_S = 2.0


class LocalTarget:
    name = "local"

    def __init__(self, settings: Settings, serving: Serving) -> None:
        self.settings, self.serving = settings, serving
        self.servers = settings.data_dir / "servers"
        self.models_dir = settings.data_dir / "models"

    def preflight(self, plan: dict[str, Any]) -> None:
        if str(plan["uri"]).startswith(MLFLOW_SCHEMES):
            if not self.settings.mlflow.tracking_uri:
                raise TargetError(f"{plan['uri']} is an MLflow URI: set OPSBOT_MLFLOW_TRACKING_URI")
            return  # fetched at start (checked against its sha256 there)
        self._command(plan, port=0)

    def _weights(self, plan: dict[str, Any]) -> dict[str, Any]:
        """The plan with a local path for weights kept in MLflow (downloaded once)."""
        uri = str(plan["uri"])
        if not uri.startswith(MLFLOW_SCHEMES) or not self.settings.mlflow.tracking_uri:
            return plan
        dest = self.settings.data_dir / "artifacts" / plan["model"] / plan["version"]
        try:
            local = fetch_artifact(self.settings.mlflow.tracking_uri, uri, dest, plan.get("sha256"))
        except ToolError as exc:
            raise TargetError(str(exc)) from None
        except Exception as exc:  # MLflow's download errors: say which, keep serving the old
            raise TargetError(f"could not fetch {uri} from MLflow ({type(exc).__name__}: "
                              f"{str(exc)[:300]})") from None  # fmt: skip
        return {**plan, "uri": str(local)}

    def current(self, model: str, env: str) -> Live | None:
        return self.serving.get(model, env)

    def address(self, model: str, env: str) -> str:
        return stable_address(self.settings, model, env)

    def _command(self, plan: dict[str, Any], port: int) -> list[str]:
        uri, params = str(plan["uri"]), plan.get("params") or {}
        name, n_ctx = served_name(plan), int(params.get("context_length") or 2048)
        if uri.endswith(".gguf"):
            if not Path(uri).is_file():
                raise TargetError(f"no GGUF file at {uri} on this host")
            try:
                command = llama_server_command(Path(uri), host="127.0.0.1", port=port,
                                               n_ctx=n_ctx, models_dir=self.models_dir)  # fmt: skip
            except LocalModelError as exc:
                raise TargetError(str(exc)) from None
            command[command.index("--model_alias") + 1] = name
            if params.get("chat_format"):
                command[command.index("--chat_format") + 1] = str(params["chat_format"])
            if params.get("n_gpu_layers") is not None:
                command += ["--n_gpu_layers", str(int(params["n_gpu_layers"]))]
        else:
            vllm = shutil.which("vllm")
            if vllm is None:
                raise TargetError(
                    f"the local target serves GGUF files with llama.cpp, and {uri} is not one; "
                    "other weights need vLLM on this host (pip install 'opsbot[gpu]')"
                )
            weights = uri.removeprefix("hf://")
            command = [vllm, "serve", weights, "--served-model-name", name, "--host",
                       "127.0.0.1", "--port", str(port), "--max-model-len", str(n_ctx)]  # fmt: skip
            if params.get("quantisation"):  # vLLM's own name of the method (awq, fp8, …)
                command += ["--quantization", str(params["quantisation"])]
        return command + (str(params["args"]).split() if params.get("args") else [])

    def start(self, plan: dict[str, Any]) -> Started:
        port = free_port()
        command = self._command(self._weights(plan), port)
        self.servers.mkdir(parents=True, exist_ok=True)
        log = self.servers / f"{plan['model']}-{plan['env']}-{plan['version']}-{port}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(  # its own session: it outlives a restart of the bot
                command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        log.with_suffix(".pid").write_text(str(proc.pid))
        ref = {"pid": proc.pid, "log": log.name, "vllm": command[1:2] == ["serve"]}
        return Started(plan["version"], served_name(plan), f"http://127.0.0.1:{port}/v1", ref)

    def running(self, started: Started) -> bool:
        return alive(int(started.ref["pid"]))

    def health(self, started: Started, timeout: float) -> None:
        """Until the server lists its served name and completes one prompt."""
        deadline, pid = time.monotonic() + timeout, int(started.ref["pid"])
        log = self.servers / str(started.ref.get("log", ""))
        while time.monotonic() < deadline:
            if not alive(pid):
                raise TargetError(f"the server exited at start:\n{tail(log)}")
            if _answers(started):
                return
            time.sleep(0.5)
        stop(pid)
        raise TargetError(f"not healthy after {timeout:.0f} s:\n{tail(log)}")

    def switch(self, model: str, env: str, started: Started) -> None:
        self.serving.point(model, env, started)

    def restore(self, model: str, env: str, before: Live | None) -> None:
        self.serving.point(model, env, before)

    def abandon(self, started: Started) -> None:
        stop(int(started.ref["pid"]))

    def retire(self, model: str, env: str, before: Live | None) -> None:
        live = self.serving.get(model, env)
        pid = before.ref.get("pid") if before else None
        if pid is not None and (live is None or live.ref.get("pid") != pid):
            stop(int(pid), DRAIN_S)


def _answers(started: Started) -> bool:
    try:
        if started.ref.get("vllm"):  # vLLM's engine health first (503 while it is dead)
            root = started.upstream.removesuffix("/v1")
            if httpx.get(f"{root}/health", timeout=2).status_code != 200:
                return False
        listed = httpx.get(f"{started.upstream}/models", timeout=2).json()
        if started.served_name not in {m.get("id") for m in listed.get("data", [])}:
            return False
        done = httpx.post(
            f"{started.upstream}/completions",
            json={"model": started.served_name, "prompt": "Hello", "max_tokens": 1},
            timeout=30,
        )
        return done.status_code == 200
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


def stop_all(data_dir: Path) -> int:
    """End every model server this data folder's bot started (its pid files); how many ran."""
    stopped = 0
    for pid_file in sorted((data_dir / "servers").glob("*.pid")):
        try:
            pid = int(pid_file.read_text())
        except (OSError, ValueError):
            continue
        if _is_server(pid):
            stop(pid)
            stopped += 1
        pid_file.unlink(missing_ok=True)
    return stopped


def _is_server(pid: int) -> bool:
    """Still our model server (a pid can be reused after it ended)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return alive(pid)
    return b"llama_cpp.server" in cmdline or b"vllm" in cmdline


def stop(pid: int, drain_s: float = 0.0) -> None:
    """Drain, then end a server process (SIGTERM, SIGKILL after 10 s)."""
    if not alive(pid):
        return
    time.sleep(drain_s)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:  # not our child (started before a restart): ask the kernel
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
