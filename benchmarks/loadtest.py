"""A bounded local load test of ``vaelab serve`` (issue 9).

Starts the real command (``python -m vaelab serve RUN --port 0``) in a subprocess on
127.0.0.1, fires a fixed, seeded mix of requests from concurrent clients (asyncio +
httpx), stops the server with Ctrl+C and reports latency percentiles per endpoint. The mix
covers every read endpoint and a share of bad requests (wrong latent size, unknown or
path-like run names, an index out of range, broken JSON, an oversized body, a non-image
upload) that must be answered with their 4xx JSON error. Any 5xx, connection error, wrong
status or non-JSON error counts as an error. An upload answered 503 (the server's limit on
uploads at once, issue 20) is sent again after its ``Retry-After``, as a client should; the
503s are counted. It ends by itself: every request has a timeout and the whole test a deadline.

    nice -n 10 .venv/bin/python benchmarks/loadtest.py --run runs/demo --requests 1000 --clients 20

Prints a table and writes JSON to benchmarks/results/loadtest-<run name>.json.

``--storm`` runs the memory test of issue 20 instead: ``--uploads`` worst-case images (a
62 KB all-zero 4000×4000 RGBA PNG: tiny file, 16 megapixels) from ``--clients`` clients at
once, while the server's resident memory is sampled from ``/proc/PID/status``; it reports
the peak (VmHWM), the idle RSS before and the RSS after, and every status.

    nice -n 10 .venv/bin/python benchmarks/loadtest.py --run runs/demo --storm --uploads 100 --clients 40
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# (kind, weight): the share of each kind of request in the mix
MIX = [("runs", 4), ("latent", 4), ("decode", 30), ("samples", 10), ("map", 8), ("thumbnail", 16), ("image", 8),
       ("interpolate", 6), ("upload", 4), ("bad-z", 2), ("bad-run", 2), ("bad-index", 2), ("bad-json", 1),
       ("too-large", 1), ("not-an-image", 2)]


@dataclass
class Request:
    kind: str
    method: str
    url: str
    expect: int
    json: object = None
    content: bytes | None = None
    files: dict | None = None
    headers: dict = field(default_factory=dict)


def _png(size: int, seed: int) -> bytes:
    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def plan(n: int, latent_dim: int, served_images: int, max_body: int, seed: int = 0) -> list[Request]:
    """``n`` requests drawn from MIX with a fixed seed, each with the status it must get."""
    rng = random.Random(seed)
    kinds = rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX], k=n)
    requests = []
    for i, kind in enumerate(kinds):
        index = rng.randrange(served_images)
        if kind == "runs":
            requests.append(Request(kind, "GET", "/api/runs", 200))
        elif kind == "latent":
            requests.append(Request(kind, "GET", "/api/runs/0/latent", 200))
        elif kind == "decode":
            z = [rng.gauss(0.0, 1.0) for _ in range(latent_dim)]
            requests.append(Request(kind, "POST", "/api/runs/0/decode", 200, json={"z": z}))
        elif kind == "samples":
            requests.append(Request(kind, "POST", "/api/runs/0/samples", 200,
                                    json={"n": rng.choice([1, 4, 16]), "seed": i}))
        elif kind == "map":
            requests.append(Request(kind, "GET", f"/api/runs/0/map?n={rng.choice([50, 200, 500])}", 200))
        elif kind == "thumbnail":
            requests.append(Request(kind, "GET", f"/api/runs/0/thumbnails/{index}", 200))
        elif kind == "image":
            requests.append(Request(kind, "GET", f"/api/runs/0/images/{index}", 200))
        elif kind == "interpolate":
            requests.append(Request(kind, "POST", "/api/runs/0/interpolate", 200,
                                    json={"a": index, "b": rng.randrange(served_images), "steps": 8}))
        elif kind == "upload":
            requests.append(Request(kind, "POST", "/api/runs/0/upload", 200,
                                    files={"file": ("mine.png", _png(rng.choice([8, 28]), i), "image/png")}))
        elif kind == "bad-z":
            requests.append(Request(kind, "POST", "/api/runs/0/decode", 400, json={"z": [0.0] * (latent_dim + 1)}))
        elif kind == "bad-run":
            run = rng.choice(["..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "99", "no-such-run", "~"])
            requests.append(Request(kind, "GET", f"/api/runs/{run}/latent", 404))
        elif kind == "bad-index":
            requests.append(Request(kind, "GET", f"/api/runs/0/thumbnails/{served_images + index}", 404))
        elif kind == "bad-json":
            requests.append(Request(kind, "POST", "/api/runs/0/decode", 422, content=b'{"z": [1, 2',
                                    headers={"content-type": "application/json"}))
        elif kind == "too-large":
            requests.append(Request(kind, "POST", "/api/runs/0/upload", 413, content=b"\0" * (max_body + 1),
                                    headers={"content-type": "multipart/form-data; boundary=x"}))
        elif kind == "not-an-image":
            requests.append(Request(kind, "POST", "/api/runs/0/upload", 400,
                                    files={"file": ("cat.png", b"<html>not a cat</html>", "image/png")}))
    return requests


def start_server(run_dir: str | os.PathLike, threads: int = 1, max_points: int = 500,
                 timeout: float = 300.0, args: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str]:
    """``vaelab serve RUN --port 0 ARGS`` in a subprocess -> (process, base URL), once it answers."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "vaelab", "serve", str(run_dir), "--port", "0", "--threads",
                                str(threads), "--max-points", str(max_points), "-q", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("vaelab explorer ready at "):
            return process, line.split()[4].rstrip("/")
    stop_server(process)
    raise RuntimeError("the server did not start:\n" + "".join(lines) + process.stderr.read())


