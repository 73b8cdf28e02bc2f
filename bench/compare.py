"""Benchmark of ursa against bjoern, the other WSGI servers and nginx as the ceiling, and of ursa's
ASGI, HTTP and WebSockets, against uvicorn, granian and hypercorn.

    .venv/bin/python bench/compare.py                 # every server and scenario, about 30 minutes
    .venv/bin/python bench/compare.py --quick         # smoke run, a few minutes
    .venv/bin/python bench/compare.py --servers ursa,bjoern --scenarios hello,flask
    .venv/bin/python bench/compare.py --memory-only   # RSS at start and per idle connection
    .venv/bin/python bench/compare.py --families asgi --python OTHER/bin/python
                                                      # the ASGI family on another CPython
    .venv/bin/python bench/compare.py --families ws   # WebSockets only, about 8 minutes

Three families (bench/families.py). WSGI: ursa, bjoern, meinheld, granian,
gunicorn, waitress, nginx (bench/servers.py) on the apps of bench/apps.py,
ratios to bjoern. ASGI: ursa-asgi, uvicorn (uvloop, httptools),
granian-asgi, hypercorn (bench/asgi_servers.py) on bench/asgi_apps.py,
ratios to uvicorn, with ursa's WSGI hello run beside the ASGI hello. WS:
the same ASGI servers as ursa-ws, uvicorn-ws (its websockets
implementation), granian-ws, hypercorn-ws (bench/websocket_servers.py) on
bench/websocket_apps.py's echo and broadcast, loaded by picows clients on
uvloop in a process of their own (websocket_load.py) instead of wrk,
ratios to uvicorn-ws; there a request is a message (an echo's round trip,
a broadcast's delivery), and memory is per idle WebSocket (1,000 open,
--ws-idle-connections). Servers not installed are left out with a note. Every server runs its app in one
process pinned to one core (granian: its main process and one worker with
one runtime thread); wrk loads it from another core. Servers take turns inside each round and the order rotates from
round to round, so a burst of noise from the rest of the machine hits them
all alike; the median over rounds is reported. On a shared machine the
absolute numbers drift; the ratios to bjoern, paired within each round, are
the result.

Reported per scenario and server: requests/s, p50 and p99 latency (wrk), the
server's CPU time per request (/proc/PID/stat), peak RSS, and wrk's errors
(socket errors and non-2xx answers flag the row). Memory: RSS at start (after
one request) and per idle keep-alive connection, with 10,000 of them open.
For ursa, bjoern, ursa-asgi and uvicorn also: instructions per request
(callgrind: user space, whole process, the same whatever else the machine is
doing), system calls per request (strace), and what each costs idle
(bench/idle.py: CPU time and wake-ups over --idle-seconds); for ursa-ws and
uvicorn-ws instructions and system calls per echoed message. Then the
issues' targets (5 for WSGI, 10 for ASGI, 11 for WebSockets), PASS or MISS
each.

--python runs the servers on another interpreter: a venv with the peers, for
which ursa's extension is built in place (`OTHER/bin/python setup.py
build_ext --inplace`; each interpreter's file has its own name). The harness
and wrk stay as they are, and the report names the servers' Python.
`PYTHON=/path/to/python3.X make bench` is the simpler way: .venv of that
interpreter, harness included (scripts/setup.sh).

Writes bench/results/latest.md (tables and the machine), latest.png (req/s
relative to each family's reference) and latest.json (every figure);
--output changes the prefix.

Exit status: 0 when every run completed, whatever the ratios and targets; 1
when a server failed (did not start, answered wrongly, died); 2 on a usage or
setup error.
"""
import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)

import apps  # noqa: E402
import httpclient  # noqa: E402
import idle  # noqa: E402
import report  # noqa: E402
import websocket_client  # noqa: E402
from report import cpu_per_request  # noqa: E402
from families import FAMILIES, SCENARIOS, SERVERS, WRK_RESULT_PREFIX, scenario_servers  # noqa: E402
from servers import HOST  # noqa: E402
from serverprocess import ServerError, ServerProcess, pinned_command, server_environment  # noqa: E402

DEFAULT_OUTPUT = os.path.join(BENCH_DIR, "results", "latest")
IDLE_CONNECTIONS = 10_000
# Upgraded connections held open for the memory per idle WebSocket: each has a task waiting in the app, so
# fewer than keep-alive connections; granian's backpressure (1,024 per worker) bounds it from above.
WS_IDLE_CONNECTIONS = 1_000
# Descriptors the harness keeps free beside its idle connections (wrk, files).
DESCRIPTOR_HEADROOM = 1024

# Seconds to let a fresh server settle before its idle memory is read, and a
# loaded one before its after-load memory is (connections closing, frees).
SETTLE_SECONDS = 0.2


class HarnessError(Exception):
    """Something the benchmark itself needs is missing or wrong (exit 2)."""


# --- measurements ---------------------------------------------------------


def memory_of(pids):
    """RSS, USS (private pages) and peak RSS of the processes, summed, in KiB."""
    total = {"rss_kib": 0, "uss_kib": 0, "peak_rss_kib": 0}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as rollup:
                fields = dict(_kib_fields(rollup))
            with open(f"/proc/{pid}/status") as status:
                peak = dict(_kib_fields(status)).get("VmHWM", 0)
        except FileNotFoundError:
            continue  # exited meanwhile (a gunicorn worker being replaced)
        total["rss_kib"] += fields["Rss"]
        total["uss_kib"] += fields["Private_Clean"] + fields["Private_Dirty"]
        total["peak_rss_kib"] += peak
    return total


