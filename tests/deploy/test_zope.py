"""Zope 5 behind the PasteDeploy runner, as the README's recipe says: an
instance made by mkwsgiinstance, run by Zope's runwsgi with
`use = egg:ursa#main`. With FileStorage, one worker (in the runwsgi
process); with ZEO (a real runzeo server), two workers, each loading Zope
after the fork with its own ZEO connection. Every acknowledged write made
through the ZMI must still be there after ursa and ZEO restart.

A probe filter (apps/zopeprobe.py) in front of Zope names the worker that
served each response and can hold one worker busy, so that the writes are
made through both workers, each one a known number of times.
"""
import base64
import re
import subprocess
import threading

import pytest

from support.processes import STOP_TIMEOUT
from support.waiting import wait_until

from .harness import APPS_DIR, VENV_BIN, request

pytest.importorskip("Zope2", reason="Zope is installed from requirements-dev.txt")

ZOPE_START_TIMEOUT = 120.0  # importing Zope takes seconds; the machine may be busy
AUTH = {"Authorization": "Basic " + base64.b64encode(b"admin:admin").decode()}

# The README's recipe (etc/zope.ini, etc/zope.conf), with the test's probe
# filter in front of the pipeline.
ZOPE_INI = """\
[app:zope]
use = egg:Zope#main
zope_conf = %(here)s/zope.conf

[filter:probe]
use = call:zopeprobe:make_filter

[pipeline:main]
pipeline =
    probe
    egg:Zope#httpexceptions
    zope

[server:main]
use = egg:ursa#main
host = 127.0.0.1
port = {port}
workers = {workers}
"""

FILESTORAGE = """\
<zodb_db main>
    <filestorage>
      path $INSTANCE/var/Data.fs
    </filestorage>
    mount-point /
</zodb_db>
"""

ZEOCLIENT = """\
<zodb_db main>
    <zeoclient>
      server 127.0.0.1:{zeo_port}
      storage 1
    </zeoclient>
    mount-point /
</zodb_db>
"""


def make_instance(tmp_path, storage, workers):
    instance = tmp_path / "zope"
    subprocess.run([VENV_BIN / "mkwsgiinstance", "-d", instance, "-u", "admin:admin"], check=True,
                   capture_output=True, timeout=ZOPE_START_TIMEOUT)
    # Port 0: the address is read from the "Listening at" line, and no
    # other test run on the machine can take the port in between.
    (instance / "etc" / "zope.ini").write_text(ZOPE_INI.format(port=0, workers=workers))
    set_storage(instance, storage)
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    return instance, probe_dir


def set_storage(instance, storage):
    (instance / "etc" / "zope.conf").write_text(f"%define INSTANCE {instance}\ninstancehome $INSTANCE\n\n"
                                                 + storage)


def start_zope(procs, instance, probe_dir, name):
    server = procs.start([VENV_BIN / "runwsgi", instance / "etc" / "zope.ini"], cwd=instance, name=name,
                         env={"PYTHONPATH": str(APPS_DIR), "ZOPEPROBE_DIR": str(probe_dir)})
    server.wait_listening(timeout=ZOPE_START_TIMEOUT)
    return server


def start_zeo(procs, directory, name):
    """runzeo on a port the kernel chooses; returns (process, port)."""
    directory.mkdir(exist_ok=True)
    server = procs.start([VENV_BIN / "runzeo", "-a", "127.0.0.1:0", "-f", directory / "Data.fs"],
                         cwd=directory, name=name)
    server.wait_for_log(r"listening on \('127\.0\.0\.1', 0\)", timeout=ZOPE_START_TIMEOUT)
    return server, wait_until(lambda: listening_port(server.pid), STOP_TIMEOUT, "the ZEO server's port")


