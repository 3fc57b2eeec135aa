"""The cost of the filters, per directory entry: the scan asks Rules.excluded once for
every entry of SRC and of DST, so on a tree of millions of entries a microsecond each
is seconds in all. pytest-benchmark times one call per kind of path."""

import pytest

from fastsync.filters import Rules

RULES = Rules.parse([("--exclude", ".snapshot/"), ("--exclude", "~snapshot/"),
                     ("--exclude", "*.tmp"), ("--include", "/projects/keep/***"),
                     ("--exclude", "build/**/*.o")])
TAIL = Rules.parse([("--exclude", "**/*.tmp"), ("--exclude", "a/b/*.o"),
                    ("--exclude", "*.bak")])

PATHS = {
    "typical 45 B": b"projects/alpha/src/module/sub/file_000123.c",
    "long name 63 B": b"home/user/documents/2023/reports/quarterly report final v2.docx",
    "excluded dir": b"x/.snapshot",
}


@pytest.mark.parametrize("label", list(PATHS))
def test_five_rules(benchmark, label):
    path = PATHS[label]
    benchmark.group = "filters: one entry, 5 rules"
    benchmark(RULES.excluded, path, False)


def test_a_4_kb_path(benchmark):
    deep = b"/".join(b"component_%03d" % i for i in range(300))
    benchmark.group = "filters: one entry, 3 rules"
    benchmark(TAIL.excluded, deep, False)
