"""A real Prometheus + Alertmanager stack with incident data: what the metrics eval suite asks
about (evals/suites/metrics), and what the metrics tests and benchmarks run against.

The data is a pure function of time (``IncidentModel``): three web services (checkout,
payments, search), a model-serving gateway, two Kubernetes nodes and kube-state-metrics.
At ``incident_at`` checkout's 5xx rate and latency jump, its memory and CPU climb, one of its
pods starts crash-looping, and the payments consumer falls behind on Kafka.

History reaches Prometheus two ways, both from the same model so that counters continue:
``write_openmetrics`` + ``backfill`` (``promtool tsdb create-blocks-from openmetrics``) for
the past, and ``Exporter`` (a tiny HTTP server) for the present, scraped every 2 s with
``honor_labels`` so the exported ``job``/``instance`` labels are kept; the scrape also
gives ``/api/v1/metadata`` its types and help, which backfilled blocks lack.

``PromStack.start(workdir)`` does all of it; ``PrometheusServer`` and ``AlertmanagerServer``
are usable alone. Pitfalls: instant queries and rules see only samples within 5 minutes of
the last one, so history is generated relative to now just before Prometheus starts; and
Alertmanager notifies an identical alert once per ``repeat_interval``, so every server gets
its own fresh storage.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol, Self
from urllib.parse import urlsplit

import httpx
import yaml

INSTALL_HINT = (
    "install Debian's packages: apt-get install prometheus prometheus-alertmanager "
    "(`make test` does it when run as root)"
)
EXPORTER_JOB = "promstack-exporter"
DEFAULT_INCIDENT_AGO = timedelta(minutes=20)
DEFAULT_HISTORY = timedelta(hours=3)
DEFAULT_STEP = 15.0

# ---------------------------------------------------------------------------------------
# Binaries
# ---------------------------------------------------------------------------------------

_BINARIES = {
    "prometheus": ("prometheus",),
    "promtool": ("promtool",),
    "alertmanager": ("prometheus-alertmanager", "alertmanager"),
}


def find_binary(kind: str) -> str | None:
    """Path of ``prometheus``, ``promtool`` or ``alertmanager`` (Debian names it
    ``prometheus-alertmanager``), from PATH or /usr/bin; None when absent."""
    for name in _BINARIES[kind]:
        found = shutil.which(name) or (
            f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").is_file() else None
        )
        if found:
            return found
    return None


def _binary(kind: str) -> str:
    found = find_binary(kind)
    if found is None:
        raise FileNotFoundError(f"{_BINARIES[kind][0]} not found; {INSTALL_HINT}")
    return found


def require_binaries(alertmanager: bool = True) -> None:
    """Skip the calling test, loudly, when prometheus/promtool (and alertmanager) are absent."""
    import pytest

    kinds = ["prometheus", "promtool"] + (["alertmanager"] if alertmanager else [])
    missing = [_BINARIES[k][0] for k in kinds if find_binary(k) is None]
    if missing:
        pytest.skip(
            f"REAL PROMETHEUS STACK UNAVAILABLE: {', '.join(missing)} not found on PATH "
            f"or in /usr/bin; {INSTALL_HINT}"
        )


# ---------------------------------------------------------------------------------------
# The incident data model
# ---------------------------------------------------------------------------------------

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Family:
    """A metric family as Prometheus' text format 0.0.4 names it (counters end in _total)."""

    name: str
    type: str  # counter | gauge | histogram
    help: str

    @property
    def openmetrics_name(self) -> str:
        """OpenMetrics names a counter family without its ``_total`` suffix."""
        if self.type == "counter" and self.name.endswith("_total"):
            return self.name[: -len("_total")]
        return self.name


@dataclass(frozen=True)
class Sample:
    name: str  # series name, with _bucket/_sum/_count for histograms
    labels: Labels
    value: float


FAMILIES: tuple[Family, ...] = (
    Family("http_requests_total", "counter", "Total number of HTTP requests handled."),
    Family(
        "http_request_duration_seconds",
        "histogram",
        "Time spent serving HTTP requests, from first byte read to last byte written.",
    ),
    Family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes."),
    Family("process_cpu_seconds_total", "counter", "Total user and system CPU time in seconds."),
    Family(
        "kafka_consumer_lag",
        "gauge",
        "Messages the consumer group is behind the partition's latest offset.",
    ),
    Family(
        "node_filesystem_avail_bytes",
        "gauge",
        "Filesystem space available to non-root users in bytes.",
    ),
    Family("node_filesystem_size_bytes", "gauge", "Filesystem size in bytes."),
    Family(
        "node_memory_MemAvailable_bytes", "gauge", "Memory information field MemAvailable_bytes."
    ),
    Family("node_memory_MemTotal_bytes", "gauge", "Memory information field MemTotal_bytes."),
    Family(
        "kube_pod_container_status_restarts_total",
        "counter",
        "The number of container restarts per container.",
    ),
    Family(
        "llm_request_latency_seconds",
        "histogram",
        "End-to-end latency of completion requests served by the LLM gateway.",
    ),
    Family("llm_tokens_generated_total", "counter", "Number of completion tokens generated."),
    Family("gpu_utilization_ratio", "gauge", "Fraction of time the GPU was busy (0 to 1)."),
    Family(
        "llm_queue_requests", "gauge", "Requests waiting in the gateway queue for a model slot."
    ),
)
FAMILY_BY_NAME = {f.name: f for f in FAMILIES}

