"""What the access log costs: wrk against the `ursa` command serving the same
app with and without --access-log, and the ratio of their throughputs.

    .venv/bin/python bench/accesslog_cost.py                 # ~1 minute
    .venv/bin/python bench/accesslog_cost.py --rounds 5 --duration 10
    .venv/bin/python bench/accesslog_cost.py --access-log /dev/null --format '%(h)s %(r)s %(s)s'

One worker, pinned to one core (when taskset exists), wrk on another, keep-alive
connections; the two configurations take turns round by round so noise from
the rest of the machine hits both alike, and the median of the rounds is
reported. The log goes to a file in a temporary directory unless --access-log
names another target ('-' would measure the terminal, not ursa).
"""
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from serverprocess import wait_until_listening  # beside this file; importing it puts tests/ on sys.path
from support.processes import ChildProcess

APP_SOURCE = '''
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, World!"]
'''
LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")
REQUESTS_PER_SECOND = re.compile(r"Requests/sec:\s+([\d.]+)")
START_TIMEOUT_SECONDS = 30.0


def pinned(argv, cpu):
    if cpu is not None and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu), *argv]
    return argv


def start_server(app_dir, extra_args, cpu, stderr_path):
    """The `ursa` command serving the app, and the port it listens on once it accepts connections."""
    argv = [sys.executable, "-m", "ursa", "-b", "127.0.0.1:0", "-w", "1", "--chdir", app_dir,
            *extra_args, "bench_hello:app"]
    server = ChildProcess(pinned(argv, cpu), name="ursa", stderr_path=stderr_path, stdout_path=os.devnull).start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    try:
        port = int(server.wait_for_stderr(LISTENING.pattern, timeout=START_TIMEOUT_SECONDS).group(1))
        wait_until_listening(server, port, deadline)
    except AssertionError:
        stop_server(server)
        raise SystemExit(f"accesslog_cost: the server did not start:\n{server.stderr()}") from None
    return server, port


def stop_server(server):
    server.end(signal.SIGTERM, timeout=30)


def run_wrk(port, args, cpu):
    argv = pinned(["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s",
                   f"http://127.0.0.1:{port}/"], cpu)
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise SystemExit(f"accesslog_cost: wrk saw errors:\n{output}")
    return float(REQUESTS_PER_SECOND.search(output).group(1))


def measure(app_dir, extra_args, args, work_dir, label):
    server, port = start_server(app_dir, extra_args, args.server_cpu, os.path.join(work_dir, f"{label}.stderr"))
    try:
        run_wrk(port, argparse.Namespace(**dict(vars(args), duration=1)), args.client_cpu)  # warm-up
        return run_wrk(port, args, args.client_cpu)
    finally:
        stop_server(server)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds of wrk per measurement")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--access-log", help="log target (default: a file in a temporary directory)")
    parser.add_argument("--format", help="--access-log-format to measure (default: combined)")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("accesslog_cost: wrk is not installed (apt-get install wrk)")
    if (os.cpu_count() or 1) < 2:
        args.server_cpu = args.client_cpu = None

    with tempfile.TemporaryDirectory(prefix="ursa-accesslog-") as work_dir:
        with open(os.path.join(work_dir, "bench_hello.py"), "w") as app_file:
            app_file.write(APP_SOURCE)
        log_target = args.access_log or os.path.join(work_dir, "access.log")
        logged_args = ["--access-log", log_target]
        if args.format:
            logged_args += ["--access-log-format", args.format]
        without_log, with_log = [], []
        for round_number in range(args.rounds):
            order = [("off", [], without_log), ("on", logged_args, with_log)]
            if round_number % 2:
                order.reverse()
            for label, extra_args, results in order:
                results.append(measure(work_dir, extra_args, args, work_dir, label))
                if label == "on" and log_target.startswith(work_dir):
                    os.unlink(log_target)  # each round starts from an empty file
            print(f"round {round_number + 1}: off {without_log[-1]:,.0f} req/s, on {with_log[-1]:,.0f} req/s",
                  flush=True)

    off = statistics.median(without_log)
    on = statistics.median(with_log)
    cost_us = (1 / on - 1 / off) * 1e6
    print(f"access log off: {off:,.0f} req/s (median of {args.rounds})")
    print(f"access log on:  {on:,.0f} req/s ({args.format or 'combined format'} -> "
          f"{args.access_log or 'file in a temp dir'})")
    print(f"ratio on/off: {on / off:.3f}  (about {cost_us:.2f} us more per request)")


if __name__ == "__main__":
    main()
