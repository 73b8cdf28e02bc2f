"""The targets of the issues, checked on a finished run's document: issue 5's for ursa's WSGI
against bjoern, issue 10's for ursa's ASGI against uvicorn, granian and ursa's own WSGI, issue 11's
for ursa's WebSockets against uvicorn's websockets implementation and granian.

A target is a ratio subject ÷ reference and the side of a limit it must fall
on. Each reads the figures the report shows: requests/s and CPU per request
as ratios paired within rounds, instructions and memory as ratios of the
figures. The result is PASS, MISS, or n/a when the run did not measure it;
none of them changes the harness's exit status.
"""
import report

SUBJECT = "ursa"
REFERENCE = "bjoern"
CEILING = "nginx"
ASGI_SUBJECT = "ursa-asgi"
WS_SUBJECT = "ursa-ws"
WS_REFERENCE = "uvicorn-ws"

# The requests/s each scenario must reach, as a multiple of bjoern's: the
# large bodies twice, every other scenario at least as many.
THROUGHPUT_LIMITS = {"large": 2.0, "file": 2.0, "stream": 2.0}
DEFAULT_THROUGHPUT_LIMIT = 1.0


class Target:
    def __init__(self, label, figure, limit, at_most, subject=SUBJECT, reference=REFERENCE, issue=5):
        self.label = label
        self.figure = figure  # (document, subject, reference) -> (ratio, "figures it comes from") or None
        self.limit = limit
        self.at_most = at_most  # the ratio must be <= limit (else >=)
        self.subject = subject
        self.reference = reference
        self.issue = issue

    def check(self, document):
        sign = "≤" if self.at_most else "≥"
        found = self.figure(document, self.subject, self.reference)
        text = f"{self.label}: {self.subject} {sign} {self.limit:.2f}× {self.reference}"
        checked = {"issue": self.issue, "target": text}
        if found is None or found[0] is None:
            return {**checked, "result": "n/a", "ratio": None, "figure": "not measured"}
        ratio, detail = found
        met = ratio <= self.limit if self.at_most else ratio >= self.limit
        return {**checked, "result": "PASS" if met else "MISS", "ratio": ratio, "figure": f"{ratio:.2f}× ({detail})"}


def _paired(key, scenario_name, unit, digits=0):
    """The ratio of one wrk figure of two servers in one scenario, paired within rounds, with both medians."""
    summary_keys = {"req_per_s": "req_per_s", "cpu": "cpu_us_per_req"}

    def figure(document, subject, reference):
        rounds = document["rounds"].get(scenario_name, {})
        ratio = report.paired_ratios({scenario_name: rounds}, reference).get(scenario_name, {}) \
            .get(subject, {}).get(key)
        medians = document["summary"].get(scenario_name, {})
        if ratio is None or subject not in medians or reference not in medians:
            return None
        values = (medians[server][summary_keys[key]] for server in (subject, reference))
        return ratio, " vs ".join(f"{value:,.{digits}f}" for value in values) + f" {unit}, medians"
    return figure


def _instructions(scenario_name, reference_scenario=None):
    """Instructions per request of two servers in one scenario, or the reference's in another."""
    def figure(document, subject, reference):
        counts = document["instructions_per_request"]
        base = counts.get(scenario_name, {}).get(reference)
        if base is None and reference_scenario:
            base = counts.get(reference_scenario, {}).get(reference)
        return _quotient(counts.get(scenario_name, {}).get(subject), base, "instructions", 0)
    return figure


def _memory(key, unit, digits):
    def figure(document, subject, reference):
        memory = document["memory"]["summary"]
        return _quotient(memory.get(subject, {}).get(key), memory.get(reference, {}).get(key), unit, digits)
    return figure


def _quotient(subject, reference, unit, digits):
    if subject is None or not reference:
        return None
    return subject / reference, f"{subject:,.{digits}f} vs {reference:,.{digits}f} {unit}"


def target_list(scenario_names):
    """Issue 5's targets for the WSGI scenarios of this run (a requests/s target each) and the fixed ones."""
    return [
        Target("hello: server CPU per request", _paired("cpu", "hello", "µs", digits=2), 0.8, at_most=True),
        *[Target(f"{name}: requests/s", _paired("req_per_s", name, "req/s"),
                 THROUGHPUT_LIMITS.get(name, DEFAULT_THROUGHPUT_LIMIT), at_most=False)
          for name in scenario_names],
        Target("hello: instructions per request", _instructions("hello"), 0.6, at_most=True),
        Target("RSS at start", _memory("start_rss_kib", "KiB", 0), 1.0, at_most=True),
        Target("RSS per idle connection", _memory("rss_bytes_per_connection", "bytes", 0), 1.0, at_most=True),
    ]


def evaluate(document):
    names = [s["name"] for s in document["scenarios"] if s["family"] == "wsgi"]
    if not names:
        return []  # an ASGI run: its ursa (WSGI) is there only to compare with
    checked = [target.check(document) for target in target_list(names)]
    checked.append(_share_of_ceiling(document))
    return checked


