"""Side-by-side benchmark of ursa against bjoern (and, on request, gunicorn).

    .venv/bin/python bench/compare.py                 # about 5 minutes
    .venv/bin/python bench/compare.py --quick         # smoke run, about a minute
    .venv/bin/python bench/compare.py --json out.json --servers ursa,bjoern,gunicorn

Every server runs the same app (bench/apps.py) in one process pinned to one
core; wrk loads it from another core. Servers take turns inside each round
and the order rotates from round to round, so a burst of noise from the rest
of the machine hits them all alike; the median over rounds is reported. On a
shared machine the absolute numbers drift; the ratios to bjoern are the result.

Reported per scenario: requests/s and p99 latency (wrk), memory left after the
load, instructions per request (callgrind: user space, whole process, the
same whatever else the machine is doing) and system calls per request
(strace). Per server: RSS and USS idle after start, peak RSS, and the size of
the extension module.

Exit status: 0 when every run completed, whatever the ratios; 1 when a server
failed (did not start, answered wrongly, died); 2 on a usage or setup error.
"""
import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import apps  # noqa: E402
from servers import HOST, ServerError, ServerProcess, pinned_command, server_available  # noqa: E402

REFERENCE_SERVER = "bjoern"
KNOWN_SERVERS = ("ursa", "bjoern", "gunicorn")
DEFAULT_SERVERS = ("ursa", "bjoern")
DEFAULT_CALLGRIND_SCENARIOS = "keepalive,close,post,headers"
CALLGRIND_SERVERS = ("ursa", "bjoern")  # single-process servers

# Seconds to let a fresh server settle before its idle memory is read, and a
# loaded one before its after-load memory is (connections closing, frees).
SETTLE_SECONDS = 0.2
CLIENT_SOCKET_TIMEOUT = 60.0  # seconds; generous because of valgrind
WRK_RESULT_PREFIX = "WRK_JSON "


class HarnessError(Exception):
    """Something the benchmark itself needs is missing or wrong (exit 2)."""


class Scenario:
    """One kind of request, described once and turned into a wrk script and raw bytes."""

    def __init__(self, name, title, app, method="GET", path="/", headers=None, body=b"",
                 keep_alive=True, expected_body=None, expect_chunked=False):
        self.name = name
        self.title = title
        self.app = app
        self.method = method
        self.path = path
        self.headers = dict(headers or {})
        self.body = body
        self.keep_alive = keep_alive
        self.expected_body = expected_body
        self.expect_chunked = expect_chunked

    def request_bytes(self, port):
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {HOST}:{port}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        if self.body:
            lines.append(f"Content-Length: {len(self.body)}")
        if not self.keep_alive:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body

    def wrk_script(self):
        def lua_string(text):
            # A long bracket needs no escaping as long as its closing mark is absent.
            if "]==]" in text:
                raise HarnessError(f"scenario {self.name}: cannot quote {text!r} for wrk's Lua")
            return f"[==[{text}]==]"

        lines = [f"wrk.method = {lua_string(self.method)}"]
        for name, value in self.headers.items():
            # The spaces keep "[[==[" from reading as the start of a long bracket.
            lines.append(f"wrk.headers[ {lua_string(name)} ] = {lua_string(value)}")
        if self.body:
            lines.append(f"wrk.body = {lua_string(self.body.decode('latin-1'))}")
        if not self.keep_alive:
            lines.append('wrk.headers["Connection"] = "close"')
        lines.append(WRK_DONE_FUNCTION)
        return "\n".join(lines) + "\n"


# wrk calls done() once at the end; printing JSON spares parsing its report.
WRK_DONE_FUNCTION = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests": %%d, "duration_us": %%d, "p50_us": %%.1f, "p99_us": %%.1f, '
    .. '"errors": {"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
