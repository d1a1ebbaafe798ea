"""Server-side latency of the latent explorer's endpoints (issue 7: a slider decode < 50 ms).

Decode requests go (a) through the ASGI app in process (FastAPI's TestClient): routing,
validation, the model, PNG encoding and JSON, everything but the network; and (b) to the
same app under uvicorn on 127.0.0.1 with a keep-alive httpx client, as the page sends them.
The server also reports its own decode+PNG time. The reference is the bare decoder call
``model.decode_mean(z)`` timed in the same process, so the web layer's overhead is a ratio.

    nice -n 10 .venv/bin/python benchmarks/serve_latency.py --run runs/demo --requests 200

Prints a table and writes JSON to benchmarks/results/serve-latency-<run name>.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "max_ms": float(ms.max()), "n": int(len(ms))}


def timed(call, n: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="runs/demo", help="run directory to serve")
    parser.add_argument("--requests", type=int, default=200, help="decode requests timed")
    parser.add_argument("--others", type=int, default=20, help="requests timed for each other endpoint")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="JSON path [default: benchmarks/results/serve-latency-RUN.json]")
    args = parser.parse_args(argv)

    import torch
    from fastapi.testclient import TestClient

    from vaelab.imageio import encode_png
    from vaelab.web import create_app, prepare_runs

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    runs = prepare_runs([args.run], progress=False)
    startup = time.perf_counter() - start
    explorer = runs[0]
    model = explorer.model
    D = model.latent_dim
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(args.requests + 5, D)).tolist()
    client = TestClient(create_app(runs))

    it = iter(codes)
    decode_http = timed(lambda: client.post("/api/runs/0/decode", json={"z": next(it)}).raise_for_status(),
                        args.requests)
    server_ms = [client.post("/api/runs/0/decode", json={"z": z}).json()["ms"] for z in codes[:50]]

    import httpx

    from vaelab.web import BackgroundServer

    with BackgroundServer(create_app(runs)) as server, httpx.Client(base_url=server.url) as http:
        it = iter(codes)
        decode_uvicorn = timed(lambda: http.post("/api/runs/0/decode", json={"z": next(it)}).raise_for_status(),
                               args.requests)

    it = iter(codes)

    def bare_decode():
        with torch.inference_mode():
            model.decode_mean(torch.tensor([next(it)], dtype=torch.float32))

    decode_bare = timed(bare_decode, args.requests)

    upload_png = encode_png(explorer.images[0])
    others = {
        "samples (36)": lambda: client.post("/api/runs/0/samples", json={"n": 36}),
        "map (500 points)": lambda: client.get("/api/runs/0/map?n=500"),
        "test image + reconstruction": lambda: client.get("/api/runs/0/images/3"),
        "thumbnail PNG": lambda: client.get("/api/runs/0/thumbnails/3"),
        "interpolate (10 steps)": lambda: client.post("/api/runs/0/interpolate", json={"a": 0, "b": 1, "steps": 10}),
        "upload (score + codec + WebP scan)": lambda: client.post(
            "/api/runs/0/upload", files={"file": ("x.png", io.BytesIO(upload_png), "image/png")}),
    }
    rows = {"decode (ASGI test client)": percentiles(decode_http),
            "decode (uvicorn, 127.0.0.1)": percentiles(decode_uvicorn),
            "decode (bare model call)": percentiles(decode_bare)}
    for name, call in others.items():
        rows[name] = percentiles(timed(lambda c=call: c().raise_for_status(), args.others, warmup=2))

    print(f"run {args.run}: {model.registry_name}, image {model.image_shape}, latent {D}; "
          f"torch threads {args.threads}; "
          f"start-up {startup:.1f} s ({', '.join(f'{k} {v:.1f} s' for k, v in explorer.timings.items())})")
    print(f"{'endpoint':38s} {'p50 ms':>8s} {'p95 ms':>8s} {'max ms':>8s} {'n':>5s}")
    for name, row in rows.items():
        print(f"{name:38s} {row['p50_ms']:8.2f} {row['p95_ms']:8.2f} {row['max_ms']:8.2f} {row['n']:5d}")
    ratio = rows["decode (uvicorn, 127.0.0.1)"]["p50_ms"] / rows["decode (bare model call)"]["p50_ms"]
    print(f"decode: uvicorn p50 / bare model p50 = {ratio:.1f}×; server-reported decode+PNG p50 "
          f"{np.percentile(server_ms, 50):.2f} ms")

    out = Path(args.out or f"benchmarks/results/serve-latency-{Path(args.run).name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "run": str(args.run), "model": model.registry_name, "image_shape": list(model.image_shape), "latent_dim": D,
        "threads": args.threads, "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "load_average": os.getloadavg(), "startup_seconds": explorer.timings, "results": rows,
        "decode_ratio_uvicorn_over_bare": ratio, "server_reported_decode_p50_ms": float(np.percentile(server_ms, 50)),
    }, indent=2) + "\n")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
