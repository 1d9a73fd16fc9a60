"""One scrape's text, parsed back with prometheus_client's parser: the soak and the tests read
the exporter's output through it, so that every scrape they take is also checked to be valid
text format without a family or a series twice."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    """One exposition, parsed; asserts on the way in that no series appears twice."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        self.types: dict[str, str] = {}
        seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        # The parser renames counter samples to *_total; keep the names as exposed.
        typed = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
        assert len(typed) == len(set(typed)), "a metric family appears twice"
        declared = set(typed)
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            for sample in family.samples:
                name = sample.name
                if name not in declared and name.endswith("_total") and name[:-6] in declared:
                    name = name[:-6]
                key = (name, tuple(sorted(sample.labels.items())))
                assert key not in seen, f"duplicate series {key}"
                seen.add(key)
                self.samples.setdefault(name, []).append((sample.labels, sample.value))

    def series(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        return [
            (lbls, value)
            for lbls, value in self.samples.get(name, [])
            if all(lbls.get(k) == v for k, v in labels.items())
        ]

    def value(self, name: str, **labels: str) -> float:
        matches = self.series(name, **labels)
        assert len(matches) == 1, f"{name}{labels}: expected one series, got {matches}"
        return matches[0][1]