""" % WRK_RESULT_PREFIX

SCENARIOS = [
    Scenario("keepalive", "hello, keep-alive", "hello", expected_body=apps.HELLO_BODY),
    Scenario("close", "hello, Connection: close", "hello", keep_alive=False, expected_body=apps.HELLO_BODY),
    Scenario("large", "64 KiB body", "large", expected_body=apps.LARGE_BODY),
    Scenario("chunked", "generator, 16 chunks", "chunked", expected_body=apps.CHUNK * apps.CHUNK_COUNT,
             expect_chunked=True),
    Scenario("post", "POST 4 KiB echo", "echo", method="POST", body=b"p" * apps.POST_BODY_SIZE,
             headers={"Content-Type": "application/octet-stream"}, expected_body=b"p" * apps.POST_BODY_SIZE),
    Scenario("headers", "20 headers, environ app", "environ", path="/search/results?q=wsgi&page=2",
             headers=apps.MANY_HEADERS, expected_body=apps.EXPECTED_ENVIRON_BODY),
]
SCENARIOS_BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


# --- a minimal HTTP/1.1 client, for checks and for callgrind's fixed load -----


def read_response(reader):
    """Read one response from a buffered socket reader: (status, headers, body)."""
    status_line = reader.readline()
    if not status_line:
        raise ConnectionError("connection closed before a response")
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ConnectionError(f"not an HTTP/1.x status line: {status_line!r}")
    status = int(parts[1])
    headers = {}
    while True:
        line = reader.readline()
        if line in (b"\r\n", b"\n"):
            break
        if not line:
            raise ConnectionError("connection closed inside the response headers")
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(reader.readline().split(b";")[0], 16)
            if size == 0:
                while reader.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields
                break
            chunks.append(reader.read(size))
            reader.read(2)  # CRLF after each chunk
        body = b"".join(chunks)
    elif "content-length" in headers:
        body = reader.read(int(headers["content-length"]))
    else:
        body = reader.read()  # delimited by close
    return status, headers, body


def send_requests(port, scenario, count):
    """Send ``count`` requests one after another; returns the last response."""
    request = scenario.request_bytes(port)
    connection = reader = None
    response = None
    try:
        for _ in range(count):
            if connection is None:
                connection = socket.create_connection((HOST, port), timeout=CLIENT_SOCKET_TIMEOUT)
                reader = connection.makefile("rb")
            connection.sendall(request)
            response = read_response(reader)
            # gunicorn's sync worker answers keep-alive requests with a close.
            if not scenario.keep_alive or response[1].get("connection", "").lower() == "close":
                if reader.read() != b"":  # wait for the server's close
                    raise ConnectionError("bytes after a response that closes the connection")
                reader.close()
                connection.close()
                connection = reader = None
    finally:
        if connection is not None:
            reader.close()
            connection.close()
    return response


def check_response(port, scenario):
    """Return None if the server answers ``scenario`` correctly, else what is wrong."""
    try:
        status, headers, body = send_requests(port, scenario, 2 if scenario.keep_alive else 1)
    except (OSError, ValueError) as error:
        return f"request failed: {error!r}"
    if status != 200:
        return f"status {status}, expected 200; body {body[:200]!r}"
    if body != scenario.expected_body:
        return f"body of {len(body)} bytes differs from the expected {len(scenario.expected_body)}: {body[:80]!r}"
    if scenario.expect_chunked and headers.get("transfer-encoding", "").lower() != "chunked":
        return f"expected a chunked response, got headers {headers}"
    return None


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


def _kib_fields(lines):
    for line in lines:
        name, _, rest = line.partition(":")
        value = rest.split()
        if len(value) == 2 and value[1] == "kB":
            yield name, int(value[0])


def run_wrk(port, scenario, duration, options):
    """Run wrk once against ``port``; returns its done() figures plus req_per_s."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix=f"bench-{scenario.name}-") as script:
        script.write(scenario.wrk_script())
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


