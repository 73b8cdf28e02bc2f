"""Running workers as another user (--user/--group), as an operator does:
who owns the unix socket, log rotation (USR1) when the worker user may
not write the log folder, workers that must not outlive a killed master,
--umask and the log files, and an app folder the worker user cannot read.

The folders the worker user must reach are under `shared_dir` (root's,
0755): pytest's tmp_path is root's alone."""
import os
import pwd
import shutil
import signal

import pytest

from support.processes import STOP_TIMEOUT
from support.waiting import file_text, wait_for_text, wait_until

from .harness import APPS_DIR, LISTENING, connect_as
from .test_cli import assert_one_line_error, run_ursa_to_exit
from .test_master import assert_all_gone, process_reopened

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")

NOBODY = pwd.getpwnam("nobody")
AS_NOBODY = ("--user", "nobody", "--group", "nogroup")


def test_the_unix_socket_belongs_to_the_worker_user_and_group(procs, shared_dir):
    sock_path = shared_dir / "app.sock"
    server = procs.ursa("-b", f"unix:{sock_path}", *AS_NOBODY, "--umask", "077", "deployapp:app")
    info = os.stat(sock_path)
    assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (NOBODY.pw_uid, NOBODY.pw_gid, 0o700)
    assert connect_as("nobody", sock_path) is None
    assert server.get("/")[2] == b"hello"


# -- log files: the master's, reopened by the master on USR1


def start_logging_to(procs, folder, *args):
    """2 workers as nobody, both logs in `folder`; the address is read
    from the error log."""
    server = procs.ursa("-b", "127.0.0.1:0", "-w", "2", *AS_NOBODY, "--access-log", folder / "access.log",
                        "--error-log", folder / "error.log", *args, "deployapp:app", wait=False)
    server.address = wait_for_text(folder / "error.log", LISTENING.pattern).group(1)
    return server


def test_usr1_under_user_reopens_both_logs_in_every_worker(procs, shared_dir):
    # shared_dir is root's and 0755: nobody cannot create a file in it.
    server = start_logging_to(procs, shared_dir)
    workers = server.wait_workers(2)
    server.signal(signal.SIGUSR1)  # with nothing moved: it killed every worker
    wait_for_text(shared_dir / "error.log", "SIGUSR1: ")
    for name in ("access.log", "error.log"):
        os.rename(shared_dir / name, shared_dir / f"{name}.1")
    server.signal(signal.SIGUSR1)
    for name in ("access.log", "error.log"):
        wait_until(lambda: all(process_reopened(pid, shared_dir / name) for pid in workers), STOP_TIMEOUT,
                   f"every worker has the new {name} open")
    assert server.get("/after")[0] == 200
    assert server.get("/raise")[0] == 500
    wait_for_text(shared_dir / "access.log", "GET /after ")
    wait_for_text(shared_dir / "error.log", "ValueError: deployapp failure")
    assert "/after" not in file_text(shared_dir / "access.log.1")
    assert server.wait_workers(2) == workers
    assert "SIGUSR1: log files reopened" in file_text(shared_dir / "error.log")
    everything = file_text(shared_dir / "error.log.1") + file_text(shared_dir / "error.log")
    assert " exited " not in everything and "cannot reopen" not in everything, everything


def test_a_failed_reopen_says_so_and_keeps_the_previous_files(procs, shared_dir):
    folder = shared_dir / "logs"
    folder.mkdir(mode=0o755)
    server = start_logging_to(procs, folder)
    workers = server.wait_workers(2)
    moved = shared_dir / "moved"
    os.rename(folder, moved)  # nothing can be opened at the configured paths now
    server.signal(signal.SIGUSR1)
    for name in ("error.log", "access.log"):
        wait_for_text(moved / "error.log", rf"cannot reopen {folder / name}: No such file or directory; "
                                           rf"still writing to the previous file")
    assert server.get("/still")[0] == 200
    wait_for_text(moved / "access.log", "GET /still ")
    assert server.wait_workers(2) == workers


# -- a killed master


def test_workers_exit_when_the_master_is_killed_under_user(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "-w", "2", *AS_NOBODY, "deployapp:app")
    workers = server.wait_workers(2)
    server.signal(signal.SIGKILL)
    server.wait_exit()
    assert_all_gone(workers)
    # Nothing holds the port any more: the service can start again.
    again = procs.ursa("-b", server.address[len("http://"):], "deployapp:app", name="again")
    assert again.get("/")[2] == b"hello"


CLEAR_PARENT_DEATH_SIGNAL = """
def post_fork(arbiter, worker):
    import ctypes
    ctypes.CDLL(None).prctl(1, 0, 0, 0, 0)  # PR_SET_PDEATHSIG 0: as the kernel does on a uid change
"""


def test_workers_notice_a_killed_master_without_the_parent_death_signal(procs, tmp_path):
    config = tmp_path / "ursa.conf.py"
    config.write_text(CLEAR_PARENT_DEATH_SIGNAL)
    server = procs.ursa("-c", config, "-b", "127.0.0.1:0", "-w", "2", "deployapp:app")
    workers = server.wait_workers(2)
    server.signal(signal.SIGKILL)
    server.wait_exit()
    assert_all_gone(workers)


# -- small ones


def test_umask_applies_to_the_log_files(procs, tmp_path):
    procs.ursa("-b", "127.0.0.1:0", "--umask", "077", "--access-log", tmp_path / "access.log",
               "--error-log", tmp_path / "error.log", "deployapp:app", wait=False)
    wait_for_text(tmp_path / "error.log", LISTENING.pattern)
    for name in ("access.log", "error.log"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o600, name


def test_a_worker_user_who_cannot_read_the_app_folder_is_told_so(shared_dir):
    app_folder = shared_dir / "app"
    app_folder.mkdir(mode=0o700)
    shutil.copy(APPS_DIR / "factoryapp.py", app_folder / "hello.py")
    returncode, _, stderr = run_ursa_to_exit("-b", "127.0.0.1:0", *AS_NOBODY, "hello:create_app()", cwd=app_folder)
    assert_one_line_error(returncode, stderr, "'hello'", "user nobody", f"{app_folder}: permission denied")
    assert "no module named" not in stderr
