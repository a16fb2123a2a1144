#!/usr/bin/env bash
# Creates the project's virtual environment with Python >= 3.12 and installs the pinned set.
# Usage: scripts/make_venv.sh <venv-dir> <uv-version>
set -euo pipefail
venv=${1:-.venv}
uv_version=${2:-0.13.9}

find_python() {
    # .python-version (3.12) makes pyenv's python3 resolve to 3.12; fall back to explicit names.
    for candidate in python3 python3.12 python3.13; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if [ ! -x "$venv/bin/python" ]; then
    python=$(find_python) || {
        echo "error: Python >= 3.12 is required (ludwig 0.17 needs it); none was found on PATH" >&2
        exit 1
    }
    echo "creating $venv with $("$python" --version)"
    "$python" -m venv "$venv"
fi

"$venv/bin/python" -m pip install --quiet "uv==$uv_version"
# requirements.lock.txt holds every package of the resolved set at its exact version
# (a constraints file without index URLs); requirements.in names what the project asks for.
"$venv/bin/uv" pip install --python "$venv/bin/python" \
    -r requirements.in -c requirements.lock.txt -e .
