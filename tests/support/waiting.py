"""Waiting for a condition, with a deadline and a message saying what did not happen."""
import pathlib
import re
import time

# Generous: the machine has 2 cores and other test suites run beside this one.
DEFAULT_TIMEOUT = 30.0


def wait_until(predicate, timeout, message, interval=0.01):
    """Poll ``predicate`` until it returns a true value (which is returned)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting until {message}")
        time.sleep(interval)


def file_text(path):
    """The text of the file at `path`; '' while it does not exist."""
    try:
        return pathlib.Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return ""


def wait_for_text(path, pattern, timeout=DEFAULT_TIMEOUT, count=1):
    """Wait until the file at `path` matches `pattern` `count` times; returns the last match."""
    regex = re.compile(pattern)

    def found():
        matches = list(regex.finditer(file_text(path)))
        return matches[count - 1] if len(matches) >= count else None
    return wait_until(found, timeout, f"{path} shows {pattern!r} (x{count}); it holds:\n{file_text(path)}")