HTTP_JOBS = ("checkout", "payments", "search")
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LLM_BUCKETS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
LLM_MODEL = "llama-3.1-8b-instruct"
NODES = ("k8s-worker-1:9100", "k8s-worker-2:9100")
GIB = 1024**3
MIB = 1024**2

# Requests per second per instance, before the incident: (method, code) -> rate.
_HTTP_BASE: dict[str, dict[tuple[str, str], float]] = {
    "checkout": {
        ("GET", "200"): 38.0,
        ("POST", "200"): 11.0,
        ("GET", "404"): 0.6,
        ("POST", "404"): 0.05,
        ("GET", "500"): 0.03,
        ("POST", "500"): 0.02,
        ("GET", "503"): 0.01,
        ("POST", "503"): 0.01,
    },
    "payments": {
        ("GET", "200"): 9.0,
        ("POST", "200"): 14.0,
        ("GET", "404"): 0.2,
        ("POST", "404"): 0.1,
        ("GET", "500"): 0.02,
        ("POST", "500"): 0.08,
        ("GET", "503"): 0.01,
        ("POST", "503"): 0.03,
    },
    "search": {
        ("GET", "200"): 95.0,
        ("POST", "200"): 4.0,
        ("GET", "404"): 2.5,
        ("POST", "404"): 0.1,
        ("GET", "500"): 0.05,
        ("POST", "500"): 0.01,
        ("GET", "503"): 0.02,
        ("POST", "503"): 0.01,
    },
}
# Extra requests per second per checkout instance once the incident starts.
_CHECKOUT_INCIDENT_EXTRA = {
    ("GET", "500"): 2.4,
    ("POST", "500"): 1.6,
    ("GET", "503"): 1.3,
    ("POST", "503"): 0.7,
}
# Latency as log-normal (median, p99) in seconds: before and after the incident.
_HTTP_LATENCY = {
    "checkout": ((0.06, 0.2), (0.5, 2.0)),
    "payments": ((0.08, 0.35), (0.08, 0.35)),
    "search": ((0.025, 0.11), (0.025, 0.11)),
}
_LLM_LATENCY = (1.8, 7.0)
_LLM_RPS = 3.0
_LLM_TOKENS_PER_REQUEST = 180.0
_MEMORY = {"checkout": 420 * MIB, "payments": 380 * MIB, "search": 1.25 * GIB}
_CPU = {"checkout": 0.25, "payments": 0.18, "search": 0.6}

SHOP_PODS = {
    "checkout": ("checkout-7d9f8c6b5-x2k4p", "checkout-7d9f8c6b5-q8m2n"),
    "payments": ("payments-5c9d8f7b6-h7j3k", "payments-5c9d8f7b6-m4n8p"),
    "search": ("search-6b8f9d7c4-r2t6w", "search-6b8f9d7c4-z9v3x"),
}
CRASHLOOP_POD = "checkout-7d9f8c6b5-x2k4p"
ML_NAMESPACE = "ml-serving"
LLM_PODS = ("llm-gateway-0", "llm-gateway-1")
KAFKA_TOPIC = "payment-events"
KAFKA_GROUP = "payments-processor"
LOW_DISK = ("k8s-worker-2:9100", "/var/lib/containerd")
_FILESYSTEMS = (
    # mountpoint, device, fstype, size
    ("/", "/dev/nvme0n1p1", "ext4", 100 * GIB),
    ("/var/lib/containerd", "/dev/nvme1n1", "xfs", 200 * GIB),
)
_DISK_FREE = {
    ("k8s-worker-1:9100", "/"): 0.61,
    ("k8s-worker-1:9100", "/var/lib/containerd"): 0.48,
    ("k8s-worker-2:9100", "/"): 0.55,
}
_MEM_TOTAL = {"k8s-worker-1:9100": 64 * GIB, "k8s-worker-2:9100": 64 * GIB}
_MEM_FREE = {"k8s-worker-1:9100": 0.42, "k8s-worker-2:9100": 0.21}


def http_instances(job: str) -> tuple[str, str]:
    return (f"{job}-1:8080", f"{job}-2:8080")


def llm_instances() -> tuple[str, str]:
    return ("llm-gateway-0:8000", "llm-gateway-1:8000")


def _phase(*parts: str) -> float:
    """A stable phase in [0, 2π) per series (no hash randomisation)."""
    return (zlib.crc32("/".join(parts).encode()) % 6283) / 1000.0


