"""What ``sardata validate`` reports: one :class:`Finding` per kind of problem, gathered in a :class:`ValidationReport`.

A finding names the samples (and, for label problems, the labels) it is about, so that each kind becomes a FiftyOne
saved view a person can open in the App (see :mod:`sardata.validate.runs`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

#: Severities, most severe first: ``error`` will hurt training (or is leakage), ``warning`` probably will,
#: ``info`` is worth knowing.
SEVERITIES = ("error", "warning", "info")


@dataclass
class Finding:
    """One kind of problem and where it is.

    Attributes:
        kind: stable machine name (``degenerate_box``, ``cross_split_duplicate``, ...); also names the saved view.
        severity: one of :data:`SEVERITIES`.
        message: one line for a person, with the count.
        sample_ids: the samples concerned.
        label_ids: the labels concerned (label problems only); the saved view then shows only those labels.
        label_field: the field of ``label_ids``.
        details: small machine-readable extras (examples, thresholds, pairs).
    """

    kind: str
    severity: str
    message: str
    sample_ids: list[str] = field(default_factory=list)
    label_ids: list[str] = field(default_factory=list)
    label_field: str | None = None
    details: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {SEVERITIES}")
        self.sample_ids = sorted(set(self.sample_ids))

    @property
    def count(self) -> int:
        return len(self.label_ids) if self.label_ids else len(self.sample_ids)

    def to_dict(self) -> dict:
        return {**asdict(self), "count": self.count}

    @classmethod
    def from_dict(cls, d: dict) -> "Finding":
        return cls(**{k: v for k, v in d.items() if k != "count"})


@dataclass
class ValidationReport:
    """All findings of one validation run, and the distribution tables it computed.

    Attributes:
        run_key: the run's name on the dataset.
        dataset: the FiftyOne dataset's name.
        label_field: the label field validated.
        findings: the findings, most severe first.
        distribution: counts per class × split × scene, imbalance ratios, images without labels, box statistics.
        params: the thresholds used.
        views: finding kind → name of its saved view.
        report_dir: where ``report.json`` and the PNG histograms are.
    """

    run_key: str
    dataset: str
    label_field: str
    findings: list[Finding] = field(default_factory=list)
    distribution: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    views: dict = field(default_factory=dict)
    report_dir: str = ""

    def __post_init__(self):
        self.findings.sort(key=lambda f: (SEVERITIES.index(f.severity), f.kind))

    def counts(self) -> dict[str, int]:
        """Number of findings (kinds) per severity."""
        return {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES}

    def fails(self, fail_on: str | None) -> bool:
        """True when a finding is at least as severe as ``fail_on`` (None or ``never``: never fails)."""
        if fail_on in (None, "never"):
            return False
        if fail_on not in SEVERITIES:
            raise ValueError(f"fail_on {fail_on!r} is not one of {SEVERITIES + ('never',)}")
        worst = SEVERITIES.index(fail_on)
        return any(SEVERITIES.index(f.severity) <= worst for f in self.findings)

    def by_kind(self) -> dict[str, Finding]:
        return {f.kind: f for f in self.findings}

    def to_dict(self) -> dict:
        return {
            "run_key": self.run_key, "dataset": self.dataset, "label_field": self.label_field,
            "counts": self.counts(), "findings": [f.to_dict() for f in self.findings],
            "distribution": self.distribution, "params": self.params, "views": self.views,
            "report_dir": self.report_dir,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ValidationReport":
        return cls(
            run_key=d["run_key"], dataset=d["dataset"], label_field=d["label_field"],
            findings=[Finding.from_dict(f) for f in d.get("findings", [])], distribution=d.get("distribution", {}),
            params=d.get("params", {}), views=d.get("views", {}), report_dir=d.get("report_dir", ""),
        )