def cpu_seconds_of(pids):
    """User and system CPU seconds the processes have used, summed.

    CPU time per request is steadier than requests/s on a shared machine:
    time the server's core spends on other processes is not counted."""
    ticks_per_second = os.sysconf("SC_CLK_TCK")
    total = {"user": 0.0, "system": 0.0}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat_file:
                fields = stat_file.read().rpartition(")")[2].split()
        except FileNotFoundError:
            continue
        # After the command name: state is field 3 of proc(5), utime 14, stime 15.
        total["user"] += int(fields[11]) / ticks_per_second
        total["system"] += int(fields[12]) / ticks_per_second
    return total


def open_descriptors(pids):
    total = 0
    for pid in pids:
        try:
            total += len(os.listdir(f"/proc/{pid}/fd"))
        except FileNotFoundError:
            continue
    return total


def _kib_fields(lines):
    for line in lines:
        name, _, rest = line.partition(":")
        value = rest.split()
        if len(value) == 2 and value[1] == "kB":
            yield name, int(value[0])


def run_wrk(port, scenario, duration, options):
    """Run wrk once against ``port``; returns its done() figures plus req_per_s."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix=f"bench-{scenario.name}-") as script:
        script.write(scenario.wrk_script(port))
        script.flush()
        command = pinned_command(
            ["wrk", f"-t{options.threads}", f"-c{options.connections}", f"-d{duration}s", "--timeout", "5s",
             "-s", script.name, f"http://{HOST}:{port}{scenario.path}"],
            options.client_cpu,
        )
        try:
            completed = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
        except subprocess.TimeoutExpired as error:
            raise ServerError(f"wrk did not finish {duration + 60} s after starting a {duration} s load "
                              f"on {scenario.name}: the server hangs?") from error
    for line in completed.stdout.splitlines():
        if line.startswith(WRK_RESULT_PREFIX):
            result = json.loads(line[len(WRK_RESULT_PREFIX):])
            result["req_per_s"] = result["requests"] / (result["duration_us"] / 1e6)
            return result
    raise HarnessError(f"wrk printed no result (exit {completed.returncode}):\n{completed.stdout}{completed.stderr}")


def _check(process, scenario, when):
    problem = httpclient.check_response(process.port, scenario)
    if problem:
        raise ServerError(f"{process.server} answered the {scenario.name} check {when} wrongly: {problem}\n"
                          f"{process.stderr_text()}")


def start_server(server, app_name, options, wrapper=()):
    """``server`` serving ``app_name`` of its family, on the server core and Python (a ServerProcess)."""
    return ServerProcess(server, app_name, cpu=options.server_cpu, wrapper=wrapper, script=SERVERS[server].script,
                         python=options.python)


def _charge_cpu(load, cpu_before, cpu_after, count):
    """The server's user and system CPU time over the window, per request (or message)."""
    for kind in ("user", "system"):
        spent = cpu_after[kind] - cpu_before[kind]
        load[f"cpu_{kind}_us_per_req"] = spent * 1e6 / count


def _check_alive(process, server, scenario):
    if not process.running():
        raise ServerError(f"{server} died under the {scenario.name} load\n{process.stderr_text()}")


def measure_load(server, scenario, options):
    """Start ``server`` with the scenario's app, check it, load it; one round's figures."""
    with start_server(server, scenario.app, options) as process:
        time.sleep(SETTLE_SECONDS)
        idle = memory_of(process.descendants())
        _check(process, scenario, "before the load")
        if options.warmup:
            run_wrk(process.port, scenario, options.warmup, options)
        cpu_before = cpu_seconds_of(process.descendants())
        load = run_wrk(process.port, scenario, options.duration, options)
        cpu_after = cpu_seconds_of(process.descendants())
        if load["requests"] == 0:
            raise ServerError(f"{server} completed no request in {options.duration} s of {scenario.name} load "
                              f"(wrk errors {load['errors']})")
        _charge_cpu(load, cpu_before, cpu_after, load["requests"])
        _check_alive(process, server, scenario)
        time.sleep(SETTLE_SECONDS)
        after = memory_of(process.descendants())
        _check(process, scenario, "after the load")
        process.stop()
    return {"load": load, "memory_idle": idle, "memory_after": after}


def load_generator(process, scenario, options, pattern=None, clients=None):
    """websocket_load.py's clients of ``scenario`` connected to the server, on the client core."""
    return websocket_client.LoadGenerator(
        process.server, process.port, scenario.path, pattern or scenario.pattern, clients or scenario.clients,
        scenario.message_size, options.client_cpu, under_valgrind=process.under_valgrind)


