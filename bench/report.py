"""From what bench/compare.py measured to figures, tables, a Markdown page and a chart.

Every function here reads the run's document (compare.build_document, the
same dict the JSON file holds), so a report can be made again from a JSON
file. The tables are built once and rendered twice: as text on the terminal
and as Markdown.
"""
import statistics


class Table:
    def __init__(self, title, header, rows, note=None, text_columns=(0, 1)):
        self.title = title
        self.header = header
        self.rows = rows
        self.note = note
        self.text_columns = text_columns  # aligned left; figures align right


# --- figures from rounds ----------------------------------------------------


def cpu_per_request(load):
    return load["cpu_user_us_per_req"] + load["cpu_system_us_per_req"]


# What paired_ratios compares, each from one wrk run's figures.
RATIO_FIGURES = {
    "req_per_s": lambda load: load["req_per_s"],
    "p50": lambda load: load["p50_us"],
    "p99": lambda load: load["p99_us"],
    "cpu": cpu_per_request,
}


def summarize(rounds):
    """Medians over rounds, per scenario and server: {scenario: {server: figures}}."""
    summary = {}
    for scenario_name, by_server in rounds.items():
        for server, ones in by_server.items():
            if ones:
                summary.setdefault(scenario_name, {})[server] = _medians(ones)
    return summary


def _medians(ones):
    loads = [one["load"] for one in ones]
    return {
        "req_per_s": statistics.median(load["req_per_s"] for load in loads),
        "req_per_s_min": min(load["req_per_s"] for load in loads),
        "req_per_s_max": max(load["req_per_s"] for load in loads),
        "p50_ms": statistics.median(load["p50_us"] for load in loads) / 1000,
        "p99_ms": statistics.median(load["p99_us"] for load in loads) / 1000,
        "cpu_us_per_req": statistics.median(cpu_per_request(load) for load in loads),
        "server_busy": statistics.median(
            cpu_per_request(load) * load["requests"] / load["duration_us"] for load in loads),
        "cpu_system_share": statistics.median(
            load["cpu_system_us_per_req"] / (cpu_per_request(load) or 1) for load in loads),
        # The WebSocket load generator's own CPU use over the window (wrk's is not measured).
        "client_busy": statistics.median(load["client_cpu_us"] / load["duration_us"] for load in loads)
        if all(load.get("client_cpu_us") is not None and load["duration_us"] for load in loads) else None,
        "errors": sum(sum(load["errors"].values()) for load in loads),
        "peak_rss_kib": statistics.median(one["memory_after"]["peak_rss_kib"] for one in ones),
        "memory_idle": _median_memory(one["memory_idle"] for one in ones),
        "memory_after": _median_memory(one["memory_after"] for one in ones),
    }


def _median_memory(samples):
    samples = list(samples)
    return {key: statistics.median(sample[key] for sample in samples) for key in samples[0]}


def paired_ratios(rounds, reference):
    """{scenario: {server: {figure: median over rounds of server / reference}}}.

    Each ratio pairs two runs of the same round: both ran within seconds of
    each other, so the machine's background load drifts less within a pair
    than across rounds."""
    ratios = {}
    for scenario_name, by_server in rounds.items():
        base = by_server.get(reference)
        if not base:
            continue
        for server, ones in by_server.items():
            if len(ones) != len(base):
                continue  # failed, or not run
            ratios.setdefault(scenario_name, {})[server] = {
                name: _median_ratio([figure(one["load"]) for one in ones], [figure(b["load"]) for b in base])
                for name, figure in RATIO_FIGURES.items()
            }
    return ratios


def _median_ratio(values, references):
    pairs = [value / reference for value, reference in zip(values, references) if reference]
    return statistics.median(pairs) if pairs else None


def summarize_memory(memory_rounds):
    """Medians over rounds of the memory section, per server."""
    summary = {}
    for server, ones in memory_rounds.items():
        if not ones:
            continue
        figures = {
            "start_rss_kib": statistics.median(one["start"]["rss_kib"] for one in ones),
            "start_uss_kib": statistics.median(one["start"]["uss_kib"] for one in ones),
            "connections": ones[0]["connections"],
        }
        for key in ("rss_bytes_per_connection", "uss_bytes_per_connection"):
            if ones[0]["connections"]:
                figures[key] = statistics.median(one[key] for one in ones)
        summary[server] = figures
    return summary


