"""--reload: workers restart when a source file of the app changes."""
import os
import signal

from support.processes import STOP_TIMEOUT
from support.waiting import wait_until

APP_TEMPLATE = '''
def app(environ, start_response):
    body = {body!r}
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
'''


def write_app(directory, body, name="editable.py"):
    path = directory / name
    path.write_text(APP_TEMPLATE.format(body=body))
    bump_mtime(path)
    return path


def bump_mtime(path):
    # Edits within one timestamp tick would look unchanged; move it clearly on.
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


def serves(server, body):
    try:
        return server.get("/", timeout=5)[2] == body
    except OSError:
        return False


def test_editing_the_app_restarts_workers_with_the_new_code(procs, tmp_path):
    write_app(tmp_path, b"one")
    server = procs.ursa("-b", "127.0.0.1:0", "--reload", "--chdir", tmp_path, "editable:app")
    assert server.get("/")[2] == b"one"
    write_app(tmp_path, b"two")
    wait_until(lambda: serves(server, b"two"), STOP_TIMEOUT, "the new code serves")
    server.wait_for_log(r"editable\.py changed; restarting worker")


def test_editing_an_imported_helper_module_also_reloads(procs, tmp_path):
    (tmp_path / "helper.py").write_text("GREETING = b'hello'\n")
    (tmp_path / "uses_helper.py").write_text(
        "import helper\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [helper.GREETING]\n")
    server = procs.ursa("-b", "127.0.0.1:0", "--reload", "--chdir", tmp_path, "uses_helper:app")
    assert server.get("/")[2] == b"hello"
    (tmp_path / "helper.py").write_text("GREETING = b'changed'\n")
    bump_mtime(tmp_path / "helper.py")
    wait_until(lambda: serves(server, b"changed"), STOP_TIMEOUT, "the helper's new value serves")


def test_a_broken_edit_waits_for_the_fix(procs, tmp_path):
    path = write_app(tmp_path, b"one")
    server = procs.ursa("-b", "127.0.0.1:0", "--reload", "--chdir", tmp_path, "editable:app")
    server.wait_workers(1)
    path.write_text("def app(:\n")
    bump_mtime(path)
    server.wait_for_log(r"syntax error in .*editable\.py, line 1")
    server.wait_for_log(r"waiting for a source file to change")
    assert server.popen.poll() is None  # the master stays up
    write_app(tmp_path, b"fixed")
    wait_until(lambda: serves(server, b"fixed"), STOP_TIMEOUT, "the fixed code serves")


SAVED_WHILE_LOADING = APP_TEMPLATE.format(body=b"old") + '''
# An editor saves a broken version while this module is being imported.
import os
with open(__file__, "w") as source:
    source.write("def app(:\\n")
stat = os.stat(__file__)
os.utime(__file__, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
'''


def test_an_edit_saved_while_the_app_loads_is_seen(procs, tmp_path):
    # The window test_a_broken_edit_waits_for_the_fix could fall into when
    # the machine was busy, made certain: the worker took its snapshot of
    # the mtimes after loading, so the edit looked like the loaded code.
    path = tmp_path / "editable.py"
    path.write_text(SAVED_WHILE_LOADING)
    server = procs.ursa("-b", "127.0.0.1:0", "--reload", "--chdir", tmp_path, "editable:app", wait=False)
    server.wait_for_log(r"syntax error in .*editable\.py, line 1")
    server.wait_for_log(r"waiting for a source file to change")
    write_app(tmp_path, b"fixed")
    server.wait_listening()
    wait_until(lambda: serves(server, b"fixed"), STOP_TIMEOUT, "the fixed code serves")


def test_starting_broken_waits_for_the_fix_instead_of_exiting(procs, tmp_path):
    path = tmp_path / "editable.py"
    path.write_text("raise RuntimeError('not yet')\n")
    server = procs.ursa("-b", "127.0.0.1:0", "--reload", "--chdir", tmp_path, "editable:app")
    server.wait_for_log(r"RuntimeError: not yet")
    write_app(tmp_path, b"now")
    wait_until(lambda: serves(server, b"now"), STOP_TIMEOUT, "the fixed code serves")
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0


def test_reload_and_preload_do_not_mix(procs, tmp_path):
    write_app(tmp_path, b"one")
    server = procs.ursa("--reload", "--preload", "--chdir", tmp_path, "editable:app", wait=False)
    assert server.wait_exit() == 2
    assert "--reload and --preload do not mix" in server.stderr()