def stop_server(process: subprocess.Popen) -> int:
    """Ctrl+C, as a user stops it; killed if it does not stop within 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def _is_json_error(response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("error"), str)


async def _send(http, request: Request, retry_until: float) -> dict:
    """One request, sent again after ``Retry-After`` while the server answers 503 -> its outcome.

    ``retries`` counts the 503s it got. It stops at any other answer, a dropped connection, a 503
    without ``Retry-After`` or JSON error, or when waiting would pass ``retry_until``
    (``time.monotonic()``); then its last 503 is its outcome.
    """
    import httpx

    outcome = {"kind": request.kind, "expect": request.expect, "retries": 0}
    start = time.perf_counter()
    while True:
        try:
            response = await http.request(request.method, request.url, json=request.json, content=request.content,
                                          files=request.files, headers=request.headers)
        except httpx.HTTPError as exc:
            outcome.update(status=None, exception=f"{exc.__class__.__name__}: {exc}")
            break
        outcome["status"] = response.status_code
        if response.status_code >= 400:
            outcome["json_error"] = _is_json_error(response)
        retry_after = response.headers.get("retry-after", "")
        outcome["retry_after"] = retry_after
        if (response.status_code != 503 or not outcome["json_error"] or not retry_after.isdigit()
                or time.monotonic() + int(retry_after) > retry_until):
            break
        outcome["retries"] += 1
        await asyncio.sleep(int(retry_after))
    outcome["ms"] = (time.perf_counter() - start) * 1000.0
    return outcome


async def _fire(base: str, requests: list[Request], clients: int, timeout: float, deadline: float,
                retry_until: float | None = None) -> list[dict]:
    """Send ``requests`` from ``clients`` concurrent clients -> their outcomes (see :func:`_send`).

    503s are retried until ``retry_until`` (default: the ``deadline``, by which everything must end).
    """
    import httpx

    queue: asyncio.Queue = asyncio.Queue()
    for i, request in enumerate(requests):
        queue.put_nowait((i, request))
    results: list[dict] = [{} for _ in requests]

    async def client() -> None:
        # one connection pool per client, as 20 separate browsers would have
        async with httpx.AsyncClient(base_url=base, timeout=timeout) as http:
            while not queue.empty():
                i, request = queue.get_nowait()
                results[i] = await _send(http, request, deadline if retry_until is None else retry_until)

    await asyncio.wait_for(asyncio.gather(*(client() for _ in range(clients))),
                           timeout=max(1.0, deadline - time.monotonic()))
    return results


def _percentiles(values: list[float]) -> dict[str, float]:
    import numpy as np

    if not values:
        return {}
    v = np.asarray(values)
    return {"p50": float(np.percentile(v, 50)), "p95": float(np.percentile(v, 95)),
            "p99": float(np.percentile(v, 99)), "max": float(v.max()), "n": int(v.size)}


def run_load_test(run_dir: str | os.PathLike, requests: int = 1000, clients: int = 20, threads: int = 1,
                  request_timeout: float = 60.0, deadline_s: float = 600.0, seed: int = 0) -> dict:
    """Serve ``run_dir`` and fire ``requests`` from ``clients`` concurrent clients; returns the summary.

    ``summary["errors"]`` lists every request that got a 5xx, no answer, a status other than
    the expected one, or a 4xx that is not a JSON ``{"error": ...}``; it must be empty.
    """
    import httpx

    from vaelab.web.app import MAX_UPLOAD_BYTES, MULTIPART_OVERHEAD

    started = time.monotonic()
    process, base = start_server(run_dir, threads=threads)
    try:
        info = httpx.get(base + "/api/runs", timeout=request_timeout).json()["runs"][0]
        todo = plan(requests, info["latent_dim"], info["test_images"], MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD, seed)
        t0 = time.perf_counter()
        results = asyncio.run(_fire(base, todo, clients, request_timeout, started + deadline_s))
        wall = time.perf_counter() - t0
    finally:
        exit_status = stop_server(process)
    errors = [r for r in results if r.get("status") is None or r["status"] >= 500 or r["status"] != r["expect"]
              or (r["status"] >= 400 and not r.get("json_error"))]
    by_kind = {}
    for kind, _ in MIX:
        times = [r["ms"] for r in results if r["kind"] == kind]
        if times:
            by_kind[kind] = _percentiles(times)
    return {"run": str(run_dir), "requests": len(results), "clients": clients, "server_threads": threads,
            "wall_s": wall, "requests_per_s": len(results) / wall,
            "latency_ms": _percentiles([r["ms"] for r in results]),
            "latency_ms_by_kind": by_kind, "status_counts": _count(r.get("status") for r in results),
            "retried_503": sum(r.get("retries", 0) for r in results), "errors": errors,
            "server_exit_status": exit_status, "machine": _machine()}


def worst_case_png(side: int = 4000) -> bytes:
    """An all-zero side×side RGBA PNG: ~62 KB on the wire, side² pixels (64 MB at 4000) decoded."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", (side, side)).save(buf, "PNG")
    return buf.getvalue()


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (resident now) and VmHWM (the peak since start) of process ``pid``, in MB."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024.0  # kB
    return values


