"""One-line errors for bad input, instead of a wall of traceback.

Raise `UserError("what is wrong: how to fix it")` anywhere; `run_main(main)` prints `error: <message>` on
stderr and exits with status 2. Unexpected exceptions (bugs) still show their traceback.
"""

import math
import sys


class UserError(Exception):
    """A problem the user can fix (bad flag, missing data, NaN loss); its message is the whole report."""


def run_main(main, argv=None):
    try:
        return main(sys.argv[1:] if argv is None else argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: the last checkpoint is intact; rerun the same command to resume", file=sys.stderr)
        sys.exit(130)


def check_finite(value, what, step):
    """Raise a UserError if a loss (or any scalar) became NaN or infinite."""
    if not math.isfinite(float(value)):
        raise UserError(
            f"{what} became {value} at step {step}: lower the learning rate (--lr) or check the inputs; "
            "the last checkpoint is untouched"
        )
    return value