def _wobble(t: float, phase: float, amp1: float = 0.08, amp2: float = 0.03) -> float:
    """1 + a smooth, deterministic variation: an hourly and a 7-minute wave."""
    return (
        1.0
        + amp1 * math.sin(2 * math.pi * t / 3600 + phase)
        + amp2 * math.sin(2 * math.pi * t / 420 + 2 * phase)
    )


def _wobble_integral(t: float, phase: float, amp1: float = 0.08, amp2: float = 0.03) -> float:
    """An antiderivative of ``_wobble``."""
    w1, w2 = 2 * math.pi / 3600, 2 * math.pi / 420
    return t - amp1 / w1 * math.cos(w1 * t + phase) - amp2 / w2 * math.cos(w2 * t + 2 * phase)


def _norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _lognormal(median: float, p99: float) -> tuple[float, float]:
    mu = math.log(median)
    return mu, (math.log(p99) - mu) / 2.326347874


def _lognormal_cdf(le: float, mu: float, sigma: float) -> float:
    return _norm_cdf((math.log(le) - mu) / sigma)


def _lognormal_mean(mu: float, sigma: float) -> float:
    return math.exp(mu + sigma * sigma / 2)


class _Add(Protocol):
    def __call__(self, family: str, value: float, **labels: str) -> None: ...


def _labels(**kv: str) -> Labels:
    return tuple(sorted(kv.items()))


