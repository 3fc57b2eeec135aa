"""What to copy: --exclude/--include rules and --priority classes, with rsync's pattern
semantics, compiled once (wcmatch translates the globs; one regular expression per kind of
entry runs them) so that a match costs about a microsecond per directory entry.

Rules are tried in command-line order; the first rule that matches an entry decides,
and an entry no rule matches is copied. An excluded directory is never walked, so
nothing below it is copied, whatever a later --include says (as in rsync):
`--include 'keep/***' --exclude '*'` copies the top-level `keep` and all it holds;
`--include '*/' --include '*.txt' --exclude '*'` copies every .txt file, at any depth
(every directory is walked; directories left empty are created, as rsync does).

A pattern is matched against the entry's path relative to the tree root (`a/b/c.txt`;
the root itself is never matched), case-sensitively, with rsync's rules:

  /pat      anchored: matched against the whole path from the root. `/tmp` is the
            top-level tmp only, not `a/tmp`.
  pat/      directories only: `cache/` excludes directories named cache, not a file
            named cache.
  foo/bar   a pattern with a '/' (other than a trailing one) and no '**' matches the
            end of the path at a component boundary: `foo/bar` matches `foo/bar` and
            `x/y/foo/bar`, never `xfoo/bar`.
  *.tmp     a pattern with no '/' and no '**' matches the last component, at any depth.
  *         any run of characters but '/', including none; `*` matches a leading dot
            (rsync has no dotfile rule): `*.tmp` matches `.x.tmp`, `*` matches `.git`.
  ?         one character but '/'.
  [a-z]     a class of one character but '/'; `[!a]` and `[^a]` negate it; POSIX
            classes (`[[:digit:]]`) and `\\` escapes inside work.
  \\x        the character x itself: `\\*` matches a '*'. A pattern with no wildcard
            (no '*', '?', '[') is literal, backslashes included (`a\\b` matches `a\\b`).
  **        any run of characters, '/' included, wherever it stands:
            `**/foo`   foo at any depth, top level included (rsync lets `**/` match at
                       the start);
            `a/**/b`   b at least one directory below a (`a/x/b`, `a/x/y/b`), not `a/b`;
            `a/**`     everything below a, not a itself;
            `foo**`    glued to other text it still crosses '/': foo, foox, foo/bar,
                       x/foox/y (any component starting with foo, and what is below);
            `/**/foo`  anchored: foo below the top level only (not `/foo` itself).
            A pattern with '**' is tried at the start and after every '/' of the path.
  dir/***   dir itself (if a directory) and everything below it (rsync's `***`).

A value may start with "- " or "+ " (a dash or plus and one space), as rsync allows:
`--include '- *.bak'` is an exclude rule, `--exclude '+ keep'` an include rule. A value
of "!" clears every rule given before it (rsync). *-from files hold one value a line
(the prefixes and "!" work there too); empty lines, and lines starting with '#' or ';',
are skipped; a line of spaces is a pattern, as in rsync; CR and LF end a line.

Known differences from rsync (each one a row of tests/integration/test_filters_rsync.py
that asserts the exact difference; everything else agrees with rsync 3.2.7, row by row
and on random patterns):

  - `?` and `[...]` match one character; rsync matches one byte, so `caf?.txt` matches
    `café.txt` here, not in rsync (UTF-8 `é` is two bytes). Names are decoded with
    os.fsdecode (surrogateescape): a byte that is not UTF-8 is one character, so there
    both agree (`lat?.bin` matches `lat\\xe9.bin`).
  - A malformed class never matches in rsync; wcmatch reads it literally:
    `[abc` (no closing bracket) matches a name `[abc`; `[[:nosuch:]]` is the class
    `[[:nosuch:]` then `]` (it matches `n]`); a '/' inside brackets makes them literal
    (`[a/b]` matches the path `[a/b]`: `b]` in a directory `[a`).
  - A pattern ending in one backslash (`*.tmp\\`) never matches in rsync; wcmatch drops
    the backslash (`*.tmp`).

Refused (UsageError), where rsync takes the rule: a pattern with '//' (it never matches
in rsync), `/` alone (the root is always copied), an empty pattern (also after "- "),
a NUL character, and `-` (standard input) as an *-from file.

Priorities (--priority PATTERN, repeatable, earlier = higher) use the same patterns
(with no "- "/"+ " prefixes and no "!"); an entry's class is the index of the first
pattern it matches, or the number of patterns if none does.

How: each pattern is translated by wcmatch (FORCEUNIX | DOTGLOB | CASE; no GLOBSTAR,
BRACE, EXTGLOB or NEGATE). rsync's `**` is not wcmatch's globstar: wcmatch's `a/**/b`
also matches `a/b` and its `foo**` is `foo*`; so each run of two or more '*' is handed
to wcmatch as a placeholder that becomes `.*` in its output. The rules are joined into
one regular expression per kind of entry (files; directories), an alternation that
re.fullmatch runs on '/' + path (+ '/' for a directory: rsync's `***` needs it); the
first alternative that matches names the rule. A pattern that can only match the last
k+1 components (k slashes, no '**', or `**/` and no other '**') finds where they
start without backtracking. Cost, measured: about 1 µs per entry for five usual rules,
flat in the path's length; a pattern with several '**' costs more on long paths
(`**/.*/**/*~`: 3 µs at 100 characters, 0.3 ms at 1000).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass

from wcmatch import glob

from .errors import UsageError, describe as describe_error

_FLAGS = glob.FORCEUNIX | glob.DOTGLOB | glob.CASE

# A run of two or more '*' goes to wcmatch as this text. Outside brackets wcmatch escapes
# the '#' (re.escape), inside it does not, which tells the two apart in its output; NUL
# cannot occur in a name, nor in a pattern (refused).
_STARS = "\x00#"
_STARS_OUT = "\x00\\#"         # what wcmatch emits for it outside brackets

_ENCODING = sys.getfilesystemencoding()
_ERRORS = sys.getfilesystemencodeerrors()

# the options Rules.parse takes
OPTIONS = ("--exclude", "--include", "--exclude-from", "--include-from")


@dataclass(frozen=True)
class _Pattern:
    text: str           # as given (without a "- "/"+ " prefix)
    dir_only: bool      # ends in '/': directories only
    file_re: str        # regex over '/' + rel, or "" if it cannot match a file
    dir_re: str         # regex over '/' + rel + '/'


@dataclass(frozen=True)
class _Rule:
    include: bool
    pattern: _Pattern

    def describe(self) -> str:
        return ("+ " if self.include else "- ") + _printable(self.pattern.text)


class _Matcher:
    """The first of a list of patterns that matches an entry, in one regex call."""

    __slots__ = ("_files", "_dirs", "_file_index", "_dir_index")

    def __init__(self, patterns: list[_Pattern]):
        self._files, self._file_index = _alternation(
            [(i, p.file_re) for i, p in enumerate(patterns) if p.file_re])
        self._dirs, self._dir_index = _alternation(
            [(i, p.dir_re) for i, p in enumerate(patterns)])

    def first(self, rel: bytes, is_dir: bool) -> int | None:
        """Index of the first pattern matching rel, or None (always for the root, b"")."""
        if not rel:
            return None
        if is_dir:
            regex = self._dirs
            if regex is None:
                return None
            m = regex.fullmatch("/" + rel.decode(_ENCODING, _ERRORS) + "/")
            return None if m is None else self._dir_index[m.lastindex]
        regex = self._files
        if regex is None:
            return None
        m = regex.fullmatch("/" + rel.decode(_ENCODING, _ERRORS))
        return None if m is None else self._file_index[m.lastindex]


def _alternation(alternatives: list[tuple[int, str]]
                 ) -> tuple[re.Pattern | None, dict[int, int]]:
    """One regex trying each alternative in order (a regex alternation tries them left
    to right), and a map from the group that closes each alternative to its index."""
    if not alternatives:
        return None, {}
    parts, index, group = [], {}, 0
    for i, regex in alternatives:
        group += 1
        index[group] = i
        parts.append(f"({regex})")
        group += re.compile(regex).groups
    # lastindex is the outermost group that closed last: the alternative's own group,
    # whatever groups it holds (wcmatch emits none)
    return re.compile("|".join(parts), re.DOTALL), index


def _translate(body: str) -> str:
    """wcmatch's regex for a glob (rsync's '**' already a placeholder), as a group
    without the ^...$ anchors."""
    patterns, excludes = glob.translate(body, flags=_FLAGS)
    if len(patterns) != 1 or excludes:
        raise ValueError("wcmatch split it into several patterns")
    regex = patterns[0]
    if not (regex.startswith("^") and regex.endswith("$")):
        raise ValueError(f"unexpected translation {regex!r}")
    regex = regex[1:-1]
    if _STARS[0] in regex:
        # rsync's ** crosses '/'; inside brackets the stars are just '*' characters.
        # wcmatch makes "a star up to the next star" atomic when that stretch has a
        # fixed length; with a '.*' in it, it no longer has: back to a plain group.
        regex = (regex.replace(_STARS_OUT, ".*").replace(_STARS, "**")
                 .replace("(?>", "(?:"))
        if _STARS[0] in regex:
            raise ValueError(f"unexpected translation {regex!r}")
    return regex


def _mark_stars(text: str) -> str:
    """Each unescaped run of two or more '*' as the placeholder wcmatch passes through."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            out.append(text[i:i + 2])
            i += 2
        elif c == "*":
            j = i
            while j < n and text[j] == "*":
                j += 1
            out.append(_STARS if j - i > 1 else "*")
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