# --- tables ---------------------------------------------------------------


def _reference(document):
    """The reference of a one-family view (_family_view) if it ran."""
    return document["reference"] if document["reference"] in document["servers"] else None


def _family_view(document, family):
    """The document as one family sees it: its scenarios and servers, and its reference as "reference"."""
    view = dict(document)
    view["scenarios"] = [scenario for scenario in document["scenarios"] if scenario["family"] == family]
    view["servers"] = {server: entry for server, entry in document["servers"].items() if entry["family"] == family}
    view["reference"] = document["families"][family]["reference"]
    view["family"] = family
    return view


def _views(document):
    return [_family_view(document, family) for family in document["families"]]


def _references_text(document):
    """ "bjoern for WSGI, uvicorn for ASGI" """
    return ", ".join(f"{entry['reference']} for {family.upper()}" for family, entry in document["families"].items())


def _scenario_servers(document, scenario):
    """The servers that ran ``scenario``: its family's first, then guests (ursa's WSGI hello in the ASGI hello)."""
    ran = document["rounds"].get(scenario["name"], {})
    servers = [server for server in document["servers"] if server in ran]
    return sorted(servers, key=lambda server: document["servers"][server]["family"] != scenario["family"])


def _ratio_text(ratio):
    return "-" if ratio is None else f"{ratio:.2f}"


def _quotient_text(value, reference):
    if value is None or not reference:
        return "-"
    return f"{value / reference:.2f}"


def _mib(kib):
    return f"{kib / 1024:.1f}"


def _protocol(scenario):
    return scenario.get("protocol", "http")  # a run's JSON from before WebSockets has no protocol


def _load_rows(document, protocol, width):
    rows = []
    for scenario in document["scenarios"]:
        if _protocol(scenario) != protocol:
            continue
        label = scenario["title"]
        for server in _scenario_servers(document, scenario):
            rows.append(_throughput_row(document, scenario["name"], server, label, width))
            label = ""
    return rows


def throughput_table(document):
    vs = "÷ref"
    options = document["options"]
    header = ["scenario", "server", "req/s", "spread", "p50 ms", "p99 ms", "CPU µs/req", "sys", "busy",
              "peak RSS MiB", "errors", f"req/s {vs}", f"p50 {vs}", f"p99 {vs}", f"CPU/req {vs}"]
    rows = _load_rows(document, "http", len(header))
    if not rows:
        return None
    return Table(
        f"Throughput and latency (median of {options['rounds']} round(s) of {options['duration']} s; "
        f"wrk -t{options['threads']} -c{options['connections']})",
        header, rows,
        "spread = (max - min) / median of req/s over rounds. CPU µs/req = the server's user + system CPU "
        "time per request (sys = system share),\n  steadier than req/s when other processes take a core. "
        "busy = the server's CPU use during the load: well under 100% means\n  req/s measured the client "
        "or the machine, not the server. peak RSS = VmHWM, all processes of the server.\n  errors = wrk socket "
        "errors + non-2xx answers, all rounds; a row with errors is marked \"!\".\n  Ratios to ref, the "
        f"scenario's family's reference ({_references_text(document)}): median over rounds of the ratio within "
        "each round;\n  req/s above 1, latency and CPU/req below 1 favour the server over ref. The ASGI hello "
        "also runs ursa's WSGI hello (server ursa).\n  p99 on a shared machine mostly shows when the scheduler "
        "ran someone else; p50 is steadier.",
    )