@dataclass(frozen=True)
class IncidentModel:
    """Every series' value as a pure function of time (unix seconds).

    ``incident_at`` is when checkout breaks; counters count from ``epoch`` (6 hours before
    the incident), so they are large and monotonic everywhere the tests look.
    """

    incident_ts: float

    @classmethod
    def create(cls, incident_at: datetime | float | None = None) -> IncidentModel:
        if incident_at is None:
            return cls(time.time() - DEFAULT_INCIDENT_AGO.total_seconds())
        if isinstance(incident_at, datetime):
            return cls(_ts(incident_at))
        return cls(float(incident_at))

    @property
    def incident_at(self) -> datetime:
        return datetime.fromtimestamp(self.incident_ts, UTC)

    @property
    def epoch(self) -> float:
        return self.incident_ts - 6 * 3600

    # -- building blocks ----------------------------------------------------------------

    def _count(self, t: float, rate: float, phase: float, extra: float = 0.0) -> float:
        """Integral from ``epoch`` to ``t`` of ``rate * wobble`` plus ``extra`` after the
        incident."""
        base = rate * (_wobble_integral(t, phase) - _wobble_integral(self.epoch, phase))
        return base + extra * max(0.0, t - self.incident_ts)

    def _since(self, t: float) -> float:
        return max(0.0, t - self.incident_ts)

    def _http_counts(self, t: float, job: str, instance: str) -> dict[tuple[str, str], float]:
        out = {}
        for key, rate in _HTTP_BASE[job].items():
            extra = 0.0
            if job == "checkout":  # checkout-1 takes a bigger share of the failures
                share = 1.3 if instance.startswith("checkout-1") else 0.7
                extra = _CHECKOUT_INCIDENT_EXTRA.get(key, 0.0) * share
            out[key] = self._count(t, rate, _phase(job, instance, *key), extra)
        return out

    def _histogram(
        self,
        name: str,
        labels: dict[str, str],
        buckets: Sequence[float],
        n_before: float,
        n_after: float,
        before: tuple[float, float],
        after: tuple[float, float],
    ) -> list[Sample]:
        mb, sb = _lognormal(*before)
        ma, sa = _lognormal(*after)
        out = []
        for le in buckets:
            value = n_before * _lognormal_cdf(le, mb, sb) + n_after * _lognormal_cdf(le, ma, sa)
            out.append(
                Sample(f"{name}_bucket", _labels(**labels, le=_fmt_le(le)), math.floor(value))
            )
        count = math.floor(n_before + n_after)
        out.append(Sample(f"{name}_bucket", _labels(**labels, le="+Inf"), count))
        total = n_before * _lognormal_mean(mb, sb) + n_after * _lognormal_mean(ma, sa)
        out.append(Sample(f"{name}_sum", _labels(**labels), round(total, 3)))
        out.append(Sample(f"{name}_count", _labels(**labels), count))
        return out

    # -- families -----------------------------------------------------------------------

    def samples(self, t: float) -> dict[str, list[Sample]]:
        """All series at time ``t``, by family name (in ``FAMILIES`` order)."""
        out: dict[str, list[Sample]] = {f.name: [] for f in FAMILIES}

        def add(family: str, value: float, **labels: str) -> None:
            out[family].append(Sample(family, _labels(**labels), value))

        for job in HTTP_JOBS:
            for instance in http_instances(job):
                self._service(t, job, instance, out, add)
        self._kafka(t, add)
        self._nodes(t, add)
        self._kube(t, add)
        for instance in llm_instances():
            self._llm(t, instance, out, add)
        return out

    def _service(
        self, t: float, job: str, instance: str, out: dict[str, list[Sample]], add: _Add
    ) -> None:
        counts = self._http_counts(t, job, instance)
        for (method, code), value in counts.items():
            add(
                "http_requests_total",
                math.floor(value),
                job=job,
                instance=instance,
                method=method,
                code=code,
            )
        total_now = sum(counts.values())
        total_inc = sum(self._http_counts(min(t, self.incident_ts), job, instance).values())
        before, after = _HTTP_LATENCY[job]
        out["http_request_duration_seconds"] += self._histogram(
            "http_request_duration_seconds",
            {"job": job, "instance": instance},
            HTTP_BUCKETS,
            total_inc,
            total_now - total_inc,
            before,
            after,
        )
        memory = _MEMORY[job] * _wobble(t, _phase("mem", instance), 0.02, 0.01)
        if job == "checkout":  # a leak: +310 MiB over the 20 minutes after the incident
            memory += min(self._since(t), 1200.0) / 1200.0 * 310 * MIB
        add("process_resident_memory_bytes", math.floor(memory), job=job, instance=instance)
        cpu_extra = 0.6 if job == "checkout" else 0.0
        cpu = self._count(t, _CPU[job], _phase("cpu", instance), cpu_extra)
        add("process_cpu_seconds_total", round(cpu, 2), job=job, instance=instance)

    def _kafka(self, t: float, add: _Add) -> None:
        """payments-1 consumes partitions 0-2, payments-2 3-5; after the incident the lag of
        partition p grows by 12 + 1.2 p messages a second."""
        for i, instance in enumerate(http_instances("payments")):
            for partition in range(3 * i, 3 * i + 3):
                lag = 40.0 * _wobble(t, _phase("lag", str(partition)), 0.5, 0.3)
                add(
                    "kafka_consumer_lag",
                    math.floor(lag + (12.0 + 1.2 * partition) * self._since(t)),
                    job="payments",
                    instance=instance,
                    consumer_group=KAFKA_GROUP,
                    topic=KAFKA_TOPIC,
                    partition=str(partition),
                )

    def _nodes(self, t: float, add: _Add) -> None:
        for node in NODES:
            for mountpoint, device, fstype, size in _FILESYSTEMS:
                if (node, mountpoint) == LOW_DISK:
                    # Filling up: 10 % free an hour before the incident, 3 % less per hour.
                    start = self.incident_ts - 3600
                    free = max(0.02, 0.10 - (t - start) * 0.03 / 3600)
                else:
                    wobble = _wobble(t, _phase(node, mountpoint), 0.01, 0.002)
                    free = _DISK_FREE[(node, mountpoint)] * wobble
                fs = {"mountpoint": mountpoint, "device": device, "fstype": fstype}
                add(
                    "node_filesystem_avail_bytes",
                    math.floor(size * free),
                    job="node",
                    instance=node,
                    **fs,
                )
                add("node_filesystem_size_bytes", size, job="node", instance=node, **fs)
            total = _MEM_TOTAL[node]
            free = _MEM_FREE[node] * _wobble(t, _phase("memfree", node), 0.05, 0.02)
            add(
                "node_memory_MemAvailable_bytes",
                math.floor(total * free),
                job="node",
                instance=node,
            )
            add("node_memory_MemTotal_bytes", total, job="node", instance=node)

    def _kube(self, t: float, add: _Add) -> None:
        """kube-state-metrics, scraped through its Service (hence the ``service`` label).
        The crash-looping pod first restarts 2 minutes after the incident, then every 5."""
        ksm = {
            "job": "kube-state-metrics",
            "instance": "kube-state-metrics:8080",
            "service": "kube-state-metrics",
        }
        restarts = "kube_pod_container_status_restarts_total"
        first = self.incident_ts + 120
        for container, pods in SHOP_PODS.items():
            for pod in pods:
                count = 1 if pod == "payments-5c9d8f7b6-h7j3k" else 0  # an old restart
                if pod == CRASHLOOP_POD and t >= first:
                    count = 1 + math.floor((t - first) / 300)
                add(restarts, count, **ksm, namespace="shop", pod=pod, container=container)
        for pod in LLM_PODS:
            add(restarts, 0, **ksm, namespace=ML_NAMESPACE, pod=pod, container="gateway")

    def _llm(self, t: float, instance: str, out: dict[str, list[Sample]], add: _Add) -> None:
        labels = {"job": "llm-gateway", "instance": instance, "model": LLM_MODEL}
        n = self._count(t, _LLM_RPS, _phase("llm", instance))
        out["llm_request_latency_seconds"] += self._histogram(
            "llm_request_latency_seconds", labels, LLM_BUCKETS, n, 0.0, _LLM_LATENCY, _LLM_LATENCY
        )
        tokens = self._count(t, _LLM_RPS * _LLM_TOKENS_PER_REQUEST, _phase("tok", instance))
        add("llm_tokens_generated_total", math.floor(tokens), **labels)
        gpu = min(0.99, 0.72 * _wobble(t, _phase("gpu", instance), 0.12, 0.05))
        add("gpu_utilization_ratio", round(gpu, 4), job="llm-gateway", instance=instance, gpu="0")
        queue = 4.0 * _wobble(t, _phase("queue", instance), 0.5, 0.25)
        add("llm_queue_requests", round(queue), **labels)


