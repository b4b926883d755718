"""What the oras scenarios share: one reported check, assertions, the summary.

Each check prints `ok - NAME` or `not ok - NAME` (and the end of its traceback as
`#` lines), as every scenario in tests/clients/ does; run.sh counts the lines.
"""

import hashlib
import sys
import traceback

_counts = {"passed": 0, "failed": 0}


def check(name):
    """Run the decorated function now, as one reported check."""

    def run(fn):
        try:
            fn()
        except Exception:  # noqa: BLE001 - every failure is a finding
            _counts["failed"] += 1
            print(f"not ok - {name}")
            for line in traceback.format_exc().rstrip().splitlines()[-12:]:
                print(f"#   {line}")
        else:
            _counts["passed"] += 1
            print(f"ok - {name}")
        sys.stdout.flush()
        return fn

    return run


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def expect(what, want, got):
    if want != got:
        raise AssertionError(f"{what}: expected {want!r}, got {got!r}")


def finish(scenario):
    """The summary on stderr, and the exit status: 1 if any check failed."""
    print(f"# {scenario}: {_counts['passed']} passed, {_counts['failed']} failed", file=sys.stderr)
    sys.exit(1 if _counts["failed"] else 0)
