"""Reading the gateway's `/metrics` answer: samples by name and labels."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    """>>> Scrape(text).value("rolegate_requests_total", route_group="inference")"""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = [sample for family in text_string_to_metric_families(text)
                        for sample in family.samples]

    def value(self, name: str, **labels: str) -> float | None:
        """The value of the one sample called `name` with exactly these labels (None if absent)."""
        for sample in self.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
        return None

    def total(self, name: str, **labels: str) -> float:
        """The sum of every sample called `name` whose labels include these."""
        return sum(float(sample.value) for sample in self.samples
                   if sample.name == name and labels.items() <= sample.labels.items())

    def label_values(self, name: str, label: str) -> set[str]:
        return {sample.labels[label] for sample in self.samples
                if sample.name == name and label in sample.labels}
