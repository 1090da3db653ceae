"""Cold start: seconds from launching `keel up` in an empty folder (fresh SQLite database:
migrations, agent deployment, DBOS launch) to `/healthz` answering, against a bare FastAPI app
under uvicorn launched the same way (the floor any Python web service pays). Seed 003's target
is under 5 s.

    .venv/bin/python -m bench.bench_cold_start [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BARE_APP = """
import uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
uvicorn.run(app, host="127.0.0.1", port=int(__import__("sys").argv[1]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def time_to_health(cmd: list[str], port: int, cwd: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while time.perf_counter() - started < 60:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"{cmd[0]} did not answer /healthz within 60 s")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    keel = str(Path(sys.executable).parent / "keel")
    keel_times, bare_times = [], []
    for _ in range(args.repeat):
        folder = Path(tempfile.mkdtemp(prefix="keel-cold-"))
        try:
            port = free_port()
            keel_times.append(time_to_health([keel, "up", "--port", str(port)], port, folder))
            port = free_port()
            bare_times.append(
                time_to_health([sys.executable, "-c", BARE_APP, str(port)], port, folder)
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    keel_s, bare_s = statistics.median(keel_times), statistics.median(bare_times)
    print(
        f"keel up (fresh database) to /healthz   {keel_s:6.2f} s median of {args.repeat}   (target < 5 s)"
    )
    print(f"bare FastAPI + uvicorn to /healthz     {bare_s:6.2f} s")
    print(f"ratio                                  {keel_s / bare_s:6.1f}x")


if __name__ == "__main__":
    main()
