"""Fail when any module of the integration is under the line-coverage floor (95 % by default).

scripts/test runs it after pytest, whose --cov-fail-under only checks the total: a well tested
engine can hide a module nobody tests. It reads the data pytest-cov wrote (.coverage, or
$COVERAGE_FILE) with pyproject.toml's [tool.coverage] settings (the same exclusions as the
report), and checks every .py file under custom_components/mam_guard, lib included, imported by
the tests or not (a module no test imports counts as 0 %).

    .venv/bin/python scripts/coverage_gate.py [--fail-under 95] [--data-file .coverage]
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys

import coverage

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "custom_components" / "mam_guard"


def module_coverage(data_file: str | None = None) -> dict[str, tuple[int, int]]:
    """(statements, missed statements) of every module of the integration, by relative path."""
    cov = (
        coverage.Coverage(config_file=str(ROOT / "pyproject.toml"))
        if data_file is None
        else coverage.Coverage(data_file=data_file, config_file=str(ROOT / "pyproject.toml"))
    )
    cov.load()
    result: dict[str, tuple[int, int]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        _, statements, _, missing, _ = cov.analysis2(str(path))
        result[path.relative_to(ROOT).as_posix()] = (len(statements), len(missing))
    return result


def percent(statements: int, missing: int) -> float:
    return 100.0 if statements == 0 else 100.0 * (statements - missing) / statements


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fail-under", type=float, default=95.0, metavar="PERCENT")
    parser.add_argument("--data-file", default=None, help="default: .coverage or $COVERAGE_FILE")
    args = parser.parse_args(argv)
    modules = module_coverage(args.data_file)
    if not any(statements > missing for statements, missing in modules.values()):
        print("coverage gate: no coverage data for custom_components/mam_guard", file=sys.stderr)
        return 2
    under = {
        name: (statements, missing)
        for name, (statements, missing) in modules.items()
        if percent(statements, missing) < args.fail_under
    }
    if not under:
        print(f"coverage gate: all {len(modules)} modules ≥ {args.fail_under:g} % line coverage")
        return 0
    print(f"coverage gate: {len(under)} module(s) under {args.fail_under:g} % line coverage:")
    width = max(len(name) for name in under)
    for name, (statements, missing) in sorted(under.items()):
        print(
            f"  {name:<{width}}  {percent(statements, missing):5.1f} %"
            f"  ({missing} of {statements} statements not run)"
        )
    return 1


if __name__ == "__main__":
    sys.exit(main())
