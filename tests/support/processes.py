"""Processes that the tests, the benchmarks and the soak script start, and
what /proc says about a process.

A ChildProcess runs with stdin at /dev/null, its stderr in a file (or the
caller's), its stdout in a file or a pipe read line by line, by default in
a session of its own; kill() ends it with its process group and every
process it started, whatever happened. A ProcessPool holds the processes
of one test (or one test module) and ends them all when it closes.
"""
import os
import pathlib
import re
import select
import socket
import subprocess
import time
from signal import SIGKILL, SIGTERM, Signals  # (a ChildProcess has a method named signal)

from .waiting import wait_until

# Generous bounds: the machine has 2 cores and other test suites run beside this one.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0

# Under AddressSanitizer (make test-asan) freed memory waits in ASan's
# quarantine and every allocation carries redzones, so a server's RSS grows
# without a leak: memory bounds that use RSS are reported but not enforced there.
SANITIZED = os.environ.get("URSA_SANITIZE") == "1"
RSS_IS_MEANINGFUL = not SANITIZED


class ChildProcess:
    """One started process. `stderr_path` None leaves stderr the caller's;
    `stdout_path` None pipes stdout, for read_line(). Failures raise
    `Failure` (AssertionError here; a benchmark's own error there)."""

    Failure = AssertionError

    def __init__(self, argv, name="process", stderr_path=None, stdout_path=None, cwd=None, env=None,
                 new_session=True, **popen_options):
        self.argv = [str(part) for part in argv]
        self.name = name
        self.stderr_path = None if stderr_path is None else pathlib.Path(stderr_path)
        self.stdout_path = None if stdout_path is None else pathlib.Path(stdout_path)
        self.cwd = cwd
        self.env = env
        self.new_session = new_session
        self.popen_options = popen_options
        self.popen = None
        self.pid = None
        self.exit_code = None
        self._stdout = b""  # read from the pipe and not yet taken by read_line()

    def start(self):
        stdout = open(self.stdout_path, "wb") if self.stdout_path is not None else subprocess.PIPE
        stderr = open(self.stderr_path, "wb") if self.stderr_path is not None else None
        try:
            self.popen = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                          stdout=stdout, stderr=stderr, start_new_session=self.new_session,
                                          **self.popen_options)
        finally:
            for stream in (stdout, stderr):
                if stream not in (None, subprocess.PIPE):
                    stream.close()
        self.pid = self.popen.pid
        return self

    # -- output

    def read_line(self, deadline):
        """The next line of the piped stdout (str, without its newline);
        Failure if the process exits first or the monotonic `deadline` passes."""
        fd = self.popen.stdout.fileno()
        while b"\n" not in self._stdout:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self.Failure(f"{self.name} wrote no line on stdout in time\n{self.log_tail()}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.popen.wait(STOP_TIMEOUT)
                    raise self.Failure(f"{self.name} exited with {self.popen.returncode} before writing a "
                                       f"line; stdout {self._stdout!r}\n{self.log_tail()}")
                self._stdout += chunk
        line, _, self._stdout = self._stdout.partition(b"\n")
        return line.decode()

    def stdout(self):
        """What it wrote on stdout: the file's text, or what the pipe holds beyond the lines read."""
        if self.stdout_path is not None:
            return self.stdout_path.read_text(errors="replace")
        return self._stdout.decode(errors="replace")

    def stderr(self):
        return self.stderr_path.read_bytes().decode(errors="replace")

    def log_offset(self):
        """Where its stderr ends now, for log_since()."""
        return self.stderr_path.stat().st_size

    def log_since(self, offset):
        with open(self.stderr_path, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def log_tail(self, size=4000):
        """The end of its stderr, for a failure message."""
        try:
            return f"--- stderr of {self.name} (tail) ---\n{self.stderr()[-size:]}"
        except (OSError, AttributeError):
            return ""

    def wait_for_stderr(self, pattern, count=1, since=0, timeout=START_TIMEOUT):
        """Wait until its stderr after `since` matches `pattern` `count`
        times; returns the last match. Failure if it exits before."""
        regex = re.compile(pattern)

        def found():
            matches = list(regex.finditer(self.log_since(since)))
            if len(matches) >= count:
                return matches[count - 1]
            if self.popen.poll() is not None:
                raise self.Failure(f"{self.name} exited ({self.popen.returncode}) before logging "
                                   f"{pattern!r}; stderr:\n{self.log_since(since)}")
            return None
        return wait_until(found, timeout, f"the log of {self.name} shows {pattern!r} (x{count}); stderr "
                          f"so far:\n{self.log_since(since)}")

    # -- lifecycle

    def running(self):
        return self.popen is not None and self.popen.poll() is None

    def signal(self, number):
        os.kill(self.pid, number)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Wait for it to exit; returns its status. If it does not in
        `timeout` seconds, it is killed and Failure raised."""
        try:
            self.exit_code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise self.Failure(f"{self.name} still running {timeout} s after being asked to stop; "
                               f"killed\n{self.log_tail()}") from None
        return self.exit_code

    def stop(self, number=SIGTERM, timeout=STOP_TIMEOUT):
        """Send `number` (unless it has exited) and wait_exit()."""
        if self.popen.poll() is None:
            self.signal(number)
        return self.wait_exit(timeout)

    def end(self, number=SIGTERM, timeout=STOP_TIMEOUT):
        """Send `number` to it (to its whole process group when it has a
        session of its own) and kill what is left if it has not exited in
        `timeout` seconds. For cleanup: nothing is raised."""
        if self.popen.poll() is None:
            try:
                if self.new_session:
                    os.killpg(self.popen.pid, number)
                else:
                    os.kill(self.popen.pid, number)
            except ProcessLookupError:
                pass
        try:
            self.exit_code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def children(self):
        return children_of(self.pid)

    def descendants(self):
        """Its pid and those of every process below it (a master's workers)."""
        return descendants_of(self.pid)

    def kill(self):
        """SIGKILL it, its process group (when it has a session of its own)
        and every process below it, then reap it."""
        if self.popen is None:
            return
        # Found before anyone dies and its children move to init; none once
        # it has been reaped (its pid may belong to another process by now).
        pids = descendants_of(self.popen.pid) if self.popen.poll() is None else []
        if self.new_session:
            try:
                os.killpg(self.popen.pid, SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in reversed(pids):
            try:
                os.kill(pid, SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.popen.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass

    def close_stdout(self):
        """Close the stdout pipe (not reading further: a process it started may hold it open)."""
        if self.popen is not None and self.popen.stdout is not None and not self.popen.stdout.closed:
            self.popen.stdout.close()


class ProcessPool:
    """The processes of one test or one test module; close() ends those
    still running (kill_all() here; a pool may stop them gracefully
    instead). A context manager, for fixtures:

        with SomePool(tmp_path) as pool:
            yield pool
    """

    def __init__(self, directory):
        self.directory = pathlib.Path(directory)
        self.processes = []

    @classmethod
    def for_module(cls, tmp_path_factory, request):
        """A pool for a module-scoped fixture, in a fresh directory named after the test module."""
        return cls(tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2]))

    def new_name(self, prefix):
        return f"{prefix}{len(self.processes)}"

    def add(self, process):
        self.processes.append(process)
        return process

    def kill_all(self):
        for process in self.processes:
            process.kill()
        self.processes = []

    def stop_all(self, number=SIGTERM):
        """Stop each process still running with `number`; each must exit 0 in time."""
        problems = []
        for process in self.processes:
            if process.popen is None or process.exit_code is not None:
                continue
            try:
                code = process.stop(number)
            except AssertionError as error:
                problems.append(str(error))
                continue
            if code != 0:
                problems.append(f"{process.name} exited with {code} after {Signals(number).name}\n"
                                f"{process.log_tail()}")
        assert not problems, "\n".join(problems)

    def close(self):
        self.kill_all()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------- /proc

def children_of(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return sorted(int(child) for child in children.read().split())
    except FileNotFoundError:
        return []


def descendants_of(root_pid):
    """`root_pid` and every process below it."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat_file:
                stat = stat_file.read()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found, pending = [], [root_pid]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, []))
    return found


def process_alive(pid):
    """True if `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def rss_kib(pid):
    """VmRSS of process `pid`, in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def fd_count(pid):
    """How many descriptors process `pid` has open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def open_fds(pid):
    """{fd: target} of the descriptors process `pid` has open."""
    result = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            result[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
        except FileNotFoundError:
            pass
    return result


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now. A server started
    right after gets it unless another process takes it in between (a
    small, accepted race, for servers that cannot bind port 0 themselves)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
