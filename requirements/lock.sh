#!/usr/bin/env bash
# Regenerates the lock files from pyproject.toml (`make lock` runs this):
#   requirements/lock.txt          runtime + the dev, local-llm, mlflow, kubernetes and evals extras: what `make test` installs
#   requirements/lock-runtime.txt  runtime only, the same versions (what `make demo` installs)
# Pins already in the lock files are kept where pyproject still allows them; arguments go to
# pip-compile for the full lock, e.g. `requirements/lock.sh --upgrade` (or `make lock
# LOCK_ARGS=--upgrade`) for the newest of everything, `--upgrade-package NAME` for one package.
# pip-compile runs in a throw-away virtualenv, so the project's .venv stays as the lock has it.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
# pip-tools itself, pinned: another pip-tools or pip may write the same resolution differently.
TOOLS="pip==26.3 pip-tools==7.6.2"
# Both files: hashes for every package (pip then installs in hash-checking mode), setuptools
# included (torch requires it), extras written as their own packages (usable as constraints),
# and no index or find-links lines: those come from the machine's pip configuration.
OPTS=(--quiet --generate-hashes --allow-unsafe --strip-extras
      --no-emit-index-url --no-emit-find-links)
export CUSTOM_COMPILE_COMMAND="make lock"  # what pip-compile's own header names

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet $TOOLS
pip_compile=("$tmp/venv/bin/pip-compile" "${OPTS[@]}")

header() { # $1: what the file holds
    cat <<EOF
# $1
# Generated from pyproject.toml by \`make lock\` (requirements/lock.sh): do not edit by hand.
# After a change to the dependencies in pyproject.toml, run \`make lock\` and commit both
# requirements/lock.txt and requirements/lock-runtime.txt (tests/test_lock.py fails until then).
# Exactly, in a throw-away venv with $TOOLS and this machine's pip configuration:
#   pip-compile ${OPTS[*]:1} \\
#     --extra dev --extra local-llm --extra mlflow --extra kubernetes --extra evals -o requirements/lock.txt pyproject.toml
#   pip-compile ${OPTS[*]:1} \\
#     -c requirements/lock.txt -o requirements/lock-runtime.txt pyproject.toml
# Installed by the Makefile with \`pip install --require-hashes -r FILE\`, then
# \`pip install --no-deps -e .\` (an editable install has no file to hash).
#
# For CPython 3.11 on x86_64 Linux, the project's machines: resolved there, markers included.
# Hashes: every package has them, torch too. The torch line is the CPU build, 2.13.0+cpu, and
# its one hash is that of the wheel these machines keep on disk (pip's find-links,
# torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl). PyPI has no +cpu build (its torch
# 2.13.0 is the CUDA one, several GB), so where that file is missing pip stops at torch with
# "no matching distribution" rather than installing another build. To install there, give pip
# PyTorch's own CPU wheel index as an extra index: pip takes its torch-2.13.0+cpu only if it is
# byte-identical to ours, which could not be checked from here. Not covered by hashes: the
# build requirements pip installs to build a package from source (llama-cpp-python's
# scikit-build-core and cmake; setuptools for opsbot itself), which pip picks unpinned.
EOF
}

full=requirements/lock.txt
runtime=requirements/lock-runtime.txt
"${pip_compile[@]}" --extra dev --extra local-llm --extra mlflow --extra kubernetes --extra evals -o "$full" "$@" pyproject.toml
# The runtime lock is constrained to the full one, so both always hold the same versions.
"${pip_compile[@]}" -c "$full" -o "$runtime" pyproject.toml
{ header "opsbot's lock: runtime + the dev, local-llm, mlflow, kubernetes and evals extras (not gpu), what \`make test\` installs."; cat "$full"; } >"$tmp/full"
{ header "opsbot's runtime lock (no extras), what \`make demo\` installs: a subset of lock.txt."; cat "$runtime"; } >"$tmp/runtime"
mv "$tmp/full" "$full"
mv "$tmp/runtime" "$runtime"
echo "wrote $full and $runtime"
