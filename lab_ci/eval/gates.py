"""Gates: evaluation results + thresholds -> pass or fail, with the reasons (pure).

Thresholds per metric (``knowledge``: multiple-choice accuracy, 0-1; ``skills``: the
judge's score, 1-10), each optional:

``max_leaf_drop: X``
    no changed leaf may score below the baseline by more than ``X``;
``max_guard_drop: Y``
    the regression guard (the mean over the sampled unchanged leaves) may not drop
    by more than ``Y``;
``min_changed_gain: Z``
    the mean over the changed leaves must improve by at least ``Z`` (may be
    negative: "not worse than").

``rule`` says how the uncertainty is used: ``estimate`` compares the point estimate
(the default); ``lenient`` fails only when the whole 95% interval is past the
threshold (the violation is certain); ``strict`` passes only when the whole interval
is within it (compliance is certain). ``unevaluated: fail`` (the default) fails a
metric with gates when a changed leaf could not be evaluated (no usable questions,
every judgment unparseable); ``pass`` only reports it.

The mapping is the ``eval.gates`` section of ``.github/lab-ci.yaml``::

    eval:
      gates:
        rule: estimate
        knowledge: {max_leaf_drop: 0.10, max_guard_drop: 0.05}
        skills: {max_leaf_drop: 1.0, max_guard_drop: 0.5}

:meth:`Gates.from_dict` raises :class:`GateConfigError` with the key's dotted path
(the caller adds the file and line); :func:`apply_gates` reads a results mapping
(``results.json``'s shape) and never fails on missing data: it says so.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..errors import LabCIError

METRICS = ("knowledge", "skills")
RULES = ("estimate", "lenient", "strict")
UNEVALUATED = ("fail", "pass")
#: metric -> (unit in messages, the largest meaningful threshold)
SCALES = {"knowledge": ("accuracy", 1.0), "skills": ("judge score", 9.0)}
KEYS = ("max_leaf_drop", "max_guard_drop", "min_changed_gain")


class GateConfigError(LabCIError):
    """A gate setting is invalid; ``key`` is its dotted path under the gates mapping."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key
        self.detail = message


@dataclass(frozen=True, slots=True)
class MetricGates:
    max_leaf_drop: float | None = None
    max_guard_drop: float | None = None
    min_changed_gain: float | None = None

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.max_leaf_drop, self.max_guard_drop, self.min_changed_gain))