def websocket_table(document):
    vs = "÷ref"
    options = document["options"]
    header = ["scenario", "server", "msg/s", "spread", "p50 ms", "p99 ms", "CPU µs/msg", "sys", "busy",
              "peak RSS MiB", "errors", f"msg/s {vs}", f"p50 {vs}", f"p99 {vs}", f"CPU/msg {vs}", "client busy"]
    rows = _load_rows(document, "websocket", len(header) - 1)
    for row, client_busy in zip(rows, _client_busy(document)):
        row.append("-" if client_busy is None else f"{client_busy * 100:.0f}%")
    if not rows:
        return None
    return Table(
        f"WebSockets: messages and latency (median of {options['rounds']} round(s) of {options['duration']} s "
        f"after {options['warmup']} s of warm-up; picows clients on uvloop, bench/websocket_load.py)",
        header, rows,
        "A message: in the echo, one round trip (the client sends 64 B, the server's app receives it and sends it "
        "back, the client gets it);\n  in the broadcast, one delivery: a client sends one 64 B trigger, the app "
        "sends it to each of the 100 connected clients (the sender\n  too), one send() after the other, and the next "
        "trigger goes when all 100 have it; a broadcast is 100 messages. msg/s = messages\n  the clients received "
        "in the window ÷ the window (first send to last receipt). CPU µs/msg = the server's user + system CPU "
        "time\n  over the window ÷ those messages (in the broadcast the trigger's reading is shared by its 100 "
        "deliveries). p50/p99: echo, of the\n  round trips; broadcast, from the trigger's send to its last delivery. "
        "errors = connections lost + messages not as sent. busy, sys and\n  the ratios as in the throughput "
        "table; client busy = the load generator's CPU use over the window (near 100%: the client set the "
        "pace,\n  and msg/s measured it; CPU µs/msg still holds).",
    )


def _client_busy(document):
    """The client busy share of each row of _load_rows(document, "websocket", ...), in its order."""
    for scenario in document["scenarios"]:
        if _protocol(scenario) != "websocket":
            continue
        for server in _scenario_servers(document, scenario):
            yield document["summary"].get(scenario["name"], {}).get(server, {}).get("client_busy")


def peer_ratios_table(document):
    """For each family with a subject (ursa-ws): its CPU per message and messages/s ÷ each peer's, paired
    within rounds, one column per peer: the ratios the issue's targets name, against every peer."""
    tables = []
    for family, entry in document["families"].items():
        subject = entry.get("subject")
        scenarios = [scenario for scenario in document["scenarios"] if scenario["family"] == family]
        peers = [server for server, described in document["servers"].items()
                 if described["family"] == family and server != subject]
        if not subject or not scenarios or not peers:
            continue
        rows = []
        for scenario in scenarios:
            rounds = {scenario["name"]: document["rounds"].get(scenario["name"], {})}
            row = [scenario["title"]]
            for figure in ("cpu", "req_per_s"):
                for peer in peers:
                    ratio = paired_ratios(rounds, peer).get(scenario["name"], {}).get(subject, {}).get(figure)
                    row.append(_ratio_text(ratio))
            rows.append(row)
        header = ["scenario"] + [f"CPU/msg ÷{peer}" for peer in peers] + [f"msg/s ÷{peer}" for peer in peers]
        tables.append(Table(
            f"{subject} against each peer ({family.upper()}): ratios paired within rounds, median over rounds",
            header, rows, f"CPU/msg below 1 and msg/s above 1 favour {subject}; \"-\": the peer failed or did not "
            "run.", text_columns=(0,)))
    return tables


def _throughput_row(document, scenario_name, server, label, width):
    figure = document["summary"].get(scenario_name, {}).get(server)
    if figure is None:
        return [label, server, "FAILED"] + [""] * (width - 3)
    spread = (figure["req_per_s_max"] - figure["req_per_s_min"]) / figure["req_per_s"] * 100
    errors = figure["errors"]
    row = [label, server, f"{figure['req_per_s']:,.0f}", f"{spread:.0f}%" if document["options"]["rounds"] > 1 else "-",
           f"{figure['p50_ms']:.2f}", f"{figure['p99_ms']:.2f}", f"{figure['cpu_us_per_req']:.1f}",
           f"{figure['cpu_system_share'] * 100:.0f}%", f"{figure['server_busy'] * 100:.0f}%",
           _mib(figure["peak_rss_kib"]), f"{errors:,} !" if errors else "0"]
    if width > len(row):
        ratios = document["ratios"].get(scenario_name, {}).get(server, {})
        row += [_ratio_text(ratios.get(name)) for name in RATIO_FIGURES]
    return row


