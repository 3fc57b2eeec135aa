"""--http: the JSON API, /health and /metrics of a running copy, through real HTTP
(urllib) and Prometheus' own checker (promtool, Debian package prometheus)."""

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import urllib.error
import urllib.request

import pytest

from ..conftest import command, wait_for, write
from .test_cli import one_line_error

SLOW = ("--bwlimit", "1M", "--block-size", "128K")


def _start(pair, *extra, argv0=None):
    """A paced run with --http on a free port; returns (process, base URL)."""
    for i in range(8):
        write(pair.src / f"d{i}" / "big.bin", os.urandom(1 << 20))
    proc = subprocess.Popen([*(argv0 or command()),
                             *pair.args(*SLOW, "--http=127.0.0.1:0", *extra)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for line in proc.stderr:
        found = re.search(rb"dashboard and API at (http://\S+)", line)
        if found:
            return proc, found.group(1).decode()
    raise AssertionError(f"no URL announced; exit {proc.wait()}")


def _get(url, token=None, data=None):
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture
def running(pair, fastsync):
    """Through the shipped binary too (FASTSYNC_BIN): it must carry aiohttp and
    prometheus-client."""
    proc, url = _start(pair, argv0=fastsync.argv0)
    yield proc, url
    if proc.poll() is None:
        proc.terminate()
    proc.wait(60)


def test_status_health_runs_and_files_while_copying(pair, running):
    proc, url = running
    wait_for(lambda: json.loads(_get(url + "api/status")[1])["phase"] == "copying")
    first = json.loads(_get(url + "api/status")[1])["copy"]["bytes_done"]
    wait_for(lambda: json.loads(_get(url + "api/status")[1])["copy"]["bytes_done"] > first)
    status = json.loads(_get(url + "api/status")[1])
    assert status["src"] == str(pair.src) and status["copy"]["files_total"] == 8
    assert status["copy"]["files_synced_before"] == 0
    assert status["bwlimit_bytes_per_second"] == 1 << 20
    code, body = _get(url + "health")
    assert code == 200 and json.loads(body)["state"] == "copying"
    run, = json.loads(_get(url + "api/runs")[1])
    assert run["status"] is None and run["mode"] == "scan"
    page = json.loads(_get(url + "api/files?status=pending&limit=1")[1])
    assert len(page["files"]) == 1 and page["next"]
    rest = json.loads(_get(url + f"api/files?status=pending&limit=10&after={page['next']}")[1])
    assert page["files"][0]["src"] not in [f["src"] for f in rest["files"]]
    assert _get(url + "api/files?status=../etc")[0] == 400
    assert _get(url + "api/files?limit=100000")[0] == 400


@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool "
                    "(Debian package prometheus; .ci/run installs it)")
def test_metrics_pass_promtool_and_count_bytes(running):
    proc, url = running
    wait_for(lambda: b"fastsync_bytes_written_total 0.0" not in _get(url + "metrics")[1])
    code, body = _get(url + "metrics")
    assert code == 200
    check = subprocess.run(["promtool", "check", "metrics"], input=body,
                           capture_output=True)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    text = body.decode()
    written = float(re.search(r"^fastsync_bytes_written_total (\S+)$", text, re.M).group(1))
    assert written > 0
    assert 'fastsync_phase{phase="copying"} 1.0' in text
    for name in ('fastsync_retries_total{side="src"} 0.0', 'fastsync_outages_total{side="dst"}',
                 "fastsync_streams_busy ", "fastsync_queue_fill_ratio ",
                 "fastsync_backlog_bytes ", 'fastsync_share_unreachable{side="dst"} 0.0'):
        assert name in text, name
    assert "fastsync_bwlimit_bytes_per_second 1.048576e+06" in text


def test_stop_through_the_api_is_sigterm(pair, running):
    proc, url = running
    wait_for(lambda: json.loads(_get(url + "api/status")[1])["phase"] == "copying")
    code, _ = _get(url + "api/stop", data=b"{}")
    assert code == 200
    assert proc.wait(60) == 143
    conn = sqlite3.connect(pair.db)
    assert conn.execute("SELECT status FROM runs").fetchone()[0] == "interrupted"
    conn.close()


def test_a_token_is_required_when_given(pair, tmp_path):
    token = "s3cret-token-0123456789"
    (tmp_path / "token").write_text(token + "\n")
    proc, url = _start(pair, "--http-token-file", str(tmp_path / "token"))
    try:
        assert _get(url + "api/status")[0] == 401
        assert _get(url + "api/status", token="wrong-token-0123456789")[0] == 403
        assert _get(url + "api/status", token=token)[0] == 200
        assert _get(url + "api/stop", token="wrong-token-0123456789", data=b"{}")[0] == 403
        assert proc.poll() is None
        big = json.dumps({"rate": "1M", "pad": "x" * 10000}).encode()
        assert _get(url + "api/bwlimit", token=token, data=big)[0] == 413
    finally:
        proc.terminate()
        proc.wait(60)


def test_beyond_loopback_without_a_token_is_refused(fastsync, pair):
    write(pair.src / "f", b"x")
    one_line_error(fastsync(*pair.args("--http=0.0.0.0:0"), check=2),
                   "listening beyond loopback needs --http-token-file")
    assert os.listdir(pair.dst) == [] and not pair.db.exists()


def test_a_port_in_use_is_refused_before_anything_is_written(fastsync, pair):
    write(pair.src / "f", b"x")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        port = taken.getsockname()[1]
        one_line_error(fastsync(*pair.args(f"--http=127.0.0.1:{port}"), check=2),
                       f"--http 127.0.0.1:{port} is in use")
    finally:
        taken.close()
    assert os.listdir(pair.dst) == [] and not pair.db.exists()


def _written(url) -> int:
    copy = json.loads(_get(url + "api/status")[1]).get("copy")
    return copy["bytes_done"] if copy else 0


def _rate(url, seconds=2.0) -> float:
    import time
    before, started = _written(url), time.monotonic()
    time.sleep(seconds)
    return (_written(url) - before) / (time.monotonic() - started)


def test_pause_holds_the_copy_and_resume_goes_on(pair, running):
    import time
    proc, url = running
    wait_for(lambda: json.loads(_get(url + "api/status")[1])["phase"] == "copying")
    assert _get(url + "api/pause", data=b"{}")[0] == 200
    time.sleep(0.5)                   # the blocks being written when it came finish
    assert _rate(url, 1.5) == 0
    status = json.loads(_get(url + "api/status")[1])
    assert status["paused"] is True and status["phase"] == "paused"
    assert _get(url + "health")[0] == 200          # paused on purpose is not stalled
    assert _get(url + "api/resume", data=b"{}")[0] == 200
    assert _rate(url, 1.5) > 0.5 * (1 << 20)
    assert proc.wait(60) == 0


def test_the_cap_changes_live_through_the_api(pair, running):
    proc, url = running
    wait_for(lambda: _written(url) > 0)
    assert 0.6 * (1 << 20) < _rate(url) < 1.4 * (1 << 20)       # --bwlimit 1M
    code, body = _get(url + "api/bwlimit", data=b'{"rate": "3M"}')
    assert code == 200 and json.loads(body) == {"bwlimit_bytes_per_second": 3 << 20}
    assert 2.0 * (1 << 20) < _rate(url) < 4.0 * (1 << 20)
    status = json.loads(_get(url + "api/status")[1])
    assert status["bwlimit_bytes_per_second"] == 3 << 20
    assert _get(url + "api/bwlimit", data=b'{"rate": "20480"}')[0] == 400   # no unit
    assert _get(url + "api/bwlimit", data=b'{"speed": 1}')[0] == 400
    assert proc.wait(60) == 0


def _raw(url, method, path, headers, body=b""):
    """One request with exactly these headers (urllib adds its own Host)."""
    import http.client
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.putrequest(method, "/" + path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def test_a_page_elsewhere_can_neither_read_nor_act(running):
    """Without a token: DNS rebinding (another Host) reads nothing, and a cross-site
    'simple' POST (text/plain, no preflight) changes nothing."""
    proc, url = running
    port = url.rsplit(":", 1)[1].strip("/")
    assert _raw(url, "GET", "api/status", {"Host": f"evil.example:{port}"})[0] == 421
    assert _raw(url, "GET", "api/status", {"Host": f"localhost:{port}"})[0] == 200
    simple = {"Host": f"127.0.0.1:{port}", "Origin": "http://evil.example",
              "Content-Type": "text/plain"}
    assert _raw(url, "POST", "api/bwlimit", simple, b'{"rate": "2M"}')[0] == 415
    assert _raw(url, "POST", "api/stop", simple)[0] == 415
    status = json.loads(_get(url + "api/status")[1])
    assert status["bwlimit_bytes_per_second"] == 1 << 20 and proc.poll() is None
    answer = _raw(url, "GET", "api/status", {"Host": f"127.0.0.1:{port}",
                                              "Origin": "http://evil.example"})
    assert answer[0] == 200            # but no CORS header lets that page read it
    assert proc.poll() is None


def test_a_rate_out_of_range_is_refused_and_changes_nothing(running):
    proc, url = running
    for rate in ("99999999999T", "1B", "fast"):
        code, body = _get(url + "api/bwlimit", data=json.dumps({"rate": rate}).encode())
        assert code == 400, (rate, body)
    code, _ = _get(url + "api/bwlimit", data=b'{"rate": "\xff"}')
    assert code == 400
    assert json.loads(_get(url + "api/status")[1])["bwlimit_bytes_per_second"] == 1 << 20
    assert proc.wait(60) == 0          # and the run goes on to the end


def test_idle_connections_cannot_starve_the_copy(pair, fastsync):
    """Hundreds of idle sockets against the server, under a low descriptor limit: the
    server refuses what is beyond its cap, and the copy finishes."""
    import resource

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    for i in range(8):
        write(pair.src / f"d{i}" / "big.bin", os.urandom(1 << 20))
    proc = subprocess.Popen([*fastsync.argv0, *pair.args("--bwlimit", "2M",
                                                         "--http=127.0.0.1:0")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=low_limit)
    for line in proc.stderr:
        found = re.search(rb"dashboard and API at http://127.0.0.1:(\d+)/", line)
        if found:
            port = int(found.group(1))
            break
    idle = []
    try:
        for _ in range(400):
            s = socket.socket()
            s.connect(("127.0.0.1", port))
            idle.append(s)
        assert proc.wait(120) == 0, proc.stderr.read().decode()
    finally:
        for s in idle:
            s.close()
        if proc.poll() is None:
            proc.kill()
