#!/usr/bin/env bash
# Set up this machine (scripts/install.sh) and run the whole test suite on a virtual display.
#
#   scripts/setup_and_test.sh [pytest arguments]
#
# napari's canvas needs OpenGL, which Qt's "offscreen" platform lacks: the tests run on the
# xcb platform inside Xvfb (Mesa's software OpenGL), with or without a real screen.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$repo/scripts/install.sh"
cd "$repo"
export QT_QPA_PLATFORM=xcb
exec xvfb-run -a -s "-screen 0 1920x1080x24" "$repo/.venv/bin/python" -m pytest "$@"