def memory_table(document):
    memory = document["memory"]["summary"]
    if not memory:
        return None
    header = ["server", "RSS at start MiB", "USS at start MiB", "idle connections", "kind", "RSS B/connection",
              "USS B/connection", "ref", "RSS at start ÷ref", "RSS/connection ÷ref"]
    rows = []
    for server, figures in memory.items():
        reference = document["families"].get(document["servers"][server]["family"], {}).get("reference")
        base = memory.get(reference, {})
        per_connection = [figures.get(key) for key in ("rss_bytes_per_connection", "uss_bytes_per_connection")]
        websocket = document["servers"][server]["family"] == "ws"
        row = [server, _mib(figures["start_rss_kib"]), _mib(figures["start_uss_kib"]),
               f"{figures['connections']:,}" if figures["connections"] else "-",
               "WebSocket" if websocket else "keep-alive"]
        row += ["-" if value is None else f"{value:,.0f}" for value in per_connection]
        row += [reference or "-", _quotient_text(figures["start_rss_kib"], base.get("start_rss_kib")),
                _quotient_text(per_connection[0], base.get("rss_bytes_per_connection"))]
        rows.append(row)
    return Table(
        "Memory: at start and per idle connection (the family's hello app, WS: the echo app; median over rounds)",
        header, rows,
        "at start = after one request (WS: one WebSocket that echoed one message and closed). Per connection = "
        "(memory with the connections\n  open - at start) / connections; each keep-alive connection sent one "
        f"request ({document['options'].get('idle_batch', 256)} connections at a time, --idle-batch), got its "
        "answer and stays idle;\n  each WebSocket was upgraded (100 at a time) and echoed one 64 B message, and "
        "stays open with its app waiting in receive(). The server's\n  open descriptors are counted to make sure "
        "it still holds them all.",
        text_columns=(0, 4, 7),
    )


def after_load_tables(document):
    return [after_load_table(view) for view in _views(document)]


def after_load_table(document):
    servers = [server for server in document["servers"]
               if any(server in figures for figures in document["summary"].values())]
    rows = []
    for scenario in document["scenarios"]:
        figures = document["summary"].get(scenario["name"])
        if not figures:
            continue
        rows.append([scenario["title"]] + [
            f"{_mib(figures[server]['memory_idle']['uss_kib'])} → {_mib(figures[server]['memory_after']['uss_kib'])}"
            if server in figures else "-" for server in servers])
    if not rows:
        return None
    return Table(
        f"USS before → after each load, {document['family'].upper()}, MiB (median over rounds)",
        ["scenario"] + servers, rows,
        "growth that stays after the load is memory kept or leaked per connection or request.",
        text_columns=(0,),
    )


def instructions_tables(document):
    return [instructions_table(view) for view in _views(document)]


def instructions_table(document):
    instructions = document["instructions_per_request"]
    if not instructions:
        return None
    reference = _reference(document)
    servers = [server for server in document["servers"] if any(server in counts for counts in instructions.values())]
    header = ["scenario"] + [f"{server} instr/req" for server in servers]
    if reference:
        header += [f"{server} ÷{reference}" for server in servers if server != reference]
    rows = []
    for scenario in document["scenarios"]:
        counts = instructions.get(scenario["name"])
        if not counts:
            continue
        row = [scenario["title"]] + [f"{counts[server]:,.0f}" if server in counts else "FAILED" for server in servers]
        if reference:
            row += [_quotient_text(counts.get(server), counts.get(reference)) for server in servers
                    if server != reference]
        rows.append(row)
    options = document["options"]
    if document["family"] == "ws":
        unit, counted = "message", (f"{options['callgrind_requests']} echoed messages, 16 clients with one "
                                    f"each in flight, after {options['warmup_requests']}")
    else:
        unit, counted = "request", f"{options['callgrind_requests']} sequential requests after " \
                                   f"{options['warmup_requests']}"
    return Table(
        f"CPU: instructions per {unit}, {document['family'].upper()}, whole server process incl. the Python app "
        f"(callgrind, {counted})",
        header, rows, f"deterministic, unlike req/s: below 1 means fewer instructions than {document['reference']}.",
        text_columns=(0,),
    )