def measure_load(server, scenario, options):
    """Start ``server`` with the scenario's app, check it, load it; one round's figures."""
    with ServerProcess(server, scenario.app, cpu=options.server_cpu) as process:
        time.sleep(SETTLE_SECONDS)
        idle = memory_of(process.pids())
        problem = check_response(process.port, scenario)
        if problem:
            raise ServerError(f"{server} answered the {scenario.name} check wrongly: {problem}")
        if options.warmup:
            run_wrk(process.port, scenario, options.warmup, options)
        cpu_before = cpu_seconds_of(process.pids())
        load = run_wrk(process.port, scenario, options.duration, options)
        cpu_after = cpu_seconds_of(process.pids())
        if load["requests"] == 0:
            raise ServerError(f"{server} completed no request in {options.duration} s of {scenario.name} load "
                              f"(wrk errors {load['errors']})")
        for kind in ("user", "system"):
            spent = cpu_after[kind] - cpu_before[kind]
            load[f"cpu_{kind}_us_per_req"] = spent * 1e6 / load["requests"]
        if not process.alive():
            raise ServerError(f"{server} died under the {scenario.name} load\n{process.stderr_text()}")
        time.sleep(SETTLE_SECONDS)
        after = memory_of(process.pids())
        problem = check_response(process.port, scenario)
        if problem:
            raise ServerError(f"{server} answered wrongly after the {scenario.name} load: {problem}")
        process.stop()
    return {"load": load, "memory_idle": idle, "memory_after": after}


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
        status, _, body = send_requests(process.port, scenario, count)
    except (OSError, ValueError) as error:
        raise ServerError(f"{process.server} ({scenario.name}): request failed: {error!r}\n"
                          f"{process.stderr_text()}") from error
    if status != 200 or body != scenario.expected_body:
        raise ServerError(f"{process.server} answered {scenario.name} wrongly: status {status}, {len(body)} bytes")


def measure_instructions(server, scenario, options):
    """Instructions per request the server process(es) run, counted by callgrind.

    Python starts uninstrumented (fast); instrumentation is switched on, a
    warm-up sent, the counters zeroed, the counted requests sent and the
    counters dumped, so start-up, first-request costs and shut-down are out.
    """
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as out_dir:
        wrapper = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--dump-line=no", "--dump-instr=no",
                   f"--callgrind-out-file={out_dir}/callgrind.%p"]
        with ServerProcess(server, scenario.app, cpu=options.server_cpu, wrapper=wrapper) as process:
            pids = process.pids()
            callgrind_control(["-i", "on"], pids)
            _send_checked(process, scenario, options.warmup_requests)
            callgrind_control(["-z"], pids)
            _send_checked(process, scenario, options.callgrind_requests)
            callgrind_control(["-d"], pids)
            callgrind_control(["-i", "off"], pids)  # shut-down then runs at full speed
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
        return total / options.callgrind_requests


def measure_syscalls(server, scenario, options):
    """System calls per request, by name, counted by strace attached after a warm-up.

    callgrind counts only user-space instructions; the kernel work a server
    asks for shows up here instead."""
    with tempfile.TemporaryDirectory(prefix="bench-strace-") as out_dir, \
            ServerProcess(server, scenario.app, cpu=options.server_cpu) as process:
        _send_checked(process, scenario, options.warmup_requests)
        summary_path = os.path.join(out_dir, "summary")
        pids = process.pids()
        command = ["strace", "-c", "-f", "-o", summary_path]
        for pid in pids:
            command += ["-p", str(pid)]
        tracer = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        try:
            _wait_for_attach(tracer, len(pids))
            _send_checked(process, scenario, options.syscall_requests)
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
    return {name: calls / options.syscall_requests for name, calls in counts.items()}


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


