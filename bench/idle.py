"""What an idle server costs: CPU time and wake-ups while nothing happens.

    .venv/bin/python bench/idle.py                     # ursa-asgi and ursa (WSGI), 5 s each
    .venv/bin/python bench/idle.py --seconds 10 ursa-asgi uvicorn
    .venv/bin/python bench/idle.py --python OTHER/bin/python ursa-asgi   # see bench/compare.py --python

Each server (a name from bench/families.py) starts with its family's hello
app pinned to --cpu, answers one request on a connection that is then
closed, and is left alone: after a second to settle, its user + system CPU
time (/proc/PID/stat, every thread, in clock ticks of 10 ms) and its
threads' voluntary context switches (/proc/PID/task/*/status: each is a
thread going to sleep, so each is a wake-up) are read before and after
--seconds of idleness; then, for another --seconds, strace -c -f counts the
system calls it makes. An idle server should make none: a periodic timer
shows as wake-ups and epoll_wait calls, a busy loop as CPU time.
bench/compare.py runs the same measurement for its detail servers.
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)

import httpclient  # noqa: E402
from families import FAMILIES, SERVERS  # noqa: E402
from serverprocess import ServerError, ServerProcess  # noqa: E402

SETTLE_SECONDS = 1.0
DEFAULT_SERVERS = ("ursa-asgi", "ursa")


def cpu_ticks(pids):
    """User + system CPU time of the processes (all their threads), in clock ticks."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat_file:
                fields = stat_file.read().rpartition(")")[2].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total


def voluntary_switches(pids):
    """Voluntary context switches of every thread of the processes, summed."""
    total = 0
    for pid in pids:
        try:
            threads = os.listdir(f"/proc/{pid}/task")
        except FileNotFoundError:
            continue
        for thread in threads:
            try:
                with open(f"/proc/{pid}/task/{thread}/status") as status:
                    for line in status:
                        if line.startswith("voluntary_ctxt_switches:"):
                            total += int(line.split()[1])
            except FileNotFoundError:
                continue
    return total


def count_syscalls(pids, seconds):
    """{syscall: calls} that the processes' threads make in ``seconds`` (strace -c -f)."""
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as out_dir:
        summary_path = os.path.join(out_dir, "summary")
        command = ["strace", "-c", "-f", "-o", summary_path]
        for pid in pids:
            command += ["-p", str(pid)]
        tracer = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        try:
            attached = 0
            while attached < len(pids):
                line = tracer.stderr.readline()
                if not line:
                    raise ServerError(f"strace exited (status {tracer.wait()}) before attaching")
                attached += "attached" in line
            time.sleep(seconds)
            tracer.send_signal(signal.SIGINT)
            tracer.wait(timeout=60)
        finally:
            if tracer.poll() is None:
                tracer.kill()
                tracer.wait()
            tracer.stderr.close()
        with open(summary_path) as summary:
            counts = {}
            for line in summary.read().splitlines():
                fields = line.split()
                if len(fields) >= 5 and fields[3].isdigit() and fields[-1] != "total":
                    counts[fields[-1]] = int(fields[3])
            return counts


def measure_idle(server, seconds, cpu=0, python=None, strace=True):
    """One server's figures over ``seconds`` of idleness (see the module's docstring)."""
    entry = SERVERS[server]
    scenario = FAMILIES[entry.family].memory_scenario  # the family's hello
    with ServerProcess(server, scenario.app, cpu=cpu, script=entry.script, python=python) as process:
        problem = httpclient.check_response(process.port, scenario, count=1)
        if problem:
            raise ServerError(f"{server} answered {scenario.name} wrongly: {problem}\n{process.stderr_text()}")
        time.sleep(SETTLE_SECONDS)
        pids = process.descendants()
        ticks, switches = cpu_ticks(pids), voluntary_switches(pids)
        time.sleep(seconds)
        ticks, switches = cpu_ticks(pids) - ticks, voluntary_switches(pids) - switches
        syscalls = count_syscalls(pids, seconds) if strace else {}
        threads = sum(len(os.listdir(f"/proc/{pid}/task")) for pid in pids)
        process.stop()
    return {"seconds": seconds, "cpu_ticks": ticks, "cpu_seconds": ticks / os.sysconf("SC_CLK_TCK"),
            "wakeups": switches, "syscalls": sum(syscalls.values()), "syscall_names": syscalls,
            "processes": len(pids), "threads": threads}


def describe(server, figures):
    calls = ", ".join(f"{name} {count}" for name, count in sorted(figures["syscall_names"].items(),
                                                                 key=lambda item: -item[1]))
    return (f"{server:<13} {figures['cpu_seconds'] * 1000:6.0f} ms CPU  {figures['wakeups']:6} wake-ups  "
            f"{figures['syscalls']:6} system calls{f' ({calls})' if calls else ''}  in {figures['seconds']:g} s; "
            f"{figures['processes']} process(es), {figures['threads']} thread(s)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("servers", nargs="*", default=list(DEFAULT_SERVERS),
                        help=f"from {', '.join(SERVERS)} (default: {' '.join(DEFAULT_SERVERS)})")
    parser.add_argument("--seconds", type=float, default=5.0, help="idle seconds measured (default: %(default)s)")
    parser.add_argument("--cpu", type=int, default=0, help="core the server is pinned to (default: %(default)s)")
    parser.add_argument("--python", help="the servers' interpreter (default: this one)")
    options = parser.parse_args(argv)
    unknown = [server for server in options.servers if server not in SERVERS]
    if unknown:
        parser.error(f"unknown server(s) {', '.join(unknown)}")
    print(f"idle for {options.seconds:g} s after one request; server on core {options.cpu}; "
          f"Python {options.python or sys.executable}")
    failed = False
    for server in options.servers:
        try:
            print(describe(server, measure_idle(server, options.seconds, options.cpu, options.python)), flush=True)
        except ServerError as error:
            print(f"{server}: FAILED: {error}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
