"""Problems new since OLD and problems fixed by NEW: the data-quality part of a change report.

A finding is the same problem in both snapshots when its rule, entity and sourcedId agree (its
message may change: a duplicate now shared with someone else is still the same problem).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..archive.layout import SnapshotInfo
from .rules import RULE_BY_ID, RULES, Finding
from .run import CheckResult
from .store import kept_check


@dataclass(frozen=True)
class QualityChanges:
    new: list[Finding]  # in NEW, not in OLD
    fixed: list[Finding]  # in OLD, not in NEW
    remaining: int  # in both

    def counts(self, which: str) -> dict[str, int]:
        """{rule: N} for the rules with new (or fixed) problems, in the rules' order."""
        findings = self.new if which == "new" else self.fixed
        counts = {rule.id: 0 for rule in RULES}
        for finding in findings:
            counts[finding.rule] += 1
        return {rule: count for rule, count in counts.items() if count}

    def as_json(self) -> dict[str, dict[str, int]]:
        return {"new": self.counts("new"), "fixed": self.counts("fixed")}

    def by_rule(self, which: str) -> list[tuple[str, list[Finding]]]:
        findings = self.new if which == "new" else self.fixed
        grouped: dict[str, list[Finding]] = {}
        for finding in findings:
            grouped.setdefault(finding.rule, []).append(finding)
        return [(rule.id, grouped[rule.id]) for rule in RULES if rule.id in grouped]


def _key(finding: Finding) -> tuple[str, str, str]:
    return finding.rule, finding.entity, finding.sourcedId


def compare(old: CheckResult, new: CheckResult) -> QualityChanges:
    old_keys = {_key(f) for f in old.findings}
    new_keys = {_key(f) for f in new.findings}
    return QualityChanges(
        new=[f for f in new.findings if _key(f) not in old_keys],
        fixed=[f for f in old.findings if _key(f) not in new_keys],
        remaining=len(old_keys & new_keys),
    )


def quality_changes(
    old: SnapshotInfo, new: SnapshotInfo, changes_db: Path | None
) -> QualityChanges:
    """Each snapshot's findings (kept in `changes_db` once, or computed when it is None), and
    what changed between them."""
    return compare(kept_check(changes_db, old), kept_check(changes_db, new))


# Examples of each rule's new or fixed problems in a change report: the part stays short
# (`snapshotter check` has the rest).
QUALITY_EXAMPLES = 3


@dataclass(frozen=True)
class RuleExamples:
    """One rule's new (or fixed) problems as a short report shows them."""

    which: str  # "New" or "Fixed"
    rule: str  # the rule's title: `rule_id (severity)`
    count: int
    shown: list[Finding]
    hidden: int


def quality_examples(quality: QualityChanges, examples: int | None) -> list[RuleExamples]:
    """Each rule's new, then fixed, problems, at most `QUALITY_EXAMPLES` (or `examples`, if
    fewer) shown: what the text and Markdown reports list, each escaping in its own way."""
    cap = min(examples or QUALITY_EXAMPLES, QUALITY_EXAMPLES)
    return [
        RuleExamples(
            which.capitalize(),
            rule_title(rule),
            len(findings),
            findings[:cap],
            max(len(findings) - cap, 0),
        )
        for which in ("new", "fixed")
        for rule, findings in quality.by_rule(which)
    ]


def quality_headline(quality: QualityChanges) -> str:
    if not quality.new and not quality.fixed:
        if not quality.remaining:
            return "no problems found in either snapshot"
        return (
            f"no new problems, none fixed ({quality.remaining} remain: `snapshotter check` "
            "lists them all)"
        )
    remain = f"{quality.remaining} remain" if quality.remaining else "none remain"
    return (
        f"{len(quality.new)} new since the old snapshot, {len(quality.fixed)} fixed "
        f"({remain}: `snapshotter check` lists them all)"
    )


def rule_title(rule_id: str) -> str:
    rule = RULE_BY_ID[rule_id]
    return f"{rule.id} ({rule.severity})"