def measure_websocket_load(server, scenario, options):
    """A WebSocket scenario's measure_load: the same figures, with a message where wrk has a request.

    The clients connect and each sends one message (the check), then a
    warm-up and the measured window run as two commands of the same load
    generator, the server's CPU time read between them: nothing is sent
    between commands, so the time read is the window's. Every message in
    the window is counted, the last ones in flight when it closed too."""
    with start_server(server, scenario.app, options) as process:
        time.sleep(SETTLE_SECONDS)
        idle = memory_of(process.descendants())
        with load_generator(process, scenario, options) as generator:
            websocket_client.check_answer(server, f"{scenario.name} check", generator.run_count(scenario.clients),
                                          scenario.clients)
            if options.warmup:
                generator.run_for(options.warmup)
            cpu_before = cpu_seconds_of(process.descendants())
            load = generator.run_for(options.duration)
            cpu_after = cpu_seconds_of(process.descendants())
            generator.quit()
        if load["messages"] == 0:
            raise ServerError(f"{server} answered no message in {options.duration} s of {scenario.name} load "
                              f"(errors {load['errors']})")
        # The keys the report's medians and ratios read for every family: here a request is a message.
        load["requests"] = load["messages"]
        load["req_per_s"] = load["messages"] / (load["duration_us"] / 1e6)
        _charge_cpu(load, cpu_before, cpu_after, load["messages"])
        _check_alive(process, server, scenario)
        time.sleep(SETTLE_SECONDS)
        after = memory_of(process.descendants())
        process.stop()
    return {"load": load, "memory_idle": idle, "memory_after": after}


def measure_websocket_memory(server, scenario, options):
    """measure_memory for a WebSocket family: RSS after one connection has echoed one message and closed,
    and what each of ``--ws-idle-connections`` upgraded connections adds, each having echoed one message
    and then idle (its app task waiting in receive()). The server's descriptors are counted as for
    keep-alive connections."""
    count = options.ws_idle_connections
    with start_server(server, scenario.app, options) as process:
        with load_generator(process, scenario, options, clients=1) as generator:
            websocket_client.check_answer(server, "first message", generator.run_count(1), 1)
            generator.quit()
        time.sleep(SETTLE_SECONDS)
        figures = {"start": memory_of(process.descendants()), "connections": count}
        if count:
            descriptors_before = open_descriptors(process.descendants())
            with load_generator(process, scenario, options, pattern="idle", clients=count) as generator:
                time.sleep(SETTLE_SECONDS)
                held = memory_of(process.descendants())
                held_connections = open_descriptors(process.descendants()) - descriptors_before
                generator.quit()
            if held_connections < count:
                raise ServerError(f"{server} held only {held_connections} of {count} idle WebSockets "
                                  "when its memory was read")
            start = figures["start"]
            figures.update({
                "held": held,
                "rss_bytes_per_connection": (held["rss_kib"] - start["rss_kib"]) * 1024 / count,
                "uss_bytes_per_connection": (held["uss_kib"] - start["uss_kib"]) * 1024 / count,
            })
        process.stop()
    return figures


def measure_memory(server, options):
    """RSS and USS after one request, and what each of many idle keep-alive connections adds.

    The harness itself holds the connections, each after one answered
    request; the server's descriptors are counted when its memory is read,
    so connections it closed meanwhile (an idle timeout) do not go unseen."""
    scenario = FAMILIES[SERVERS[server].family].memory_scenario
    if scenario.protocol == "websocket":
        return measure_websocket_memory(server, scenario, options)
    count = options.idle_connections if SERVERS[server].holds_idle_connections else 0
    with start_server(server, scenario.app, options) as process:
        _send_checked(process, scenario, 1)
        time.sleep(SETTLE_SECONDS)
        figures = {"start": memory_of(process.descendants()), "connections": count}
        if count:
            figures.update(_measure_idle_connections(process, scenario, count, figures["start"]))
        process.stop()
    return figures


def _measure_idle_connections(process, scenario, count, start):
    descriptors_before = open_descriptors(process.descendants())
    try:
        with httpclient.idle_connections(process.port, scenario, count):
            time.sleep(SETTLE_SECONDS)
            held = memory_of(process.descendants())
            held_connections = open_descriptors(process.descendants()) - descriptors_before
    except OSError as error:
        raise ServerError(f"{process.server} failed {count} idle connections: {error!r}\n"
                          f"{process.stderr_text()}") from error
    if held_connections < count:
        raise ServerError(f"{process.server} held only {held_connections} of {count} idle connections "
                          "when its memory was read")
    return {
        "held": held,
        "rss_bytes_per_connection": (held["rss_kib"] - start["rss_kib"]) * 1024 / count,
        "uss_bytes_per_connection": (held["uss_kib"] - start["uss_kib"]) * 1024 / count,
    }


def callgrind_control(arguments, pids):
    for pid in pids:
        completed = subprocess.run(["callgrind_control", *arguments, str(pid)],
                                   capture_output=True, text=True, timeout=120)
        if completed.returncode != 0:
            raise ServerError(f"callgrind_control {' '.join(arguments)} {pid} failed:\n"
                              f"{completed.stdout}{completed.stderr}")


def _send_checked(process, scenario, count):
    """Send ``count`` requests; ServerError unless the last answer is the expected one."""
    if count == 0:
        return
    try:
        response = httpclient.send_requests(process.port, scenario, count)
    except (OSError, ValueError) as error:
        raise ServerError(f"{process.server} ({scenario.name}): request failed: {error!r}\n"
                          f"{process.stderr_text()}") from error
    problem = httpclient.response_problem(response, scenario)
    if problem:
        raise ServerError(f"{process.server} answered {scenario.name} wrongly: {problem}")


