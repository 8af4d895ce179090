"""One closing line for ``make test``'s two pytest runs, read from their JUnit reports.

Both runs passed to get here (make stops at a failing one), so this only adds up; a report
that is missing counts as a run of no test, and no test at all is a failure, not a pass.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def counts(report: Path) -> dict[str, int]:
    if not report.exists():
        return {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    suite = ET.parse(report).getroot().find("testsuite")  # noqa: S314 (our own report)
    assert suite is not None, report
    return {key: int(suite.get(key, "0")) for key in ("tests", "failures", "errors", "skipped")}


def main(reports: list[str]) -> int:
    runs = [counts(Path(report)) for report in reports]
    total = {key: sum(run[key] for run in runs) for key in runs[0]}
    failed = total["failures"] + total["errors"]
    passed = total["tests"] - failed - total["skipped"]
    runs_named = zip(runs, reports, strict=True)
    sizes = " + ".join(f"{run['tests']} {Path(report).stem}" for run, report in runs_named)
    print(f"make test: {total['tests']} tests in {len(runs)} runs ({sizes})")
    print(f"tests: {passed} passed, {failed} failed, {total['skipped']} skipped")
    if total["tests"] == 0:
        print("make test: no test ran", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
