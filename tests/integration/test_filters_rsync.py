"""--exclude/--include against the real rsync: for each row of rules, the set of paths
`rsync -a --dry-run` would copy from a real tree equals the set fastsync's rules keep
(walking top-down, never into an excluded directory). Rows where fastsync knowingly
differs (fastsync/filters.py, "Known differences") must differ exactly as documented."""

from __future__ import annotations

import os
import random
import shutil
import subprocess

import pytest

from fastsync.filters import Rules

RSYNC = shutil.which("rsync")
pytestmark = pytest.mark.skipif(RSYNC is None, reason="rsync is not installed")

# files, then directories (ending in '/'), relative to SRC; bytes: names need not be UTF-8
FILES = [
    b"foo.tmp", b"x.TMP", b".hidden", b".x.tmp", b"cache", b"keep.txt", b"plain.txt",
    b"name with space.txt", b"dir [1]/br[a]cket.txt", b"dir 1/one.txt", b"[abc", b"-dash",
    b"caf\xc3\xa9.txt", b"cafe.txt", b"lat\xe9.bin", b"A.txt", b"b.txt", b"1.txt",
    b".snapshot/hourly.0/f.txt", b".snapshot/hourly.1/g.txt", b"~snapshot/x.txt",
    b"sub/cache/c.bin", b"sub/cache.txt", b"sub/deep/cache", b"sub/.git/config",
    b"a/b/c/d.txt", b"a/b/c/e.log", b"a/b/c/.hidden.tmp", b"a/b/x.txt", b"a/x.txt",
    b"a/b.txt", b"a/tmp/t.txt", b"a/foo.tmp", b"a/keep/inner.txt",
    b"x/a/b/f.txt", b"x/a/b/c/d.txt", b"xa/b/g.txt",
    b"keep/k1.txt", b"keep/deep/k2.bin", b"other/keep",
    b"foo/bar.txt", b"foox/y.txt", b"z/foo/q.txt", b"z/foox", b"tmp/top.txt",
    b"docs/.keep", b"docs/guide.md", b"n]", b"[a/b]", b"sp/  ",
]
DIRS = [b"empty/", b"a/empty/"]
LINKS = {b"link-to-a": b"a"}        # a symlink to a directory is not a directory to rules