@contextlib.contextmanager
def traffic(process, scenario, options):
    """A function that sends ``count`` of the scenario's requests (HTTP, one after the other) or messages
    (WebSocket: its load generator's clients, connected once here) and returns how many it counted; for
    the fixed-count measurements, callgrind's and strace's."""
    if scenario.protocol == "http":
        def send(count):
            _send_checked(process, scenario, count)
            return count
        yield send
        return
    with load_generator(process, scenario, options) as generator:
        def send(count):
            if count == 0:
                return 0
            answer = generator.run_count(count)
            websocket_client.check_answer(process.server, scenario.name, answer, count)
            return answer["messages"]
        yield send
        generator.quit()


def measure_instructions(server, scenario, options):
    """Instructions per request the server process(es) run, counted by callgrind.

    Python starts uninstrumented (fast); instrumentation is switched on, a
    warm-up sent, the counters zeroed, the counted requests sent and the
    counters dumped, so start-up, first-request costs and shut-down are out.
    """
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as out_dir:
        wrapper = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--dump-line=no", "--dump-instr=no",
                   f"--callgrind-out-file={out_dir}/callgrind.%p"]
        with start_server(server, scenario.app, options, wrapper=wrapper) as process:
            pids = process.descendants()
            callgrind_control(["-i", "on"], pids)
            with traffic(process, scenario, options) as send:
                send(options.warmup_requests)
                callgrind_control(["-z"], pids)
                counted = send(options.callgrind_requests)
                callgrind_control(["-d"], pids)
                callgrind_control(["-i", "off"], pids)  # closing and shut-down then run at full speed
            process.stop()
            stderr = process.stderr_text()
        # The dump after the counted requests is part 1: callgrind.<pid>.1
        dumps = [name for name in os.listdir(out_dir) if name.endswith(".1")]
        total = 0
        for name in dumps:
            with open(os.path.join(out_dir, name)) as dump:
                match = re.search(r"^summary:\s*(\d+)", dump.read(), re.MULTILINE)
            if match:
                total += int(match.group(1))
            if options.callgrind_out:
                kept = os.path.join(options.callgrind_out, f"callgrind.{server}.{scenario.name}")
                shutil.copyfile(os.path.join(out_dir, name), kept)
        if total == 0:
            raise ServerError(f"callgrind dumped no counts for {server} ({scenario.name}): "
                              f"files {sorted(os.listdir(out_dir))}\n{stderr}")
        return total / counted


def measure_syscalls(server, scenario, options):
    """System calls per request, by name, counted by strace attached after a warm-up.

    callgrind counts only user-space instructions; the kernel work a server
    asks for shows up here instead."""
    with tempfile.TemporaryDirectory(prefix="bench-strace-") as out_dir, \
            start_server(server, scenario.app, options) as process:
        summary_path = os.path.join(out_dir, "summary")
        with traffic(process, scenario, options) as send:
            send(options.warmup_requests)
            pids = process.descendants()
            command = ["strace", "-c", "-f", "-o", summary_path]
            for pid in pids:
                command += ["-p", str(pid)]
            tracer = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
            try:
                _wait_for_attach(tracer, len(pids))
                counted = send(options.syscall_requests)
                tracer.send_signal(signal.SIGINT)  # detach and write the summary
                tracer.wait(timeout=60)
            finally:
                if tracer.poll() is None:
                    tracer.kill()
                    tracer.wait()
                tracer.stderr.close()
        process.stop()
        with open(summary_path) as summary:
            counts = _parse_strace_summary(summary.read())
    if not counts:
        raise ServerError(f"strace counted no system calls for {server} ({scenario.name})")
    return {name: calls / counted for name, calls in counts.items()}


def _wait_for_attach(tracer, process_count):
    attached = 0
    while attached < process_count:
        line = tracer.stderr.readline()
        if not line:
            raise HarnessError(f"strace exited (status {tracer.wait()}) before attaching; "
                               "is ptrace allowed here (kernel.yama.ptrace_scope)?")
        if "attached" in line:
            attached += 1


def _parse_strace_summary(text):
    """{syscall: calls} from strace -c's table (the calls column is the 4th)."""
    counts = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5 or not fields[3].isdigit() or fields[-1] == "total":
            continue
        counts[fields[-1]] = int(fields[3])
    return counts


def extension_sizes(options, modules):
    """File size and stripped size of each server's compiled extension (``modules``), in bytes,
    as the servers' Python finds it."""
    sizes = {}
    for server in options.servers:
        if server not in modules:
            continue
        completed = subprocess.run(
            [options.python or sys.executable, "-c",
             "import importlib.util, sys; spec = importlib.util.find_spec(sys.argv[1]); print(spec.origin)",
             modules[server]], capture_output=True, text=True, timeout=60, env=server_environment())
        origin = completed.stdout.strip()
        if completed.returncode != 0 or not origin.endswith(".so"):
            continue
        entry = {"path": origin, "bytes": os.path.getsize(origin)}
        if shutil.which("strip"):
            with tempfile.TemporaryDirectory() as scratch:
                stripped = os.path.join(scratch, "stripped.so")
                if subprocess.run(["strip", "-o", stripped, origin], capture_output=True).returncode == 0:
                    entry["stripped_bytes"] = os.path.getsize(stripped)
        sizes[server] = entry
    return sizes


# --- the runs -------------------------------------------------------------


class Failures(list):
    """Every run that failed: {server, scenario, error}. Exit status 1 if any."""

    def attempt(self, kind, server, scenario_name, measure, *arguments):
        """measure(*arguments), or None after recording and printing its ServerError."""
        try:
            return measure(*arguments)
        except ServerError as error:
            label = f"{kind} {scenario_name}".strip()
            self.append({"server": server, "scenario": label, "error": str(error)})
            print(f"FAILED {server} {label}: {error}", file=sys.stderr, flush=True)
            return None