class _Refused(ValueError):
    """A pattern refused, with the reason for the user."""


def _compile(text: str) -> _Pattern:
    """A pattern, as rsync reads it (exclude.c: add_rule, rule_matches)."""
    if not text:
        raise _Refused("the pattern is empty")
    if "\x00" in text:
        raise _Refused("the pattern holds a NUL character")
    if "//" in text:
        raise _Refused("'//' never matches (a path has single slashes; rsync takes the "
                       "rule and never matches it); write one '/'")
    pat = text
    dir_only = len(pat) > 1 and pat.endswith("/")
    if dir_only:
        pat = pat[:-1]
    anchored = pat.startswith("/")
    body = pat[1:] if anchored else pat
    if not body:
        raise _Refused("it names only the root of the tree, which is always copied")
    wild = any(c in pat for c in "*?[")       # else literal, backslashes too
    wild2 = wild and "**" in pat
    wild3 = wild2 and pat.endswith("***")     # a directory also gets a trailing '/'
    lead = re.match(r"\*\*+/", pat)
    if lead and "**" not in pat[lead.end():]:
        # "**/rest", no other '**' (`**/*.tmp`): rsync lets "**/" match at the start,
        # so this is rest matched against the last components of the path (as many as
        # rest has), which is quicker to find than by trying every '/'
        body, wild2 = pat[lead.end():], False
    regex = _translate(_mark_stars(body) if wild else glob.escape(body))
    if anchored:
        file_prefix = dir_prefix = "/"      # the subject is '/' + rel
    elif wild2 and pat.startswith("**"):
        file_prefix = dir_prefix = ""       # rsync: '/' + rel, so "**/x" matches x
    elif wild2:
        file_prefix = dir_prefix = ".*/"    # at the start or after any '/'
    else:
        # the last k+1 components for a pattern with k slashes: the '/' before them,
        # found without backtracking (a directory's subject ends in one more '/')
        k = body.count("/")
        more = "(?:[^/]*/)" + (f"{{{k}}}" if k > 1 else "") if k else ""
        file_prefix = f"(?>.*/(?={more}[^/]*\\Z))" if k else "(?>.*/)"
        dir_prefix = f"(?>.*/(?={more}[^/]*/\\Z))"
    file_re = "" if dir_only else file_prefix + regex
    dir_re = dir_prefix + regex + ("" if wild3 else "/")
    return _Pattern(text, dir_only, file_re, dir_re)


