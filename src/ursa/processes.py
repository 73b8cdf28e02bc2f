"""Process plumbing that the master, its workers, the USR2 upgrade and the
PasteDeploy runner share: forking with the master's signals blocked,
signalling a process that may be gone, an exit status in words, and
flushing the standard streams before a fork, an exec or an exit.
"""
import os
import signal
import sys

# The signals the master handles (arbiter.py). A fork blocks them until the
# child has handlers of its own, or execs.
MASTER_SIGNALS = (signal.SIGHUP, signal.SIGQUIT, signal.SIGINT, signal.SIGTERM,
                  signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD)


def flush_standard_streams():
    """Flush stdout and stderr, so nothing buffered is written twice (after
    a fork) or lost (after an exec or os._exit)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass


def fork_with_signals_blocked():
    """fork() with the master's signals blocked: the child unblocks them
    once it has its own handlers (or execs), so none reaches the master's
    handlers in the child. Returns (pid, the previous mask); the parent
    restores that mask. Raises OSError (mask restored) if fork fails."""
    flush_standard_streams()
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, MASTER_SIGNALS)
    try:
        return os.fork(), blocked
    except OSError:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        raise


def send_signal(pid, number):
    """os.kill, except that a process already gone is no error."""
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


def process_exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe_exit(status):
    """'exited with status N' or 'was killed by signal NAME', for os.waitpid's status."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = str(number)
        return f"was killed by signal {name}"
    return f"exited with status {os.WEXITSTATUS(status)}"