def extension_sizes():
    """File size and stripped size of each server's compiled extension, in bytes."""
    modules = {"ursa": "ursa._core", "bjoern": "_bjoern"}
    sizes = {}
    for server, module in modules.items():
        try:
            spec = importlib.util.find_spec(module)
        except ImportError:
            spec = None
        if spec is None or not spec.origin or not spec.origin.endswith(".so"):
            continue
        entry = {"path": spec.origin, "bytes": os.path.getsize(spec.origin)}
        if shutil.which("strip"):
            with tempfile.TemporaryDirectory() as scratch:
                stripped = os.path.join(scratch, "stripped.so")
                if subprocess.run(["strip", "-o", stripped, spec.origin], capture_output=True).returncode == 0:
                    entry["stripped_bytes"] = os.path.getsize(stripped)
        sizes[server] = entry
    return sizes


# --- reporting ------------------------------------------------------------


def _ratio_or_dash(ratio):
    return "-" if ratio is None else f"{ratio:.2f}"


def ratio_text(value, reference):
    if value is None or not reference:
        return "-"
    return f"{value / reference:.2f}"


def print_table(title, header, rows, note=None, text_columns=(0, 1)):
    """Print rows under header; text columns align left, figures right."""
    print(f"\n{title}")
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    for index, row in enumerate([header, *rows]):
        cells = [str(cell).ljust(width) if i in text_columns else str(cell).rjust(width)
                 for i, (cell, width) in enumerate(zip(row, widths))]
        print("  " + "  ".join(cells).rstrip())
        if index == 0:
            print("  " + "  ".join("-" * width for width in widths))
    if note:
        print(f"  {note}")


def summarize(results, servers, scenarios):
    """Medians over rounds, per scenario and server."""
    summary = {}
    for scenario in scenarios:
        for server in servers:
            rounds = results[scenario.name][server]
            if not rounds:
                continue
            loads = [one["load"] for one in rounds]
            summary.setdefault(scenario.name, {})[server] = {
                "req_per_s": statistics.median(load["req_per_s"] for load in loads),
                "req_per_s_min": min(load["req_per_s"] for load in loads),
                "req_per_s_max": max(load["req_per_s"] for load in loads),
                "p50_ms": statistics.median(load["p50_us"] for load in loads) / 1000,
                "p99_ms": statistics.median(load["p99_us"] for load in loads) / 1000,
                "cpu_us_per_req": statistics.median(_cpu_per_request(load) for load in loads),
                "server_busy": statistics.median(
                    _cpu_per_request(load) * load["requests"] / load["duration_us"] for load in loads),
                "cpu_system_share": statistics.median(
                    load["cpu_system_us_per_req"] / (_cpu_per_request(load) or 1) for load in loads),
                "errors": sum(sum(load["errors"].values()) for load in loads),
                "memory_idle": _median_memory(one["memory_idle"] for one in rounds),
                "memory_after": _median_memory(one["memory_after"] for one in rounds),
            }
    return summary


def _cpu_per_request(load):
    return load["cpu_user_us_per_req"] + load["cpu_system_us_per_req"]


def paired_ratio(rounds, reference_rounds, figure):
    """Median over rounds of server / reference, each pair from the same round.

    Both ran within seconds of each other, so the machine's background load
    drifts less within a pair than across rounds."""
    if not rounds or len(rounds) != len(reference_rounds):
        return None
    return statistics.median(figure(one["load"]) / figure(base["load"])
                             for one, base in zip(rounds, reference_rounds))


def _median_memory(samples):
    samples = list(samples)
    return {key: statistics.median(sample[key] for sample in samples) for key in samples[0]}