class RssSampler:
    """Samples a process' VmRSS every ``every`` seconds in a thread (the series shows when it peaked)."""

    def __init__(self, pid: int, every: float = 0.05):
        import threading

        self.pid, self.every, self.samples = pid, every, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(memory_mb(self.pid)["VmRSS"])
            self._stop.wait(self.every)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_upload_storm(run_dir: str | os.PathLike, uploads: int = 100, clients: int = 40, threads: int = 1,
                     side: int = 4000, server_args: tuple[str, ...] = (), request_timeout: float = 60.0,
                     deadline_s: float = 300.0, retry_s: float | None = None, settle_s: float = 1.0) -> dict:
    """``uploads`` worst-case images from ``clients`` clients at once; the server's memory and every answer.

    Idle is the server's RSS after one worst-case upload (so code loaded on first use is in
    it); ``rss_after_mb`` is read ``settle_s`` after the last answer. 503s are retried after
    their Retry-After (see :func:`_send`) for up to ``retry_s`` seconds from the first upload
    (None: until the deadline, so every upload ends 200), and counted in ``retried_503``;
    ``errors`` lists the answers that are neither 200 nor, once retrying has stopped, a JSON 503.
    """
    import httpx

    started = time.monotonic()
    image = worst_case_png(side)
    upload = Request("worst-case-upload", "POST", "/api/runs/0/upload", 200,
                     files={"file": ("zero.png", image, "image/png")})
    process, base = start_server(run_dir, threads=threads, args=server_args)
    try:
        httpx.post(base + upload.url, files=upload.files, timeout=request_timeout).raise_for_status()
        time.sleep(settle_s)
        idle = memory_mb(process.pid)["VmRSS"]
        t0 = time.perf_counter()
        retry_until = None if retry_s is None else time.monotonic() + retry_s
        with RssSampler(process.pid) as sampler:
            results = asyncio.run(_fire(base, [upload] * uploads, clients, request_timeout, started + deadline_s,
                                        retry_until))
        wall = time.perf_counter() - t0
        time.sleep(settle_s)
        after = memory_mb(process.pid)
    finally:
        exit_status = stop_server(process)
    errors = [r for r in results if r.get("status") != 200 and not (retry_s is not None and _is_busy(r))]
    return {"run": str(run_dir), "uploads": uploads, "clients": clients, "file_bytes": len(image),
            "pixels": side * side, "server_args": list(server_args), "wall_s": wall,
            "idle_rss_mb": idle, "peak_rss_sampled_mb": max(sampler.samples, default=idle),
            "peak_rss_mb": after["VmHWM"], "rss_after_mb": after["VmRSS"],
            "status_counts": _count(r.get("status") for r in results),
            "retried_503": sum(r.get("retries", 0) for r in results),
            "errors": errors, "server_exit_status": exit_status, "machine": _machine()}