def rotated(names, round_index):
    """``names`` in the order of round ``round_index``: each round starts one further along."""
    shift = round_index % len(names) if names else 0
    return names[shift:] + names[:shift]


def run_loads(options, failures):
    """wrk rounds: {scenario: {server: [one figures per round]}}; a failed pair keeps no rounds."""
    results = {scenario.name: {server: [] for server in scenario_servers(scenario) if server in options.servers}
               for scenario in options.scenarios}
    failed = set()
    for round_index in range(options.rounds):
        for scenario in options.scenarios:
            for server in rotated(list(results[scenario.name]), round_index):
                if (server, scenario.name) in failed:
                    continue  # failed once: its figures would be partial
                measure = measure_websocket_load if scenario.protocol == "websocket" else measure_load
                one = failures.attempt("", server, scenario.name, measure, server, scenario, options)
                if one is None:
                    failed.add((server, scenario.name))
                    continue
                results[scenario.name][server].append(one)
                _print_round(round_index, options.rounds, scenario, server, one["load"])
    for server, scenario_name in failed:
        results[scenario_name][server] = []
    return results


def _print_round(round_index, rounds, scenario, server, load):
    errors = {kind: count for kind, count in load["errors"].items() if count}
    flag = f"  ERRORS {errors}" if errors else ""
    unit = "msg" if scenario.protocol == "websocket" else "req"
    print(f"  round {round_index + 1}/{rounds} {scenario.name:<17} {server:<12} {load['req_per_s']:>10,.0f} {unit}/s  "
          f"{cpu_per_request(load):7.1f} µs CPU/{unit}  "
          f"p99 {load['p99_us'] / 1000:7.2f} ms{flag}", flush=True)


def run_memory(options, failures):
    """{server: [one memory figures per round]} for the memory servers."""
    rounds = {server: [] for server in options.memory_servers}
    for round_index in range(options.rounds):
        for server in rotated(options.memory_servers, round_index):
            one = failures.attempt("memory", server, "", measure_memory, server, options)
            if one is None:
                continue
            rounds[server].append(one)
            kind = "WebSocket" if FAMILIES[SERVERS[server].family].memory_scenario.protocol == "websocket" \
                else "connection"
            per_connection = (f"  {one['rss_bytes_per_connection']:,.0f} B RSS per idle {kind} "
                              f"({one['connections']:,})" if one["connections"] else "")
            print(f"  memory {round_index + 1}/{options.rounds} {server:<12} RSS at start "
                  f"{one['start']['rss_kib'] / 1024:.1f} MiB{per_connection}", flush=True)
    return rounds


def run_syscalls(options, failures):
    syscalls = {}
    for scenario in options.scenarios if options.syscall_requests else []:
        for server in options.detail_servers:
            if server not in scenario.family.servers or not SERVERS[server].serves(scenario.app):
                continue  # a guest (ursa's WSGI hello in the ASGI hello) is counted in its own family
            per_request = failures.attempt("strace", server, scenario.name, measure_syscalls,
                                           server, scenario, options)
            if per_request is None:
                continue
            syscalls.setdefault(scenario.name, {})[server] = per_request
            print(f"  strace    {scenario.name:<17} {server:<12} {sum(per_request.values()):>10.2f} "
                  f"system calls/{_unit(scenario)}", flush=True)
    return syscalls


def run_instructions(options, failures):
    instructions = {}
    for scenario in options.callgrind_scenarios if options.callgrind_requests else []:
        for server in options.callgrind_servers:
            if server not in scenario_servers(scenario):
                continue  # a guest is counted too: ursa's WSGI hello on the ASGI run's interpreter
            count = failures.attempt("callgrind", server, scenario.name, measure_instructions,
                                     server, scenario, options)
            if count is None:
                continue
            instructions.setdefault(scenario.name, {})[server] = count
            print(f"  callgrind {scenario.name:<17} {server:<12} {count:>10,.0f} instructions/{_unit(scenario)}",
                  flush=True)
    return instructions


def _unit(scenario):
    return "message" if scenario.protocol == "websocket" else "request"


def run_idle(options, failures):
    """{server: figures} of bench/idle.py for the detail servers: CPU and wake-ups while idle."""
    figures = {}
    for server in options.detail_servers if options.idle_seconds else []:
        if not FAMILIES[SERVERS[server].family].measures_idle:
            continue  # bench/idle.py starts the family's hello over HTTP
        one = failures.attempt("idle", server, "", idle.measure_idle, server, options.idle_seconds,
                               options.server_cpu, options.python, bool(options.syscall_requests))
        if one is not None:
            figures[server] = one
            print(f"  idle      {idle.describe(server, one)}", flush=True)
    return figures


# --- driver -------------------------------------------------------------------


