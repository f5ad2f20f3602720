"""opsbot's own alert rules and Grafana dashboard: valid, tested, and on metrics it exports.

`promtool` (Debian's `prometheus` package, installed by `make test`) checks the rule file and
runs the unit tests in opsbot-rules.test.yml beside this file. Every metric an expression
names must be one bot/metrics.py exports (`up` aside), with labels that metric has.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

import bot.metrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "opsbot-rules.yml"
RULES_TEST = Path(__file__).with_name("opsbot-rules.test.yml")
DASHBOARD = ROOT / "deploy" / "grafana" / "opsbot-dashboard.json"

#: Series Prometheus itself adds for every target.
SCRAPE_SERIES = {"up"}
#: Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"job", "instance"}

#: PromQL's functions, aggregations, keywords and literals: never metric names.
PROMQL_WORDS = {
    "abs", "absent", "absent_over_time", "acos", "acosh", "and", "asin", "asinh", "atan",
    "atan2", "atanh", "avg", "avg_over_time", "bool", "bottomk", "by", "ceil", "changes",
    "clamp", "clamp_max", "clamp_min", "cos", "cosh", "count", "count_over_time",
    "count_values", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
    "delta", "deriv", "end", "exp", "floor", "group", "group_left", "group_right",
    "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile",
    "histogram_stddev", "histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta",
    "ignoring", "increase", "inf", "irate", "label_join", "label_replace", "last_over_time",
    "limitk", "limit_ratio", "ln", "log10", "log2", "mad_over_time", "max", "max_over_time",
    "min", "min_over_time", "minute", "month", "nan", "offset", "on", "or", "predict_linear",
    "present_over_time", "quantile", "quantile_over_time", "rad", "rate", "resets", "round",
    "scalar", "sgn", "sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc", "sort_desc",
    "sqrt", "start", "stddev", "stddev_over_time", "stdvar", "stdvar_over_time", "sum",
    "sum_over_time", "tan", "tanh", "time", "timestamp", "topk", "unless", "vector", "without",
    "year",
}  # fmt: skip

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")  # Grafana's $__rate_interval, ${job}, ...
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_SELECTOR = re.compile(r"(?<![\w.:])([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
# An identifier, whole, not preceded by a digit or dot (5m, 1e3) and not called as a function.
_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords,
    label names (inside {} and grouping clauses) or durations (inside [])."""
    text = _STRING.sub('""', _VARIABLE.sub(" ", expr))
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in PROMQL_WORDS}


def matcher_labels(expr: str) -> dict[str, set[str]]:
    """Label names each selector `metric{...}` matches on."""
    text = _STRING.sub('""', _VARIABLE.sub(" ", expr))
    found: dict[str, set[str]] = {}
    for metric, matchers in _SELECTOR.findall(text):
        found.setdefault(metric, set()).update(_MATCHER.findall(matchers))
    return found


def grouping_labels(expr: str) -> set[str]:
    text = _STRING.sub('""', _VARIABLE.sub(" ", expr))
    return {
        label.strip()
        for labels in _GROUPING.findall(text)
        for label in labels.split(",")
        if label.strip()
    }