@dataclass(frozen=True, slots=True)
class Gates:
    knowledge: MetricGates = field(default_factory=MetricGates)
    skills: MetricGates = field(default_factory=MetricGates)
    rule: str = "estimate"
    unevaluated: str = "fail"

    @property
    def active(self) -> bool:
        return self.knowledge.active or self.skills.active

    def to_dict(self) -> dict:
        return {
            "rule": self.rule,
            "unevaluated": self.unevaluated,
            "knowledge": {k: v for k, v in asdict(self.knowledge).items() if v is not None},
            "skills": {k: v for k, v in asdict(self.skills).items() if v is not None},
        }

    @classmethod
    def from_dict(cls, data: dict | None, prefix: str = "") -> Gates:
        """Gates from a mapping (``None``: no gates). Errors name ``prefix + key``."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise GateConfigError(prefix.rstrip(".") or "gates", "must be a mapping")
        unknown = sorted(set(map(str, data)) - {"rule", "unevaluated", *METRICS})
        if unknown:
            raise GateConfigError(
                prefix + unknown[0], f"unknown key (expected rule, unevaluated, {', '.join(METRICS)})"
            )
        rule = data.get("rule", "estimate")
        if rule not in RULES:
            raise GateConfigError(prefix + "rule", f"must be one of {', '.join(RULES)}, got {rule!r}")
        unevaluated = data.get("unevaluated", "fail")
        if unevaluated not in UNEVALUATED:
            raise GateConfigError(
                prefix + "unevaluated", f"must be one of {', '.join(UNEVALUATED)}, got {unevaluated!r}"
            )
        metrics = {}
        for metric in METRICS:
            sec = data.get(metric) or {}
            where = prefix + metric
            if not isinstance(sec, dict):
                raise GateConfigError(where, "must be a mapping")
            bad = sorted(set(map(str, sec)) - set(KEYS))
            if bad:
                raise GateConfigError(f"{where}.{bad[0]}", f"unknown key (expected one of {', '.join(KEYS)})")
            values = {}
            _unit, top = SCALES[metric]
            for key in KEYS:
                v = sec.get(key)
                if v is None:
                    values[key] = None
                    continue
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise GateConfigError(f"{where}.{key}", f"must be a number, got {v!r}")
                low = -top if key == "min_changed_gain" else 0.0
                if not low <= v <= top:
                    raise GateConfigError(f"{where}.{key}", f"must be between {low:g} and {top:g}, got {v!r}")
                values[key] = float(v)
            metrics[metric] = MetricGates(**values)
        return cls(rule=rule, unevaluated=unevaluated, **metrics)

    @classmethod
    def from_assignments(cls, items: list[str], base: Gates | None = None) -> Gates:
        """Gates from ``metric.key=value`` strings (``lab-ci eval --gate``) over ``base``."""
        data = (base or cls()).to_dict()
        for item in items:
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise GateConfigError(item, "expected KEY=VALUE, e.g. knowledge.max_leaf_drop=0.1")
            if key in ("rule", "unevaluated"):
                data[key] = value.strip()
                continue
            metric, dot, name = key.partition(".")
            if not dot or metric not in METRICS:
                raise GateConfigError(
                    key, f"expected rule, unevaluated or METRIC.KEY with METRIC in {', '.join(METRICS)}"
                )
            try:
                data.setdefault(metric, {})[name] = float(value)
            except ValueError:
                raise GateConfigError(key, f"must be a number, got {value.strip()!r}") from None
        return cls.from_dict(data)


@dataclass(frozen=True, slots=True)
class GateCheck:
    gate: str  # "knowledge.max_leaf_drop", "skills.max_guard_drop", ...
    subject: str  # a leaf path, "changed leaves" or "regression guard"
    passed: bool
    message: str
    value: float | None = None  # the delta compared
    ci: tuple[float, float] | None = None
    threshold: float | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ci"] = list(self.ci) if self.ci else None
        return d


@dataclass(frozen=True, slots=True)
class GateOutcome:
    passed: bool
    checks: tuple[GateCheck, ...]
    gates: Gates

    @property
    def failures(self) -> list[GateCheck]:
        return [c for c in self.checks if not c.passed]

    @property
    def reasons(self) -> list[str]:
        return [c.message for c in self.failures]

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "active": self.gates.active,
            "config": self.gates.to_dict(),
            "failures": [c.to_dict() for c in self.failures],
            "checks": [c.to_dict() for c in self.checks],
        }


def _fmt(v: float | None) -> str:
    return "?" if v is None else f"{v:+.2f}"


def _violates(delta: float, ci, threshold: float, rule: str) -> bool:
    """True when ``delta`` is below ``threshold`` under ``rule``."""
    if rule == "lenient" and ci:
        return ci[1] < threshold
    if rule == "strict" and ci:
        return ci[0] < threshold
    return delta < threshold


def _ci(entry: dict) -> tuple[float, float] | None:
    ci = entry.get("ci")
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(x, (int, float)) for x in ci):
        return float(ci[0]), float(ci[1])
    return None


def _describe(entry: dict, metric: str) -> str:
    unit = SCALES[metric][0]
    ci = _ci(entry)
    interval = f", 95% interval {ci[0]:+.2f} to {ci[1]:+.2f}" if ci else ""
    return (
        f"{unit} {entry.get('candidate', float('nan')):.2f} vs {entry.get('baseline', float('nan')):.2f} baseline "
        f"(delta {_fmt(entry.get('delta'))}{interval})"
    )


def apply_gates(results: dict, gates: Gates) -> GateOutcome:
    """Check ``results`` (``results.json``'s shape: per metric ``leaves`` with ``role``,
    ``status``, ``delta``, ``ci``, and the ``changed``/``guard`` summaries) against
    ``gates``. Passing checks are listed too, so a report can show what was checked."""
    checks: list[GateCheck] = []
    for metric in METRICS:
        mg: MetricGates = getattr(gates, metric)
        if not mg.active:
            continue
        section = results.get(metric) or {}
        leaves = [l for l in section.get("leaves") or [] if l.get("role") == "changed"]
        if mg.max_leaf_drop is not None:
            gate = f"{metric}.max_leaf_drop"
            limit = -mg.max_leaf_drop
            for leaf in leaves:
                subject = leaf.get("leaf", "?")
                if leaf.get("status") != "evaluated" or leaf.get("delta") is None:
                    ok = gates.unevaluated == "pass"
                    checks.append(
                        GateCheck(
                            gate,
                            subject,
                            ok,
                            f"{subject}: not evaluated ({leaf.get('reason') or 'no paired scores'})"
                            + ("" if ok else f"; {gate} needs every changed leaf evaluated (unevaluated: fail)"),
                        )
                    )
                    continue
                bad = _violates(leaf["delta"], _ci(leaf), limit, gates.rule)
                verdict = (
                    f"is below the baseline by more than {mg.max_leaf_drop:g}"
                    if bad
                    else f"is within {mg.max_leaf_drop:g} of the baseline"
                )
                checks.append(
                    GateCheck(
                        gate,
                        subject,
                        not bad,
                        f"{subject}: {_describe(leaf, metric)} {verdict} ({gate}, rule {gates.rule})",
                        leaf["delta"],
                        _ci(leaf),
                        limit,
                    )
                )
        for key, group, label in (
            ("max_guard_drop", "guard", "regression guard"),
            ("min_changed_gain", "changed", "changed leaves"),
        ):
            threshold = getattr(mg, key)
            if threshold is None:
                continue
            gate = f"{metric}.{key}"
            limit = -threshold if key == "max_guard_drop" else threshold
            entry = section.get(group) or {}
            if entry.get("delta") is None:
                ok = group == "guard" or gates.unevaluated == "pass"
                why = "no leaves were sampled" if group == "guard" else "no changed leaf was evaluated"
                checks.append(GateCheck(gate, label, ok, f"{label} ({metric}): nothing to compare ({why})"))
                continue
            bad = _violates(entry["delta"], _ci(entry), limit, gates.rule)
            if key == "max_guard_drop":
                verdict = f"dropped by more than {threshold:g}" if bad else f"is within {threshold:g} of the baseline"
            else:
                verdict = f"did not gain {threshold:+g}" if bad else f"gained at least {threshold:+g}"
            checks.append(
                GateCheck(
                    gate,
                    label,
                    not bad,
                    f"{label} ({metric}, mean of {len([l for l in section.get('leaves') or [] if l.get('role') == group])} leaves): "
                    f"{_describe(entry, metric)} {verdict} ({gate}, rule {gates.rule})",
                    entry["delta"],
                    _ci(entry),
                    limit,
                )
            )
    return GateOutcome(all(c.passed for c in checks), tuple(checks), gates)
