"""fastsync manifest: write the catalog's hashes in the format `sha256sum -c` reads.

Usage:
  fastsync manifest [options]

Options:
  --db PATH        Catalog file [default: fastsync.db]
  --output PATH    Write PATH when the catalog holds one algorithm, PATH.<algorithm>
                   for each when it holds several; - writes to stdout (one algorithm
                   only). Without it: manifest.<algorithm> in the current directory
  --absolute       Write full DST paths, not paths relative to DST
  -q, --quiet      No note of what was written
  -h, --help       Show this help

One line per synced file with a hash, `<hex>  <path>`, sorted by path, as sha256sum,
md5sum, sha1sum and b2sum write and check them (blake2b is the 64-byte digest b2sum
computes). A name holding a backslash, a newline or a carriage return is written as
coreutils does: the line starts with a backslash and those characters are escaped (\\\\,
\\n, \\r). Other bytes, UTF-8 or not, are written as they are. Paths are relative to
DST, so that `cd DST && sha256sum -c /path/to/manifest.sha256` checks every file.

Read-only: the catalog is not locked, so this works while a run holds it (and shows
what that run had recorded when the manifest started). Each file is written under a
temporary name and renamed into place once complete.
"""

from __future__ import annotations

import os
import shlex
import sqlite3
import sys
import tempfile

from . import paths
from .catalog import from_db, open_readonly
from .errors import CatalogError, FatalError, UsageError, describe

TOOLS = {"md5": "md5sum", "sha1": "sha1sum", "sha256": "sha256sum", "blake2b": "b2sum"}
HASHED = "status = 'synced' AND kind = 'file' AND hash IS NOT NULL"


def main(args: dict, console) -> int:
    db = args["--db"]
    conn = open_readonly(db)
    try:
        conn.execute("BEGIN")       # one snapshot: the algorithms and the rows agree
        dst = from_db(conn.execute("SELECT value FROM meta WHERE key = 'dst'").fetchone()[0])
        algos = [r[0] for r in conn.execute(
            f"SELECT DISTINCT hash_algo FROM files WHERE {HASHED} ORDER BY 1")]
        if not algos:
            console.note("fastsync: manifest: no synced file has a hash yet; nothing written")
            return 0
        targets = outputs(args["--output"], algos, db)
        counts = write(conn, targets, None if args["--absolute"] else dst)
    except sqlite3.Error as e:
        raise CatalogError(f"catalog {db!r} cannot be read ({e})") from None
    except BrokenPipeError:     # `... --output - | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:
        raise FatalError(f"cannot write the manifest: {describe(e)}") from None
    finally:
        conn.close()
    for algo, target in targets.items():
        where = "stdout" if target == "-" else target
        console.note(f"fastsync: manifest: {counts[algo]:,} {algo} hashes written to {where}"
                     + ("" if target == "-" else
                        f"; check with: cd {_quote(dst)} && {TOOLS.get(algo, algo)} -c "
                        f"{_quote(os.fsencode(os.path.abspath(target)))}"))
    return 0


def outputs(output: str | None, algos: list[str], db: str) -> dict[str, str]:
    """Algorithm -> where its manifest goes ("-": stdout)."""
    if output is not None and not output.strip():
        raise UsageError("--output is an empty string")
    if output == "-" and len(algos) > 1:
        raise UsageError(f"the catalog holds {len(algos)} algorithms ({', '.join(algos)}): "
                         f"one stdout cannot take their manifests; give --output PATH")
    if output is None:
        targets = {a: f"manifest.{a}" for a in algos}
    elif len(algos) == 1:
        targets = {algos[0]: output}
    else:
        targets = {a: f"{output}.{a}" for a in algos}
    for target in targets.values():
        if target != "-":
            _writable(target, db)
    return targets


def _writable(target: str, db: str) -> None:
    """Never over the catalog (the rename would replace it) nor over a directory."""
    path = os.fsencode(target)
    catalog = os.fsencode(db)
    own = {paths._where(catalog + s.encode()) for s in ("", *paths.CATALOG_COMPANIONS)}
    own |= {paths._where(os.path.realpath(catalog) + s.encode())
            for s in paths.CATALOG_COMPANIONS}
    if paths._where(path) in own:
        raise UsageError(f"--output {target!r} is the catalog or one of its files")
    if os.path.isdir(path):
        raise UsageError(f"--output {target!r} is a directory")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"--output directory {os.fsdecode(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--output directory {os.fsdecode(parent)!r} is not writable")


def line(digest: str, name: bytes) -> bytes:
    """One line as coreutils writes it: `\\` first, and `\\`, newline and CR escaped, when
    the name holds any of them (the checker unescapes exactly those three)."""
    if b"\\" in name or b"\n" in name or b"\r" in name:
        name = name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
        return b"\\" + digest.encode() + b"  " + name + b"\n"
    return digest.encode() + b"  " + name + b"\n"


def relative(path: bytes, dst: bytes | None) -> bytes:
    if dst is None:
        return path
    prefix = dst if dst.endswith(b"/") else dst + b"/"
    if not path.startswith(prefix):
        raise CatalogError(f"the catalog's path {os.fsdecode(path)!r} is not under its DST")
    name = path[len(prefix):]
    return b"./-" if name == b"-" else name     # `-` alone means stdin to the checker


def write(conn: sqlite3.Connection, targets: dict[str, str], dst: bytes | None
          ) -> dict[str, int]:
    """Stream the rows, in path order, into one file per algorithm; each goes into place
    (renamed over its name) only once complete."""
    files = {algo: _Output(target) for algo, target in targets.items()}
    counts = dict.fromkeys(targets, 0)
    try:
        for dst_path, algo, digest in conn.execute(
                f"SELECT dst_path, hash_algo, hash FROM files WHERE {HASHED}"
                " ORDER BY dst_path"):
            files[algo].write(line(digest.lower(), relative(from_db(dst_path), dst)))
            counts[algo] += 1
        for out in files.values():
            out.commit()
    finally:
        for out in files.values():
            out.discard()
    return counts


class _Output:
    """A manifest being written: a temporary beside its final name, or stdout."""

    def __init__(self, target: str):
        self.target = target
        if target == "-":
            self.file, self.tmp = sys.stdout.buffer, None
            return
        parent = os.path.dirname(os.path.abspath(target))
        fd, self.tmp = tempfile.mkstemp(dir=parent, prefix=".manifest-", suffix=".tmp")
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)       # mkstemp's 0600 is for secrets; this is not
        self.file = os.fdopen(fd, "wb", buffering=1 << 16)

    def write(self, data: bytes) -> None:
        self.file.write(data)

    def commit(self) -> None:
        self.file.flush()
        if self.tmp is not None:
            os.fsync(self.file.fileno())
            self.file.close()
            os.replace(self.tmp, self.target)
            self.tmp = None

    def discard(self) -> None:
        if self.tmp is not None:
            self.file.close()
            os.unlink(self.tmp)
            self.tmp = None


def _quote(path: bytes) -> str:
    """A path for a shell command line the user may paste."""
    return shlex.quote(os.fsdecode(path))
