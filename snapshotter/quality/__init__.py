"""Data-quality checks over one snapshot: what is wrong in it, in words a data manager can act on.

rules.py        the rules: id, family, severity, what each finds and why it matters
context.py      the read-only snapshot connection every family reads, and its helpers
references.py, coverage.py, uniqueness.py, identifiers.py, year_groups.py, dates.py
                one module per family of rules, SQL over the snapshot's own tables
run.py          every rule over a snapshot, labelled: `check_snapshot(info) -> CheckResult`
store.py        findings kept in the archive's changes.db, per snapshot
compare.py      problems new since an older snapshot, and fixed: the diff report's part
render.py       the findings as text, JSON and CSV
"""

from .rules import RULE_BY_ID, RULES, SEVERITIES, Finding, Rule
from .run import CheckResult, check_snapshot

__all__ = ["RULES", "RULE_BY_ID", "SEVERITIES", "CheckResult", "Finding", "Rule", "check_snapshot"]
