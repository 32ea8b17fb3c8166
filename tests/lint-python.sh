#!/bin/sh
# `make lint`'s Python part: the Python parts of library/ (the portable fallback and
# async_status's own answer, crates/ansible-async/library/fallback/), as assemble.sh joins
# them with the rules protocol-rules prints and as it packs them, must
#   - compile on every Python they run on: 2.7 and 3.6 to 3.13 (pyenv's, as tests/fallback
#     runs the fallback with them) and this machine's python3;
#   - pass pyflakes (undefined names, unused imports and variables), from a venv of its own
#     in .venv/lint.
# Works from anywhere; a missing interpreter is an error, not a skip.
set -eu
cd "$(dirname "$0")/.."
out=target/lint-python
rm -rf "$out" && mkdir -p "$out/library"
PYFLAKES_VERSION=3.2.0

cargo run --locked -q -p protocol-rules -- --python >"$out/rules.py"
cargo build --release --locked -q -p payload-pack
printf 'stand-in\n' >"$out/program"
ASSEMBLE_PYTHON_OUT=$out/python sh crates/ansible-async/library/assemble.sh "$out/library" \
    rules="$out/rules.py" pack=target/release/payload-pack x86_64="$out/program" aarch64="$out/program" >/dev/null
parts=$(find "$out/python" -name '*.py' | sort)

pyenv_root=$(pyenv root 2>/dev/null) || pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
status=0
for version in 2.7 3.6 3.7 3.8 3.9 3.10 3.11 3.12 3.13 system; do
    if [ "$version" = system ]; then
        python=$(command -v python3) || python=
    else
        python=$(find "$pyenv_root/versions" -maxdepth 3 -path "*/versions/$version.*/bin/python" 2>/dev/null | sort | tail -n 1)
    fi
    if [ -z "$python" ]; then
        echo "lint-python.sh: no Python $version (pyenv install $version.x)" >&2
        status=1
        continue
    fi
    # shellcheck disable=SC2086 # one argument per file
    "$python" -c '
import sys
for path in sys.argv[1:]:
    with open(path) as f:
        compile(f.read(), path, "exec")
' $parts || status=1
done

if [ ! -x .venv/lint/bin/pyflakes ]; then
    python3 -m venv .venv/lint
    .venv/lint/bin/python -m pip install --quiet "pyflakes==$PYFLAKES_VERSION"
fi
# shellcheck disable=SC2086 # one argument per file (python -m: the venv may have been made
# through another path to this folder, which its scripts' #! lines name)
.venv/lint/bin/python -m pyflakes $parts || status=1

[ "$status" = 0 ] && echo "python lint: $(echo "$parts" | wc -l) parts clean on 2.7, 3.6-3.13 and $(python3 -V)"
exit "$status"