def _fmt_le(le: float) -> str:
    return repr(float(le))


def _fmt_value(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _fmt_labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in labels
    )
    return "{" + inner + "}"


def _ts(value: datetime | float) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    return float(value)


# ---------------------------------------------------------------------------------------
# Exposition: OpenMetrics history and the live text format
# ---------------------------------------------------------------------------------------


def write_openmetrics(
    path: str | Path,
    start: datetime | float,
    end: datetime | float,
    step: float = DEFAULT_STEP,
    incident_at: datetime | float | None = None,
    *,
    model: IncidentModel | None = None,
) -> IncidentModel:
    """Write the history from ``start`` to ``end`` (every ``step`` seconds, aligned to the
    step) as OpenMetrics for ``promtool tsdb create-blocks-from openmetrics``; returns the
    model used (``model``, else one with ``incident_at``, default 20 minutes before now)."""
    model = model or IncidentModel.create(incident_at)
    t0, t1 = _ts(start), _ts(end)
    first = math.ceil(t0 / step) * step
    times = []
    t = first
    while t <= t1:
        times.append(t)
        t += step
    snapshots = [model.samples(t) for t in times]
    stamps = [_fmt_value(t) for t in times]
    lines: list[str] = []
    for family in FAMILIES:
        name = family.openmetrics_name
        lines.append(f"# HELP {name} {family.help}")
        lines.append(f"# TYPE {name} {family.type}")
        series = snapshots[0][family.name] if snapshots else []
        for index, sample in enumerate(series):
            head = f"{sample.name}{_fmt_labels(sample.labels)} "
            for snapshot, stamp in zip(snapshots, stamps, strict=True):
                lines.append(f"{head}{_fmt_value(snapshot[family.name][index].value)} {stamp}")
    lines.append("# EOF")
    Path(path).write_text("\n".join(lines) + "\n")
    return model


def render_text(model: IncidentModel, t: float | None = None) -> str:
    """The current values in Prometheus text format 0.0.4, with HELP and TYPE."""
    snapshot = model.samples(time.time() if t is None else t)
    lines: list[str] = []
    for family in FAMILIES:
        lines.append(f"# HELP {family.name} {family.help}")
        lines.append(f"# TYPE {family.name} {family.type}")
        for sample in snapshot[family.name]:
            lines.append(f"{sample.name}{_fmt_labels(sample.labels)} {_fmt_value(sample.value)}")
    return "\n".join(lines) + "\n"


def backfill(openmetrics_path: str | Path, tsdb_dir: str | Path, timeout: float = 120) -> Path:
    """``promtool tsdb create-blocks-from openmetrics``: the history as TSDB blocks."""
    tsdb = Path(tsdb_dir)
    tsdb.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [
            _binary("promtool"),
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(openmetrics_path),
            str(tsdb),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        output = _tail(proc.stderr or proc.stdout)
        raise RuntimeError(f"promtool backfill failed (exit {proc.returncode}): {output}")
    return tsdb


class Exporter:
    """Serves the model's current values on a free loopback port, in a daemon thread."""

    def __init__(self, model: IncidentModel) -> None:
        self.model = model
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Exporter:
        model = self.model

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404)
                    return
                body = render_text(model).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="promstack-exporter", daemon=True
        )
        self._thread.start()
        return self

    @property
    def address(self) -> str:
        """host:port, as a scrape target."""
        assert self._server is not None, "exporter not started"
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.address}/metrics"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Exporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------

_LIVE: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_LIVE):
        with contextlib.suppress(Exception):
            proc.kill()
            proc.wait(timeout=5)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class _Server:
    """A child process on a free loopback port, ready when ``/-/ready`` answers 200."""

    name = "server"

    def __init__(self, workdir: str | Path | None, startup_timeout: float) -> None:
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"{self.name}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.startup_timeout = startup_timeout
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / f"{self.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _prepare(self) -> None:
        """Write config files (called before every start attempt)."""

    def stderr_tail(self, lines: int = 30) -> str:
        try:
            return _tail(self.log_path.read_text(errors="replace"), lines)
        except OSError:
            return ""

    def start(self) -> Self:
        last_error = ""
        for _attempt in range(3):  # a free port can be taken between probe and bind
            self.port = free_port()
            self._prepare()
            with self.log_path.open("wb") as log:
                self.proc = subprocess.Popen(
                    self._command(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=self.workdir,
                )
            _LIVE.add(self.proc)
            try:
                self._wait_ready()
                return self
            except RuntimeError as err:
                last_error = str(err)
                self.stop()
                if "address already in use" not in last_error:
                    break
        raise RuntimeError(last_error)

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode} before it was ready; "
                    f"log tail:\n{self.stderr_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(
            f"{self.name} not ready at {self.url} after {self.startup_timeout:.0f} s; "
            f"log tail:\n{self.stderr_tail()}"
        )

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        _LIVE.discard(proc)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


