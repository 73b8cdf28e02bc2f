"""The harness's side of the WebSocket load generator (websocket_load.py): start it, command it, read its answers.

    with LoadGenerator(port, "/echo", "echo", clients=16, size=64, cpu=1) as load:
        load.run_count(16)            # a check: every client echoes once
        figures = load.run_for(2.0)   # {"messages", "duration_us", "p50_us", "p99_us", "errors"}
        load.quit()

The generator runs in a process of its own, pinned to the client core like
wrk, so that the harness (also there, but asleep while a phase runs) and
the server (on the other core) share nothing with it. Commands go down a
pipe handed to it as a descriptor; answers come back as JSON lines on its
stdout. Whatever goes wrong (no upgrade, a server that stops answering)
is a ServerError naming the server, so a run records a failure and goes on.
"""
import json
import os
import sys
import tempfile
import time

from serverprocess import ServerError, pinned_command
from support.processes import ChildProcess

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
LOAD_SCRIPT = os.path.join(BENCH_DIR, "websocket_load.py")

# Seconds the clients get to connect, and a server to answer a "count" command: generous, as a server
# under valgrind runs ~50x slower and 1,000 idle connections are opened 100 at a time.
CONNECT_TIMEOUT = 60.0
CONNECT_TIMEOUT_UNDER_VALGRIND = 300.0
COUNT_TIMEOUT = 60.0
COUNT_TIMEOUT_UNDER_VALGRIND = 900.0
# Beyond a "for" command's seconds: the messages in flight at its end are waited for.
FOR_SLACK_SECONDS = 30.0


class LoadGenerator(ChildProcess):
    """A running websocket_load.py with its clients connected to the server."""

    Failure = ServerError

    def __init__(self, server, port, path, pattern, clients, size, cpu, under_valgrind=False):
        self.server = server
        self.under_valgrind = under_valgrind
        self._directory = tempfile.TemporaryDirectory(prefix="bench-wsload-")
        commands_read, self._commands = os.pipe()
        argv = pinned_command([sys.executable, LOAD_SCRIPT, "--port", str(port), "--path", path, "--pattern", pattern,
                               "--clients", str(clients), "--size", str(size), "--commands-fd", str(commands_read)],
                              cpu)
        super().__init__(argv, name=f"the {pattern} load generator ({clients} clients of {server})",
                         stderr_path=os.path.join(self._directory.name, "load.stderr"), pass_fds=(commands_read,))
        try:
            self.start()
        finally:
            os.close(commands_read)  # the child's copy is the only reader
        try:
            connect_timeout = CONNECT_TIMEOUT_UNDER_VALGRIND if under_valgrind else CONNECT_TIMEOUT
            hello = self._answer(time.monotonic() + connect_timeout)
            if "error" in hello:
                raise ServerError(f"{server}: {hello['connected']} of {clients} WebSocket clients of {path} "
                                  f"connected, then: {hello['error']}\n{self.log_tail()}")
        except BaseException:
            self.close()
            raise

    def _command(self, line, timeout):
        try:
            os.write(self._commands, (line + "\n").encode())
        except BrokenPipeError:
            raise ServerError(f"{self.name} exited before `{line}`\n{self.log_tail()}") from None
        answer = self._answer(time.monotonic() + timeout)
        if "error" in answer:
            raise ServerError(f"{self.name}: {answer['error']}")
        return answer

    def _answer(self, deadline):
        line = self.read_line(deadline)
        try:
            return json.loads(line)
        except ValueError:
            raise ServerError(f"{self.name} wrote {line!r}, not JSON\n{self.log_tail()}") from None

    def run_for(self, seconds):
        """Load the server for ``seconds``; the phase's figures."""
        return self._command(f"for {seconds:g}", seconds + FOR_SLACK_SECONDS)

    def run_count(self, messages):
        """Load the server until ``messages`` messages, exactly (a broadcast's rounded up to whole
        broadcasts), have been answered; the phase's figures."""
        return self._command(f"count {messages}", COUNT_TIMEOUT_UNDER_VALGRIND if self.under_valgrind
                             else COUNT_TIMEOUT)

    def quit(self):
        """Close every connection (close frames both ways) and wait for the generator to exit."""
        answer = self._command("quit", COUNT_TIMEOUT)
        self.wait_exit()
        return answer

    def close(self):
        if self._commands is not None:
            os.close(self._commands)
            self._commands = None
        self.kill()
        if self.popen is not None and self.popen.stdout is not None:
            self.popen.stdout.close()
        self._directory.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def check_answer(server, what, answer, expected):
    """ServerError unless the phase counted ``expected`` messages without an error."""
    errors = {kind: count for kind, count in answer["errors"].items() if count}
    if answer["messages"] < expected or errors:
        raise ServerError(f"{server} answered the {what} wrongly: {answer['messages']} of {expected} messages, "
                          f"errors {errors or 'none'}")
