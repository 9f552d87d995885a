"""The one exception type for user mistakes: the CLI prints its message as a single line and exits non-zero."""


class CtrtError(Exception):
    """A problem the user can fix (missing file, wrong checkpoint, bad size, missing TensorRT)."""

    exit_code = 2
