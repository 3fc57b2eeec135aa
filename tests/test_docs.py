"""The README is the operator's contract: it must match what the code does."""

import re
import sqlite3

from fastsync import cli, errors
from fastsync.catalog import SCHEMA

from .conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_ci_runs_the_readme_test_command():
    command = re.search(r"Run the whole test suite:\n\n```sh\n(.+)\n```", README).group(1)
    assert command in (ROOT / ".ci" / "run").read_text()


def test_every_option_is_documented():
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", cli.__doc__))
    assert options >= {"--db", "--log", "--bwlimit", "--checksum", "--delete-extras",
                       "--rescan", "--block-size", "--queue-capacity"}
    for option in options:
        assert f"`{option}" in README, option


def test_every_exit_status_is_documented():
    codes = {v for k, v in vars(errors).items() if k.startswith("EXIT_")}
    table = README[README.index("## Exit status"):]
    for code in codes - {130, 143}:
        assert f"\n| {code} |" in table, code
    assert "| 130 / 143 |" in table


def test_the_usage_text_names_every_exit_status():
    codes = {v for k, v in vars(errors).items() if k.startswith("EXIT_")}
    paragraph = cli.__doc__[cli.__doc__.index("Exit status:"):]
    for code in codes - {130, 143}:
        assert re.search(rf"(?<![\d/]){code} ", paragraph), code
    assert "130/143 interrupted" in paragraph


def test_every_catalog_column_is_documented():
    conn = sqlite3.connect(":memory:")
    for statement in SCHEMA.split(";\n"):
        if statement.strip():
            conn.execute(statement)
    columns = [r[1] for r in conn.execute("PRAGMA table_info(files)")]
    for column in columns:
        assert f"`{column}`" in README, column
