"""The lock files cannot drift from pyproject.toml silently: every dependency that pyproject
names (runtime, dev, local-llm, mlflow, kubernetes) is pinned in requirements/lock.txt at a
version its range allows, the runtime ones in requirements/lock-runtime.txt too, with the
same versions. After a change to the dependencies in pyproject.toml, `make lock` brings both
up to date."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"
RUNTIME_LOCK = ROOT / "requirements" / "lock-runtime.txt"
#: What `make test` installs; never "gpu".
LOCKED_EXTRAS = ("dev", "local-llm", "mlflow", "kubernetes")
FIX = "run `make lock` and commit requirements/"


def _project() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        project: dict[str, Any] = tomllib.load(f)["project"]
    return project


def _requirements(*extras: str) -> list[Requirement]:
    project = _project()
    names = list(project["dependencies"])
    for extra in extras:
        names += project["optional-dependencies"][extra]
    reqs = [Requirement(r) for r in names]
    return [r for r in reqs if r.marker is None or r.marker.evaluate()]


def _pins(path: Path) -> dict[NormalizedName, tuple[Version, int]]:
    """name -> (pinned version, number of hashes) for each requirement line of a lock file."""
    pins: dict[NormalizedName, tuple[Version, int]] = {}
    current: NormalizedName | None = None
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace():  # a continuation: --hash=... of the requirement above
            if current is not None and "--hash=" in line:
                version, hashes = pins[current]
                pins[current] = (version, hashes + 1)
            continue
        req = Requirement(line.rstrip(" \\"))
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{path.name}: not a pin: {line}"
        current = canonicalize_name(req.name)
        pins[current] = (Version(specs[0].version), 0)
    return pins


def _extra_requirements(req: Requirement) -> list[Requirement]:
    """What req's extras add, read from the installed distribution's metadata."""
    try:
        declared = importlib.metadata.requires(req.name) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    added = []
    for extra in sorted(req.extras):
        for line in declared:
            dep = Requirement(line)
            marker = dep.marker
            if marker is not None and "extra" in str(marker) and marker.evaluate({"extra": extra}):
                added.append(dep)
    return added


def _check(path: Path, reqs: list[Requirement]) -> None:
    pins = _pins(path)
    problems = []
    for req in reqs + [dep for r in reqs for dep in _extra_requirements(r)]:
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"{req} is not pinned")
        elif not req.specifier.contains(pins[name][0], prereleases=True):
            problems.append(f"{req}: the lock pins {pins[name][0]}")
    assert not problems, f"{path.name} is out of date with pyproject.toml ({FIX}): {problems}"


def test_lock_pins_every_dependency_at_a_version_pyproject_allows() -> None:
    _check(LOCK, _requirements(*LOCKED_EXTRAS))


def test_runtime_lock_pins_every_runtime_dependency() -> None:
    _check(RUNTIME_LOCK, _requirements())


def test_runtime_lock_is_the_full_lock_less_the_extras() -> None:
    full, runtime = _pins(LOCK), _pins(RUNTIME_LOCK)
    differ = {
        name: (version, full.get(name, (None,))[0])
        for name, (version, _) in runtime.items()
        if full.get(name, (None,))[0] != version
    }
    assert not differ, f"runtime lock vs lock.txt ({FIX}): {differ}"


@pytest.mark.parametrize("path", [LOCK, RUNTIME_LOCK], ids=lambda p: p.name)
def test_every_pin_is_hashed(path: Path) -> None:
    """pip's hash-checking mode is all or nothing: one line without a hash fails the install."""
    unhashed = [name for name, (_, hashes) in _pins(path).items() if hashes == 0]
    assert not unhashed, f"{path.name}: no --hash for {unhashed} ({FIX})"


def test_lock_is_cpu_only() -> None:
    """The CPU build of torch, no CUDA libraries and nothing of the gpu extra."""
    pins = _pins(LOCK)
    torch = pins[canonicalize_name("torch")][0]
    assert torch.local == "cpu", f"torch {torch} is not the CPU build"
    gpu_extra = _project()["optional-dependencies"]["gpu"]
    gpu = {canonicalize_name(Requirement(r).name) for r in gpu_extra}
    cuda = sorted(n for n in pins if n in gpu or re.match(r"nvidia-|triton$", n))
    assert not cuda, f"lock.txt holds GPU packages: {cuda}"
