"""fastsync: copy a huge directory tree between mounted shares, resumably.

Usage:
  fastsync [options] [--exclude PATTERN | --include PATTERN | --exclude-from FILE |
           --include-from FILE | --priority PATTERN]... [--] SRC DST
  fastsync (-h | --help)
  fastsync --version

Commands, each with its own --help (a SRC named like one is written ./status):
  fastsync status     what the catalog says: counts, failures, runs, ETA (read-only,
                      also while a run holds the catalog)
  fastsync verify     read every synced file back at DST and compare its hash
  fastsync manifest   write the catalog's hashes in `sha256sum -c` format

Copies every file, directory and symlink under SRC to the same place under DST, reading
and writing at the same time. A catalog (SQLite) records what is done: an interrupted
run resumes its backlog without rescanning; once the backlog is empty, the next run
rescans SRC and DST and copies what is new or changed (a different size or mtime).
Nothing is ever deleted unless --delete-extras is given.

What to copy and in what order (each may be given more than once; README "Choosing
what to copy"):
  --exclude PATTERN   Leave out entries that match (rsync's rules: a leading / anchors
                      at SRC, a trailing / matches directories only, * stays within a
                      name, ** crosses /); an excluded directory is not even scanned,
                      and its DST copy is never deleted as an extra
  --include PATTERN   Keep entries that match, whatever a later --exclude says: the
                      first pattern that matches decides, in command-line order
  --exclude-from FILE  --exclude for each line of FILE (# and ; start comments)
  --include-from FILE  --include for each line of FILE
  --priority PATTERN  Copy pending files that match (or lie below a directory that
                      matches) first; an earlier --priority comes before a later one

Options:
  --db PATH           Catalog file (SQLite); created if missing, and tied to this
                      SRC and DST [default: fastsync.db]
  --log PATH          Audit log, one JSON line per file, appended
                      [default: fastsync-audit.log]
  --bwlimit RATE      Cap on file data per direction (reads from SRC and writes to
                      DST each), e.g. 20M; 0 or off means no cap. Or a timetable
                      (rclone's): "08:00,10M 18:00,off" every day, or
                      "Mon-08:00,10M Sat-00:00,off" by day of the week; the cap
                      changes on the minute, local time [default: 0]
  --checksum ALGO     Hash computed while reading: md5, sha1, sha256 or blake2b
                      [default: sha256]
  --delete-extras     After copying, delete what DST has and SRC does not (each entry
                      checked live on SRC first)
  --rescan            Scan even though the catalog has a pending backlog
  -n, --dry-run       Show what a run would copy, create, delete and fail, and change
                      nothing: not DST, not the catalog, not the audit log
  --files-from FILE   Only the paths listed in FILE (relative to SRC, one per line;
                      a directory with all it holds), and the directories leading to
                      them; the rest of the catalog is left as it is
  --from0             --files-from is NUL-separated (find -print0)
  --order-by ORDER    Inside a priority class: name (path order), size or mtime,
                      each with ,asc or ,desc (e.g. size,asc: small files first)
                      [default: name,asc]
  --max-delete N      Delete at most N entries with --delete-extras; the rest are
                      listed and kept (exit status 1). Without it, a mirror that would
                      delete more than half of DST (entries or bytes) deletes nothing
  --block-size SIZE   Size of one block in the read/write queue [default: 5M]
  --queue-capacity N  Blocks the readers may run ahead of the writers [default: 20]
  --streams N         Files read and written at the same time, 1 to 64, or auto:
                      2 on a local disk, 8 on NFS/SMB/FUSE [default: auto]
  --retries N         Further attempts of an operation after a transient error
                      (EIO, ETIMEDOUT, ESTALE, ...) [default: 5]
  --retry-delay SEC   Wait before the first retry; doubles each time, with jitter
                      [default: 1]
  --outage-timeout SEC  How long to wait for an unreachable share to come back
                      before stopping; 0 stops at once [default: 3600]
  --http              Serve the dashboard, a JSON API and /metrics while the run goes
                      on, on 127.0.0.1:8437 (--http=HOST:PORT for another address)
  --http-listen ADDR  The same, on ADDR (HOST:PORT; [::1]:PORT for IPv6)
  --http-token-file PATH  A token every HTTP request must carry (Authorization:
                      Bearer); required to listen beyond loopback
  --http-stall SEC    /health answers 503 once nothing has moved for this long
                      [default: 600]
  --progress FORMAT   human, or json: also one JSON object per line on stdout
                      every --stats seconds, for scripts [default: human]
  --stats SEC         Seconds between two JSON progress lines [default: 10]
  -q, --quiet         No progress, notes or summary; errors only (and one line
                      saying how many files failed, if any did)
  -v, --verbose       Also print a line per file copied
  -h, --help          Show this help
  --version           Show the version

Options are never abbreviated. SIZE and RATE take K, M, G, T (or KiB, MiB, GiB, TiB),
powers of 1024, or KB, MB, GB, TB, powers of 1000; fractions are fine (1.5G). RATE is
per second and needs its unit (20M = 20 MiB/s, 2048B = 2048 bytes/s): a bare number,
KiB/s to rsync, is refused.

Exit status: 0 all synced; 1 finished, but some files failed (they stay pending);
2 bad usage, path or catalog (nothing written); 3 stopped by a fatal error (e.g.
destination full); 4 the catalog or DST is in use by another fastsync; 70 internal error (a
bug: the run is recorded as failed, a traceback is printed); 130/143 interrupted by
SIGINT/SIGTERM (the catalog is consistent; run again to resume).

Ctrl-C or SIGTERM stops in order: files already written are finished and recorded.
Signalled again more than a second later, fastsync leaves at once.
"""

