"""``vaelab serve`` as a user runs it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from vaelab.cli import main


def test_help_explains_with_an_example(capsys):
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    assert "vaelab serve runs/demo" in out and "--port" in out and "127.0.0.1" in out


def test_a_missing_run_is_a_one_line_error(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nothing"), "--port", "0", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vaelab: error:") and "not a run directory" in err and "\n" not in err


def test_a_busy_port_fails_before_loading_anything(tiny_vae_run, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        start = time.perf_counter()
        assert main(["serve", str(tiny_vae_run), "--port", str(port), "-q"]) == 2
        assert time.perf_counter() - start < 5
    assert "--port 0" in capsys.readouterr().err


def test_serve_prints_its_url_answers_and_stops_on_ctrl_c(tiny_vae_run):
    import httpx

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "vaelab", "serve", str(tiny_vae_run),
                                "--port", "0", "--threads", "1", "-q"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = None
        lines = []
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("vaelab explorer ready at "):
                url = line.split()[4]
        assert url is not None and url.startswith("http://127.0.0.1:"), "".join(lines) + process.stderr.read()
        runs = httpx.get(url + "api/runs", timeout=10).json()["runs"]
        assert [r["model"] for r in runs] == ["conv-vae"]
        assert any("[0] tiny-vae" in line for line in lines)
        assert httpx.get(url, timeout=10).text.startswith("<!doctype html>")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "vaelab explorer stopped" in out
    assert "Traceback" not in err


def test_allowed_hosts_must_be_names_without_scheme_or_port(capsys):
    for bad in ("http://mybox.lan", "mybox.lan:8000", "a@b", "my box"):
        assert main(["serve", "runs/x", "--allowed-host", bad]) == 2
        assert "is not a host name or address" in capsys.readouterr().err
    assert main(["serve", "--help"]) == 0
    assert "--allowed-host" in capsys.readouterr().out