def _defaults(attribute, families=FAMILIES):
    """The families' share of a default, joined: ",".join of each family's ``attribute``, once each."""
    return ",".join(dict.fromkeys(name for family in families for name in getattr(FAMILIES[family], attribute)))


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", default=",".join(FAMILIES),
                        help="comma-separated: the families whose servers and scenarios run (bench/families.py; "
                        "default: %(default)s)")
    parser.add_argument("--servers", help="comma-separated (default: all of the families that are installed: "
                        + ",".join(SERVERS) + ")")
    parser.add_argument("--scenarios", help="comma-separated (default: all of the families: "
                        + ",".join(SCENARIOS) + ")")
    parser.add_argument("--python", metavar="PATH",
                        help="the interpreter the servers run on (default: this one; see above)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per scenario; the median is kept")
    parser.add_argument("--duration", type=int, default=2, help="seconds of wrk load per run")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of wrk load before each run (0: none)")
    parser.add_argument("--connections", type=int, default=50, help="wrk -c")
    parser.add_argument("--threads", type=int, default=1, help="wrk -t")
    parser.add_argument("--server-cpu", type=int, default=0, help="core the server is pinned to")
    parser.add_argument("--client-cpu", type=int, default=1, help="core wrk and the harness are pinned to")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    parser.add_argument("--detail-servers",
                        help="servers whose instructions (single-process servers only), system calls per "
                        "request and idle cost are measured (default: " + _defaults("detail_servers") + ")")
    parser.add_argument("--callgrind-requests", type=int, default=2000,
                        help="requests counted per callgrind run (0: skip the instruction count)")
    parser.add_argument("--warmup-requests", type=int, default=100,
                        help="requests sent, uncounted, before those callgrind and strace count")
    parser.add_argument("--callgrind-scenarios",
                        help="scenarios whose instructions are counted (default: " + _defaults("callgrind_scenarios")
                        + "; post, headers and close are useful extras; stream is slow under bjoern, ~40 ms per "
                        "response)")
    parser.add_argument("--callgrind-out", metavar="DIR",
                        help="keep callgrind's counts of the counted requests in DIR, one file per server and "
                        "scenario, for callgrind_annotate")
    parser.add_argument("--syscall-requests", type=int, default=200,
                        help="requests counted under strace per scenario (0: skip the system call count)")
    parser.add_argument("--idle-seconds", type=float, default=5.0,
                        help="seconds each detail server is left idle, its CPU and wake-ups counted (bench/idle.py; "
                        "0: skip)")
    parser.add_argument("--memory-servers",
                        help="servers whose RSS at start and per idle connection is measured; 'all' for every "
                        "server run (default: " + _defaults("memory_servers") + ")")
    parser.add_argument("--idle-connections", type=int, default=IDLE_CONNECTIONS,
                        help="idle keep-alive connections held open for the memory per connection (0: skip)")
    parser.add_argument("--ws-idle-connections", type=int, default=WS_IDLE_CONNECTIONS,
                        help="idle WebSockets held open for the memory per WebSocket (WS family; 0: skip)")
    parser.add_argument("--idle-batch", type=int, default=httpclient.IDLE_CONNECTION_BATCH,
                        help="idle connections opened, then sent their request, at a time (default: %(default)s); "
                        "1 keeps the server from ever holding more than one request's temporaries")
    sections = parser.add_mutually_exclusive_group()
    sections.add_argument("--memory-only", action="store_true", help="only the memory section")
    sections.add_argument("--no-memory", action="store_true", help="skip the memory section")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 round of 1 s without warm-up; 500 requests under callgrind, "
                        "50 under strace, 2 idle seconds")
    parser.add_argument("--from-json", metavar="FILE",
                        help="measure nothing: make the report, targets and chart again from a run's JSON file "
                        "(into --output, default: beside FILE)")
    parser.add_argument("--output", metavar="PREFIX", help="write PREFIX.md, PREFIX.png and PREFIX.json (default: "
                        f"{os.path.relpath(DEFAULT_OUTPUT)})")
    options = parser.parse_args(argv)
    families = _split_names(options.families, FAMILIES, "family", parser)
    options.families = families
    # A guest of a chosen family's scenario (ursa's WSGI hello in the ASGI hello) runs by default too.
    servers = {name: server for name, server in SERVERS.items()
               if server.family in families or any(name in s.guests for f in families for s in FAMILIES[f].scenarios)}
    scenarios = {name: scenario for name, scenario in SCENARIOS.items() if scenario.family.name in families}
    defaults = {"scenarios": ",".join(scenarios), "detail_servers": _defaults("detail_servers", families),
                "callgrind_scenarios": _defaults("callgrind_scenarios", families),
                "memory_servers": _defaults("memory_servers", families), "output": DEFAULT_OUTPUT}
    for name, default in defaults.items():
        if getattr(options, name) is None:
            setattr(options, name, default)
    if options.quick:
        options.rounds, options.duration, options.warmup = 1, 1, 0
        options.callgrind_requests = min(options.callgrind_requests, 500)
        options.syscall_requests = min(options.syscall_requests, 50)
        options.idle_seconds = min(options.idle_seconds, 2.0)
    if options.rounds < 1 or options.duration < 1 or options.warmup < 0 or options.idle_connections < 0 \
            or options.idle_seconds < 0 or options.ws_idle_connections < 0:
        parser.error("--rounds and --duration must be at least 1, --warmup, --idle-seconds, --idle-connections "
                     "and --ws-idle-connections at least 0")
    if options.python and not (os.path.isfile(options.python) and os.access(options.python, os.X_OK)):
        parser.error(f"--python {options.python}: not an executable file")
    options.chosen_servers = options.servers is not None
    options.servers = _split_names(options.servers or ",".join(servers), SERVERS, "server", parser)
    options.scenarios = [SCENARIOS[name] for name in _split_names(options.scenarios, SCENARIOS, "scenario", parser)]
    options.callgrind_scenarios = [
        SCENARIOS[name] for name in
        _split_names(options.callgrind_scenarios, SCENARIOS, "callgrind scenario", parser)
        if SCENARIOS[name] in options.scenarios
    ]
    options.detail_servers = _split_names(options.detail_servers, SERVERS, "detail server", parser)
    if options.memory_servers != "all":
        options.memory_servers = _split_names(options.memory_servers, SERVERS, "memory server", parser)
    if options.callgrind_out:
        os.makedirs(options.callgrind_out, exist_ok=True)
    if options.no_pin:
        options.server_cpu = options.client_cpu = None
    if options.idle_batch < 1:
        parser.error("--idle-batch must be at least 1")
    httpclient.IDLE_CONNECTION_BATCH = options.idle_batch
    return options


