"""--exclude/--include rules and --priority classes (fastsync/filters.py): rsync's pattern
rules, the first match deciding, *-from files, names in any bytes, one-line errors, and
a stable description. Agreement with the real rsync: tests/integration/test_filters_rsync.py."""


import pytest

from fastsync import filters
from fastsync.errors import UsageError
from fastsync.filters import Priorities, Rules

F, D = False, True      # is_dir


def rules(*options: str) -> Rules:
    """rules("--exclude", "*.tmp", "--include", "x") -> Rules."""
    pairs = list(zip(options[::2], options[1::2]))
    return Rules.parse(pairs)


def ex(pattern: str) -> Rules:
    return rules("--exclude", pattern)


# ------------------------------------------------------------------- matching --

@pytest.mark.parametrize("pattern, rel, is_dir, expected", [
    # no '/': the last component, at any depth
    ("*.tmp", b"foo.tmp", F, True), ("*.tmp", b"a/b/foo.tmp", F, True),
    ("*.tmp", b"foo.tmp/x", F, False), ("*.tmp", b"foo.tmp", D, True),
    ("cache", b"cache", F, True), ("cache", b"x/cache", D, True),
    ("cache", b"cachex", F, False), ("cache", b"xcache", F, False),
    # case-sensitive
    ("*.tmp", b"x.TMP", F, False), ("X", b"x", F, False),
    # '*' matches a leading dot, never a '/'
    ("*", b".git", D, True), ("*.tmp", b".x.tmp", F, True), (".*", b"a/.hidden", F, True),
    ("a*c", b"a/c", F, False), ("*", b"a/b", F, True),
    # '?' and classes: one character, never '/'
    ("?.txt", b"a.txt", F, True), ("?.txt", b"ab.txt", F, False),
    ("a?c", b"a/c", F, False), ("[ab].txt", b"b.txt", F, True),
    ("[!ab].txt", b"b.txt", F, False), ("[^ab].txt", b"c.txt", F, True),
    ("[[:digit:]]*", b"1st", F, True), ("[a-c]x", b"bx", F, True), ("[]a]", b"]", F, True),
    # escapes; a pattern with no wildcard is literal, backslash included
    ("a\\*", b"a*", F, True), ("a\\*", b"ab", F, False), ("a\\b", b"a\\b", F, True),
    ("dir \\[1\\]", b"dir [1]", D, True), ("dir [1]", b"dir 1", D, True),
    ("dir [1]", b"dir [1]", D, False),
    # a trailing '/': directories only
    ("cache/", b"cache", D, True), ("cache/", b"cache", F, False),
    ("cache/", b"x/cache", D, True), ("*/", b"a", D, True), ("*/", b"a", F, False),
    # anchored: the whole path
    ("/tmp", b"tmp", D, True), ("/tmp", b"a/tmp", D, False), ("/a/b", b"a/b", F, True),
    ("/a/b", b"x/a/b", F, False), ("/*.txt", b"a.txt", F, True),
    ("/*.txt", b"d/a.txt", F, False), ("/tmp/", b"tmp", F, False),
    # a '/' inside: the tail of the path, at a component boundary
    ("foo/bar", b"foo/bar", F, True), ("foo/bar", b"x/y/foo/bar", F, True),
    ("foo/bar", b"xfoo/bar", F, False), ("foo/bar", b"foo/bar/x", F, False),
    ("a/*/c", b"x/a/b/c", F, True), ("a/*/c", b"a/b/b/c", F, False),
    ("b/c/", b"a/b/c", D, True), ("b/c/", b"a/b/c", F, False),
    # '**' crosses '/', wherever it stands
    ("**/d.txt", b"d.txt", F, True), ("**/d.txt", b"a/b/d.txt", F, True),
    ("**/d.txt", b"a/bd.txt", F, False), ("**/a/b", b"x/a/b", F, True),
    ("a/**/b", b"a/x/b", F, True), ("a/**/b", b"a/x/y/b", F, True),
    ("a/**/b", b"q/a/x/b", F, True), ("a/**/b", b"a/b", F, False),
    ("a/**", b"a/x/y", F, True), ("a/**", b"a", D, False), ("/a/**", b"q/a/x", F, False),
    ("/**/foo", b"foo", F, False), ("/**/foo", b"x/foo", F, True),
    ("foo**", b"foo", F, True), ("foo**", b"foox/y", F, True),
    ("foo**", b"z/foo/q", F, True), ("foo**", b"zfoo", F, False),
    ("**.txt", b"a/b.txt", F, True), ("a**t", b"a/b/t", F, True), ("a**t", b"x/ab/t", F, True),
    ("a**t", b"ba/t", F, False),    # tried at the start and after each "/", only
    ("*x**y?*", b"axyy", F, True),      # '**' is not atomic: the first 'y' must be tried
    # '***': the directory itself and all below it
    ("keep/***", b"keep", D, True), ("keep/***", b"keep", F, False),
    ("keep/***", b"keep/a/b", F, True), ("keep/***", b"x/keep/a", F, True),
    ("/keep/***", b"x/keep", D, False),
])
def test_a_pattern_matches_as_in_rsync(pattern, rel, is_dir, expected):
    assert ex(pattern).excluded(rel, is_dir) is expected