def print_report(results, summary, instructions, syscalls, sizes, servers, scenarios, options):
    reference = REFERENCE_SERVER if REFERENCE_SERVER in servers else None
    vs = f"÷{reference}" if reference else None

    header = ["scenario", "server", "req/s", "spread", "p50 ms", "p99 ms", "CPU µs/req", "sys", "busy", "errors"]
    if reference:
        header += [f"req/s {vs}", f"p50 {vs}", f"p99 {vs}", f"CPU/req {vs}"]
    rows = []
    for scenario in scenarios:
        figures = summary.get(scenario.name, {})
        for index, server in enumerate(servers):
            figure = figures.get(server)
            label = scenario.title if index == 0 else ""
            if figure is None:
                rows.append([label, server, "FAILED"] + [""] * (len(header) - 3))
                continue
            spread = (figure["req_per_s_max"] - figure["req_per_s_min"]) / figure["req_per_s"] * 100
            row = [label, server, f"{figure['req_per_s']:,.0f}", f"{spread:.0f}%" if options.rounds > 1 else "-",
                   f"{figure['p50_ms']:.2f}", f"{figure['p99_ms']:.2f}", f"{figure['cpu_us_per_req']:.1f}",
                   f"{figure['cpu_system_share'] * 100:.0f}%", f"{figure['server_busy'] * 100:.0f}%",
                   figure["errors"]]
            if reference:
                rounds, base_rounds = results[scenario.name][server], results[scenario.name][reference]
                row += [_ratio_or_dash(paired_ratio(rounds, base_rounds, lambda load: load["req_per_s"])),
                        _ratio_or_dash(paired_ratio(rounds, base_rounds, lambda load: load["p50_us"])),
                        _ratio_or_dash(paired_ratio(rounds, base_rounds, lambda load: load["p99_us"])),
                        _ratio_or_dash(paired_ratio(rounds, base_rounds, _cpu_per_request))]
            rows.append(row)
    print_table(
        f"Throughput and latency (median of {options.rounds} round(s) of {options.duration} s; "
        f"wrk -t{options.threads} -c{options.connections})",
        header, rows,
        "spread = (max - min) / median of req/s over rounds. CPU µs/req = the server's user + system CPU "
        "time per request (sys = system share),\n  steadier than req/s when other processes take a core. "
        "busy = the server's CPU use during the load: well under 100% means\n  req/s measured the client "
        "or the machine, not the server. errors = wrk socket errors + non-2xx, all rounds.\n  Ratios: median "
        "over rounds of the ratio within each round; req/s above 1, latency and CPU/req below 1 favour the "
        "server over bjoern.\n  p99 on a shared machine mostly shows when the scheduler ran someone else; p50 is steadier.",
    )

    header = ["server", "idle RSS", "idle USS", "peak RSS"]
    if reference:
        header += [f"idle USS {vs}", f"peak RSS {vs}"]
    memory_by_server = {}
    for server in servers:
        per_scenario = [figures[server] for figures in summary.values() if server in figures]
        if per_scenario:
            memory_by_server[server] = {
                "idle": per_scenario[0]["memory_idle"],
                "peak_rss_kib": max(f["memory_after"]["peak_rss_kib"] for f in per_scenario),
            }
    rows = []
    for server, memory in memory_by_server.items():
        row = [server, _mib(memory["idle"]["rss_kib"]), _mib(memory["idle"]["uss_kib"]), _mib(memory["peak_rss_kib"])]
        if reference:
            base = memory_by_server.get(reference)
            row += [ratio_text(memory["idle"]["uss_kib"], base and base["idle"]["uss_kib"]),
                    ratio_text(memory["peak_rss_kib"], base and base["peak_rss_kib"])]
        rows.append(row)
    print_table(
        "Memory of the server process(es), MiB",
        header, rows,
        "idle = just after start; peak = highest VmHWM over all scenarios. USS = private pages "
        "(smaps_rollup). gunicorn counts master + worker.",
        text_columns=(0,),
    )

    header = ["scenario"] + [f"{server} USS" for server in servers]
    if reference:
        header += [f"{server} {vs}" for server in servers if server != reference]
    rows = []
    for scenario in scenarios:
        figures = summary.get(scenario.name, {})
        uss = {server: figures[server]["memory_after"]["uss_kib"] for server in servers if server in figures}
        row = [scenario.title] + [_mib(uss[server]) if server in uss else "FAILED" for server in servers]
        if reference:
            row += [ratio_text(uss.get(server), uss.get(reference)) for server in servers if server != reference]
        rows.append(row)
    print_table(
        "Memory after each load, USS MiB (median over rounds)",
        header, rows,
        "growth over the idle USS that stays after the load is memory kept or leaked per connection or request.",
        text_columns=(0,),
    )

    if instructions:
        header = ["scenario"] + [f"{server} instr/req" for server in servers]
        if reference:
            header += [f"{server} {vs}" for server in servers if server != reference]
        rows = []
        for scenario in scenarios:
            counts = instructions.get(scenario.name)
            if not counts:
                continue
            row = [scenario.title] + [_instructions_text(counts, s) for s in servers]
            if reference:
                row += [ratio_text(counts.get(s), counts.get(reference)) for s in servers if s != reference]
            rows.append(row)
        print_table(
            f"CPU: instructions per request, whole server process incl. the Python app "
            f"(callgrind, {options.callgrind_requests} sequential requests after {options.warmup_requests})",
            header, rows, "deterministic, unlike req/s: below 1 means fewer instructions than bjoern.",
            text_columns=(0,),
        )

    if syscalls:
        header = ["scenario", "server", "calls/req"] + ([f"calls {vs}"] if reference else []) + ["made per request"]
        rows = []
        for scenario in scenarios:
            counts = syscalls.get(scenario.name, {})
            base = counts.get(reference) if reference else None
            for index, server in enumerate(servers):
                label = scenario.title if index == 0 else ""
                per_request = counts.get(server)
                if per_request is None:
                    rows.append([label, server, "FAILED", ""] + ([""] if reference else []))
                    continue
                total = sum(per_request.values())
                row = [label, server, f"{total:.1f}"]
                if reference:
                    row.append(ratio_text(total, base and sum(base.values())))
                common = sorted(((calls, name) for name, calls in per_request.items() if calls >= 0.1), reverse=True)
                row.append(", ".join(f"{name} {calls:.3g}" for calls, name in common))
                rows.append(row)
        print_table(
            f"Kernel: system calls per request (strace -c, {options.syscall_requests} sequential requests)",
            header, rows, "made per request: the calls made at least once per 10 requests.",
            text_columns=(0, 1, len(header) - 1),
        )

    if sizes:
        rows = [[server, os.path.basename(entry["path"]), f"{entry['bytes'] / 1024:,.0f}",
                 f"{entry['stripped_bytes'] / 1024:,.0f}" if "stripped_bytes" in entry else "-"]
                for server, entry in sizes.items()]
        print_table("Extension module size, KiB", ["server", "file", "size", "stripped"], rows)