def _split_names(text, known, kind, parser):
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        parser.error(f"unknown {kind}(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(known)}")
    return names


def check_setup(options):
    """Raise HarnessError for anything missing; returns notes about what is left out."""
    notes = _choose_servers(options)
    loads_http = any(scenario.protocol == "http" for scenario in options.scenarios)
    if shutil.which("wrk") is None and not options.memory_only and loads_http:
        raise HarnessError("wrk not found: apt-get install wrk (or make bench, which installs it)")
    if "ws" in options.families and not _load_generator_runs():
        raise HarnessError("the WebSocket load generator needs picows and uvloop in this Python: "
                           "pip install -r bench/requirements-asgi.txt (or make bench, which installs them)")
    if options.server_cpu is not None:
        usable = os.sched_getaffinity(0)
        if options.server_cpu not in usable or options.client_cpu not in usable:
            raise HarnessError(f"cores {options.server_cpu} and {options.client_cpu} are not both usable "
                               f"(usable: {sorted(usable)}); pick --server-cpu/--client-cpu or --no-pin")
        if options.server_cpu == options.client_cpu:
            notes.append("server and client share a core: throughput halves, ratios still hold")
        # The harness is wrk's neighbour, not the server's: its own clients run here.
        os.sched_setaffinity(0, {options.client_cpu})
    if options.callgrind_requests and not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        notes.append("valgrind not found (apt-get install valgrind): instructions per request skipped")
        options.callgrind_requests = 0
    if options.syscall_requests and shutil.which("strace") is None:
        notes.append("strace not found (apt-get install strace): system calls per request skipped")
        options.syscall_requests = 0
    notes += _raise_descriptor_limit(options)
    return notes


def _load_generator_runs():
    """Whether websocket_load.py's imports work in the harness's Python, which runs it."""
    probe = subprocess.run([sys.executable, "-c", "import picows, uvloop"], capture_output=True, timeout=60)
    return probe.returncode == 0


def _choose_servers(options):
    """Keep the servers that can run; an unavailable one is a note, or an error if required or asked for."""
    notes = []
    available = []
    servers = SERVERS
    for server in options.servers:
        reason = servers[server].unavailable_reason(server_environment(), options.python)
        if reason is None:
            available.append(server)
        elif servers[server].required or options.chosen_servers:
            raise HarnessError(f"server {server!r} is not usable: {reason}\n(build ursa: make build; the others: "
                               "make bench, or pip install -r requirements-bench.txt; or choose --servers)")
        else:
            notes.append(f"{server} left out: {reason}")
    options.servers = available
    if options.memory_servers == "all":
        options.memory_servers = list(available)
    options.memory_servers = [server for server in options.memory_servers if server in available]
    options.detail_servers = [server for server in options.detail_servers if server in available]
    options.callgrind_servers = [server for server in options.detail_servers if servers[server].single_process]
    if options.callgrind_requests and options.callgrind_servers != options.detail_servers:
        left_out = sorted(set(options.detail_servers) - set(options.callgrind_servers))
        notes.append(f"no instruction count for {', '.join(left_out)}: callgrind_control cannot reach "
                     "a worker process forked under valgrind")
    cannot_hold = [server for server in options.memory_servers if not servers[server].holds_idle_connections]
    if cannot_hold and options.idle_connections:
        notes.append(f"no memory per idle connection for {', '.join(cannot_hold)}: as configured it cannot "
                     f"hold {options.idle_connections:,} connections (see bench/servers.py, asgi_servers.py)")
    unserved = {server: [s.name for s in options.scenarios
                         if s.family.name == servers[server].family and server not in scenario_servers(s)]
                for server in ([] if options.memory_only else available)}
    notes += [f"{server} does not run {', '.join(names)}" for server, names in unserved.items() if names]
    return notes


def _raise_descriptor_limit(options):
    """Lift RLIMIT_NOFILE to what the idle connections need; the servers inherit it.

    Raised before any server starts, so every server runs under the same limit."""
    if options.no_memory or not (options.idle_connections or options.ws_idle_connections) \
            or not options.memory_servers:
        return []
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(options.idle_connections, options.ws_idle_connections) + DESCRIPTOR_HEADROOM
    if hard != resource.RLIM_INFINITY and hard < wanted:
        options.idle_connections = max(0, hard - DESCRIPTOR_HEADROOM)
        wanted = hard
        note = [f"RLIMIT_NOFILE hard limit {hard}: only {options.idle_connections:,} idle connections"]
    else:
        note = []
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return note


