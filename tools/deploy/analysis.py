"""Verification after a switch, with Argo Rollouts' AnalysisRun semantics.

A check (one ``metrics`` entry of the checks file) runs its PromQL ``query`` ``count``
times, ``interval`` apart, after ``initialDelay``. Each measurement's ``result`` (the
vector's values, a list of floats) is judged by ``failureCondition`` / ``successCondition``:

- failure condition true → Failed; else success condition true → Successful;
- success condition given and false → Failed when no failure condition is given, else
  Inconclusive; only a failure condition given and false → Successful;
- the query failing (Prometheus down, a bad query) is an Error, not a measurement.

A check is Failed once its failed measurements exceed ``failureLimit`` (default 0),
Inconclusive once inconclusive ones exceed ``inconclusiveLimit`` (default 0), Error once
more than ``consecutiveErrorLimit`` (default 4) errors come in a row (or no measurement
succeeded at all, where Argo would pass it), else Successful. The
run's phase is the worst of its checks: Successful < Running < Inconclusive < Error < Failed.

Conditions are expressions over ``result`` evaluated on Python's AST with a whitelist
(comparisons, and/or/not, arithmetic, ``result[i]``, ``len``, ``all``, ``any``, ``min``,
``max``, ``isNaN``, ``isInf``), never with ``eval``. An empty result makes ``result[0]``
an error of the condition (Inconclusive), and NaN compares false, as in Argo.
"""

from __future__ import annotations

import ast
import math
import operator
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)

from tools.base import ToolError
from tools.metrics.durations import parse_duration

SUCCESSFUL, RUNNING, INCONCLUSIVE, ERROR, FAILED = (
    "Successful", "Running", "Inconclusive", "Error", "Failed",
)  # fmt: skip
WORST = [SUCCESSFUL, RUNNING, INCONCLUSIVE, ERROR, FAILED]


class ConditionError(ValueError):
    """A condition that cannot be evaluated on this result."""


_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv, ast.Mod: operator.mod}  # fmt: skip
_CMP = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
        ast.Eq: operator.eq, ast.NotEq: operator.ne}  # fmt: skip
_FUNCS: dict[str, Callable[..., Any]] = {
    "len": len, "all": all, "any": any, "min": min, "max": max, "abs": abs,
    "isNaN": lambda v: all(math.isnan(x) for x in v) if isinstance(v, list) else math.isnan(v),
    "isInf": lambda v: all(math.isinf(x) for x in v) if isinstance(v, list) else math.isinf(v),
}  # fmt: skip


def check_expression(text: str) -> ast.Expression:
    """Parse a condition; ValueError names what is not allowed."""
    tree = ast.parse(text.replace("&&", " and ").replace("||", " or "), mode="eval")
    for node in ast.walk(tree):
        allowed = (ast.Expression, ast.Compare, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp,
                   ast.Not, ast.USub, ast.BinOp, ast.Constant, ast.Name, ast.Load,
                   ast.Subscript, ast.Call, *_BIN, *_CMP)  # fmt: skip
        if not isinstance(node, allowed):
            raise ValueError(f"{type(node).__name__} is not allowed in a condition")
        if isinstance(node, ast.Name) and node.id not in ("result", *_FUNCS):
            raise ValueError(f"unknown name {node.id!r} (use result, len, isNaN, …)")
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id in _FUNCS and not node.keywords
        ):
            raise ValueError("only len, all, any, min, max, abs, isNaN and isInf may be called")
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float | bool):
            raise ValueError("constants must be numbers")
    return tree