# (rules, documented difference or None): a rule argument ("FILE", text) is an
# --exclude-from file with that text; ("IFILE", text) an --include-from file.
# A documented difference is (paths only fastsync copies, paths only rsync copies).
ROWS = {
    # last component, at any depth
    "star-suffix": (["--exclude", "*.tmp"], None),
    "case-sensitive": (["--exclude", "*.TMP"], None),
    "dotfiles-by-star": (["--exclude", ".*"], None),
    "star-matches-dot": (["--exclude", "*hidden*"], None),
    "everything": (["--exclude", "*"], None),
    "literal-name": (["--exclude", "cache"], None),
    "space-in-name": (["--exclude", "name with space.txt"], None),
    # trailing slash: directories only
    "dir-only": (["--exclude", "cache/"], None),
    "dir-only-star": (["--exclude", "*/"], None),
    "netapp-snapshots": (["--exclude", ".snapshot/", "--exclude", "~snapshot/"], None),
    # anchored
    "anchored-file": (["--exclude", "/cache"], None),
    "anchored-dir": (["--exclude", "/tmp/"], None),
    "anchored-deep": (["--exclude", "/a/b"], None),
    "anchored-star": (["--exclude", "/*.txt"], None),
    # unanchored with a slash: the tail of the path, at a component boundary
    "tail-two": (["--exclude", "a/b"], None),
    "tail-star": (["--exclude", "a/*.txt"], None),
    "tail-three": (["--exclude", "b/c/d.txt"], None),
    "tail-star-dir": (["--exclude", "*/c/"], None),
    # ?, classes, escapes
    "question": (["--exclude", "?.txt"], None),
    "class": (["--exclude", "[ab].txt"], None),
    "class-negated": (["--exclude", "[!a-z]*.txt"], None),
    "class-caret": (["--exclude", "[^.]*.tmp"], None),
    "class-posix": (["--exclude", "[[:upper:]]*"], None),
    "class-in-name": (["--exclude", "dir [1]"], None),
    "escaped-brackets": (["--exclude", "dir \\[1\\]"], None),
    "brackets-in-file-name": (["--exclude", "br\\[a\\]*"], None),
    "non-utf8-question": (["--exclude", "lat?.bin"], None),
    # ** in several positions
    "starstar-prefix": (["--exclude", "**/d.txt"], None),
    "starstar-prefix-dir": (["--exclude", "**/cache/"], None),
    "starstar-infix": (["--exclude", "a/**/d.txt"], None),
    "starstar-infix-needs-a-dir": (["--exclude", "a/**/x.txt"], None),
    "starstar-suffix": (["--exclude", "a/**"], None),
    "starstar-anchored-suffix": (["--exclude", "/a/**"], None),
    "starstar-anchored-prefix": (["--exclude", "/**/foo.tmp"], None),
    "starstar-glued-suffix": (["--exclude", "foo**"], None),
    "starstar-glued-prefix": (["--exclude", "**.txt"], None),
    "starstar-glued-infix": (["--exclude", "a**t"], None),
    "starstar-then-star": (["--exclude", "*/**/*.txt"], None),
    "triple-star": (["--exclude", "keep/***"], None),
    "triple-star-anchored": (["--exclude", "/a/b/***"], None),
    # include, then exclude: the first match decides
    "only-txt-everywhere": (["--include", "*/", "--include", "*.txt", "--exclude", "*"],
                            None),
    "only-keep-tree": (["--include", "keep/***", "--exclude", "*"], None),
    "include-inside-excluded-dir": (["--include", "a/b/c/d.txt", "--exclude", "a/"],
                                    None),
    "include-path-to-deep": (["--include", "/a/", "--include", "/a/b/", "--include",
                              "/a/b/c/***", "--exclude", "*"], None),
    "include-starstar-deep": (["--include", "*/", "--include", "a/**/d.txt", "--exclude",
                               "*"], None),
    "include-glued-starstar": (["--include", "foo**", "--exclude", "*"], None),
    "include-first-wins": (["--include", "foo.tmp", "--exclude", "*.tmp"], None),
    "exclude-first-wins": (["--exclude", "*.tmp", "--include", "foo.tmp"], None),
    # "- "/"+ " prefixes and "!"
    "prefix-include": (["--exclude", "+ foo.tmp", "--exclude", "*.tmp"], None),
    "prefix-exclude": (["--include", "- *.txt"], None),
    "clear": (["--exclude", "*.txt", "--exclude", "!", "--exclude", "*.tmp"], None),
    # *-from files: comments, prefixes, CRLF, order
    "exclude-from": ([("FILE", "# comment\n; another\n\n*.tmp\r\n+ keep/***\r\nk*\n")],
                     None),
    "include-from": ([("IFILE", "*/\n*.md\n- *\n")], None),
    "from-in-order": (["--include", "*.log", ("FILE", "*/\n"), "--exclude", "*"], None),
    "from-line-of-spaces": ([("FILE", "  \n")], None),
    # known differences
    "multibyte-question": (["--exclude", "caf?.txt"],
                           (set(), {b"caf\xc3\xa9.txt"})),
    "unclosed-bracket": (["--exclude", "[abc"], (set(), {b"[abc"})),
    "unknown-posix-class": (["--exclude", "[[:nosuch:]]"], (set(), {b"n]"})),
    "slash-in-brackets": (["--exclude", "[a/b]"], (set(), {b"[a/b]"})),
    "trailing-backslash": (["--exclude", "*.tmp\\"],
                           (set(), {b"foo.tmp", b".x.tmp", b"a/foo.tmp",
                                    b"a/b/c/.hidden.tmp"})),
}


def _make(root: bytes, files=FILES, dirs=DIRS, links=LINKS) -> None:
    for rel in files:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(rel)
    for rel in dirs:
        os.makedirs(os.path.join(root, rel), exist_ok=True)
    for rel, target in links.items():
        os.symlink(target, os.path.join(root, rel))


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> bytes:
    root = os.fsencode(tmp_path_factory.mktemp("filters") / "src")
    os.mkdir(root)
    _make(root)
    return root


def _args(rules: list, where) -> tuple[list, list]:
    """The rsync arguments, and the (option, value) pairs for Rules.parse."""
    argv, options, it = [], [], iter(rules)
    for item in it:
        if isinstance(item, tuple):
            kind, text = item
            path = where / f"rules-{len(options)}"
            path.write_bytes(text.encode())
            option = "--exclude-from" if kind == "FILE" else "--include-from"
            value = str(path)
        else:
            option, value = item, next(it)
        argv += [option, value]
        options.append((option, value))
    return argv, options