RulesArg = str | Mapping[str, Any] | None


def rule_files(rules: RulesArg) -> dict[str, str]:
    """Rule files by file name, from YAML text, a ``{"groups": [...]}`` dict, or a mapping
    of file name -> YAML text or dict."""
    if rules is None:
        return {}
    if isinstance(rules, str):
        return {"rules.yml": rules}
    if "groups" in rules:
        return {"rules.yml": yaml.safe_dump(dict(rules), sort_keys=False)}
    return {
        name: text if isinstance(text, str) else yaml.safe_dump(dict(text), sort_keys=False)
        for name, text in rules.items()
    }


class PrometheusServer(_Server):
    """``/usr/bin/prometheus`` on a free 127.0.0.1 port over ``tsdb_dir``, scraping
    ``targets`` (host:port) every 2 s with ``honor_labels``, evaluating ``rules`` every 1 s
    and sending alerts to ``alertmanager_url`` (resend delay 1 s) when given."""

    name = "prometheus"

    def __init__(
        self,
        tsdb_dir: str | Path,
        targets: Sequence[str] = (),
        *,
        rules: RulesArg = None,
        alertmanager_url: str | None = None,
        workdir: str | Path | None = None,
        scrape_interval: str = "2s",
        evaluation_interval: str = "1s",
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(workdir, startup_timeout)
        self.tsdb_dir = Path(tsdb_dir)
        self.targets = list(targets)
        self.rules = rule_files(rules)
        self.alertmanager_url = alertmanager_url
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.config_path = self.workdir / "prometheus.yml"

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "scrape_configs": [
                {
                    "job_name": EXPORTER_JOB,
                    "honor_labels": True,
                    "scrape_interval": self.scrape_interval,
                    "static_configs": [{"targets": self.targets}],
                }
            ],
        }
        if self.rules:
            config["rule_files"] = [str(self.workdir / name) for name in self.rules]
        if self.alertmanager_url:
            parts = urlsplit(self.alertmanager_url)
            am: dict[str, Any] = {
                "scheme": parts.scheme or "http",
                "static_configs": [{"targets": [parts.netloc]}],
            }
            if parts.path.strip("/"):
                am["path_prefix"] = parts.path
            config["alerting"] = {"alertmanagers": [am]}
        return config

    def _prepare(self) -> None:
        for name, text in self.rules.items():
            (self.workdir / name).write_text(text)
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))

    def _command(self) -> list[str]:
        return [
            _binary("prometheus"),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.tsdb_dir}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--rules.alert.resend-delay=1s",
            "--log.level=info",
        ]

    def query(self, promql: str, at: datetime | float | None = None) -> list[dict[str, Any]]:
        """Instant query; the result vector (raises on a Prometheus error)."""
        params: dict[str, Any] = {"query": promql}
        if at is not None:
            params["time"] = _ts(at)
        return _api(f"{self.url}/api/v1/query", params)["result"]

    def query_range(
        self, promql: str, start: datetime | float, end: datetime | float, step: float = 15
    ) -> list[dict[str, Any]]:
        params = {"query": promql, "start": _ts(start), "end": _ts(end), "step": step}
        return _api(f"{self.url}/api/v1/query_range", params)["result"]

    def wait_for_scrape(self, timeout: float = 20.0) -> None:
        """Until every target has been scraped once (so metadata is known)."""
        deadline = time.monotonic() + timeout
        want = len(self.targets)
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, RuntimeError):
                up = self.query(f'up{{job="{EXPORTER_JOB}"}} == 1')
                meta = _api(f"{self.url}/api/v1/metadata", {})
                if len(up) >= want and meta:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"prometheus did not scrape {self.targets}; log:\n{self.stderr_tail()}")


def _api(url: str, params: Mapping[str, Any]) -> Any:
    response = httpx.get(url, params=dict(params), timeout=10)
    body = response.json()
    if body.get("status") != "success":
        raise RuntimeError(f"{url}: {body.get('errorType')}: {body.get('error')}")
    return body["data"]


