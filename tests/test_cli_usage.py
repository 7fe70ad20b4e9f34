"""`unet-maskrcnn --help` lists every command's usage, generated from the parser (issue 20)."""

from __future__ import annotations

import importlib
import subprocess
import sys

cli_main = importlib.import_module("napari_unet_maskrcnn.cli.main")  # the package exports main() by that name


def words(text: str) -> list[str]:
    return text.split()


def test_the_top_level_help_holds_every_command_usage_from_its_parser():
    parser = cli_main.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert set(commands) == {"models", "segment", "evaluate", "measure", "train"}
    shown = words(parser.format_help())
    for command in commands.values():  # the same usage as the command's own --help, line breaks aside
        usage = words(command.format_usage().removeprefix("usage: "))
        assert any(shown[i:i + len(usage)] == usage for i in range(len(shown))), usage[:3]
    for option in ("--diameter", "--workers", "--scheduler", "--tta", "--minutes", "--base"):
        assert option in parser.format_help(), option


def test_the_installed_command_prints_it():
    result = subprocess.run([sys.executable, "-m", "napari_unet_maskrcnn.cli", "--help"],
                            capture_output=True, text=True, timeout=120, check=True)
    assert "unet-maskrcnn train" in result.stdout and "--diameter" in result.stdout
