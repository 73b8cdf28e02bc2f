"""asyncio loops compared: stock asyncio, uvloop (when installed) and
ursa.eventloop, in instructions per callback or timer (callgrind) and in
wake-ups while idle.

    python bench/eventloop.py callgrind [N [WORKLOAD...]]  # instructions per operation, every loop
    python bench/eventloop.py idle [SECONDS]  # an idle loop for SECONDS (default 10): CPU, polls, epoll waits
    python bench/eventloop.py run LOOP WORKLOAD N   # one workload (what callgrind runs)

Instructions per operation are differential: each workload runs under
callgrind twice, with N and 2N operations, after the same start-up and
warm-up, and (Ir(2N) - Ir(N)) / N is printed, so that start-up, imports and
warm-up cancel out without instrumenting the code measured. Every figure
includes the Python body of the callback (a few hundred instructions).

Workloads (N operations each):
  soon_batch    N call_soon() from one callback, then run them
  soon_chain    N callbacks, each call_soon()s the next: one loop iteration each
  timer_batch   N call_later(0)
  timer_spread  N call_later(0..10 ms, random)
  timer_cancel  N call_later(10 s) then cancel(): how most timeouts end
  sleep0        N tasks that each await asyncio.sleep(0) twice, under gather()
"""
import asyncio
import concurrent.futures
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = ["soon_batch", "soon_chain", "timer_batch", "timer_spread", "timer_cancel", "sleep0"]
WARM_UP = 1000


def new_loop(name):
    if name == "asyncio":
        return asyncio.SelectorEventLoop()
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    import ursa.eventloop

    return ursa.eventloop.new_event_loop()


def available_loops():
    loops = ["asyncio"]
    try:
        import uvloop  # noqa: F401

        loops.append("uvloop")
    except ImportError:
        print("uvloop is not installed: left out", file=sys.stderr)
    return loops + ["ursa"]


# ---- workloads: each runs n operations and returns when they are done ----

async def counted(loop, n, schedule):
    done = loop.create_future()
    count = [0]

    def callback():
        count[0] += 1
        if count[0] == n:
            done.set_result(None)

    schedule(callback)
    await done


async def soon_batch(loop, n):
    def schedule(callback):
        for _ in range(n):
            loop.call_soon(callback)

    await counted(loop, n, schedule)


async def soon_chain(loop, n):
    done = loop.create_future()
    count = [0]

    def callback():
        count[0] += 1
        if count[0] == n:
            done.set_result(None)
        else:
            loop.call_soon(callback)

    loop.call_soon(callback)
    await done


async def timer_batch(loop, n):
    def schedule(callback):
        for _ in range(n):
            loop.call_later(0, callback)

    await counted(loop, n, schedule)


async def timer_spread(loop, n):
    chance = random.Random(1)
    delays = [chance.random() * 0.01 for _ in range(n)]

    def schedule(callback):
        for delay in delays:
            loop.call_later(delay, callback)

    await counted(loop, n, schedule)


async def timer_cancel(loop, n):
    def never():
        raise AssertionError("cancelled")

    for _ in range(n):
        loop.call_later(10, never).cancel()
    await asyncio.sleep(0)


async def sleep0(loop, n):
    async def task():
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    await asyncio.gather(*[task() for _ in range(n)])


def run_one(loop_name, workload, n):
    loop = new_loop(loop_name)
    function = globals()[workload]

    async def main():
        await function(loop, WARM_UP)  # caches, specialised bytecode, the queue's capacity
        await function(loop, n)

    loop.run_until_complete(main())
    loop.close()


# ---- callgrind ----

def instructions(loop_name, workload, n):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
                   os.path.abspath(__file__), "run", loop_name, workload, str(n)]
        env = dict(os.environ, PYTHONHASHSEED="0")
        subprocess.run(command, check=True, capture_output=True, env=env, timeout=1800)
        with open(out) as f:
            return int(re.search(r"^(?:summary|totals): (\d+)", f.read(), re.M).group(1))