def test_no_rules_exclude_nothing():
    empty = Rules.parse([])
    assert not empty and len(empty) == 0 and empty.describe() == []
    assert not empty.excluded(b"a/b", False) and not empty.excluded(b"a", True)
    assert Rules.parse([("--exclude", "x")])


def test_no_match_is_included():
    assert not ex("*.tmp").excluded(b"a.txt", False)


def test_the_first_rule_that_matches_decides():
    keep_first = rules("--include", "foo.tmp", "--exclude", "*.tmp")
    assert not keep_first.excluded(b"foo.tmp", F)
    assert keep_first.excluded(b"bar.tmp", F)
    exclude_first = rules("--exclude", "*.tmp", "--include", "foo.tmp")
    assert exclude_first.excluded(b"foo.tmp", F)


def test_include_then_exclude_everything():
    only_txt = rules("--include", "*/", "--include", "*.txt", "--exclude", "*")
    assert not only_txt.excluded(b"a", D) and not only_txt.excluded(b"a/b/c.txt", F)
    assert only_txt.excluded(b"a/b/c.log", F)
    keep = rules("--include", "keep/***", "--exclude", "*")
    assert [keep.excluded(rel, d) for rel, d in [(b"keep", D), (b"keep/x/y", F),
                                                 (b"other", D), (b"keep", F)]] == [
        False, False, True, True]


def test_file_rules_skip_dir_only_rules_and_the_other_way_round():
    r = rules("--exclude", "cache/", "--include", "cache", "--exclude", "*")
    assert r.excluded(b"cache", D)          # the first rule, directories only
    assert not r.excluded(b"cache", F)      # the second: a file named cache
    assert r.excluded(b"other", F)


def test_names_in_any_bytes():
    r = rules("--exclude", "caf?", "--exclude", "*.bin")
    assert r.excluded(b"caf\xe9", F)                  # latin-1: one byte, one character
    assert r.excluded(b"caf\xc3\xa9", F)              # UTF-8 é: one character here
    assert r.excluded(b"x/\xff\xfe.bin", F)
    assert not r.excluded(b"caf\xe9s", F)
    assert ex("*\n*").excluded(b"a\nb", F)            # newlines in names
    assert ex("a*").excluded(b"x/a\nb", F)


def test_a_symlink_is_matched_as_what_the_caller_says():
    assert not ex("*/").excluded(b"link-to-dir", F)


# ---------------------------------------------------------------- prefixes, ! --

def test_dash_and_plus_prefixes_as_in_rsync():
    r = rules("--exclude", "+ keep.tmp", "--include", "- *.tmp")
    assert not r.excluded(b"keep.tmp", F) and r.excluded(b"x.tmp", F)
    assert r.describe() == ["+ keep.tmp", "- *.tmp"]
    # only "- " and "+ ": anything else is part of the pattern
    assert ex("-foo").excluded(b"-foo", F) and ex("+foo").excluded(b"+foo", F)
    assert ex("- !").excluded(b"!", F)
    assert ex("-  two").excluded(b" two", F)


