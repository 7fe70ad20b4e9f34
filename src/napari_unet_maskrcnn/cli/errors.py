"""Exit codes of ``unet-maskrcnn`` and the one-line messages that replace Python tracebacks.

Every error a user can meet ends the command with one ``error: ...`` line on stderr that
names the path or option at fault and what to do, and one of these exit codes (also in
docs/FILE_SAFETY.md):

====  =====================================================================================
0     success
1     some inputs failed (the others were written), or training failed
2     invalid command line: an option out of range, an unreadable or unsuitable input
3     an output would replace or delete something this run did not create (nothing written)
4     the system refused a read or write: permission, read-only file system, disk full...
5     unexpected internal error (a bug): one line; ``UNET_MASKRCNN_TRACEBACK=1`` shows it all
130   interrupted (Ctrl-C): no partial output
====  =====================================================================================
"""

from __future__ import annotations

import errno
import os
import sys

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CLASH, EXIT_OS, EXIT_INTERNAL = 0, 1, 2, 3, 4, 5
EXIT_INTERRUPTED = 130
TRACEBACK_VARIABLE = "UNET_MASKRCNN_TRACEBACK"

_OS_FIXES = {
    errno.EACCES: "check that you may read/write it (permissions), or choose another place",
    errno.EPERM: "check that you may read/write it (permissions), or choose another place",
    errno.EROFS: "the file system is read-only: choose an output on a writable disk",
    errno.ENOSPC: "the disk is full: free some space or choose an output on another disk",
    errno.EDQUOT: "your disk quota is used up: free some space or choose another disk",
    errno.ENOTDIR: "a part of the path is a file, not a folder: choose another path",
    errno.ENOENT: "check the path (relative paths start at the current folder)",
    errno.EISDIR: "it is a folder: give a file name",
    errno.ENAMETOOLONG: "the name is too long: choose a shorter path",
}


def describe_os_error(err: OSError) -> str:
    """One line for an OSError: the path(s), what the system said, and what to do."""
    if err.strerror is None:  # raised with a message of its own (it names the path and the fix)
        return str(err)
    paths = " -> ".join(f"'{p}'" for p in (err.filename, err.filename2) if p is not None)
    reason = err.strerror or str(err)
    fix = _OS_FIXES.get(err.errno, "check the path and the disk")
    return f"{paths + ': ' if paths else ''}{reason}; {fix}."


def report(err: BaseException) -> int:
    """Print one ``error:`` line for ``err`` on stderr; return its exit code.

    KeyboardInterrupt and SystemExit are not handled here (the caller lets them through).
    """
    from ..core.output_paths import OutputClash

    if isinstance(err, OutputClash):
        code, text = EXIT_CLASH, f"{err} Nothing was written."
    elif isinstance(err, OSError):
        code, text = EXIT_OS, describe_os_error(err)
    elif isinstance(err, (ValueError, TypeError)):
        code, text = EXIT_USAGE, str(err)
    else:
        code = EXIT_INTERNAL
        text = (f"unexpected {type(err).__name__}: {err}. This is a bug in napari-unet-maskrcnn; please report "
                f"it with the command line (set {TRACEBACK_VARIABLE}=1 to see the details).")
    if os.environ.get(TRACEBACK_VARIABLE):
        import traceback

        traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)
    print(f"error: {text}", file=sys.stderr)
    return code
