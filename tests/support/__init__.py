"""Helpers shared by the test suite, the benchmarks (bench/) and the soak
script (scripts/soak.py): one way to start a process and end it, to talk raw
HTTP/1.x and read exactly what a server sent, and to wait for something.

  waiting    wait_until(), and waiting for a file to show a pattern
  rawhttp    a raw HTTP/1.x client: build_request(), RawConnection (a strict
             response parser), connect() and parse_address()
  processes  ChildProcess (a process started in a session of its own, its
             output in files or a pipe, stopped or killed with what it
             started), ProcessPool (the processes of one test or module,
             ended together), and what /proc says about a process
  servers    ServerProcess: an ursa server (tests/serve.py, or another
             script that prints the same LISTENING line) with its clients;
             ServerPool

The tests import it as `support` (pytest puts tests/ on sys.path); bench/
and scripts/ append the repository's tests/ directory to sys.path first.
"""