def test_the_promql_parser_sees_metrics_only() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, kind) (rate(a_bucket{job=~"$job", x="y{z}"}'
        "[$__rate_interval]))) > 2.5 and on (job) b offset 5m unless sum without (q) (c) * 1e3"
    )
    assert metric_names(expr) == {"a_bucket", "b", "c"}
    assert matcher_labels(expr) == {"a_bucket": {"job", "x"}}
    assert grouping_labels(expr) == {"le", "kind", "job", "q"}


# --- what the bot exports ----------------------------------------------------------------


def exported() -> dict[str, set[str]]:
    """Every sample name the bot's /metrics can serve -> the labels it carries."""
    label_names = {
        metric._name: set(metric._labelnames)
        for metric in vars(bot.metrics).values()
        if isinstance(metric, MetricWrapperBase)
    }
    samples: dict[str, set[str]] = {}
    for family in bot.metrics.REGISTRY.collect():
        if family.name not in bot.metrics.FAMILIES:
            continue
        labels = label_names[family.name] | TARGET_LABELS
        if family.type == "counter":
            suffixes = {"_total": labels, "_created": labels}
        elif family.type == "histogram":
            suffixes = {"_bucket": labels | {"le"}, "_sum": labels, "_count": labels}
        else:
            suffixes = {"": labels}
        for suffix, names in suffixes.items():
            samples[family.name + suffix] = names
    assert {name for name in samples if name.startswith("opsbot_")}, "metrics found"
    return samples


def family_of(sample: str) -> str:
    return re.sub(r"_(total|created|bucket|sum|count)$", "", sample)


def check_expression(expr: str, where: str) -> set[str]:
    """Assert the expression uses exported metrics and their labels; return the families."""
    samples = exported()
    names = metric_names(expr)
    assert names, f"{where}: no metric in {expr!r}"
    unknown = names - set(samples) - SCRAPE_SERIES
    assert not unknown, f"{where}: {sorted(unknown)} not exported by bot/metrics.py"
    for metric, labels in matcher_labels(expr).items():
        allowed = samples.get(metric, TARGET_LABELS)
        assert labels <= allowed, f"{where}: {metric} has no label {sorted(labels - allowed)}"
    allowed = set().union(*(samples.get(n, TARGET_LABELS) for n in names))
    bad = grouping_labels(expr) - allowed
    assert not bad, f"{where}: grouping by {sorted(bad)}, which {sorted(names)} do not carry"
    return {family_of(n) for n in names - SCRAPE_SERIES}


# --- the rules ---------------------------------------------------------------------------


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip(
            "promtool not installed: `apt-get install prometheus` (make test does it as root)"
        )
    return found


def test_promtool_checks_the_rule_file() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_fire_and_hold_the_alerts() -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", RULES_TEST.name],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=RULES_TEST.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_unit_tests_cover_firing_and_silent_cases() -> None:
    cases = [
        case
        for test in yaml.safe_load(RULES_TEST.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    fired = {c["alertname"] for c in cases if c.get("exp_alerts")}
    silent = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    assert len(fired) >= 2 and silent, (fired, silent)
    assert fired <= {rule["alert"] for rule in rules()}


def test_the_expected_alerts_are_there_with_severity_and_runbook() -> None:
    by_name = {rule["alert"]: rule for rule in rules()}
    assert len(by_name) == len(rules()), "alert names are unique"
    assert set(by_name) >= {
        "OpsbotDown",
        "OpsbotNotReady",
        "OpsbotQueueBacklog",
        "OpsbotAckSlow",
        "OpsbotAnswerErrors",
        "OpsbotDependencyDown",
        "OpsbotJobsFailing",
    }
    for name, rule in by_name.items():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        # opsbot's triage matches runbook_url to the runbook of the same name in its index.
        assert annotations["runbook_url"].startswith("https://"), name
        assert annotations["runbook_url"].rsplit("/", 1)[-1] == name


def test_every_alert_has_a_row_in_the_deploy_readme() -> None:
    readme = (ROOT / "deploy" / "README.md").read_text()
    documented = set(re.findall(r"^\| `(Opsbot\w+)` \|", readme, flags=re.MULTILINE))
    assert documented == {rule["alert"] for rule in rules()}


def test_rules_use_only_metrics_the_bot_exports() -> None:
    families: set[str] = set()
    for rule in rules():
        families |= check_expression(rule["expr"], rule["alert"])
    assert families <= bot.metrics.FAMILIES


# --- the dashboard -----------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict[str, Any]]:
    """Every panel, those inside rows included; rows themselves left out."""
    found: list[dict[str, Any]] = []
    for panel in dashboard()["panels"]:
        found.extend(panel.get("panels", []))
        if panel["type"] != "row":
            found.append(panel)
    return found


def test_dashboard_is_a_grafana_model_with_a_prometheus_datasource_variable() -> None:
    model = dashboard()
    assert 36 <= model["schemaVersion"] <= 41
    assert model["uid"] and model["title"]
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    rows = [p for p in model["panels"] if p["type"] == "row"]
    ids = [p["id"] for p in rows + panels()]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_dashboard_panels_do_not_overlap() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_dashboard_queries_use_only_exported_metrics_and_cover_them_all() -> None:
    families: set[str] = set()
    for panel in panels():
        for target in panel["targets"]:
            families |= check_expression(target["expr"], panel["title"])
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        query = query["query"] if isinstance(query, dict) else query
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
        assert match, f"variable {variable['name']}: {query}"
        check_expression(f"{match[1]}", f"variable {variable['name']}")
        metric = next(iter(metric_names(match[1])))
        assert match[2] in exported()[metric]
    assert families == bot.metrics.FAMILIES, sorted(bot.metrics.FAMILIES - families)