from __future__ import annotations

import logging
import os
import re
import resource
import signal
import sys
import traceback

from docopt import DocoptExit, docopt

from . import __version__, _core, faults
from .config import Config, check_retry_values, check_values
from .paths import check_paths
from .errors import EXIT_CRASH, EXIT_USAGE, FastsyncError, UsageError
from .extraction import remove_stale_extractions
from .progress import Console, ConsoleHandler, JsonLines
from .run import StopRequest, install_signals, run
from .filters import Priorities, Rules
from .selection import Order, Selection, read_files_from


def _usage_error(exc: DocoptExit, command: str = "") -> str:
    """docopt's complaint, as one line a person can act on."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid command line"
    options = re.findall(r"Option\(\S+, '(-[^']*)'", first) + re.findall(
        r"Option\('(-[^']*)'", first)
    if options:
        return f"unknown or repeated option {options[0]}"
    if "unmatched" in first or first.startswith("Usage"):
        return f"{command} takes options only" if command else "expected two paths, SRC and DST"
    return first


COMMANDS = ("status", "verify", "manifest")


def _long_options(doc: str) -> frozenset:
    return frozenset(re.findall(r"^\s*(?:-\w, )?(--[a-z][a-z-]*)", doc, re.M))


LONG_OPTIONS = _long_options(__doc__)


def _abbreviated(argv: list[str], options: frozenset = LONG_OPTIONS) -> str | None:
    """docopt takes any unambiguous prefix of a long option (`--del` for
    --delete-extras, `--bw` for --bwlimit): a typo in a cron line must not start a
    mirror. The first long option that is not written out in full, if any."""
    for arg in argv:
        if arg == "--":
            return None
        name = arg.split("=", 1)[0]
        if (name.startswith("--") and name not in options
                and any(o.startswith(name) for o in options)):
            return name
    return None


def _parse(argv: list[str], doc: str = __doc__, command: str = "") -> dict:
    # `--http=HOST:PORT`: docopt has no optional option arguments, so it is spelled
    # --http-listen inside (`--http` alone is a flag: a path after it is SRC).
    argv = [a for arg in argv for a in (
        ("--http-listen", arg[7:]) if arg.startswith("--http=") else (arg,))]
    options = _long_options(doc)
    short = _abbreviated(argv, options)
    hint = f"(see fastsync {command + ' ' if command else ''}--help)"
    if short is not None:
        full = ", ".join(sorted(o for o in options if o.startswith(short)))
        print(f"fastsync: error: unknown option {short} (options are never abbreviated: "
              f"{full}?) {hint}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    try:
        return docopt(doc, argv, version=f"fastsync {__version__}")
    except DocoptExit as e:
        print(f"fastsync: error: {_usage_error(e, command)} {hint}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except BrokenPipeError:     # `fastsync --help | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)


FILTER_OPTIONS = ("--exclude", "--include", "--exclude-from", "--include-from")


def _filter_options(argv: list[str], doc: str = __doc__) -> list[tuple[str, str]]:
    """The filter options in command-line order (docopt keeps each option's values in
    order, but not the order between --exclude and --include, which decides)."""
    takes_value = set(re.findall(r"^\s*(?:-\w, )?(--[a-z][a-z-]*)[ =][A-Z]", doc, re.M))
    found, args = [], iter(argv)
    for arg in args:
        if arg == "--":
            break
        name, eq, value = arg.partition("=")
        if name in FILTER_OPTIONS:
            found.append((name, value if eq else next(args, "")))
        elif name in takes_value and not eq:
            next(args, None)
    return found


def _selection(args: dict, argv: list[str], src: bytes) -> Selection:
    """--exclude/--include (and -from), --files-from, --priority, --order-by."""
    if args["--from0"] and not args["--files-from"]:
        raise UsageError("--from0 says how --files-from FILE is separated; give --files-from")
    scope = None if not args["--files-from"] else read_files_from(
        args["--files-from"], src, args["--from0"])
    return Selection(rules=Rules.parse(_filter_options(argv)),
                     priorities=Priorities(args["--priority"]),
                     scope=scope, order=Order.parse(args["--order-by"]))


def _max_delete(text: str | None) -> int | None:
    if text is None:
        return None
    if not re.fullmatch(r"\s*[0-9]{1,12}\s*", text):
        raise UsageError(f"--max-delete {text!r} is not a whole number (0 deletes nothing)")
    return int(text)


def _config(args: dict, argv: list[str] = ()) -> Config:
    rate, algo, block, capacity, streams = check_values(
        bwlimit=args["--bwlimit"], checksum=args["--checksum"],
        block_size=args["--block-size"], queue_capacity=args["--queue-capacity"],
        streams=args["--streams"])
    retries, delay, outage = check_retry_values(
        retries=args["--retries"], retry_delay=args["--retry-delay"],
        outage_timeout=args["--outage-timeout"])
    max_delete = _max_delete(args["--max-delete"])
    src, dst = check_paths(args["SRC"], args["DST"], args["--db"], args["--log"])
    selection = _selection(args, list(argv), src)
    return Config(src=src, dst=dst, db=args["--db"], log=args["--log"], bwlimit=rate,
                  checksum=algo, delete_extras=args["--delete-extras"],
                  rescan=args["--rescan"], block_size=block, queue_capacity=capacity,
                  streams=streams,
                  quiet=args["--quiet"], verbose=args["--verbose"], retries=retries,
                  retry_delay=delay, outage_timeout=outage, selection=selection,
                  dry_run=args["--dry-run"], max_delete=max_delete)


def _die_with_parent() -> None:
    """The one-file binary runs as the child of PyInstaller's unpacking parent (same
    executable; the bootloader marks the child with _PYI_PARENT_PROCESS_LEVEL). If that
    parent is killed with SIGKILL, die too instead of copying on as an orphan that holds
    the catalog lock."""
    if not getattr(sys, "frozen", False) or "_PYI_PARENT_PROCESS_LEVEL" not in os.environ:
        return
    _core.set_parent_death_signal(signal.SIGKILL)
    try:   # the parent may have died before we asked: then our parent is a reaper now
        alive = os.readlink(f"/proc/{os.getppid()}/exe") == os.readlink("/proc/self/exe")
    except OSError:
        alive = False
    if not alive:
        os._exit(137)


def _crashed(console: Console, error: BaseException) -> int:
    """A bug: one line saying what, then the traceback for a report."""
    console.error(f"fastsync: internal error: {type(error).__name__}: {error}")
    console.error("fastsync: this is a bug in fastsync; its traceback follows (please "
                  "include it in a report). What the catalog records as synced is; the "
                  "rest stays pending.")
    console.error("".join(traceback.format_exception(error)).rstrip("\n"))
    return EXIT_CRASH


def _json_lines(args: dict) -> JsonLines | None:
    """--progress json: JSON lines on stdout every --stats seconds (human on stderr)."""
    form = (args.get("--progress") or "human").strip().lower()
    if form not in ("human", "json"):
        raise UsageError(f"--progress {args['--progress']!r} is not human or json")
    stats = args.get("--stats") or "10"
    if not re.fullmatch(r"\s*([0-9]{1,6}(\.[0-9]{0,3})?|\.[0-9]{1,3})\s*", stats) \
            or not 0.1 <= float(stats) <= 86400:
        raise UsageError(f"--stats {stats!r} must be a number of seconds from 0.1 to 86400")
    return JsonLines(sys.stdout, float(stats)) if form == "json" else None


def _console(args: dict, json_lines: JsonLines | None = None) -> Console:
    quiet, verbose = args.get("--quiet", False), args.get("--verbose", False)
    console = Console(quiet=quiet, verbose=verbose, json_lines=json_lines)
    handler = ConsoleHandler(console)
    handler.setFormatter(logging.Formatter("fastsync: %(message)s"))
    logger = logging.getLogger("fastsync")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.ERROR if quiet else logging.INFO if verbose else logging.WARNING)
    return console


def _module(name: str):
    # Imported by name, where PyInstaller sees them: they go into dist/fastsync.
    from . import manifest, status, verify      # by name: PyInstaller bundles them
    return {"status": status, "verify": verify, "manifest": manifest}[name]


def _command(name: str, argv: list[str]) -> int:
    """`fastsync status|verify|manifest ...`: the module of that name parses its own
    usage (its docstring) and runs."""
    module = _module(name)
    args = _parse([name, *argv], module.__doc__, name)
    console = _console(args)
    try:
        return module.main(args, console)
    except FastsyncError as e:
        console.error(f"fastsync: error: {e}")
        return e.exit_code
    except Exception as e:      # a bug
        return _crashed(console, e)


def _more_descriptors() -> None:
    """The soft limit on open files raised to the hard one: a run on a share keeps many
    files in flight, and --http clients take descriptors from the same pool."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def main(argv: list[str] | None = None) -> int:
    _die_with_parent()
    _more_descriptors()
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        return _command(argv[0], argv[1:])
    args = _parse(argv)
    try:
        json_lines = _json_lines(args)
    except UsageError as e:
        print(f"fastsync: error: {e}", file=sys.stderr)
        return e.exit_code
    console = _console(args, json_lines)
    stop = StopRequest()
    if faults.active():
        console.error(f"fastsync: test-only fault injection is on: {faults.active()}")
    server = None
    try:
        config = _config(args, argv)
        server = _serve(args, config, console, stop)
        install_signals(stop)
        remove_stale_extractions()
        return run(config, console, stop, server.control if server else None)
    except FastsyncError as e:
        console.error(f"fastsync: error: {e}")
        return e.exit_code
    except Exception as e:      # a bug; run() recorded the run as failed
        return _crashed(console, e)
    finally:
        if server is not None:
            server.close()


def _serve(args: dict, config: Config, console: Console, stop: StopRequest):
    """--http: bind now (a port in use is status 2 before anything is written), then
    serve from a thread while the run goes on."""
    if not (args["--http"] or args["--http-listen"]):
        return None
    from .observe import Control, RunState
    from .schedule import rate_now
    from .web import Server, bind, parse_address, read_token
    host, port = parse_address(args["--http-listen"])
    token = read_token(args["--http-token-file"], host)
    stall = args["--http-stall"]
    if not re.fullmatch(r"\s*[0-9]{1,7}\s*", stall) or int(stall) < 1:
        raise UsageError(f"--http-stall {stall!r} must be a whole number of seconds")
    state = RunState(os.fsdecode(config.src), os.fsdecode(config.dst),
                     rate_now(config.bwlimit))
    server = Server(bind(host, port), state, config.db, token,
                    Control(stop, int(stall), state))
    console.observer = state
    server.start()
    console.note(f"fastsync: dashboard and API at {server.url}")
    return server