def test_bang_clears_the_rules_before_it():
    r = rules("--exclude", "*.txt", "--include", "!", "--exclude", "*.tmp")
    assert r.describe() == ["- *.tmp"]
    assert not r.excluded(b"a.txt", F) and r.excluded(b"a.tmp", F)


# ------------------------------------------------------------------ *-from files --

def test_from_files_in_command_line_order(tmp_path):
    ex_file = tmp_path / "ex.txt"
    ex_file.write_bytes(b"# a comment\n; another\n\n*.tmp\r\n+ keep/***\r\n!x\n"
                        b"  spaces\n")
    in_file = tmp_path / "in.txt"
    in_file.write_bytes(b"*.md\r- *.log")               # CR alone ends a line, no EOL
    r = Rules.parse([("--include", "a.tmp"), ("--exclude-from", str(ex_file)),
                     ("--include-from", str(in_file)), ("--exclude", "*")])
    assert r.describe() == ["+ a.tmp", "- *.tmp", "+ keep/***", "- !x", "-   spaces",
                            "+ *.md", "- *.log", "- *"]
    assert not r.excluded(b"a.tmp", F) and r.excluded(b"b.tmp", F)
    assert r.excluded(b"x/keep/y.tmp", F)                   # *.tmp comes first
    assert not r.excluded(b"keep/y", F) and not r.excluded(b"d/r.md", F)
    assert r.excluded(b"x.log", F) and r.excluded(b"other", D)


def test_a_comment_must_start_the_line(tmp_path):
    f = tmp_path / "rules"
    f.write_bytes(b" #not a comment\n#a comment\n")
    assert Rules.parse([("--exclude-from", str(f))]).describe() == ["-  #not a comment"]


def test_bang_in_a_file_clears_what_came_before(tmp_path):
    f = tmp_path / "rules"
    f.write_text("*.tmp\n!\n*.log\n")
    r = Rules.parse([("--exclude", "a"), ("--exclude-from", str(f))])
    assert r.describe() == ["- *.log"]


def test_patterns_from_a_file_in_any_bytes(tmp_path):
    f = tmp_path / "rules"
    f.write_bytes(b"lat\xe9*\n")
    r = Rules.parse([("--exclude-from", str(f))])
    assert r.excluded(b"d/lat\xe9.bin", F) and not r.excluded(b"late.bin", F)
    assert r.describe() == ["- lat\\xe9*"]            # storable text: \xNN for such bytes


def test_an_empty_file_gives_no_rules(tmp_path):
    f = tmp_path / "rules"
    f.write_bytes(b"# nothing\n\n")
    assert not Rules.parse([("--exclude-from", str(f))])


# ------------------------------------------------------------------------ errors --

def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


@pytest.mark.parametrize("option, value, message", [
    ("--exclude", "", "--exclude '': the pattern is empty"),
    ("--include", "- ", "--include '- ': the pattern is empty"),
    ("--exclude", "+ ", "--exclude '+ ': the pattern is empty"),
    ("--exclude", "/", "--exclude '/': it names only the root of the tree"),
    ("--exclude", "a//b", "--exclude 'a//b': '//' never matches"),
    ("--exclude", "cache//", "--exclude 'cache//': '//' never matches"),
    ("--exclude", "a\nb//", "--exclude 'a\\nb//': '//' never matches"),
    ("--exclude-from", "-", "--exclude-from '-': reading patterns from standard input "
                            "is not supported"),
    ("--include-from", "-", "--include-from '-'"),
    ("--exclude-from", "no such file", "--exclude-from 'no such file': cannot read it "
                                       "(ENOENT: No such file or directory)"),
])
def test_bad_values_are_one_line_errors_naming_option_and_value(option, value, message):
    with pytest.raises(UsageError) as excinfo:
        Rules.parse([("--exclude", "ok"), (option, value)])
    assert one_line(excinfo).startswith(message)


def test_a_directory_as_a_from_file(tmp_path):
    with pytest.raises(UsageError) as excinfo:
        Rules.parse([("--include-from", str(tmp_path))])
    assert one_line(excinfo).startswith(f"--include-from {str(tmp_path)!r}: cannot read it "
                                        f"(EISDIR")