def _pattern(text: str, where: str) -> _Pattern:
    try:
        return _compile(text)
    except _Refused as e:
        raise UsageError(f"{where}: {e}") from None
    except Exception as e:      # wcmatch or re could not take it
        raise UsageError(f"{where}: the pattern cannot be compiled "
                         f"({type(e).__name__}: {e})".replace("\n", " ")) from None


def _printable(text: str) -> str:
    """The text as it can be stored anywhere: bytes that were not UTF-8 as \\xNN."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def _show(text: str) -> str:
    """A value for a one-line message."""
    return repr(_printable(text))


def _show_path(path: str) -> str:
    """A file name for a one-line message: quoted only if it needs to be."""
    text = _printable(path)
    return text if text.isprintable() and " " not in text and "'" not in text \
        else repr(text)


_CLEAR = object()     # "!": the rules before it are dropped


def _rule(value: str, include: bool, where: str) -> _Rule | object:
    """One --exclude/--include value (or *-from line): "- " and "+ " prefixes, "!"."""
    if value == "!":
        return _CLEAR
    if value[:2] in ("- ", "+ "):
        include, value = value[0] == "+", value[2:]
    return _Rule(include, _pattern(value, where))


def _read(option: str, path: str) -> list[tuple[int, str]]:
    """The (line number, value) pairs of a *-from file."""
    if path == "-":
        raise UsageError(f"{option} '-': reading patterns from standard input is not "
                         f"supported; give a file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise UsageError(f"{option} {_show(path)}: cannot read it ({describe_error(e)})"
                         ) from None
    lines = []
    for number, line in enumerate(data.splitlines(), 1):     # \n, \r\n and \r
        if line and line[:1] not in (b"#", b";"):
            lines.append((number, os.fsdecode(line)))
    return lines


class Rules:
    """Ordered include/exclude rules; the first rule that matches an entry decides;
    no match = included."""

    __slots__ = ("_rules", "_matcher", "_include")

    def __init__(self, rules: list[_Rule] | tuple = ()):
        self._rules = list(rules)
        self._matcher = _Matcher([r.pattern for r in self._rules])
        self._include = [r.include for r in self._rules]

    @classmethod
    def parse(cls, options: list[tuple[str, str]]) -> Rules:
        """Rules from (option, value) pairs in command-line order: --exclude, --include
        (a pattern), --exclude-from, --include-from (a file of them, read now)."""
        rules: list[_Rule] = []
        for option, value in options:
            if option not in OPTIONS:
                raise ValueError(f"not a filter option: {option!r}")
            if option in ("--exclude", "--include"):
                found = [_rule(value, option == "--include", f"{option} {_show(value)}")]
            else:
                include = option == "--include-from"
                found = [_rule(line, include,
                               f"{option} {_show_path(value)}:{number}: {_show(line)}")
                         for number, line in _read(option, value)]
            for rule in found:
                if rule is _CLEAR:
                    rules.clear()
                else:
                    rules.append(rule)
        return cls(rules)

    def __bool__(self) -> bool:
        return bool(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def excluded(self, rel: bytes, is_dir: bool) -> bool:
        """Is this entry (path relative to the root, '/'-separated) left out?"""
        i = self._matcher.first(rel, is_dir)
        return i is not None and not self._include[i]

    def describe(self) -> list[str]:
        """The rules in order as rsync filter rules: ["- *.tmp", "+ /keep/", ...]."""
        return [r.describe() for r in self._rules]

    def __repr__(self) -> str:
        return f"Rules({self.describe()!r})"


class Priorities:
    """--priority PATTERN (repeatable; earlier = higher). Same pattern syntax as Rules."""

    __slots__ = ("_patterns", "_matcher")

    def __init__(self, patterns: list[str]):
        self._patterns = [_pattern(p, f"--priority {_show(p)}") for p in patterns]
        self._matcher = _Matcher(self._patterns)

    def __len__(self) -> int:
        return len(self._patterns)

    def klass(self, rel: bytes, is_dir: bool) -> int:
        """Index of the first pattern that matches rel, or len(self) if none does."""
        i = self._matcher.first(rel, is_dir)
        return len(self._patterns) if i is None else i

    def describe(self) -> list[str]:
        """The patterns, highest priority first."""
        return [_printable(p.text) for p in self._patterns]

    def __repr__(self) -> str:
        return f"Priorities({self.describe()!r})"
