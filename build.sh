#!/usr/bin/env bash
# Build dist/fastsync, the one-file binary operators copy to a migration host, and
# smoke-test it (--version and a tiny sync). Creates .venv on first use.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[build]'

# The editable install compiled fastsync/_core in place; PyInstaller bundles that.
.venv/bin/python -m PyInstaller --onefile --name fastsync --clean --noconfirm --log-level WARN \
    --paths . --distpath dist --workpath build/pyinstaller --specpath build/pyinstaller \
    fastsync/__main__.py

bin="$PWD/dist/fastsync"
want="fastsync $(.venv/bin/python -c 'import fastsync; print(fastsync.__version__)')"
got=$("$bin" --version)
[ "$got" = "$want" ] || { echo "build: --version says '$got', expected '$want'" >&2; exit 1; }

smoke=$(mktemp -d)
trap 'rm -rf "$smoke"' EXIT
mkdir -p "$smoke/src/sub" "$smoke/dst"
head -c 3000000 /dev/urandom >"$smoke/src/sub/data.bin"
printf 'hello\n' >"$smoke/src/hello.txt"
(cd "$smoke" && "$bin" -q src dst) || { echo "build: the smoke sync failed" >&2; exit 1; }
diff -r "$smoke/src" "$smoke/dst" >/dev/null || { echo "build: smoke copy differs" >&2; exit 1; }
echo "build: $bin ($got) works"
