"""Prometheus alerts as search queries, and runbook URLs as document keys.

An alerting rule's ``summary`` and ``description`` are Go templates (``{{ $labels.pod }}``,
``{{ $value | humanizePercentage }}``). A firing alert has them rendered; a rule file does
not. :func:`alert_query` renders the common forms with the alert's labels (or plausible
stand-ins), so that a rule reads as the text an on-call engineer would see.

A ``runbook_url`` annotation names its runbook by the last part of the URL
(``.../runbooks/kubernetes/kubepodcrashlooping``); :func:`runbook_key` turns that, or a file
path, into the key documents are matched by: the lower-cased file stem.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

#: Stand-in label values for rule templates rendered without a firing alert.
PLACEHOLDER_LABELS: dict[str, str] = {
    "namespace": "payments",
    "pod": "checkout-7d9f-abc12",
    "container": "app",
    "job": "checkout",
    "instance": "10.0.3.7:9100",
    "node": "node-3",
    "service": "checkout",
    "cluster": "prod-eu-1",
    "deployment": "checkout",
    "statefulset": "postgres",
    "daemonset": "fluent-bit",
    "horizontalpodautoscaler": "checkout",
    "job_name": "nightly-report-28391",
    "persistentvolumeclaim": "data-postgres-0",
    "persistentvolume": "pvc-6b1f0c2e",
    "device": "eth0",
    "phase": "Failed",
    "name": "v1beta1.metrics.k8s.io",
    "reason": "ServiceUnavailable",
    "resource": "requests.cpu",
}
#: Stand-ins for ``$value`` by the template function applied to it.
PLACEHOLDER_VALUES: dict[str, str] = {
    "humanizePercentage": "42%",
    "humanizeDuration": "2h 14m",
    "humanize": "42",
    "": "42",
}

_WITH = re.compile(r"\{\{-?\s*with\s+\$labels\.(\w+)\s*-?\}\}(.*?)\{\{-?\s*end\s*-?\}\}", re.DOTALL)
_DOT = re.compile(r"\{\{-?\s*\.\s*-?\}\}")
_LABEL = re.compile(r"\{\{-?\s*\$labels\.(\w+)\s*-?\}\}")
_VALUE = re.compile(r"\{\{-?[^}]*\$value\s*(?:\|\s*(\w+))?[^}]*-?\}\}")
_ANY = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_SPACES = re.compile(r"[ \t]+")


def render_template(text: str, labels: Mapping[str, str] | None = None) -> str:
    """Render the template forms alert rules use; anything else is dropped."""

    def label(name: str) -> str:
        if labels is not None and name in labels:
            return str(labels[name])
        return PLACEHOLDER_LABELS.get(name, f"{name}-1")

    text = _WITH.sub(lambda m: _DOT.sub(label(m.group(1)), m.group(2)), text)
    text = _LABEL.sub(lambda m: label(m.group(1)), text)
    text = _VALUE.sub(
        lambda m: PLACEHOLDER_VALUES.get(m.group(1) or "", PLACEHOLDER_VALUES[""]), text
    )
    text = _ANY.sub("", text)
    return _SPACES.sub(" ", text).strip()


def alert_query(alert: Mapping[str, object], labels: Mapping[str, str] | None = None) -> str:
    """An alert's summary and description as a user would see them, labels filled in.

    ``alert`` is a rule (``summary``/``description`` at the top) or an Alertmanager alert
    (``annotations`` and ``labels``). The alert's name is left out on purpose: the text must
    find the runbook on its own.
    """
    annotations = alert.get("annotations")
    source = annotations if isinstance(annotations, Mapping) else alert
    if labels is None and isinstance(alert.get("labels"), Mapping):
        labels = alert["labels"]  # type: ignore[assignment]
    parts = [str(source.get(key) or "").strip() for key in ("summary", "description")]
    return render_template(" ".join(p for p in parts if p), labels)


def runbook_key(url_or_path: str) -> str:
    """The lower-cased file stem a runbook URL or path points at ("" if none).

    ``https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping``,
    ``kubernetes/KubePodCrashLooping.md`` and ``.../KubePodCrashLooping/`` all give
    ``kubepodcrashlooping``.
    """
    parts = urlsplit(url_or_path.strip())
    path = unquote(parts.path if parts.scheme or parts.netloc else url_or_path.split("#")[0])
    name = path.rstrip("/").rsplit("/", 1)[-1]
    stem, dot, suffix = name.rpartition(".")
    if dot and suffix.lower() in ("md", "markdown", "txt", "html", "htm"):
        name = stem
    return name.lower()