def servers_python(options):
    """What the servers run on: "CPython 3.13.0 (PATH)" for --python, "CPython 3.11.7" for this one."""
    if not options.python:
        return f"{platform.python_implementation()} {platform.python_version()}"
    completed = subprocess.run(
        [options.python, "-c", "import platform; print(platform.python_implementation(), platform.python_version())"],
        capture_output=True, text=True, timeout=60)
    return f"{completed.stdout.strip() or 'unknown'} ({options.python})"


def machine_description(options):
    cpu_model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu_model = line.partition(":")[2].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu_model, "cores": os.cpu_count(), "kernel": platform.release(),
            "os": _os_name(), "python": servers_python(options)}


def _os_name():
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME", "unknown")
    except OSError:
        return "unknown"


def run_all(options, failures):
    """Every section the options ask for; {section: figures}."""
    figures = {"rounds": {}, "memory": {}, "syscalls": {}, "instructions": {}, "idle": {}}
    if not options.memory_only:
        figures["rounds"] = run_loads(options, failures)
    if not options.no_memory:
        figures["memory"] = run_memory(options, failures)
    if not options.memory_only:
        figures["syscalls"] = run_syscalls(options, failures)
        figures["instructions"] = run_instructions(options, failures)
        figures["idle"] = run_idle(options, failures)
    return figures


def build_document(options, versions, notes, figures, failures, elapsed):
    """Everything the run found, as the JSON file holds it; the report is made from this."""
    ratios = {}
    for scenario in options.scenarios:  # each scenario's to its family's reference
        rounds = {scenario.name: figures["rounds"].get(scenario.name, {})}
        ratios.update(report.paired_ratios(rounds, scenario.family.reference))
    modules = {server: module for family in FAMILIES.values() for server, module in family.extension_modules.items()}
    document = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": options.quick,
        "families": {name: {"reference": FAMILIES[name].reference, "subject": FAMILIES[name].subject}
                     for name in options.families},
        "machine": machine_description(options),
        "command": options.command,
        "servers": {server: {"version": versions[server], "how": SERVERS[server].how, "family": SERVERS[server].family}
                    for server in options.servers},
        "scenarios": [scenario.describe() for scenario in options.scenarios],
        "options": {key: getattr(options, key) for key in
                    ("rounds", "duration", "warmup", "connections", "threads", "server_cpu", "client_cpu",
                     "callgrind_requests", "warmup_requests", "syscall_requests", "idle_connections",
                     "ws_idle_connections", "idle_batch", "idle_seconds", "detail_servers", "memory_servers",
                     "python")},
        "notes": notes,
        "summary": report.summarize(figures["rounds"]),
        "ratios": ratios,
        "rounds": figures["rounds"],
        "memory": {"rounds": figures["memory"], "summary": report.summarize_memory(figures["memory"])},
        "instructions_per_request": figures["instructions"],
        "syscalls_per_request": figures["syscalls"],
        "idle": figures["idle"],
        "extension_sizes": extension_sizes(options, modules),
        "failures": list(failures),
        "elapsed_seconds": elapsed,
    }
    document["targets"] = [target for family in FAMILIES.values() for target in family.targets(document)]
    return document


def write_outputs(document, prefix):
    directory = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(directory, exist_ok=True)
    with open(f"{prefix}.json", "w") as output:
        json.dump(document, output, indent=2)
    report.write_markdown(document, f"{prefix}.md", os.path.basename(prefix) + ".png")
    written = [f"{prefix}.json", f"{prefix}.md"]
    problem = report.write_chart(document, f"{prefix}.png")
    if problem:
        print(f"note: no chart: {problem}")
    else:
        written.append(f"{prefix}.png")
    print(f"wrote {', '.join(written)}")


def report_again(path, prefix):
    """The report of an earlier run from its JSON file, targets evaluated anew; written to ``prefix``."""
    with open(path) as source:
        document = json.load(source)
    document["targets"] = [target for family in FAMILIES.values() for target in family.targets(document)]
    report.print_report(document)
    write_outputs(document, prefix or os.path.splitext(path)[0])
    return 0


def main(argv=None):
    command = " ".join(["bench/compare.py", *(sys.argv[1:] if argv is None else argv)])
    try:
        options = parse_arguments(argv)
        if options.from_json:
            return report_again(options.from_json, options.output if options.output != DEFAULT_OUTPUT else None)
        options.command = command
        notes = check_setup(options)
    except HarnessError as error:
        print(f"compare: {error}", file=sys.stderr)
        return 2
    started = time.monotonic()
    versions = {server: SERVERS[server].version(server_environment(), options.python) for server in options.servers}
    print(f"ursa benchmark ({', '.join(options.families)}): {', '.join(f'{s} {v}' for s, v in versions.items())}; "
          f"servers on {servers_python(options)}; {os.cpu_count()} cores; "
          f"server on core {options.server_cpu}, wrk and the WebSocket load generator on core {options.client_cpu}")
    for note in notes:
        print(f"note: {note}")

    failures = Failures()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-files-") as files_dir:
            # Inherited by every server started from here on: the file the "file" app sends.
            os.environ[apps.FILE_PATH_ENV] = apps.write_file(files_dir)
            figures = run_all(options, failures)
    except HarnessError as error:
        print(f"compare: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("compare: interrupted", file=sys.stderr)
        return 2

    document = build_document(options, versions, notes, figures, failures, time.monotonic() - started)
    report.print_report(document)
    print(f"\n{len(failures)} failure(s); {document['elapsed_seconds']:.0f} s")
    write_outputs(document, options.output)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
