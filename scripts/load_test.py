"""Drive N concurrent gradio_client clients against a running app for M seconds (loopback only).

    python scripts/load_test.py --url http://127.0.0.1:7860/ --clients 8 --seconds 30 --new-tokens 16

Prints completed, rejected (queue full or rate limited), failed, and p50 / p95 latency of the
completed requests. Each client stops by itself at the deadline or after --max-requests.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

from gradio_client import Client


def run_client(url: str, deadline: float, new_tokens: int, max_requests: int, out: dict, lock: threading.Lock):
    try:
        client = Client(url, verbose=False)
    except Exception as err:  # server down or refusing: count it, do not crash
        with lock:
            out["failed"].append(None)
        print(f"client could not connect: {err}")
        return
    for i in range(max_requests):
        if time.time() >= deadline:
            break
        t0 = time.perf_counter()
        try:
            client.predict(f"Load test request {i}: how far away is the moon?", max_new_tokens=new_tokens,
                           api_name="/compare")
            kind, latency = "completed", time.perf_counter() - t0
        except Exception as err:  # classify, never crash the load run
            text = (getattr(getattr(err, "response", None), "text", "") or str(err)).lower()
            kind = "rejected" if ("queue is full" in text or "too many" in text) else "failed"
            latency = None
        with lock:
            out[kind].append(latency)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860/")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--max-requests", type=int, default=200, help="per client")
    args = parser.parse_args()
    if not args.url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise SystemExit("load tests target loopback only")
    out, lock = {"completed": [], "rejected": [], "failed": []}, threading.Lock()
    deadline = time.time() + args.seconds
    threads = [threading.Thread(target=run_client, args=(args.url, deadline, args.new_tokens, args.max_requests,
                                                         out, lock)) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = out["completed"]
    print(f"clients {args.clients}, {args.seconds:.0f} s, {args.new_tokens} new tokens: completed {len(done)}, "
          f"rejected {len(out['rejected'])}, failed {len(out['failed'])}")
    if done:
        print(f"latency p50 {statistics.median(done):.2f} s, p95 {percentile(done, 0.95):.2f} s, "
              f"max {max(done):.2f} s")


if __name__ == "__main__":
    main()