def _instructions_text(counts, server):
    if server not in CALLGRIND_SERVERS:
        return "-"
    return f"{counts[server]:,.0f}" if counts.get(server) else "FAILED"


def _mib(kib):
    return f"{kib / 1024:.1f}"


# --- driver -------------------------------------------------------------------


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default=",".join(DEFAULT_SERVERS),
                        help=f"comma-separated, from {', '.join(KNOWN_SERVERS)} (default: %(default)s)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS_BY_NAME),
                        help="comma-separated (default: all: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per scenario; the median is kept")
    parser.add_argument("--duration", type=int, default=5, help="seconds of wrk load per run")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of wrk load before each run (0: none)")
    parser.add_argument("--connections", type=int, default=50, help="wrk -c")
    parser.add_argument("--threads", type=int, default=1, help="wrk -t")
    parser.add_argument("--server-cpu", type=int, default=0, help="core the server is pinned to")
    parser.add_argument("--client-cpu", type=int, default=1, help="core wrk and the harness are pinned to")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    parser.add_argument("--callgrind-requests", type=int, default=2000,
                        help="requests counted per callgrind run (0: skip the instruction count)")
    parser.add_argument("--warmup-requests", type=int, default=100,
                        help="requests sent, uncounted, before those callgrind and strace count")
    parser.add_argument("--callgrind-scenarios",
                        help=f"scenarios whose instructions are counted (default: {DEFAULT_CALLGRIND_SCENARIOS}; "
                        "chunked is left out because bjoern stalls ~40 ms per chunked response)")
    parser.add_argument("--callgrind-out", metavar="DIR",
                        help="keep callgrind's counts of the counted requests in DIR, one file per server and "
                        "scenario, for callgrind_annotate")
    parser.add_argument("--syscall-requests", type=int, default=200,
                        help="requests counted under strace per scenario (0: skip the system call count)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 round of 2 s; 500 requests under callgrind (keep-alive only unless told), 50 under strace")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    options = parser.parse_args(argv)
    if options.quick:
        options.rounds, options.duration = 1, 2
        options.callgrind_requests = min(options.callgrind_requests, 500)
        options.syscall_requests = min(options.syscall_requests, 50)
        options.callgrind_scenarios = options.callgrind_scenarios or "keepalive"
    options.callgrind_scenarios = options.callgrind_scenarios or DEFAULT_CALLGRIND_SCENARIOS
    options.servers = _split_names(options.servers, KNOWN_SERVERS, "server", parser)
    options.scenarios = [SCENARIOS_BY_NAME[name]
                         for name in _split_names(options.scenarios, SCENARIOS_BY_NAME, "scenario", parser)]
    options.callgrind_scenarios = [
        SCENARIOS_BY_NAME[name] for name in
        _split_names(options.callgrind_scenarios, SCENARIOS_BY_NAME, "callgrind scenario", parser)
        if SCENARIOS_BY_NAME[name] in options.scenarios
    ]
    if options.rounds < 1 or options.duration < 1 or options.warmup < 0:
        parser.error("--rounds and --duration must be at least 1, --warmup at least 0")
    if options.callgrind_out:
        os.makedirs(options.callgrind_out, exist_ok=True)
    if options.no_pin:
        options.server_cpu = options.client_cpu = None
    return options