def _share_of_ceiling(document):
    """Informational: ursa's requests/s on hello as a share of nginx's, paired within rounds."""
    text = f"{SUBJECT} reaches X% of {CEILING}'s requests/s on hello"
    hello_rounds = document["rounds"].get("hello", {})
    ratio = report.paired_ratios({"hello": hello_rounds}, CEILING).get("hello", {}).get(SUBJECT, {}).get("req_per_s")
    if ratio is None:
        return {"issue": 5, "target": text, "result": "n/a", "ratio": None, "figure": "not measured"}
    medians = document["summary"]["hello"]
    return {"issue": 5, "target": text.replace("X%", f"{ratio * 100:.0f}%"), "result": "info", "ratio": ratio,
            "figure": f"{medians[SUBJECT]['req_per_s']:,.0f} vs {medians[CEILING]['req_per_s']:,.0f} req/s, medians"}


def asgi_target_list():
    """Issue 10's targets: server CPU per request against the ASGI peers and ursa's own WSGI (its hello
    runs in the ASGI hello's rounds), and memory per idle connection against ursa's WSGI."""
    def cpu(scenario_name, limit, reference):
        return Target(f"{scenario_name}: server CPU per request", _paired("cpu", scenario_name, "µs", digits=2),
                      limit, at_most=True, subject=ASGI_SUBJECT, reference=reference, issue=10)

    return [
        cpu("asgi-hello", 0.35, "uvicorn"),
        cpu("asgi-hello", 0.5, "granian-asgi"),
        cpu("asgi-hello", 1.6, SUBJECT),
        cpu("asgi-fastapi", 0.85, "uvicorn"),
        cpu("asgi-fastapi-post", 0.85, "uvicorn"),
        Target("RSS per idle keep-alive connection", _memory("rss_bytes_per_connection", "bytes", 0), 1.10,
               at_most=True, subject=ASGI_SUBJECT, reference=SUBJECT, issue=10),
    ]


def asgi_instruction_checks():
    """The CPU targets again with callgrind's instructions per request, which the machine's noise does not
    move (granian forks its worker, out of callgrind_control's reach: none for it): informational."""
    def instructions(scenario_name, limit, reference, reference_scenario=None):
        return Target(f"{scenario_name}: instructions per request", _instructions(scenario_name, reference_scenario),
                      limit, at_most=True, subject=ASGI_SUBJECT, reference=reference, issue=10)

    return [
        instructions("asgi-hello", 0.35, "uvicorn"),
        instructions("asgi-hello", 1.6, SUBJECT, reference_scenario="hello"),
        instructions("asgi-fastapi", 0.85, "uvicorn"),
        instructions("asgi-fastapi-post", 0.85, "uvicorn"),
    ]


def evaluate_asgi(document):
    if not any(s["family"] == "asgi" for s in document["scenarios"]) and not document.get("idle"):
        return []
    checked = [target.check(document) for target in asgi_target_list()]
    checked.append(_idle(document))
    for check in (target.check(document) for target in asgi_instruction_checks()):
        if check["result"] != "n/a":
            check["result"] = f"info: {check['result'].lower()}"
            checked.append(check)
    return checked


def _idle(document):
    """An idle ASGI worker uses no CPU: CPU time over the idle seconds (bench/idle.py), 0 ticks."""
    text = f"idle: {ASGI_SUBJECT} uses no CPU"
    figures = document.get("idle", {}).get(ASGI_SUBJECT)
    if not figures:
        return {"issue": 10, "target": text, "result": "n/a", "ratio": None, "figure": "not measured"}
    return {"issue": 10, "target": text, "result": "PASS" if figures["cpu_ticks"] == 0 else "MISS", "ratio": None,
            "figure": f"{figures['cpu_seconds'] * 1000:.0f} ms CPU in {figures['seconds']:g} s; "
                      f"{figures['wakeups']} wake-ups, {figures['syscalls']} system calls"}


def ws_target_list():
    """Issue 11's targets: server CPU per echoed message against uvicorn's websockets implementation and
    granian, paired within the echo's rounds, and memory per idle WebSocket against uvicorn's."""
    def cpu(limit, reference):
        return Target("ws-echo: server CPU per echoed message", _paired("cpu", "ws-echo", "µs", digits=2),
                      limit, at_most=True, subject=WS_SUBJECT, reference=reference, issue=11)

    return [
        cpu(0.4, WS_REFERENCE),
        cpu(0.5, "granian-ws"),
        Target("RSS per idle WebSocket", _memory("rss_bytes_per_connection", "bytes", 0), 1.0, at_most=True,
               subject=WS_SUBJECT, reference=WS_REFERENCE, issue=11),
    ]


def evaluate_ws(document):
    if not any(s["family"] == "ws" for s in document["scenarios"]) and WS_SUBJECT not in document["memory"]["summary"]:
        return []
    checked = [target.check(document) for target in ws_target_list()]
    # The CPU target again in callgrind's instructions (uvicorn-ws only: granian forks its worker out of
    # callgrind_control's reach): informational, as for issue 10.
    check = Target("ws-echo: instructions per echoed message", _instructions("ws-echo"), 0.4, at_most=True,
                   subject=WS_SUBJECT, reference=WS_REFERENCE, issue=11).check(document)
    if check["result"] != "n/a":
        check["result"] = f"info: {check['result'].lower()}"
        checked.append(check)
    return checked
