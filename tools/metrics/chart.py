"""Charts of range query results: a PNG, one line per series, a labelled legend and a time
axis in UTC. Drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from tools.metrics.client import Sample  # noqa: E402
from tools.metrics.summary import series_name, varying_labels  # noqa: E402

WIDTH_IN, HEIGHT_IN, DPI = 10.0, 4.5, 100
#: The colours of the lines, in order (matplotlib's tab10): tests find each line by its colour.
COLOURS = tuple(matplotlib.colormaps["tab10"].colors)  # type: ignore[attr-defined]
LEGEND_CHARS = 60


@dataclass(frozen=True)
class Chart:
    path: Path
    lines: int
    labels: list[str]


def render_chart(
    samples: list[Sample], title: str, path: Path, *, rest: int = 0,
    marks: list[tuple[float, str]] | None = None,
) -> Chart:  # fmt: skip
    """Draw ``samples`` (at most len(COLOURS)) to ``path``; ``rest`` series not drawn are
    counted in the title; ``marks`` are moments (unix time, label) drawn as dashed lines."""
    if len(samples) > len(COLOURS):
        raise ValueError(f"at most {len(COLOURS)} series per chart")
    varying = varying_labels(samples)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    labels: list[str] = []
    try:
        for colour, sample in zip(COLOURS, samples, strict=False):
            times = mdates.date2num([datetime.fromtimestamp(t, UTC) for t, _ in sample.points])
            label = series_name(sample.labels, varying) or "value"
            if len(label) > LEGEND_CHARS:
                label = label[: LEGEND_CHARS - 1] + "…"
            ax.plot(times, [v for _, v in sample.points], color=colour, linewidth=1.6, label=label)
            labels.append(label)
        for moment, text in marks or []:
            at = mdates.date2num(datetime.fromtimestamp(moment, UTC))
            ax.axvline(at, color="0.35", linestyle="--", linewidth=1.2)
            ax.annotate(text, (at, 1.0), xycoords=("data", "axes fraction"), fontsize=8,
                        xytext=(3, -12), textcoords="offset points")  # fmt: skip
        locator = mdates.AutoDateLocator(tz=UTC)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
        ax.set_xlabel("time (UTC)")
        ax.grid(True, alpha=0.3)
        heading = title if len(title) <= 90 else title[:89] + "…"
        if rest:
            heading += f"  (+{rest} more series not drawn)"
        ax.set_title(heading, fontsize=10)
        if labels:
            ax.legend(loc="upper left", fontsize=8, framealpha=0.8)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return Chart(path=path, lines=len(labels), labels=labels)