def listening_port(pid):
    """The TCP port process `pid` listens on (ss -p), or None."""
    listing = subprocess.run(["ss", "-tlnpH"], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        if f"pid={pid}," in line:
            return int(line.split()[3].rpartition(":")[2])
    return None


def zeo_clients(zeo_port):
    """Pids of the processes connected to the ZEO server (ss -p)."""
    listing = subprocess.run(["ss", "-tnpH", "state", "established", "dst", f"127.0.0.1:{zeo_port}"],
                             capture_output=True, text=True, check=True).stdout
    return {int(pid) for pid in re.findall(r"pid=(\d+)", listing)}


def stop(server):
    server.signal(15)
    assert server.wait_exit(timeout=ZOPE_START_TIMEOUT) == 0, server.stderr()


def add_folder(address, name):
    """One ZMI write: a Folder named `name` in the root. Returns the pid of
    the worker that acknowledged it."""
    status, headers, body = request(address, "POST", "/manage_addProduct/OFSP/manage_addFolder",
                                    body=f"id={name}".encode(),
                                    headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 302, (status, body[:200])  # the ZMI redirects after a successful add
    return int(headers["X-Worker-Pid"])


def folder_exists(address, name):
    status, _, _ = request(address, "GET", f"/{name}/manage_main", headers=AUTH)
    return status == 200


class Hold:
    """Keeps one worker busy in the probe filter until released."""

    def __init__(self, address, probe_dir, name):
        self.probe_dir = probe_dir
        self.name = name
        self.result = []
        self.thread = threading.Thread(target=lambda: self.result.append(
            request(address, path=f"/__hold__/{name}", timeout=ZOPE_START_TIMEOUT)), daemon=True)
        self.thread.start()
        held = probe_dir / f"{name}.held"
        wait_until(lambda: held.exists() and held.read_text(), STOP_TIMEOUT, f"hold {name} is in a worker")
        self.pid = int(held.read_text())

    def release(self):
        (self.probe_dir / f"{self.name}.release").write_text("")
        self.thread.join(STOP_TIMEOUT)
        assert self.result and self.result[0][0] == 200, self.result


def test_filestorage_with_one_worker_keeps_every_write(procs, tmp_path):
    instance, probe_dir = make_instance(tmp_path, FILESTORAGE, workers=1)
    server = start_zope(procs, instance, probe_dir, "zope1")
    names = [f"fs{index}" for index in range(6)]
    assert {add_folder(server.address, name) for name in names} == {server.pid}
    stop(server)

    again = start_zope(procs, instance, probe_dir, "zope2")
    assert [folder_exists(again.address, name) for name in names] == [True] * len(names)
    assert not folder_exists(again.address, "never-made")
    stop(again)


def zope_on_zeo(procs, tmp_path):
    """A ZEO server and Zope with two workers on it."""
    zeo, zeo_port = start_zeo(procs, tmp_path / "zeo", "zeo1")
    instance, probe_dir = make_instance(tmp_path, ZEOCLIENT.format(zeo_port=zeo_port), workers=2)
    server = start_zope(procs, instance, probe_dir, "zope1")
    workers = server.wait_workers(2, timeout=ZOPE_START_TIMEOUT)
    return zeo, zeo_port, instance, probe_dir, server, workers


def test_zeo_with_two_workers_keeps_every_write(procs, tmp_path):
    zeo, zeo_port, instance, probe_dir, server, workers = zope_on_zeo(procs, tmp_path)
    address = server.address

    # While one worker is held, every write goes through the other one.
    first = Hold(address, probe_dir, "first")
    batch_one = [f"one{index}" for index in range(5)]
    served_one = {add_folder(address, name) for name in batch_one}
    second = Hold(address, probe_dir, "second")
    first.release()
    batch_two = [f"two{index}" for index in range(5)]
    served_two = {add_folder(address, name) for name in batch_two}
    second.release()
    assert served_one == {second.pid} and served_two == {first.pid}, (served_one, served_two)
    assert {first.pid, second.pid} == set(workers)
    # Each worker sees the other's writes (ZEO invalidations), not a stale copy.
    for name in batch_one + batch_two:
        assert folder_exists(address, name), name

    stop(server)
    stop(zeo)
    _, zeo_port = start_zeo(procs, tmp_path / "zeo", "zeo2")
    set_storage(instance, ZEOCLIENT.format(zeo_port=zeo_port))
    again = start_zope(procs, instance, probe_dir, "zope2")
    assert [folder_exists(again.address, name) for name in batch_one + batch_two] == [True] * 10
    stop(again)


def test_the_master_never_loads_the_app(procs, tmp_path):
    # Zope started in the master would open the database (and a ZEO
    # client thread) that every forked worker then shares: the runner
    # execs a master that has not loaded it, and only the workers connect.
    zeo, zeo_port, _, _, server, workers = zope_on_zeo(procs, tmp_path)
    with open(f"/proc/{server.pid}/cmdline") as cmdline:
        assert cmdline.read().split("\0")[1:3] == ["-m", "ursa.paste"]
    wait_until(lambda: zeo_clients(zeo_port) == set(workers), STOP_TIMEOUT,
               f"only the workers {workers} are connected to ZEO")
    assert {add_folder(server.address, f"w{index}") for index in range(4)} <= set(workers)
    assert zeo_clients(zeo_port) == set(workers)
    stop(server)
    stop(zeo)