def syscalls_table(document):
    syscalls = document["syscalls_per_request"]
    if not syscalls:
        return None
    header = ["scenario", "server", "calls/req", "calls ÷ref", "made per request"]
    rows = []
    for scenario in document["scenarios"]:
        counts = syscalls.get(scenario["name"], {})
        base = counts.get(scenario["reference"])
        label = scenario["title"]
        for server, per_request in counts.items():
            total = sum(per_request.values())
            row = [label, server, f"{total:.1f}"]
            row.append(_quotient_text(total, base and sum(base.values())))
            common = sorted(((calls, name) for name, calls in per_request.items() if calls >= 0.1), reverse=True)
            row.append(", ".join(f"{name} {calls:.3g}" for calls, name in common))
            rows.append(row)
            label = ""
    options = document["options"]
    return Table(
        f"Kernel: system calls per request (strace -c, {options['syscall_requests']} requests, one after the other; "
        "WS: messages)",
        header, rows, "made per request: the calls made at least once per 10 requests. In a WebSocket scenario "
        "a request is a message, as in the WebSocket table,\n  sent by its load generator's clients.",
        text_columns=(0, 1, len(header) - 1),
    )


def sizes_table(document):
    sizes = document["extension_sizes"]
    if not sizes:
        return None
    rows = [[server, entry["path"].rsplit("/", 1)[-1], f"{entry['bytes'] / 1024:,.0f}",
             f"{entry['stripped_bytes'] / 1024:,.0f}" if "stripped_bytes" in entry else "-"]
            for server, entry in sizes.items()]
    return Table("Extension module size, KiB", ["server", "file", "size", "stripped"], rows)


def idle_table(document):
    figures = document.get("idle")
    if not figures:
        return None
    rows = []
    for server, one in figures.items():
        calls = ", ".join(f"{name} {count}" for name, count in
                          sorted(one["syscall_names"].items(), key=lambda item: -item[1])) or "-"
        rows.append([server, f"{one['cpu_seconds'] * 1000:.0f}", f"{one['wakeups']:,}", f"{one['syscalls']:,}", calls,
                     f"{one['processes']} / {one['threads']}"])
    seconds = document["options"]["idle_seconds"]
    return Table(
        f"Idle: what a server does with nothing to do ({seconds:g} s after one request; bench/idle.py)",
        ["server", "CPU ms", "wake-ups", "system calls", "which", "processes / threads"], rows,
        "CPU = user + system time of every thread (/proc/PID/stat, 10 ms ticks); wake-ups = voluntary context "
        "switches of every thread;\n  system calls: strace -c -f over the next as many seconds.",
        text_columns=(0, 4),
    )


def targets_table(document):
    rows = [[str(target.get("issue", 5)), target["result"], target["target"], target["figure"]]
            for target in document["targets"]]
    if not rows:
        return None
    return Table("Targets: issue 5 (ursa's WSGI against bjoern), issue 10 (ursa's ASGI), issue 11 (WebSockets)",
                 ["issue", "result", "target", "figure"], rows,
                 "PASS/MISS do not change the exit status; n/a: not measured in this run. CPU per request is paired "
                 "within rounds (the scenario's rounds), as in the ratio columns above.",
                 text_columns=(0, 1, 2, 3))


TABLE_BUILDERS = (throughput_table, websocket_table, peer_ratios_table, memory_table, after_load_tables,
                  instructions_tables, syscalls_table, idle_table, sizes_table, targets_table)


def tables(document):
    built = []
    for build in TABLE_BUILDERS:
        result = build(document)
        built += [table for table in (result if isinstance(result, list) else [result]) if table is not None]
    return built


# --- rendering ------------------------------------------------------------


def print_table(table):
    """Print the table's rows under its header; text columns align left, figures right."""
    print(f"\n{table.title}")
    widths = [max(len(str(cell)) for cell in column) for column in zip(table.header, *table.rows)]
    for index, row in enumerate([table.header, *table.rows]):
        cells = [str(cell).ljust(width) if i in table.text_columns else str(cell).rjust(width)
                 for i, (cell, width) in enumerate(zip(row, widths))]
        print("  " + "  ".join(cells).rstrip())
        if index == 0:
            print("  " + "  ".join("-" * width for width in widths))
    if table.note:
        print(f"  {table.note}")


def print_report(document):
    for table in tables(document):
        print_table(table)


def markdown_table(table):
    def cells(row):
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |"

    alignment = ["---" if index in table.text_columns else "---:" for index in range(len(table.header))]
    lines = [f"### {table.title}", "", cells(table.header), "| " + " | ".join(alignment) + " |"]
    lines += [cells(row) for row in table.rows]
    if table.note:
        lines += ["", " ".join(line.strip() for line in table.note.splitlines())]
    return "\n".join(lines)


