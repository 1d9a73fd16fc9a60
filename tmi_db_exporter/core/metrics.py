"""Metric definitions and the registry that makes them documentation.

A metric is defined once, next to the code that fills it, in a `MetricGroup` that says where it
comes from. Defining it registers it: the README's metric table, the dashboard and rule checks
and the completeness test all read `registered()`, so nothing can be exported undocumented or
documented without a definition. Metrics that queries.yaml entries make are added by the
catalog from the loaded entries.
"""

from __future__ import annotations

from dataclasses import dataclass

from tmi_db_exporter.core.exposition import Family, MetricType

_REGISTRY: dict[str, MetricDef] = {}
_GROUPS: list[MetricGroup] = []


@dataclass(frozen=True, slots=True)
class MetricDef:
    """A metric as documented: defined once, used by the collector that emits it."""

    name: str
    help: str
    type: MetricType = "gauge"
    labels: tuple[str, ...] = ()

    def family(self) -> Family:
        return Family(self.name, self.help, self.type)


class MetricGroup:
    """The metrics of one collector, registered under the origin shown in the README."""

    __slots__ = ("defs", "module", "origin")

    def __init__(self, origin: str, module: str) -> None:
        self.origin = origin
        self.module = module  # orders the README table by area
        self.defs: list[MetricDef] = []
        _GROUPS.append(self)

    def define(
        self, name: str, help: str, type: MetricType = "gauge", labels: tuple[str, ...] = ()
    ) -> MetricDef:
        definition = MetricDef(name, help, type, labels)
        if definition.name in _REGISTRY:
            raise ValueError(f"metric {definition.name} is defined twice")
        _REGISTRY[definition.name] = definition
        self.defs.append(definition)
        return definition


def registered() -> list[MetricGroup]:
    """Every group defined by the modules imported so far, in definition order."""
    return list(_GROUPS)
