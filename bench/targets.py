"""The targets of issue 5 for ursa against bjoern, checked on a finished run's document.

A target is a ratio ursa ÷ bjoern and the side of a limit it must fall on.
Each reads the figures the report shows: requests/s and CPU per request as
ratios paired within rounds, instructions and memory as ratios of the figures.
The result is PASS, MISS, or n/a when the run did not measure it; none of
them changes the harness's exit status.
"""
import report

SUBJECT = "ursa"
CEILING = "nginx"

# The requests/s each scenario must reach, as a multiple of bjoern's: the
# large bodies twice, every other scenario at least as many.
THROUGHPUT_LIMITS = {"large": 2.0, "file": 2.0, "stream": 2.0}
DEFAULT_THROUGHPUT_LIMIT = 1.0


class Target:
    def __init__(self, label, figure, limit, at_most):
        self.label = label
        self.figure = figure  # document -> (ratio, "figures it comes from") or None
        self.limit = limit
        self.at_most = at_most  # the ratio must be <= limit (else >=)

    def check(self, document):
        sign = "≤" if self.at_most else "≥"
        found = self.figure(document)
        text = f"{self.label} {sign} {self.limit:.2f}× {document['reference']}"
        if found is None or found[0] is None:
            return {"target": text, "result": "n/a", "ratio": None, "figure": "not measured"}
        ratio, detail = found
        met = ratio <= self.limit if self.at_most else ratio >= self.limit
        return {"target": text, "result": "PASS" if met else "MISS", "ratio": ratio,
                "figure": f"{ratio:.2f}× ({detail})"}


def _paired(key, scenario_name, unit, scale=1.0, digits=0):
    """The paired ratio of one wrk figure in one scenario, with both medians as its detail."""
    summary_keys = {"req_per_s": "req_per_s", "cpu": "cpu_us_per_req"}

    def figure(document):
        ratio = document["ratios"].get(scenario_name, {}).get(SUBJECT, {}).get(key)
        medians = document["summary"].get(scenario_name, {})
        if ratio is None or SUBJECT not in medians:
            return None
        subject, reference = (medians[server][summary_keys[key]] * scale
                              for server in (SUBJECT, document["reference"]))
        return ratio, f"{subject:,.{digits}f} vs {reference:,.{digits}f} {unit}, medians"
    return figure


def _instructions(scenario_name):
    def figure(document):
        counts = document["instructions_per_request"].get(scenario_name, {})
        return _quotient(counts.get(SUBJECT), counts.get(document["reference"]), "instructions", 1, 0)
    return figure


def _memory(key, unit, scale, digits):
    def figure(document):
        memory = document["memory"]["summary"]
        subject, reference = (memory.get(server, {}).get(key) for server in (SUBJECT, document["reference"]))
        return _quotient(subject, reference, unit, scale, digits)
    return figure


def _quotient(subject, reference, unit, scale, digits):
    if subject is None or not reference:
        return None
    return subject / reference, f"{subject * scale:,.{digits}f} vs {reference * scale:,.{digits}f} {unit}"


def target_list(scenario_names):
    """The targets for the scenarios of this run (a requests/s target each) and the fixed ones."""
    return [
        Target("hello: server CPU per request", _paired("cpu", "hello", "µs", digits=2), 0.8, at_most=True),
        *[Target(f"{name}: requests/s", _paired("req_per_s", name, "req/s"),
                 THROUGHPUT_LIMITS.get(name, DEFAULT_THROUGHPUT_LIMIT), at_most=False)
          for name in scenario_names],
        Target("hello: instructions per request", _instructions("hello"), 0.6, at_most=True),
        Target("RSS at start", _memory("start_rss_kib", "KiB", 1, 0), 1.0, at_most=True),
        Target("RSS per idle connection", _memory("rss_bytes_per_connection", "bytes", 1, 0), 1.0, at_most=True),
    ]


def evaluate(document):
    checked = [target.check(document) for target in target_list([s["name"] for s in document["scenarios"]])]
    checked.append(_share_of_ceiling(document))
    return checked


def _share_of_ceiling(document):
    """Informational: ursa's requests/s on hello as a share of nginx's, paired within rounds."""
    text = f"{SUBJECT} reaches X% of {CEILING}'s requests/s on hello"
    hello_rounds = document["rounds"].get("hello", {})
    ratio = report.paired_ratios({"hello": hello_rounds}, CEILING).get("hello", {}).get(SUBJECT, {}).get("req_per_s")
    if ratio is None:
        return {"target": text, "result": "n/a", "ratio": None, "figure": "not measured"}
    medians = document["summary"]["hello"]
    return {"target": text.replace("X%", f"{ratio * 100:.0f}%"), "result": "info", "ratio": ratio,
            "figure": f"{medians[SUBJECT]['req_per_s']:,.0f} vs {medians[CEILING]['req_per_s']:,.0f} req/s, medians"}