class AlertmanagerServer(_Server):
    """``/usr/bin/prometheus-alertmanager`` on a free 127.0.0.1 port with one webhook
    receiver (``send_resolved``, optional bearer token), clustering off, fresh storage."""

    name = "alertmanager"

    def __init__(
        self,
        webhook_url: str,
        *,
        bearer_token: str | None = None,
        receiver: str = "opsbot",
        group_by: Sequence[str] = ("alertname", "job"),
        group_wait: str = "1s",
        group_interval: str = "2s",
        repeat_interval: str = "1h",
        workdir: str | Path | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(workdir, startup_timeout)
        self.webhook_url = webhook_url
        self.bearer_token = bearer_token
        self.receiver = receiver
        self.group_by = list(group_by)
        self.group_wait = group_wait
        self.group_interval = group_interval
        self.repeat_interval = repeat_interval
        self.config_path = self.workdir / "alertmanager.yml"
        self.storage_path = self.workdir / "data"

    def config(self) -> dict[str, Any]:
        webhook: dict[str, Any] = {"url": self.webhook_url, "send_resolved": True}
        if self.bearer_token:
            webhook["http_config"] = {
                "authorization": {"type": "Bearer", "credentials": self.bearer_token}
            }
        return {
            "route": {
                "receiver": self.receiver,
                "group_by": self.group_by,
                "group_wait": self.group_wait,
                "group_interval": self.group_interval,
                "repeat_interval": self.repeat_interval,
            },
            "receivers": [{"name": self.receiver, "webhook_configs": [webhook]}],
        }

    def _prepare(self) -> None:
        self.storage_path.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))

    def _command(self) -> list[str]:
        return [
            _binary("alertmanager"),
            f"--config.file={self.config_path}",
            f"--storage.path={self.storage_path}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            "--log.level=info",
        ]

    def alerts(self) -> list[dict[str, Any]]:
        """Alertmanager's current alerts (API v2)."""
        response = httpx.get(f"{self.url}/api/v2/alerts", timeout=10)
        response.raise_for_status()
        return response.json()


# ---------------------------------------------------------------------------------------
# Alert rules over the incident data
# ---------------------------------------------------------------------------------------

RUNBOOKS = "https://runbooks.example.com"
# Alert names match the sample runbooks in knowledge/runbooks (so do the runbook URLs' tails).
DEFAULT_RULES_YAML = f"""\
groups:
  - name: shop-services
    rules:
      - alert: HighHttp5xxErrorRate
        expr: |
          sum by (job) (rate(http_requests_total{{code=~"5.."}}[5m]))
            / sum by (job) (rate(http_requests_total[5m])) > 0.05
        for: 5s
        labels: {{severity: critical, team: shop}}
        annotations:
          summary: "{{{{ $labels.job }}}} is failing requests"
          description: >-
            {{{{ $labels.job }}}} answers {{{{ $value | humanizePercentage }}}}
            of its requests with a 5xx status.
          runbook_url: {RUNBOOKS}/services/HighHttp5xxErrorRate
      - alert: HighP99Latency
        expr: |
          histogram_quantile(0.99,
            sum by (job, le) (rate(http_request_duration_seconds_bucket[5m]))) > 1
        for: 5s
        labels: {{severity: warning, team: shop}}
        annotations:
          summary: "{{{{ $labels.job }}}} p99 latency is high"
          description: "p99 latency of {{{{ $labels.job }}}} is {{{{ $value }}}} s."
          runbook_url: {RUNBOOKS}/services/HighP99Latency
      - alert: KafkaConsumerLagGrowing
        expr: sum by (job, consumer_group, topic) (kafka_consumer_lag) > 1000
        for: 5s
        labels: {{severity: warning, team: payments}}
        annotations:
          summary: "{{{{ $labels.consumer_group }}}} is behind on {{{{ $labels.topic }}}}"
          description: "Consumer lag is {{{{ $value }}}} messages."
          runbook_url: {RUNBOOKS}/infra/KafkaConsumerLagGrowing
  - name: kubernetes
    rules:
      - alert: PodCrashLooping
        expr: increase(kube_pod_container_status_restarts_total[10m]) > 0
        for: 5s
        labels: {{severity: warning}}
        annotations:
          summary: "Pod {{{{ $labels.namespace }}}}/{{{{ $labels.pod }}}} is restarting"
          description: >-
            Container {{{{ $labels.container }}}} restarted {{{{ $value }}}} times in 10 minutes.
          runbook_url: {RUNBOOKS}/kubernetes/PodCrashLooping
      - alert: DiskFillingUp
        expr: node_filesystem_avail_bytes / node_filesystem_size_bytes < 0.10
        for: 5s
        labels: {{severity: warning}}
        annotations:
          summary: "{{{{ $labels.instance }}}} {{{{ $labels.mountpoint }}}} is almost full"
          description: "Only {{{{ $value | humanizePercentage }}}} space left."
          runbook_url: {RUNBOOKS}/infra/DiskFillingUp
      - alert: LLMGatewayQueueBacklog
        expr: sum by (job) (llm_queue_requests) > 50
        for: 1m
        labels: {{severity: warning, team: ml}}
        annotations:
          summary: LLM gateway queue is backing up
          description: "{{{{ $value }}}} requests are waiting for a model slot."
"""
DEFAULT_RULES: dict[str, Any] = yaml.safe_load(DEFAULT_RULES_YAML)
# The alerts DEFAULT_RULES fire on the incident data (LLMGatewayQueueBacklog stays inactive).
FIRING_ALERTS = (
    "HighHttp5xxErrorRate",
    "HighP99Latency",
    "KafkaConsumerLagGrowing",
    "PodCrashLooping",
    "DiskFillingUp",
)