def _split_names(text, known, kind, parser):
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        parser.error(f"unknown {kind}(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(known)}")
    return names


def check_setup(options):
    """Raise HarnessError for anything missing; returns notes about what is skipped."""
    notes = []
    if shutil.which("wrk") is None:
        raise HarnessError("wrk not found: apt-get install wrk")
    for server in options.servers:
        problem = server_available(server)
        if problem:
            raise HarnessError(f"server {server!r} is not usable: {problem}\n"
                               "(build ursa: make build; the others: pip install -r requirements-bench.txt; "
                               "or choose --servers)")
    if options.server_cpu is not None:
        usable = os.sched_getaffinity(0)
        if options.server_cpu not in usable or options.client_cpu not in usable:
            raise HarnessError(f"cores {options.server_cpu} and {options.client_cpu} are not both usable "
                               f"(usable: {sorted(usable)}); pick --server-cpu/--client-cpu or --no-pin")
        if options.server_cpu == options.client_cpu:
            notes.append("server and client share a core: throughput halves, ratios still hold")
        # The harness is wrk's neighbour, not the server's: its callgrind client runs here.
        os.sched_setaffinity(0, {options.client_cpu})
    if options.callgrind_requests and not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        notes.append("valgrind not found (apt-get install valgrind): instructions per request skipped")
        options.callgrind_requests = 0
    if options.syscall_requests and shutil.which("strace") is None:
        notes.append("strace not found (apt-get install strace): system calls per request skipped")
        options.syscall_requests = 0
    skipped = [server for server in options.servers if server not in CALLGRIND_SERVERS]
    if options.callgrind_requests and skipped:
        notes.append(f"no instruction count for {', '.join(skipped)}: callgrind_control cannot reach "
                     "a worker process forked under valgrind")
    return notes


def versions(servers):
    found = {}
    for server in servers:
        try:
            found[server] = importlib.metadata.version(server)
        except importlib.metadata.PackageNotFoundError:
            found[server] = "unknown"
    return found


