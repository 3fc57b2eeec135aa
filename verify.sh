#!/usr/bin/env bash
# verify.sh -- show, in a clean temporary directory, that the built binary works:
#   1. set up test data (nested dirs, empty to multi-MiB files, odd names, a symlink)
#   2. run the sync tool (dist/fastsync, or $FASTSYNC_BIN)
#   3. validate the transferred files: existence, content and mtime
#   4. validate the catalog (every row synced, hashes = sha256sum) and the audit log
#   5. run again: nothing copied; change one file: exactly that file is copied
# Any mismatch prints "verify: FAIL: ..." and exits 1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${FASTSYNC_BIN:-$here/dist/fastsync}
fail() { echo "verify: FAIL: $*" >&2; exit 1; }
[ -x "$bin" ] || fail "$bin is missing: run ./build.sh first"
command -v python3 >/dev/null || fail "python3 is needed to read the catalog"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
echo "verify: working in $work with $bin"

# 1. test data ------------------------------------------------------------------
mkdir -p src/docs/deep/er src/media src/empty-dir dst
head -c 7340033 /dev/urandom >src/media/big.bin          # 7 MiB + 1: two blocks and a bit
head -c 5242880 /dev/urandom >src/media/exact-block.bin  # exactly one 5 MiB block
: >src/docs/empty.txt
printf 'hello\n' >src/docs/hello.txt
printf 'deep\n' >src/docs/deep/er/file.txt
printf 'spaces\n' >"src/docs/name with spaces.txt"
printf 'utf8\n' >"src/docs/ünïcødé.txt"
printf 'latin1\n' >"src/docs/$(printf 'caf\351').txt"
ln -s ../media/big.bin src/docs/link-to-big
touch -d '2021-03-04 05:06:07.123456789' src/docs/hello.txt
nfiles=$(find src -type f | wc -l)

# 2. run ------------------------------------------------------------------------
"$bin" --db catalog.db --log audit.log src dst >run1.out 2>&1 || {
    cat run1.out >&2; fail "fastsync exited with status $?"; }

# 3. files ----------------------------------------------------------------------
while IFS= read -r -d '' f; do
    rel=${f#src/}
    [ -f "dst/$rel" ] || fail "dst/$rel is missing"
    cmp -s "$f" "dst/$rel" || fail "dst/$rel differs from $f"
    [ "$(stat -c %y "$f")" = "$(stat -c %y "dst/$rel")" ] || fail "mtime of dst/$rel differs"
done < <(find src -type f -print0)
[ "$(readlink dst/docs/link-to-big)" = "../media/big.bin" ] || fail "symlink not recreated"
[ -d dst/empty-dir ] || fail "empty directory not created"
[ -z "$(find dst -name '.fastsync-*')" ] || fail "temporary files left in dst"
[ "$(stat -c %y dst/docs/hello.txt)" = "2021-03-04 05:06:07.123456789 +0000" ] ||
    [ "$(stat -c %y dst/docs/hello.txt)" = "$(stat -c %y src/docs/hello.txt)" ] ||
    fail "nanosecond mtime not preserved"

# 4. catalog and audit log ------------------------------------------------------
[ -s catalog.db ] || fail "catalog.db was not created"
[ -s audit.log ] || fail "audit.log was not created"
python3 - "$nfiles" <<'PY' || fail "catalog or audit log check failed"
import hashlib, json, os, sqlite3, sys
nfiles = int(sys.argv[1])
db = sqlite3.connect("catalog.db")
rows = db.execute("SELECT src_path, dst_path, hash, hash_algo, status, size FROM files"
                  " WHERE kind = 'file'").fetchall()
assert len(rows) == nfiles, f"{len(rows)} file rows, expected {nfiles}"
for src, dst, digest, algo, status, size in rows:
    path = src if isinstance(src, bytes) else src.encode()
    data = open(path, "rb").read()
    assert status == "synced", f"{src}: {status}"
    assert (algo, digest) == ("sha256", hashlib.sha256(data).hexdigest()), f"{src}: hash"
    assert size == len(data), f"{src}: size"
lines = [json.loads(l) for l in open("audit.log", encoding="utf-8")]
copied = [l for l in lines if l["op"] == "copy" and l["status"] == "ok"]
assert len(copied) == nfiles, f"{len(copied)} copy lines, expected {nfiles}"
for l in copied:
    data = open(os.fsencode(l["src"]), "rb").read()
    assert l["hash"] == "sha256:" + hashlib.sha256(data).hexdigest(), l
    assert os.path.exists(os.fsencode(l["dst"])), l
PY

# 5. incremental runs -----------------------------------------------------------
"$bin" -q --db catalog.db --log audit.log src dst || fail "second run exited with $?"
copied=$(grep -c '"op":"copy","status":"ok"' audit.log)
[ "$copied" -eq "$nfiles" ] || fail "second run copied again ($copied copy lines)"
printf 'changed\n' >src/docs/hello.txt
"$bin" -q --db catalog.db --log audit.log src dst || fail "third run exited with $?"
cmp -s src/docs/hello.txt dst/docs/hello.txt || fail "changed file not updated"
copied=$(grep -c '"op":"copy","status":"ok"' audit.log)
[ "$copied" -eq $((nfiles + 1)) ] || fail "third run should copy exactly one file"

echo "verify: OK: $nfiles files copied and verified; catalog and audit log correct;" \
     "unchanged files skipped; a changed file updated"
