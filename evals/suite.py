"""Suites are data: one folder per suite under ``evals/suites/`` with a ``suite.yaml`` (the
scorer, the splits, each metric's threshold and tolerance) and its case files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evals.cases import CaseFileError, load_cases

T = TypeVar("T", bound=BaseModel)

SUITES = Path(__file__).resolve().parent / "suites"
ROOT = SUITES.parents[1]
#: Data written outside the project (see its README): read there, never copied in.
SHARED = ROOT.parent / "shared" / "data"
Split = Literal["dev", "heldout"]


class MetricSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    threshold: float | None = Field(
        None, description="the run fails below it (above, when lower is better)"
    )
    tolerance: float = Field(
        0.0, ge=0, description="a drop from the baseline within it is no regression"
    )
    higher_is_better: bool = True
    judged: bool = Field(False, description="scored by the judge model ('not judged' without one)")
    aggregate: Literal["mean", "p50", "p95", "min"] = Field("mean", description="over the cases")
    of: str | None = Field(None, description="the per-case score it aggregates (default: its name)")


class SplitSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cases: str | list[str] = Field(
        description="a case file in the suite's folder, or shared:PATH; or a list of them"
    )
    corpus: str | None = Field(None, description="what the cases search (retrieval)")
    key: str = "cases"


class SuiteConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    kind: Literal["retrieval", "metrics", "tools", "model", "triage", "answers", "logs"]
    description: str
    splits: dict[Split, SplitSpec]
    metrics: dict[str, MetricSpec]
    needs: list[Literal["promstack"]] = Field(default_factory=list)


class Suite:
    def __init__(self, config: SuiteConfig, folder: Path) -> None:
        self.config, self.folder = config, folder

    @property
    def name(self) -> str:
        return self.config.name

    def path(self, ref: str) -> Path:
        """A case file or corpus: ``shared:PATH`` (../shared/data), ``project:PATH``, or a
        file of the suite's folder."""
        if ref.startswith("shared:"):
            return SHARED / ref.removeprefix("shared:")
        if ref.startswith("project:"):
            return ROOT / ref.removeprefix("project:")
        return self.folder / ref

    def split(self, split: Split) -> SplitSpec:
        if split not in self.config.splits:
            raise CaseFileError(f"suite {self.name} has no {split} split")
        return self.config.splits[split]

    def case_files(self, split: Split) -> list[Path]:
        cases = self.split(split).cases
        return [self.path(ref) for ref in ([cases] if isinstance(cases, str) else cases)]

    def load(self, split: Split, model: type[T]) -> list[T]:
        """The split's cases from all its files, in order; an id twice is an error."""
        out: list[T] = []
        seen: dict[str, Path] = {}
        for path in self.case_files(split):
            for case in load_cases(path, model, self.split(split).key):
                ident = str(getattr(case, "id", ""))
                if ident in seen:
                    raise CaseFileError(f"{path}: case id {ident!r} is also in {seen[ident]}")
                seen[ident] = path
                out.append(case)
        return out


SUITE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


def load_suite(name: str, root: Path = SUITES) -> Suite:
    if not SUITE_NAME.match(name):  # never a path: the name picks a folder of `root`
        known = ", ".join(s.name for s in list_suites(root)) or "none"
        raise CaseFileError(f"no suite {name[:64]!r}; known: {known}")
    folder = root / name
    config_path = folder / "suite.yaml"
    if not config_path.is_file():
        known = ", ".join(s.name for s in list_suites(root)) or "none"
        raise CaseFileError(f"no suite {name!r}; known: {known}")
    try:
        config = SuiteConfig.model_validate(yaml.safe_load(config_path.read_text()))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise CaseFileError(f"{config_path}: {field}: {first['msg']}") from None
    except yaml.YAMLError as exc:
        raise CaseFileError(f"{config_path}: not YAML ({exc})") from None
    return Suite(config, folder)


def list_suites(root: Path = SUITES) -> list[Suite]:
    return [load_suite(p.parent.name, root) for p in sorted(root.glob("*/suite.yaml"))]
