"""Imported at start-up by every Python process of `make test-asan`
(scripts/test-asan.sh puts this directory on PYTHONPATH).

From CPython 3.12 on, the interpreter itself leaves memory behind at exit:
`python -c pass` loses some 3,000 interned strings once finalization has
run, so LeakSanitizer's check at exit fails every process, whatever ursa
does. A process whose LeakSanitizer is on (the servers the tests start, see
URSA_SERVER_ASAN_OPTIONS) therefore runs the check earlier, as its last
atexit callback: the interpreter is still whole, so everything it holds is
reachable, and what ursa lost is not. LeakSanitizer then skips its check at
exit. Before 3.12 the check stays at exit, where it also sees what module
finalization fails to free.
"""
import os
import sys


def _leak_sanitizer_is_on():
    options = dict(option.partition("=")[::2] for option in os.environ.get("ASAN_OPTIONS", "").split(":") if option)
    return options.get("detect_leaks", "1") in ("1", "true")


def _check_for_leaks_now():
    import ctypes

    check = getattr(ctypes.CDLL(None), "__lsan_do_leak_check", None)
    if check is not None:  # None: no sanitizer runtime in this process
        check()


if sys.version_info >= (3, 12) and _leak_sanitizer_is_on():
    import atexit

    # Registered before any other callback, so it runs after all of them.
    atexit.register(_check_for_leaks_now)