def _is_busy(outcome: dict) -> bool:
    """A 503 as the limit on uploads answers it: JSON error and Retry-After."""
    return outcome.get("status") == 503 and outcome.get("json_error") and outcome.get("retry_after", "").isdigit()


def print_storm(summary: dict) -> None:
    megapixels, kb = summary["pixels"] / 1e6, summary["file_bytes"] / 1000
    print(f"{summary['uploads']} uploads of a {kb:.0f} KB {megapixels:.0f}-megapixel PNG from {summary['clients']} "
          f"clients in {summary['wall_s']:.1f} s: statuses {summary['status_counts']}, "
          f"{summary['retried_503']} answers 503 retried, errors {len(summary['errors'])}")
    print(f"server RSS: idle {summary['idle_rss_mb']:.0f} MB, peak {summary['peak_rss_mb']:.0f} MB (VmHWM; sampled "
          f"{summary['peak_rss_sampled_mb']:.0f} MB), after {summary['rss_after_mb']:.0f} MB; load average "
          f"{summary['machine']['load_average_1m']:.1f} on {summary['machine']['cpus']} CPUs")


def _count(values) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[str(v)] = counts.get(str(v), 0) + 1
    return dict(sorted(counts.items()))


def _machine() -> dict:
    return {"cpus": os.cpu_count(), "load_average_1m": os.getloadavg()[0], "python": platform.python_version(),
            "platform": platform.platform()}


def print_table(summary: dict) -> None:
    print(f"{summary['requests']} requests from {summary['clients']} clients in {summary['wall_s']:.1f} s "
          f"({summary['requests_per_s']:.0f} req/s); statuses {summary['status_counts']} "
          f"({summary['retried_503']} answers 503 retried); errors {len(summary['errors'])}; "
          f"load average {summary['machine']['load_average_1m']:.1f} "
          f"on {summary['machine']['cpus']} CPUs")
    print(f"{'endpoint':<14}{'n':>6}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    rows = [("all", summary["latency_ms"]), *summary["latency_ms_by_kind"].items()]
    for kind, p in rows:
        print(f"{kind:<14}{p['n']:>6}{p['p50']:>10.1f}{p['p95']:>10.1f}{p['p99']:>10.1f}{p['max']:>10.1f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="runs/demo", help="run directory to serve")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--storm", action="store_true", help="the worst-case upload memory test instead")
    parser.add_argument("--uploads", type=int, default=100, help="--storm: worst-case uploads")
    parser.add_argument("--side", type=int, default=4000, help="--storm: the image's side in pixels")
    parser.add_argument("--upload-slots", type=int, default=None, help="--storm: the server's --upload-slots")
    parser.add_argument("--retry-s", type=float, default=None,
                        help="--storm: retry 503s for this long [default: until every upload got its 200]")
    parser.add_argument("--out", default=None, help="JSON path [default: benchmarks/results/loadtest-RUN.json, "
                                                    "storm-RUN.json with --storm]")
    args = parser.parse_args(argv)
    if args.storm:
        slots = () if args.upload_slots is None else ("--upload-slots", str(args.upload_slots))
        summary = run_upload_storm(args.run, args.uploads, args.clients, args.threads, args.side, slots,
                                   retry_s=args.retry_s)
        print_storm(summary)
    else:
        summary = run_load_test(args.run, args.requests, args.clients, args.threads, seed=args.seed)
        print_table(summary)
    prefix = "storm" if args.storm else "loadtest"
    out = Path(args.out or Path(__file__).parent / "results" / f"{prefix}-{Path(args.run).name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"results: {out}")
    for error in summary["errors"][:10]:
        print(f"error: {error}", file=sys.stderr)
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