def test_a_bad_line_is_named_by_file_and_line(tmp_path):
    f = tmp_path / "rules.txt"
    f.write_bytes(b"# fine\n*.tmp\n\na//b\n")
    with pytest.raises(UsageError) as excinfo:
        Rules.parse([("--exclude-from", str(f))])
    assert one_line(excinfo).startswith(f"--exclude-from {f}:4: 'a//b': '//' never matches")
    f.write_bytes(b"x\n- \n")
    with pytest.raises(UsageError) as excinfo:
        Rules.parse([("--include-from", str(f))])
    assert one_line(excinfo) == f"--include-from {f}:2: '- ': the pattern is empty"
    f.write_bytes(b"a\x00b\n")
    with pytest.raises(UsageError, match=r":1: .*holds a NUL character"):
        Rules.parse([("--exclude-from", str(f))])


def test_a_from_file_with_a_space_in_its_name_is_quoted(tmp_path):
    f = tmp_path / "my rules"
    f.write_text("/\n")
    with pytest.raises(UsageError) as excinfo:
        Rules.parse([("--exclude-from", str(f))])
    assert one_line(excinfo).startswith(f"--exclude-from {str(f)!r}:1: '/': it names only")


def test_a_pattern_wcmatch_cannot_compile(monkeypatch):
    def refuse(pattern, flags):
        raise ValueError("too\nmuch")
    monkeypatch.setattr(filters.glob, "translate", refuse)
    with pytest.raises(UsageError) as excinfo:
        ex("*.tmp")
    assert one_line(excinfo) == ("--exclude '*.tmp': the pattern cannot be compiled "
                                 "(ValueError: too much)")


def test_an_unknown_option_is_a_programming_error():
    with pytest.raises(ValueError, match="--filter"):
        Rules.parse([("--filter", "- x")])


# ----------------------------------------------------------------------- describe --

def test_describe_is_canonical_and_stable(tmp_path):
    f = tmp_path / "rules"
    f.write_text("# c\n*.log\n+ /keep/\n")
    options = [("--exclude", "*.tmp"), ("--exclude-from", str(f)),
               ("--include", "a/**/b/"), ("--exclude", "- x")]
    first = Rules.parse(options).describe()
    assert first == ["- *.tmp", "- *.log", "+ /keep/", "+ a/**/b/", "- x"]
    assert Rules.parse(options).describe() == first
    # the same rules however given describe the same
    assert rules("--include", "- *.tmp", "--exclude", "*.log", "--exclude", "+ /keep/",
                 "--include", "a/**/b/", "--exclude", "x").describe() == first
    # and each line, read back as an rsync rule, gives the same rules
    assert Rules.parse([("--exclude", line) for line in first]).describe() == first
    assert rules("--exclude", "*.tmp").describe() != rules("--exclude", "*.TMP").describe()
    assert repr(Rules.parse(options)).startswith("Rules(['- *.tmp'")


# ---------------------------------------------------------------------- priorities --

def test_priorities_first_matching_pattern():
    p = Priorities(["*.db", "/urgent/", "docs/**"])
    assert len(p) == 3
    assert p.klass(b"x/a.db", F) == 0
    assert p.klass(b"urgent", D) == 1 and p.klass(b"urgent", F) == 3
    assert p.klass(b"docs/a/b.txt", F) == 2
    assert p.klass(b"docs/a.db", F) == 0        # earlier = higher
    assert p.klass(b"other", F) == 3
    assert p.describe() == ["*.db", "/urgent/", "docs/**"]
    assert p.describe() == Priorities(["*.db", "/urgent/", "docs/**"]).describe()


def test_no_priorities():
    p = Priorities([])
    assert len(p) == 0 and p.klass(b"a", F) == 0 and p.describe() == []


def test_priority_patterns_take_no_prefixes():
    p = Priorities(["- x", "!"])
    assert p.klass(b"- x", F) == 0 and p.klass(b"!", F) == 1 and p.klass(b"x", F) == 2


@pytest.mark.parametrize("pattern, message", [
    ("", "--priority '': the pattern is empty"),
    ("a//b", "--priority 'a//b': '//' never matches"),
])
def test_bad_priority(pattern, message):
    with pytest.raises(UsageError) as excinfo:
        Priorities(["ok", pattern])
    assert one_line(excinfo).startswith(message)
