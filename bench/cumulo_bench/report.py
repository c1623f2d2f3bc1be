"""The figures: a readable table, and var/bench/latest.json keyed by figure name."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import pathlib


@dataclasses.dataclass
class Figure:
    name: str
    value: float
    unit: str
    baseline: float | None
    baseline_label: str
    target: float | None = None  # the acceptable ratio, when there is one
    note: str = ""
    lower_is_better: bool = False  # then the ratio must stay at or under the target

    @property
    def meets_target(self) -> bool | None:
        if self.target is None or self.ratio is None:
            return None
        return self.ratio <= self.target if self.lower_is_better else self.ratio >= self.target

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline

    def as_json(self) -> dict[str, object]:
        return {
            "value": round(self.value, 3),
            "unit": self.unit,
            "baseline": None if self.baseline is None else round(self.baseline, 3),
            "baseline_label": self.baseline_label,
            "ratio": None if self.ratio is None else round(self.ratio, 3),
            "target": self.target,
            "target_is": None if self.target is None else ("at most" if self.lower_is_better else "at least"),
            "meets_target": self.meets_target,
            "note": self.note,
        }


def print_table(figures: list[Figure]) -> None:
    header = f"{'figure':<34} {'value':>12} {'unit':<8} {'baseline':>12}  {'ratio':>6} {'target':>7}  baseline is"
    print(header)
    print("-" * len(header))
    for f in figures:
        ratio = "" if f.ratio is None else f"{f.ratio:.2f}"
        target = "" if f.target is None else f"{'<=' if f.lower_is_better else '>='}{f.target:.2f}"
        baseline = "" if f.baseline is None else f"{f.baseline:,.1f}"
        print(f"{f.name:<34} {f.value:>12,.1f} {f.unit:<8} {baseline:>12}  {ratio:>6} {target:>7}  {f.baseline_label}")


def write_json(figures: list[Figure], path: pathlib.Path) -> None:
    """One entry per figure, keyed by its name; figures of groups not run this time are kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    entries: dict[str, object] = {}
    if path.exists():
        try:
            entries = json.loads(path.read_text())
        except ValueError:
            entries = {}
    measured_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for figure in figures:
        entries[figure.name] = {**figure.as_json(), "measured_at": measured_at}
    path.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")
