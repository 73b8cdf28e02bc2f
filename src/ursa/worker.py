"""What runs in a forked worker: drop privileges, watch the master, load
the app, report, serve.

  1. after the fork the child resets its signals and, if the master is
     root, drops to --user/--group (privileges.py); then it asks the kernel
     for SIGTERM when the master dies, and a thread of its own watches its
     channel to the master (a unix socket pair), whose end also means the
     master is gone;
  2. loads the app (afresh: the master never imports it unless --preload);
  3. tells the master "ready" (or "error <why>", or "waiting" when --reload
     waits for a fix) over its channel;
  4. serves with ursa.serve() on the shared listening sockets until SIGTERM
     (graceful) or SIGQUIT (immediate), until --max-requests is reached or,
     with --reload, until a source file changes;
  5. exits; the master starts a replacement unless it is stopping.

Over the same channel the master hands it the log files it reopened on
SIGUSR1 (logfiles.py). While it serves, its loop writes its slot of the
heartbeat table (heartbeat.py), which the master reads for --timeout; on
the master's SIGABRT it writes its Python stack to the error log and dies.
"""
import ctypes
import faulthandler
import logging
import os
import random
import signal
import socket
import sys
import threading
import time

from . import logfiles
from .errors import ConfigError
from .interfaces import LifespanFailed
from .privileges import drop_privileges
from .processes import flush_standard_streams
from .reloader import RELOAD_POLL_SECONDS, SourceWatcher

log = logging.getLogger("ursa.error")

# A worker that could not load the app (or open its logs) exits with this
# after writing the reason to its channel.
EXIT_BOOT_ERROR = 4
# A stopping worker gets SIGTERM again at this interval (from the master, or
# from itself once the master is gone), so a signal that arrived in the
# instant before its loop started is not lost.
TERM_RESEND_SECONDS = 1.0
PR_SET_PDEATHSIG = 1


def worker_main(arbiter, worker, channel, signal_mask, masters_end):
    """The child's side of the fork: run the worker, then exit with its
    status (never returns). `masters_end` is the other end of `channel`,
    which the child closes."""
    exit_code = 1
    try:
        masters_end.close()
        exit_code = WorkerProcess(arbiter, worker, channel, signal_mask).run()
    except SystemExit as exc:
        exit_code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        log.exception("worker %d failed", os.getpid())
    finally:
        arbiter.call_hook("worker_exit", arbiter, worker)
        flush_standard_streams()
        os._exit(exit_code)