def write_markdown(document, path, chart_name):
    machine = document["machine"]
    options = document["options"]
    families = " and ".join(family.upper() for family in document["families"])
    lines = [f"# ursa benchmark, {families} servers, {document['date']}", ""]
    if document["quick"]:
        lines += [f"**`--quick` smoke run** ({options['rounds']} round of {options['duration']} s per server and "
                  "scenario): the figures only show that everything runs; compare with a full run.", ""]
    lines += [
        f"Machine: {machine['cpu']}, {machine['cores']} cores; Linux {machine['kernel']} ({machine['os']}); "
        f"servers on {machine['python']}. Server pinned to core {options['server_cpu']}, wrk (WebSockets: "
        f"the picows load generator) and the harness to core {options['client_cpu']}; `{document['command']}` took "
        f"{document['elapsed_seconds'] / 60:.1f} minutes.",
        f"Ratios are to each scenario's family's reference: {_references_text(document)}.",
        "",
        "| server | family | version | how it runs |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {server} | {entry['family'].upper()} | {entry['version']} | {entry['how']} |"
              for server, entry in document["servers"].items()]
    lines += ["", f"![requests/s relative to {_references_text(document)}, per scenario]({chart_name})", ""]
    lines += [markdown_table(table) + "\n" for table in tables(document)]
    for heading, items in (("Notes", document["notes"]),
                           ("Failures", [f"{f['server']} {f['scenario']}: {f['error'].splitlines()[0]}"
                                         for f in document["failures"]])):
        if items:
            lines += [f"### {heading}", ""] + [f"- {item}" for item in items] + [""]
    with open(path, "w") as output:
        output.write("\n".join(lines))


def write_chart(document, path):
    """Bar chart of req/s ÷ the reference per scenario, one bar per server that ran it (each server one
    colour throughout), the families side by side; returns None or why there is none."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    except ImportError as error:
        return f"matplotlib cannot be imported ({error}); pip install -r requirements-bench.txt"
    ratios = document["ratios"]
    scenarios = [scenario for scenario in document["scenarios"] if ratios.get(scenario["name"])]
    if not scenarios:
        return f"no requests/s relative to {_references_text(document)} were measured"
    bars = {scenario["name"]: [server for server in _scenario_servers(document, scenario)
                               if ratios[scenario["name"]].get(server, {}).get("req_per_s")]
            for scenario in scenarios}
    servers = list(dict.fromkeys(server for names in bars.values() for server in names))
    palette = pyplot.get_cmap("tab20" if len(servers) > 10 else "tab10")
    colours = {server: palette(index % palette.N) for index, server in enumerate(servers)}
    width = 0.85 / max(len(names) for names in bars.values())
    figure, axes = pyplot.subplots(figsize=(max(8.0, 1.1 * len(scenarios) + 2), 6.0))
    labelled = set()
    for position, scenario in enumerate(scenarios):
        names = bars[scenario["name"]]
        for index, server in enumerate(names):
            offset = (index - (len(names) - 1) / 2) * width
            axes.bar(position + offset, ratios[scenario["name"]][server]["req_per_s"], width, color=colours[server],
                     label=None if server in labelled else server)
            labelled.add(server)
        if position and scenario["family"] != scenarios[position - 1]["family"]:
            axes.axvline(position - 0.5, color="grey", linewidth=0.8, linestyle="--")
    axes.set_yscale("log")
    # Ticks at 1, 2 and 5 times the powers of ten, written as plain numbers.
    axes.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes.yaxis.set_minor_formatter(NullFormatter())
    axes.axhline(1.0, color="black", linewidth=0.8)
    axes.set_xticks(range(len(scenarios)), [scenario["name"] for scenario in scenarios], rotation=30, ha="right",
                    fontsize=8)
    axes.set_ylabel(f"requests/s (WS: messages/s) ÷ reference: {_references_text(document)} (log scale)",
                    fontsize=9)
    quick = ", --quick" if document["quick"] else ""
    axes.set_title(f"One process on one core: {document['machine']['cpu']}, {document['machine']['python']}, "
                   f"{document['date']}{quick}", fontsize=9)
    axes.grid(axis="y", which="both", alpha=0.3)
    # Below the axes, where it hides no bar.
    figure.legend(loc="lower center", ncol=min(len(servers), 6), fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0.09, 1, 1))
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return None