def main(argv=None):
    try:
        options = parse_arguments(argv)
        notes = check_setup(options)
    except HarnessError as error:
        print(f"compare: {error}", file=sys.stderr)
        return 2
    started = time.monotonic()
    server_versions = versions(options.servers)
    print(f"ursa benchmark: {', '.join(f'{s} {v}' for s, v in server_versions.items())}; "
          f"Python {platform.python_version()}; {os.cpu_count()} cores; "
          f"server on core {options.server_cpu}, wrk on core {options.client_cpu}")
    for note in notes:
        print(f"note: {note}")

    results = {scenario.name: {server: [] for server in options.servers} for scenario in options.scenarios}
    failures = []
    try:
        for round_index in range(options.rounds):
            shift = round_index % len(options.servers)
            order = options.servers[shift:] + options.servers[:shift]
            for scenario in options.scenarios:
                for server in order:
                    if any(f["server"] == server and f["scenario"] == scenario.name for f in failures):
                        continue  # failed once: its figures for this scenario would be partial
                    try:
                        one = measure_load(server, scenario, options)
                    except ServerError as error:
                        failures.append({"server": server, "scenario": scenario.name, "error": str(error)})
                        print(f"FAILED {server} {scenario.name}: {error}", file=sys.stderr)
                        continue
                    results[scenario.name][server].append(one)
                    load = one["load"]
                    print(f"  round {round_index + 1}/{options.rounds} {scenario.name:<9} {server:<8} "
                          f"{load['req_per_s']:>10,.0f} req/s  p99 {load['p99_us'] / 1000:7.2f} ms", flush=True)
            for scenario in options.scenarios:  # a failed pair keeps no partial rounds
                for server in options.servers:
                    if any(f["server"] == server and f["scenario"] == scenario.name for f in failures):
                        results[scenario.name][server] = []

        syscalls = {}
        for scenario in options.scenarios if options.syscall_requests else []:
            for server in options.servers:
                try:
                    per_request = measure_syscalls(server, scenario, options)
                except ServerError as error:
                    failures.append({"server": server, "scenario": f"strace {scenario.name}", "error": str(error)})
                    print(f"FAILED strace {server} {scenario.name}: {error}", file=sys.stderr)
                    continue
                syscalls.setdefault(scenario.name, {})[server] = per_request
                print(f"  strace    {scenario.name:<9} {server:<8} {sum(per_request.values()):>10.2f} "
                      "system calls/request", flush=True)

        instructions = {}
        for scenario in options.callgrind_scenarios if options.callgrind_requests else []:
            for server in [server for server in options.servers if server in CALLGRIND_SERVERS]:
                try:
                    count = measure_instructions(server, scenario, options)
                except ServerError as error:
                    failures.append({"server": server, "scenario": f"callgrind {scenario.name}", "error": str(error)})
                    print(f"FAILED callgrind {server} {scenario.name}: {error}", file=sys.stderr)
                    continue
                instructions.setdefault(scenario.name, {})[server] = count
                print(f"  callgrind {scenario.name:<9} {server:<8} {count:>10,.0f} instructions/request", flush=True)
    except HarnessError as error:
        print(f"compare: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("compare: interrupted", file=sys.stderr)
        return 2

    summary = summarize(results, options.servers, options.scenarios)
    sizes = extension_sizes()
    print_report(results, summary, instructions, syscalls, sizes, options.servers, options.scenarios, options)
    elapsed = time.monotonic() - started
    print(f"\n{len(failures)} failure(s); {elapsed:.0f} s")

    if options.json:
        document = {
            "servers": server_versions,
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "options": {key: getattr(options, key) for key in
                        ("rounds", "duration", "warmup", "connections", "threads", "server_cpu", "client_cpu",
                         "callgrind_requests", "warmup_requests", "syscall_requests")},
            "summary": summary,
            "rounds": results,
            "instructions_per_request": instructions,
            "syscalls_per_request": syscalls,
            "extension_sizes": sizes,
            "failures": failures,
            "elapsed_seconds": elapsed,
        }
        with open(options.json, "w") as output:
            json.dump(document, output, indent=2)
        print(f"wrote {options.json}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