def evaluate(tree: ast.Expression, result: list[float]) -> bool:
    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return result if node.id == "result" else _FUNCS[node.id]
        if isinstance(node, ast.Subscript):
            seq, index = ev(node.value), ev(node.slice)
            try:
                return seq[int(index)]
            except (IndexError, TypeError):
                raise ConditionError(f"no element {index} in {len(result)} values") from None
        if isinstance(node, ast.Call):
            return ev(node.func)(*[ev(a) for a in node.args])
        if isinstance(node, ast.UnaryOp):
            value = ev(node.operand)
            return (not value) if isinstance(node.op, ast.Not) else -value
        if isinstance(node, ast.BinOp):
            return _BIN[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.BoolOp):
            values = (ev(v) for v in node.values)
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.Compare):
            left = ev(node.left)
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                right = ev(right_node)
                if isinstance(left, list) or isinstance(right, list):
                    raise ConditionError("compare one value (result[0]), not the whole result")
                if not _CMP[type(op)](left, right):
                    return False
                left = right
            return True
        raise ConditionError(f"cannot evaluate {type(node).__name__}")

    try:
        return bool(ev(tree))
    except ConditionError:
        raise
    except ZeroDivisionError:
        raise ConditionError("division by zero") from None
    except (TypeError, ValueError, OverflowError) as exc:  # min([]), result + 1, …
        raise ConditionError(f"cannot evaluate on {len(result)} values: {exc}") from None


class Check(BaseModel):
    """One metric of an analysis, as in Argo Rollouts' AnalysisTemplate."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")
    name: str
    query: str = Field(min_length=1)
    interval: str = "30s"
    count: int = Field(3, ge=1, le=1000)
    initial_delay: str = Field("0s", alias="initialDelay")
    success_condition: str | None = Field(None, alias="successCondition")
    failure_condition: str | None = Field(None, alias="failureCondition")
    failure_limit: int = Field(0, ge=0, alias="failureLimit")
    inconclusive_limit: int = Field(0, ge=0, alias="inconclusiveLimit")
    consecutive_error_limit: int = Field(4, ge=0, alias="consecutiveErrorLimit")

    @field_validator("interval", "initial_delay")
    @classmethod
    def _duration(cls, value: str) -> str:
        if value.strip() in ("0", "0s"):
            return "0s"
        parse_duration(value)
        return value

    @field_validator("success_condition", "failure_condition")
    @classmethod
    def _condition(cls, value: str | None) -> str | None:
        if value is not None:
            check_expression(value)
        return value

    def seconds(self, which: str) -> float:
        text = getattr(self, which)
        return 0.0 if text == "0s" else parse_duration(text)

    def judge(self, result: list[float]) -> str:
        """One measurement's phase."""
        try:
            if self.failure_condition and evaluate(
                check_expression(self.failure_condition), result
            ):
                return FAILED
            if self.success_condition:
                if evaluate(check_expression(self.success_condition), result):
                    return SUCCESSFUL
                return INCONCLUSIVE if self.failure_condition else FAILED
            return SUCCESSFUL
        except ConditionError:
            return INCONCLUSIVE