def callgrind(n, workloads):
    if shutil.which("valgrind") is None:
        sys.exit("callgrind needs valgrind (apt-get install valgrind)")
    loops = available_loops()
    print(f"Python {sys.version.split()[0]}, instructions per operation, (Ir(2N) - Ir(N)) / N, N = {n}\n")
    print("| workload | " + " | ".join(loops) + " | ursa / asyncio |" + (" ursa / uvloop |" if "uvloop" in loops else ""))
    print("|---" * (len(loops) + 2 + ("uvloop" in loops)) + "|")
    runs = [(name, workload, count) for workload in workloads for name in loops for count in (n, 2 * n)]
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        totals = dict(zip(runs, pool.map(lambda run: instructions(*run), runs)))
    for workload in workloads:
        per_op = {name: (totals[name, workload, 2 * n] - totals[name, workload, n]) / n for name in loops}
        row = [f"{per_op[name]:,.0f}" for name in loops] + [f"{per_op['ursa'] / per_op['asyncio']:.2f}"]
        if "uvloop" in loops:
            row.append(f"{per_op['ursa'] / per_op['uvloop']:.2f}")
        print(f"| {workload} | " + " | ".join(row) + " |", flush=True)


# ---- idle ----

def idle_one(loop_name, seconds):
    """A listening server, an idle client connection and one timer (the end
    of the wait): nothing else to do for `seconds`."""
    loop = new_loop(loop_name)

    async def main():
        accepted = []
        server = await asyncio.start_server(lambda reader, writer: accepted.append(writer), "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
        await asyncio.sleep(0.2)
        polls = getattr(getattr(loop, "_libev", None), "polls", None)
        before = resource.getrusage(resource.RUSAGE_SELF)
        await asyncio.sleep(seconds)
        after = resource.getrusage(resource.RUSAGE_SELF)
        if polls is not None:
            polls = loop._libev.polls - polls
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        switches = (after.ru_nvcsw - before.ru_nvcsw) + (after.ru_nivcsw - before.ru_nivcsw)
        print(f"cpu_ms={cpu * 1e3:.1f} context_switches={switches} polls={polls if polls is not None else '-'}")
        for each in [writer, *accepted]:
            each.close()
        server.close()

    loop.run_until_complete(main())
    loop.close()


def epoll_waits(loop_name, seconds):
    """epoll waits of a whole run (strace -c), start-up and all."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "strace.txt")
        subprocess.run(["strace", "-f", "-c", "-o", out, "-e", "trace=epoll_wait,epoll_pwait,epoll_pwait2",
                        sys.executable, os.path.abspath(__file__), "idle-one", loop_name, str(seconds)],
                       check=True, capture_output=True)
        with open(out) as f:
            total = re.search(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?total$", f.read(), re.M)
        return int(total.group(1)) if total else 0


def idle(seconds):
    print(f"Python {sys.version.split()[0]}, {seconds:g} s idle with a listening server and an idle connection\n")
    print("| loop | CPU, context switches, polls (GIL releases) | epoll waits (strace: a run less a 0 s run) |")
    print("|---|---|---|")
    for name in available_loops():
        line = subprocess.run([sys.executable, os.path.abspath(__file__), "idle-one", name, str(seconds)],
                              check=True, capture_output=True, text=True).stdout.strip()
        waits = "-"
        if shutil.which("strace"):
            waits = epoll_waits(name, seconds) - epoll_waits(name, 0)
        print(f"| {name} | {line} | {waits} |", flush=True)


def main():
    command = sys.argv[1] if len(sys.argv) > 1 else "callgrind"
    if command == "run":
        run_one(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif command == "callgrind":
        callgrind(int(sys.argv[2]) if len(sys.argv) > 2 else 5000, sys.argv[3:] or WORKLOADS)
    elif command == "idle":
        idle(float(sys.argv[2]) if len(sys.argv) > 2 else 10.0)
    elif command == "idle-one":
        idle_one(sys.argv[2], float(sys.argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
