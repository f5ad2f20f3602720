from __future__ import annotations

import pytest

from knowledge.alerts import alert_query, render_template, runbook_key


def test_labels_values_and_with_blocks_are_rendered() -> None:
    rule = {
        "alert": "KubePersistentVolumeFillingUp",
        "summary": "PersistentVolume is filling up.",
        "description": "The PersistentVolume claimed by {{ $labels.persistentvolumeclaim }} in "
        "Namespace {{ $labels.namespace }} {{ with $labels.cluster -}} on Cluster {{ . }} "
        "{{- end }} is only {{ $value | humanizePercentage }} free.",
    }
    query = alert_query(rule)
    assert query == (
        "PersistentVolume is filling up. The PersistentVolume claimed by data-postgres-0 in "
        "Namespace payments on Cluster prod-eu-1 is only 42% free."
    )
    assert "KubePersistentVolumeFillingUp" not in query  # the name is left out


def test_other_templates_are_filled_or_dropped() -> None:
    text = render_template(
        '{{ printf "%.4g" $value }}% of {{ $labels.job }}/{{ $labels.odd_label }} for '
        '{{ $value | humanizeDuration }}{{ template "x" }}.'
    )
    assert text == "42% of checkout/odd_label-1 for 2h 14m."


def test_a_firing_alert_uses_its_own_labels_and_annotations() -> None:
    alert = {
        "labels": {"alertname": "KubePodCrashLooping", "pod": "api-0", "namespace": "shop"},
        "annotations": {
            "summary": "Pod is crash looping.",
            "description": "Pod {{ $labels.namespace }}/{{ $labels.pod }} restarts.",
        },
    }
    assert alert_query(alert) == "Pod is crash looping. Pod shop/api-0 restarts."


@pytest.mark.parametrize(
    "reference",
    [
        "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping",
        "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping/",
        "https://example.com/rb/KubePodCrashLooping.md?plain=1#diagnosis",
        "kubernetes/KubePodCrashLooping.md",
        "KubePodCrashLooping",
    ],
)
def test_runbook_key_is_the_lower_case_stem(reference: str) -> None:
    assert runbook_key(reference) == "kubepodcrashlooping"


def test_runbook_key_of_nothing_is_empty() -> None:
    assert runbook_key("https://example.com/") == ""
