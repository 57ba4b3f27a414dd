#!/usr/bin/env python3
"""Requests per second and latency of ``neuroner-tl serve``, single sentences and batches, with
concurrent clients.

    python3 -m pip install ".[serve]"
    python3 experiments/serve_benchmark.py MODEL --seconds 20

Starts the server on the loopback address, waits for ``/health``, then for each scenario (texts per
request x concurrent clients) has every client post ``POST /tag`` over one keep-alive connection for
``--seconds``. The texts are CoNLL-2003 test sentences (detokenized by joining with spaces), in order.
Prints a Markdown table: requests/s, sentences/s, latency p50/p95/p99 in ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

from stream_memory import TEST, sentences_of  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(port: int, process, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit("the server exited before it was ready")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("the server did not become ready")


def client(port: int, bodies, seconds: float, latencies: list, errors: list) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    end = time.perf_counter() + seconds
    index = 0
    while time.perf_counter() < end:
        body = bodies[index % len(bodies)]
        index += 1
        started = time.perf_counter()
        connection.request("POST", "/tag", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            errors.append(response.status)
        latencies.append(time.perf_counter() - started)


def scenario(port: int, texts, per_request: int, clients: int, seconds: float) -> dict:
    if per_request == 1:
        bodies = [json.dumps({"text": t}) for t in texts]
    else:
        bodies = [json.dumps({"texts": texts[i:i + per_request]}) for i in range(0, len(texts) - per_request, per_request)]
    latencies: list = []
    errors: list = []
    threads = [threading.Thread(target=client, args=(port, bodies[k::clients] or bodies, seconds, latencies, errors))
               for k in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=100)
    return {"texts per request": per_request, "clients": clients, "requests": len(latencies),
            "requests/s": len(latencies) / elapsed, "sentences/s": len(latencies) * per_request / elapsed,
            "p50 ms": 1000 * quantiles[49], "p95 ms": 1000 * quantiles[94], "p99 ms": 1000 * quantiles[98],
            "errors": len(errors)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--scenarios", default="1x1,1x4,32x1,32x4", help="TEXTSxCLIENTS, comma-separated")
    args = parser.parse_args(argv)
    texts = [" ".join(s) for s in sentences_of(TEST)]
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "neuroner_tl.cli", "serve", str(args.model), "--port", str(port),
                               "--max-texts", "1000"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        wait_for(port, server)
        scenario(port, texts, 8, 1, 2.0)  # warm-up: shapes the first requests would otherwise compile
        rows = []
        for spec in args.scenarios.split(","):
            per_request, clients = (int(part) for part in spec.split("x"))
            rows.append(scenario(port, texts, per_request, clients, args.seconds))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print("\n| texts per request | clients | requests/s | sentences/s | p50 ms | p95 ms | p99 ms | errors |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['texts per request']} | {row['clients']} | {row['requests/s']:.1f} | {row['sentences/s']:.0f} | "
              f"{row['p50 ms']:.1f} | {row['p95 ms']:.1f} | {row['p99 ms']:.1f} | {row['errors']} |")


if __name__ == "__main__":
    main()
