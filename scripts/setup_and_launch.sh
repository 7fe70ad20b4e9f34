#!/usr/bin/env bash
# Set up this machine (scripts/install.sh) and open napari with the plugin's two widgets.
#
#   scripts/setup_and_launch.sh [IMAGE_FILE ...]
#
# Opens the given images, or the 2D nuclei sample. Without a screen (no DISPLAY), napari
# runs inside Xvfb, e.g. to check an installation on a server.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$repo/scripts/install.sh"
launch=("$repo/.venv/bin/python" "$repo/scripts/launch_napari.py" "$@")
if [[ -z "${DISPLAY:-}" && -z "${WAYLAND_DISPLAY:-}" ]]; then
    echo "No display: starting napari inside Xvfb."
    exec xvfb-run -a -s "-screen 0 1920x1080x24" "${launch[@]}"
fi
exec "${launch[@]}"
