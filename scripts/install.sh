#!/usr/bin/env bash
# Install napari-unet-maskrcnn for use and testing on a Debian/Ubuntu machine, starting bare.
#
#   scripts/install.sh
#
# 1. System libraries napari needs to open a window with Qt6 (xcb) and OpenGL (Mesa), plus
#    Xvfb for machines without a screen. Only missing packages are installed; apt is not run
#    at all when everything is present. sudo is used only when not root.
# 2. A virtual environment in .venv (created when missing), with this package installed in
#    editable mode with its napari and testing extras. Skipped when pyproject.toml has not
#    changed since the last successful install.
#
# Environment: PYTHON (default python3) chooses the interpreter for a new .venv.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
python="${PYTHON:-python3}"

# Xvfb, Mesa's OpenGL driver (loaded at run time; it needs libxcb-glx0), and the libraries that
# PyQt6's xcb platform plugin and Qt libraries link against, found with
#   ldd .venv/lib/python3*/site-packages/PyQt6/Qt6/{plugins/platforms/libqxcb.so,lib/libQt6*.so.6}
# (libxcb-cursor0: Qt >= 6.5 refuses to start on xcb without it).
system_packages=(
    xvfb xauth libgl1-mesa-dri
    libgl1 libegl1 libglib2.0-0 libdbus-1-3 libfontconfig1 libfreetype6 libx11-xcb1 libxext6
    libxkbcommon0 libxkbcommon-x11-0
    libxcb1 libxcb-glx0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
    libxcb-render0 libxcb-render-util0 libxcb-shape0 libxcb-shm0 libxcb-sync1 libxcb-xfixes0
    libxcb-xkb1 libxcb-util1 libxcb-cursor0
)

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing_packages() {
    local package
    for package in "$@"; do  # Ubuntu >= 24.04 renamed some libraries "<name>t64"
        is_installed "$package" || is_installed "${package}t64" || echo "$package"
    done
}

install_system_packages() {
    local missing sudo=()
    mapfile -t missing < <(missing_packages "${system_packages[@]}")
    if [[ ! -x "$venv/bin/python" ]] && ! "$python" -c "import ensurepip, venv" 2>/dev/null; then
        mapfile -t -O "${#missing[@]}" missing < <(missing_packages python3 python3-venv python3-pip)
    fi
    if (( ${#missing[@]} == 0 )); then
        echo "System packages: all present."
        return
    fi
    if [[ "$(id -u)" != 0 ]]; then
        sudo=(sudo)
    fi
    echo "System packages: installing ${missing[*]}"
    "${sudo[@]}" apt-get update
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
}

install_python_packages() {
    local stamp="$venv/.napari-unet-maskrcnn-installed" wanted
    if [[ ! -x "$venv/bin/python" ]]; then
        echo "Creating $venv"
        "$python" -m venv "$venv"
    fi
    wanted="$(sha256sum "$repo/pyproject.toml" | cut -d' ' -f1)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]] \
        && "$venv/bin/python" -c "import napari_unet_maskrcnn, napari, pytestqt, npe2" 2>/dev/null; then
        echo "Python packages: up to date."
        return
    fi
    if ! command -v nvidia-smi >/dev/null && ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
        # PyPI offers only the CUDA build on Linux x86_64 (about 4.5 GB installed); see docs/INSTALL.md.
        echo "No NVIDIA GPU found: PyPI's torch brings CUDA libraries (~4.5 GB). For the CPU-only build,"
        echo "first run: $venv/bin/python -m pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu"
    fi
    "$venv/bin/python" -m pip install -e "${repo}[testing]"
    echo "$wanted" > "$stamp"
}

install_system_packages
install_python_packages
echo "Ready: $venv"
