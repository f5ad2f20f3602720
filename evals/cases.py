"""Case files: YAML lists validated with pydantic, errors naming the file, the line and the
field (``evals/suites/tools/dev.yaml:14: cases[3].expect.tool: Field required``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

T = TypeVar("T", bound=BaseModel)


class CaseFileError(ValueError):
    """A case file that cannot be read: where, and what is wrong."""


class CaseBase(BaseModel):
    """What every case has: a stable id for reports and baselines, and whether it is a
    known failure (counted as ``known_fail``, never as a regression)."""

    model_config = ConfigDict(extra="forbid")
    id: str
    known_fail: bool = False


def _lines(text: str, key: str) -> list[int]:
    """The line (1-based) each item of the top-level list ``key`` starts on."""
    root = yaml.compose(text)
    if not isinstance(root, yaml.MappingNode):
        return []
    for k, v in root.value:
        if k.value == key and isinstance(v, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in v.value]
    return []


def load_cases(path: Path, model: type[T], key: str = "cases") -> list[T]:
    """The cases of ``path`` (a mapping whose ``key`` is a list), each validated."""
    try:
        text = path.read_text()
        data = yaml.safe_load(text)
    except OSError as exc:
        raise CaseFileError(f"{path}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise CaseFileError(f"{path}{where}: not YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise CaseFileError(f"{path}:1: {key}: a list of cases is required")
    lines = _lines(text, key)
    cases: list[T] = []
    seen: set[str] = set()
    for i, raw in enumerate(data[key]):
        line = lines[i] if i < len(lines) else 1
        try:
            case = model.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise CaseFileError(f"{path}:{line}: {key}[{i}].{field}: {first['msg']}") from None
        ident = str(getattr(case, "id", i))
        if ident in seen:
            raise CaseFileError(f"{path}:{line}: {key}[{i}].id: {ident!r} is used twice")
        seen.add(ident)
        cases.append(case)
    return cases


def dump(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False)
