"""The ``unet-maskrcnn`` command line: list models, segment, evaluate, measure and train.

The usage of every command is generated from the parser (:func:`build_parser`), never written
by hand: ``unet-maskrcnn --help`` lists each command's usage line, ``unet-maskrcnn COMMAND
--help`` its options.

Every input gets ``DIR/<input stem>.tif`` (uint16 labels; uint32 when more ids are needed),
instance models also ``DIR/<input stem>.csv`` (the per-instance table). Files are written
atomically: a failed or interrupted run leaves no partial output (nor an output folder it
created). No run replaces a file it did not create unless ``--overwrite`` is given
(docs/FILE_SAFETY.md); errors are one ``error:`` line with an exit code from :mod:`.errors`.
Output piped into a program that stops reading (``| head``) ends quietly.
"""

from __future__ import annotations

import argparse
import os
import sys

from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, report
from .evaluate import add_evaluate_parser, run_evaluate
from .measure import add_measure_parser, run_measure
from .segment import add_segment_parser, run_segment
from .train import add_train_parser, run_train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unet-maskrcnn",
        description="U-Net semantic and Mask R-CNN instance segmentation of microscopy images.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    models = commands.add_parser("models", help="list bundled, user and given models")
    models.add_argument("--model", action="append", default=[], metavar="FILE",
                        help="also describe this model file (repeatable)")

    add_segment_parser(commands)
    add_evaluate_parser(commands)
    add_measure_parser(commands)
    add_train_parser(commands)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter  # keeps the usage lines' breaks
    parser.epilog = command_usages(commands)
    return parser


def command_usages(commands: argparse._SubParsersAction) -> str:
    """Every command's usage, as argparse writes it from the command's own parser."""
    usages = [sub.format_usage().removeprefix("usage: ").rstrip() for sub in commands.choices.values()]
    return "commands:\n" + "\n".join(f"  {usage}" for usage in usages)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "models":
            return _list_models(args)
        if args.command == "evaluate":
            return run_evaluate(args)
        if args.command == "measure":
            return run_measure(args)
        if args.command == "train":
            return run_train(args)
        return run_segment(args)
    except KeyboardInterrupt:
        print("\nInterrupted: no partial output was written.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of our output went away (`... | head`): stop quietly
        _silence_stdout()
        return EXIT_FAILED
    except Exception as err:  # noqa: BLE001 - no traceback reaches a user: one line and an exit code
        return report(err)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so Python's final flush does not fail on the closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _list_models(args) -> int:
    from ..core.model_file import ModelFileError
    from ..core.registry import list_models, register_model_file

    status = EXIT_OK
    for path in args.model:
        try:
            register_model_file(path)
        except ModelFileError as err:
            print(f"error: {err}", file=sys.stderr)
            status = EXIT_FAILED
    rows = [("name", "task", "classes", "status", "file")]
    for info in list_models():
        rows.append((
            info.name, info.task, ", ".join(info.class_names),
            ("bundled" if info.bundled else "user") + ("" if info.available else ", not installed"),
            str(info.path) if info.path else "-",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])
    return status