class EvalGate(BaseModel):
    """An eval suite run against the new version before it gets traffic (``kind: eval``):
    below ``min`` on ``metric`` (above ``max``), the deploy does not switch."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["eval"]
    name: str
    suite: str = "model"
    split: Literal["dev", "heldout"] = "dev"
    metric: str
    min: float | None = None
    max: float | None = None

    def verdict(self, value: float | None) -> str | None:
        """Why the gate is closed (None: open)."""
        if value is None:
            return f"eval {self.name}: {self.metric} was not measured"
        if self.min is not None and value < self.min:
            return f"eval {self.name}: {self.metric} {value:.3f} < {self.min}"
        if self.max is not None and value > self.max:
            return f"eval {self.name}: {self.metric} {value:.3f} > {self.max}"
        return None


def _kind(value: object) -> str:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return "eval" if kind == "eval" else "prometheus"


Item = Annotated[
    Annotated[Check, Tag("prometheus")] | Annotated[EvalGate, Tag("eval")], Discriminator(_kind)
]


class ChecksFile(BaseModel):
    """``{model: {env: [checks…]}}``; ``"*"`` matches any model or environment. An item with
    ``kind: eval`` is an eval gate run before the switch; the others are PromQL checks."""

    model_config = ConfigDict(extra="forbid")
    checks: dict[str, dict[str, list[Item]]]

    def _items(self, model: str, env: str) -> list[Check | EvalGate]:
        for m in (model, "*"):
            envs = self.checks.get(m) or {}
            for e in (env, "*"):
                if e in envs:
                    return list(envs[e])
        return []

    def for_(self, model: str, env: str) -> list[Check]:
        return [c for c in self._items(model, env) if isinstance(c, Check)]

    def gates_for(self, model: str, env: str) -> list[EvalGate]:
        return [c for c in self._items(model, env) if isinstance(c, EvalGate)]


def local_default_checks(model: str, env: str, version: str) -> list[Check]:
    """The local target's checks when no checks file is set: the new version's share of
    5xx answers and its p95 latency through the stable address, from the router's own
    metrics (``/metrics``, scraped by the Prometheus at ``OPSBOT_PROMETHEUS_URL``). Only
    failure conditions: a version nobody has called yet is not failing."""
    from tools.metrics.discovery import quote

    sel = f"model={quote(model)},env={quote(env)},version={quote(version)}"
    timing = {"interval": "15s", "count": 4, "initialDelay": "15s"}
    return [
        Check.model_validate({
            "name": "error-share", **timing,
            "query": f'sum(rate(opsbot_model_requests_total{{{sel},code=~"5.."}}[1m])) '
                     f"/ sum(rate(opsbot_model_requests_total{{{sel}}}[1m]))",
            "failureCondition": "len(result) > 0 && result[0] > 0.05",
        }),
        Check.model_validate({
            "name": "p95-latency", **timing,
            "query": "histogram_quantile(0.95, sum by (le) "
                     f"(rate(opsbot_model_request_duration_seconds_bucket{{{sel}}}[1m])))",
            "failureCondition": "len(result) > 0 && result[0] > 30",
        }),
    ]  # fmt: skip


def load_checks(path: Path) -> ChecksFile:
    """The checks file; ToolError names the file and the field that is wrong."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ToolError(f"{path}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ToolError(f"{path}: not YAML ({exc})") from None
    try:
        return ChecksFile.model_validate({"checks": data or {}})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"][1:] if p not in ("prometheus", "eval"))
        raise ToolError(f"{path}: {where}: {error['msg']}") from None


@dataclass
class Measurement:
    check: str
    query: str
    value: list[float] | None
    phase: str
    error: str = ""


@dataclass
class AnalysisRun:
    """Runs checks with ``measure(query) -> values``; ``on_measurement`` hears each one."""

    checks: list[Check]
    measure: Callable[[str], list[float]]
    on_measurement: Callable[[Measurement], None] = lambda m: None
    sleep: Callable[[float], None] = time.sleep
    measurements: list[Measurement] = field(default_factory=list)

    _ended: threading.Event = field(default_factory=threading.Event)

    def run(self) -> str:
        """Every check at once, as Argo runs an analysis's metrics; the worst phase wins,
        and a check that fails or errors ends the others at their next measurement (they
        stay Running, which the failure outranks)."""
        if len(self.checks) > 1:
            with ThreadPoolExecutor(len(self.checks), thread_name_prefix="check") as pool:
                phases = list(pool.map(self._ending, self.checks))
        else:
            phases = [self._check(check) for check in self.checks]
        return max(phases, key=WORST.index, default=SUCCESSFUL)

    def _ending(self, check: Check) -> str:
        phase = self._check(check)
        if phase in (FAILED, ERROR):
            self._ended.set()
        return phase

    def _check(self, check: Check) -> str:
        self.sleep(check.seconds("initial_delay"))
        failed = inconclusive = errors_in_row = measured = 0
        for i in range(check.count):
            if i:
                self.sleep(check.seconds("interval"))
            if self._ended.is_set():
                return RUNNING
            try:
                values = self.measure(check.query)
            except ToolError as exc:
                errors_in_row += 1
                self._record(Measurement(check.name, check.query, None, ERROR, str(exc)))
                if errors_in_row > check.consecutive_error_limit:
                    return ERROR
                continue
            errors_in_row = 0
            measured += 1
            phase = check.judge(values)
            self._record(Measurement(check.name, check.query, values, phase))
            failed += phase == FAILED
            inconclusive += phase == INCONCLUSIVE
            if failed > check.failure_limit:
                return FAILED
            if inconclusive > check.inconclusive_limit:
                return INCONCLUSIVE
        return SUCCESSFUL if measured else ERROR  # errors alone never pass a check

    def _record(self, measurement: Measurement) -> None:
        self.measurements.append(measurement)
        self.on_measurement(measurement)