class WorkerProcess:
    """What runs in a forked worker: load the app, report, serve (see the
    module docstring). `arbiter` is the master's Arbiter as it was at the
    fork: its settings, sockets, app loader and hooks."""

    def __init__(self, arbiter, worker, channel, signal_mask):
        self.arbiter = arbiter
        self.settings = arbiter.settings
        self.worker = worker
        self.channel = channel      # the worker's end: status lines out, the master's messages in
        self.signal_mask = signal_mask
        self.stop_requested = False
        self.loading = True         # until it reports: a stop then needs to wait for nothing
        self.serving = False
        self.access_log = arbiter.access_log  # opened by the master, inherited
        self.source_watcher = None

    def run(self):
        self.worker.pid = os.getpid()
        self.install_signal_handlers()
        self.close_master_fds()
        try:
            drop_privileges(*self.settings.uid_gid())
        except OSError as exc:
            return self.boot_error(f"cannot switch workers to --user/--group: {exc.strerror}")
        # After the drop: Linux clears the parent-death signal when the uid
        # changes. The channel watch does not depend on it.
        set_parent_death_signal(signal.SIGTERM)
        if os.getppid() != self.arbiter.pid:
            return 0  # the master died while this worker was being forked
        self.start_master_watch()
        self.arbiter.call_hook("post_fork", self.arbiter, self.worker)
        if self.settings.reload:
            # The mtimes are taken before the code is read: an edit made
            # while the app loads is then seen as a change, not missed.
            self.source_watcher = SourceWatcher()
            self.source_watcher.add_app_module(self.settings.wsgi_app)
            self.source_watcher.snapshot()
        app = self.arbiter.app
        if app is None:
            try:
                app = self.arbiter.load_app()
            except ConfigError as exc:
                if self.source_watcher is not None:
                    return self.wait_for_fix(exc)
                return self.boot_error(str(exc))
        if self.access_log is not None:
            app = self.access_log.wrap_app(app, self.settings.interface)
        self.arbiter.call_hook("post_worker_init", self.worker)
        if self.stop_requested:
            return 0
        try:
            self.serve(app)
        except LifespanFailed as exc:
            return self.boot_error(str(exc))
        return 0

    def on_ready(self):
        """The app is ready (an ASGI app's lifespan startup is done): the
        master may count on this worker."""
        self.loading = False
        self.report("ready")
        if self.source_watcher is not None:
            self.source_watcher.snapshot(new_files_only=True)
            signal.signal(signal.SIGALRM, self.on_reload_poll)
            signal.siginterrupt(signal.SIGALRM, False)
            signal.setitimer(signal.ITIMER_REAL, RELOAD_POLL_SECONDS, RELOAD_POLL_SECONDS)

    def serve(self, app):
        from . import serve

        options = self.settings.core_options()
        options.update(interface=self.settings.interface, lifespan=self.settings.lifespan, on_ready=self.on_ready)
        options["multiprocess"] = self.arbiter.target_workers > 1
        # The master and the other workers serve these sockets too: a
        # retiring worker must leave them open to new connections.
        options["shared_listeners"] = True
        max_requests = 0
        if self.settings.max_requests:
            max_requests = self.settings.max_requests + random.randint(0, self.settings.max_requests_jitter)
            options["max_requests"] = max_requests
        if self.access_log is not None:
            options["access_log"] = self.access_log
        if self.worker.slot is not None:
            options["heartbeat"] = self.worker.heartbeats.memory
            options["heartbeat_slot"] = self.worker.slot
        self.serving = True
        try:
            serve(self.arbiter.listeners.sockets, app, **options)
        finally:
            self.serving = False
            if self.source_watcher is not None:
                signal.setitimer(signal.ITIMER_REAL, 0)
        if max_requests and not self.stop_requested:
            log.info("worker %d served its %d requests (--max-requests); a new one takes over",
                     os.getpid(), max_requests)

    def install_signal_handlers(self):
        signal.set_wakeup_fd(-1)
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, self.on_stop)
        signal.signal(signal.SIGQUIT, self.on_quit)
        # The master reopens the log files and hands them over the channel.
        for number in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(number, signal.SIG_IGN)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        dump_stack_on_abort()
        # The master repeats SIGTERM while a worker drains; with SA_RESTART a
        # blocking call in the app (a database driver's read) carries on
        # instead of failing with EINTR.
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.siginterrupt(number, False)
        # Signals that arrived since the fork are delivered now, to these handlers.
        signal.pthread_sigmask(signal.SIG_SETMASK, self.signal_mask)

    def close_master_fds(self):
        for fd in (self.arbiter.wakeup_read, self.arbiter.wakeup_write):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.arbiter.wakeup_read = self.arbiter.wakeup_write = None
        self.arbiter.release_workers()

    def on_stop(self, number, frame):
        from . import stop

        if number == signal.SIGINT:
            self.arbiter.call_hook("worker_int", self.worker)
        self.stop_requested = True
        if self.loading:
            # Nothing served, nothing to finish: a reload that superseded
            # this one (or a stop) need not wait for the app to load.
            self.exit_now()
        if self.serving:
            stop()

    def on_quit(self, number, frame):
        self.arbiter.call_hook("worker_int", self.worker)
        self.exit_now()

    def exit_now(self):
        self.arbiter.call_hook("worker_exit", self.arbiter, self.worker)
        flush_standard_streams()
        os._exit(0)

    def start_master_watch(self):
        """A thread of the worker's own waits on its channel: the log files
        the master reopened, and the channel's end, which means the master
        died (however it died, and whatever the kernel did with the
        parent-death signal). A thread and not a timer: no signal ever
        interrupts the app's blocking calls, and an idle worker sleeps. It
        takes no signal: they are all for the main thread."""
        thread = threading.Thread(target=self.watch_master, name="ursa-master-watch", daemon=True)
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            thread.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def watch_master(self):
        while True:
            try:
                data, fds = logfiles.receive(self.channel)
            except OSError:  # ECONNRESET: the master died with messages of this worker unread
                data, fds = b"", []
            if not data and not fds:
                break
            try:
                logfiles.take_handed_files(data, fds, self.access_log)
            except Exception:  # the watch must go on
                log.exception("worker %d: a message from the master failed", os.getpid())
            finally:
                for fd in fds:
                    os.close(fd)
        log.warning("worker %d: the master (%d) is gone; stopping", os.getpid(), self.arbiter.pid)
        # Again and again, as the master does: a SIGTERM that comes just
        # before the loop starts serving is not seen by it.
        while True:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(TERM_RESEND_SECONDS)

    def on_reload_poll(self, number, frame):
        changed = self.source_watcher.changed_file()
        if changed is not None and not self.stop_requested:
            log.info("%s changed; restarting worker %d", changed, os.getpid())
            self.on_stop(number, frame)

    def report(self, message):
        try:
            self.channel.send((message.replace("\n", " ") + "\n").encode("utf-8", "replace"), socket.MSG_NOSIGNAL)
        except OSError:
            pass

    def boot_error(self, message):
        self.report("error " + message)
        return EXIT_BOOT_ERROR

    def wait_for_fix(self, error):
        """--reload and the app does not load: say why, then wait for an edit."""
        log.error("%s", error)
        self.source_watcher.add_files_of(error)
        self.source_watcher.snapshot(new_files_only=True)
        self.loading = False
        self.report("waiting")
        log.info("waiting for a source file to change")
        while not self.stop_requested:
            time.sleep(RELOAD_POLL_SECONDS / 2)
            if self.source_watcher.changed_file() is not None:
                break
        return 0


def dump_stack_on_abort():
    """SIGABRT (from the master, on --timeout) writes every thread's Python
    stack to the error log, then the worker dies of it. faulthandler does
    that from the C signal handler, so it works even while the worker is
    stuck in C code; a crash (SIGSEGV, SIGBUS...) is logged the same way."""
    stream = sys.stderr
    for handler in logging.getLogger("ursa.error").handlers:
        if getattr(handler, "stream", None) is not None:
            stream = handler.stream
            break
    try:
        faulthandler.enable(file=stream, all_threads=True)
    except (AttributeError, ValueError, OSError, RuntimeError):  # a stream without a file descriptor
        pass


def set_parent_death_signal(number):
    """Linux: have the kernel send `number` to this process when the master
    dies, so workers never outlive it (even after SIGKILL)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(number), 0, 0, 0)
    except (OSError, AttributeError):
        pass