def rsync_copies(src: bytes, argv: list, where) -> set[bytes]:
    dst = where / "dst"
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir()
    proc = subprocess.run([RSYNC, "-a", "-8", "--dry-run", "--out-format=%n", *argv,
                           os.fsencode(src) + b"/", os.fsencode(dst) + b"/"],
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    lines = proc.stdout.splitlines()
    return {line.rstrip(b"/") for line in lines if line not in (b"./", b"")}


def fastsync_copies(src: bytes, rules: Rules) -> set[bytes]:
    kept: set[bytes] = set()

    def walk(path: bytes, prefix: bytes) -> None:
        with os.scandir(path) as entries:
            for entry in entries:
                rel = prefix + entry.name
                is_dir = entry.is_dir(follow_symlinks=False)
                if rules.excluded(rel, is_dir):
                    continue        # an excluded directory is never walked
                kept.add(rel)
                if is_dir:
                    walk(entry.path, rel + b"/")

    walk(src, b"")
    return kept


@pytest.mark.parametrize("row", list(ROWS))
def test_same_as_rsync(row, tree, tmp_path):
    rules, difference = ROWS[row]
    argv, options = _args(rules, tmp_path)
    theirs = rsync_copies(tree, argv, tmp_path)
    ours = fastsync_copies(tree, Rules.parse(options))
    if difference is None:
        assert ours == theirs
    else:
        only_ours, only_theirs = difference
        assert (ours - theirs, theirs - ours) == (only_ours, only_theirs)


def test_rows_cover_enough():
    assert len(ROWS) >= 30
    assert sum(1 for _, d in ROWS.values() if d is not None) == 5


def test_the_table_is_not_vacuous(tree, tmp_path):
    """Every row that should agree changes what is copied (or is '*', all gone)."""
    everything = rsync_copies(tree, [], tmp_path)
    assert len(everything) > 60
    for row, (rules, difference) in ROWS.items():
        if difference is None:
            _, options = _args(rules, tmp_path)
            assert fastsync_copies(tree, Rules.parse(options)) != everything, row


# ------------------------------------------------------------- random patterns --

FUZZ_FILES = [b"ab", b"bb", b".b", b"a.txt", b"b.txt", b"x/b.txt", b"x/a.b", b"a/a",
              b"a/ab", b"a/b/a", b"a/b/b.txt", b"a/x/b", b"a/x/y/b", b"b/a/b", b"b/a/x/b",
              b"x/a/b/a", b"x/ab/b", b"ba/b/a.txt", b".a/a", b"x/.a/b", b"x/a/x",
              b"*", b"a*", b"x/**", b"b/a*/c"]
TOKENS = ["a", "b", "x", ".", "*", "*", "**", "***", "?", "/", "/", "[ab]", "[!a]", ".txt"]


def _random_patterns(n: int) -> list[str]:
    rng = random.Random(20240611)
    patterns = []
    while len(patterns) < n:
        pattern = "".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 6)))
        # "//" is refused (it never matches in rsync): tests/unit/test_filters.py
        if pattern.strip("/") and "//" not in pattern and pattern not in patterns:
            patterns.append(pattern)
    return patterns


@pytest.fixture(scope="module")
def fuzz_tree(tmp_path_factory) -> bytes:
    root = os.fsencode(tmp_path_factory.mktemp("fuzz") / "src")
    os.mkdir(root)
    _make(root, FUZZ_FILES, [b"e/", b"a/e/"], {})
    return root


# stars escaped or in brackets are characters: not '**', whatever rsync's flags say
EDGES = ["[a**]", "x[**]", "a[*]", "[**]/*", "a\\**", "\\**", "a\\*\\*b", "*\\**",
         "[*][*]", "[\\*]*", "*x**y?*"]


@pytest.mark.parametrize("pattern", _random_patterns(120) + EDGES)
def test_random_patterns_same_as_rsync(pattern, fuzz_tree, tmp_path):
    """Random patterns of a, b, *, **, ***, ?, /, classes: as an exclude (decides for
    directories, top-down), and as the first include before '*/' and '- *' (decides for
    every file at every depth)."""
    for rules in (["--exclude", pattern],
                  ["--include", pattern, "--include", "*/", "--exclude", "*"]):
        argv, options = _args(rules, tmp_path)
        assert fastsync_copies(fuzz_tree, Rules.parse(options)) == \
            rsync_copies(fuzz_tree, argv, tmp_path), rules