# ---------------------------------------------------------------------------------------
# The whole stack
# ---------------------------------------------------------------------------------------


@dataclass
class PromStack:
    """Model + exporter + backfilled Prometheus. ``start`` builds it; ``close`` stops all.

    ``new_prometheus`` starts another Prometheus (fresh backfill from the same model,
    scraping the same exporter), e.g. one pointed at a test's own Alertmanager."""

    workdir: Path
    model: IncidentModel
    exporter: Exporter
    prometheus: PrometheusServer
    history: timedelta = DEFAULT_HISTORY
    step: float = DEFAULT_STEP
    _extra: list[PrometheusServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.prometheus.url

    @property
    def incident_at(self) -> datetime:
        return self.model.incident_at

    @classmethod
    def start(
        cls,
        workdir: str | Path | None = None,
        *,
        incident_at: datetime | float | None = None,
        history: timedelta = DEFAULT_HISTORY,
        step: float = DEFAULT_STEP,
        rules: RulesArg = None,
        alertmanager_url: str | None = None,
    ) -> PromStack:
        """``rules=None`` means ``DEFAULT_RULES``; pass ``{}`` for none."""
        root = Path(workdir or tempfile.mkdtemp(prefix="promstack-"))
        root.mkdir(parents=True, exist_ok=True)
        model = IncidentModel.create(incident_at)
        exporter = Exporter(model).start()
        try:
            prometheus = _backfilled_prometheus(
                root / "prometheus", model, exporter, history, step, rules, alertmanager_url
            )
        except BaseException:
            exporter.stop()
            raise
        return cls(root, model, exporter, prometheus, history, step)

    def new_prometheus(
        self,
        *,
        rules: RulesArg = None,
        alertmanager_url: str | None = None,
        wait_for_scrape: bool = False,
    ) -> PrometheusServer:
        """Another started Prometheus over fresh history (``rules=None``: ``DEFAULT_RULES``),
        scraping the same exporter; stopped by ``close`` too. Its rules see the backfill at
        once; ``wait_for_scrape`` also waits (about 5 to 7 s) for the first scrape, which
        brings ``/api/v1/metadata``."""
        n = len(self._extra) + 1
        server = _backfilled_prometheus(
            self.workdir / f"prometheus-{n}",
            self.model,
            self.exporter,
            self.history,
            self.step,
            rules,
            alertmanager_url,
            wait_for_scrape,
        )
        self._extra.append(server)
        return server

    def query(self, promql: str, at: datetime | float | None = None) -> list[dict[str, Any]]:
        return self.prometheus.query(promql, at)

    def query_range(
        self, promql: str, start: datetime | float, end: datetime | float, step: float = 15
    ) -> list[dict[str, Any]]:
        return self.prometheus.query_range(promql, start, end, step)

    def close(self) -> None:
        for server in [*self._extra, self.prometheus]:
            server.stop()
        self._extra.clear()
        self.exporter.stop()

    def __enter__(self) -> PromStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _backfilled_prometheus(
    workdir: Path,
    model: IncidentModel,
    exporter: Exporter,
    history: timedelta,
    step: float,
    rules: RulesArg,
    alertmanager_url: str | None,
    wait_for_scrape: bool = True,
) -> PrometheusServer:
    workdir.mkdir(parents=True, exist_ok=True)
    end = time.time()
    om = workdir / "history.om.txt"
    write_openmetrics(om, end - history.total_seconds(), end, step, model=model)
    tsdb = backfill(om, workdir / "tsdb")
    om.unlink()
    server = PrometheusServer(
        tsdb,
        [exporter.address],
        rules=DEFAULT_RULES_YAML if rules is None else rules,
        alertmanager_url=alertmanager_url,
        workdir=workdir,
    )
    server.start()
    if wait_for_scrape:
        try:
            server.wait_for_scrape()
        except BaseException:
            server.stop()
            raise
    return server


@dataclass
class AlertingStack:
    """A Prometheus evaluating rules on the incident data, sending to its own Alertmanager,
    which posts to one webhook."""

    prometheus: PrometheusServer
    alertmanager: AlertmanagerServer

    @property
    def url(self) -> str:
        return self.prometheus.url

    @property
    def alertmanager_url(self) -> str:
        return self.alertmanager.url

    def stop(self) -> None:
        self.prometheus.stop()
        self.alertmanager.stop()


@contextlib.contextmanager
def running_stack(workdir: str | Path | None = None, **kwargs: Any) -> Iterator[PromStack]:
    """``with running_stack(tmp) as stack: ...`` — ``PromStack.start`` then ``close``."""
    stack = PromStack.start(workdir, **kwargs)
    try:
        yield stack
    finally:
        stack.close()
