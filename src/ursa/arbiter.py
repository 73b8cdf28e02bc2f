"""The master process: binds the sockets, forks the workers, keeps the right
number of them alive and turns signals into actions. It never serves a
request itself, so a crashing app cannot take the sockets down with it.

What a worker does once forked is worker.py's; the sockets are
listeners.py's, the --pid file pidfile.py's, the USR2 exec upgrade.py's.
Here: the workers by generation, their status messages, the respawn
backoff, the --timeout watch, and the signals.

A worker whose loop is held by one app call for longer than --timeout
(read from a shared page its loop writes: the heartbeat) gets SIGABRT,
which makes it log its Python stack and die, then SIGKILL; a replacement
starts at once. Loading the app when a worker boots is not timed.

Signals to the master:
  TERM, INT  graceful stop: workers finish requests in flight (up to
             --graceful-timeout), stragglers are killed after it; a
             second INT (Ctrl-C twice) stops at once
  QUIT       immediate stop
  HUP        reload: re-read the config file, start new workers, retire
             the old ones once the new ones are ready. A HUP during a
             reload restarts it: at most two generations live at once
  TTIN/TTOU  one worker more / less
  USR1       reopen log files (for logrotate): the master opens them anew
             and hands them to the workers (see logfiles.py)
  USR2       upgrade: start a new master (the program as it is on disk now)
             on the same listening sockets; both serve until this one gets
             TERM. The --pid file becomes FILE.oldbin meanwhile, and comes
             back if the new master exits first.
"""
import logging
import os
import select
import signal
import socket
import time
from dataclasses import dataclass

from . import logfiles, pidfile, systemd, upgrade
from .accesslog import FormatError
from .addresses import describe_socket
from .apploader import load_wsgi_app
from .errors import ConfigError
from .heartbeat import HeartbeatTable
from .listeners import Listeners
from .logs import open_access_log, setup_server_logging
from .processes import (MASTER_SIGNALS, apply_environment, describe_exit, extend_python_path,
                        fork_with_signals_blocked, send_signal, set_process_title)
from .worker import EXIT_BOOT_ERROR, TERM_RESEND_SECONDS, worker_main

log = logging.getLogger("ursa.error")

# A worker that dies within this many seconds of becoming ready counts as
# crashing at start; repeated crashes are restarted with growing delays.
CRASH_WINDOW_SECONDS = 1.0
FIRST_RESPAWN_DELAY_SECONDS = 0.1
MAX_RESPAWN_DELAY_SECONDS = 5.0
# After SIGQUIT a worker exits at its next Python instruction; this is how
# long it gets before SIGKILL.
QUIT_KILL_DELAY_SECONDS = 1.0
# A worker past --timeout gets SIGABRT (it logs its Python stack) and this
# long to do so before SIGKILL.
ABORT_KILL_DELAY_SECONDS = 1.0
# Workers bound their own drain by graceful_timeout; the master waits this
# much longer before SIGKILL so that a punctual worker is never killed.
KILL_MARGIN_SECONDS = 1.0
# Longest sleep of the master loop; every wait is also cut short by signals
# and worker status messages.
MASTER_TICK_SECONDS = 1.0


@dataclass(eq=False, repr=False)
class Worker:
    """The master's record of one worker process (also what hooks receive)."""

    age: int                    # spawn order, 1 for the first
    generation: int             # bumped by each reload
    pid: int = None
    channel: socket.socket = None  # the master's end of the worker's channel
    started_at: float = None
    ready_at: float = None
    error: str = None           # reason sent by a worker that could not boot
    stopping: bool = False
    stop_signal: int = None
    kill_at: float = None
    last_signal_at: float = None
    killed: bool = False
    timed_out: bool = False
    heartbeats: HeartbeatTable = None  # the master's HeartbeatTable ...
    slot: int = None            # ... and this worker's slot in it

    @property
    def log(self):
        """gunicorn's worker.log, which hooks call: the "ursa.error" logger."""
        return log

    def busy_since(self):
        """See HeartbeatTable.busy_since; None without a slot."""
        return None if self.slot is None else self.heartbeats.busy_since(self.slot)

    def request_in_progress(self):
        return "" if self.slot is None else self.heartbeats.request(self.slot)

    def retiring(self):
        """See HeartbeatTable.retiring; False without a slot."""
        return self.slot is not None and self.heartbeats.retiring(self.slot)

    def kill_no_later_than(self, when):
        """Bound the worker's stop: SIGKILL at `when`, or earlier if already set so."""
        self.kill_at = when if self.kill_at is None else min(self.kill_at, when)

    def release_heartbeat(self):
        """The worker is gone: its slot goes back to the table."""
        if self.slot is not None:
            self.heartbeats.release(self.slot)
            self.slot = None

    def close_channel(self):
        if self.channel is not None:
            self.channel.close()
            self.channel = None

    @property
    def ready(self):
        return self.ready_at is not None

    def __repr__(self):
        return f"<ursa worker {self.pid}>"


class Arbiter:
    """Runs the master loop; see the module docstring.

    `settings` is a config.Settings. The app is `settings.wsgi_app` (a
    'module:app' string loaded in each worker) unless `app` gives an already
    loaded app (--preload) or `app_loader` a function that each worker calls
    to load it (PasteDeploy: from the ini file). `reload_settings`, if given,
    returns fresh Settings on SIGHUP (re-reading the config file).
    """

    def __init__(self, settings, app=None, reload_settings=None, app_loader=None, start_directory=None):
        self.settings = settings
        # gunicorn's arbiter.log, which hooks call (debug, info, warning,
        # error, exception, critical): the "ursa.error" logger itself.
        self.log = log
        self.app = app
        self.app_loader = app_loader
        # Where the command was started: a new master (SIGUSR2) starts there.
        self.start_directory = start_directory or os.getcwd()
        self.new_master = None      # pid of the master a SIGUSR2 started
        self.old_master = None      # pid of the master that started this one
        self.reload_settings = reload_settings
        self.pid = os.getpid()
        self.listeners = Listeners()
        self.pid_file = None        # its path, once written
        self.access_log = None      # the --access-log file, opened here for every worker
        self.workers = {}
        self.heartbeats = HeartbeatTable()
        self.generation = 1
        self.next_generation = 2
        self.target_workers = settings.workers
        self.spawned = 0
        self.respawn_delay = 0.0
        self.next_spawn_at = 0.0
        # The backoff holds until a worker spawned after this many spawns
        # (the last failure) has started and lived CRASH_WINDOW_SECONDS.
        self.backoff_after_spawn = 0
        self.pending_signals = []
        self.stop_mode = None  # None, "graceful" or "immediate"
        self.fatal_message = None
        self.announced_ready = False
        self.wakeup_read = self.wakeup_write = None
        self.previous_wakeup_fd = None
        self.previous_handlers = {}

    # -- setup and teardown

    def run(self):
        """Serve until stopped. Returns 0; raises ConfigError for a problem
        the user must fix (bad address, app that cannot load...)."""
        set_process_title("master", self.settings.proc_name)
        try:
            self.settings.call_hook("on_starting", self)
            self.open_access_log()
            self.bind()
            self.write_pid_file()
            self.install_signal_handlers()
            self.loop()
        finally:
            self.cleanup()
        if self.fatal_message is not None:
            raise ConfigError(self.fatal_message)
        log.info("master %d stopped", self.pid)
        return 0

    def open_access_log(self):
        """The master opens the access log; workers inherit the open file,
        so the worker user needs no right on it or its folder."""
        target = self.settings.access_log
        if target is None:
            return
        try:
            self.access_log = open_access_log(target, self.settings.access_log_format,
                                              "; choose a writable --access-log path")
        except FormatError as exc:
            raise ConfigError(str(exc)) from None

    def bind(self):
        """Listen on the --bind addresses, or on the sockets systemd or the
        master that started this one (USR2) passed."""
        inherited = upgrade.take_environment()
        try:
            fds = systemd.listen_fds()
        except OSError as exc:
            raise ConfigError(f"systemd socket activation: {exc}") from None
        if fds and inherited is not None:
            # The old master's sockets: serve them, and own those it owned
            # (their doors, their socket files).
            self.old_master, owned = upgrade.parse_environment(inherited)
            self.listeners.adopt(fds, lambda fd: f"socket fd {fd} of master {self.old_master}", owned)
            log.info("upgrade: serving the %d socket(s) of master %d", len(fds), self.old_master)
            return
        if fds:
            if "bind" in self.settings.explicit:
                log.warning("ignoring --bind: using the %d socket(s) systemd passed", len(fds))
            self.listeners.adopt(fds, lambda fd: f"systemd socket fd {fd}")
            return
        self.listeners.bind(self.settings)

    def write_pid_file(self):
        if self.settings.pid is not None:
            pidfile.write_pid_file(self.settings.pid, self.pid)
            self.pid_file = self.settings.pid

    def install_signal_handlers(self):
        self.wakeup_read, self.wakeup_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.previous_wakeup_fd = signal.set_wakeup_fd(self.wakeup_write, warn_on_full_buffer=False)
        for number in MASTER_SIGNALS:
            self.previous_handlers[number] = signal.signal(number, self.queue_signal)

    def queue_signal(self, number, frame):
        self.pending_signals.append(number)

    def cleanup(self):
        for number, handler in self.previous_handlers.items():
            signal.signal(number, handler)
        self.previous_handlers = {}
        if self.wakeup_read is not None:
            signal.set_wakeup_fd(self.previous_wakeup_fd if self.previous_wakeup_fd is not None else -1)
            os.close(self.wakeup_read)
            os.close(self.wakeup_write)
            self.wakeup_read = self.wakeup_write = None
        self.listeners.close()
        for worker in self.workers.values():
            worker.release_heartbeat()
        if self.access_log is not None:
            self.access_log.close()
            self.access_log = None
        if self.other_master_serving() is None:
            self.listeners.remove_socket_files()
        if self.pid_file is not None:
            pidfile.remove_pid_file(self.pid_file, self.pid)
            self.pid_file = None
        self.call_hook("on_exit", self)

    def other_master_serving(self):
        """The pid of another master serving these sockets (the one a
        SIGUSR2 started, or the one that started this one), or None."""
        return upgrade.other_master_serving(self.new_master, self.old_master)

    def release_workers(self):
        """In a new worker: the master's records of the others and their
        channels (a peer must see its channel end when the master dies)."""
        for worker in self.workers.values():
            worker.close_channel()
        # The peers' heartbeat slots stay as they are: they are serving.
        self.workers = {}

    # -- the loop

    def loop(self):
        while True:
            self.reap_workers()
            self.handle_signals()
            if self.stop_mode is not None:
                if not self.workers:
                    return
            else:
                self.notice_retiring_workers()
                self.manage_workers()
            self.kill_stuck_workers()
            self.signal_stopping_workers()
            self.wait()

    def wait(self):
        now = time.monotonic()
        timeout = MASTER_TICK_SECONDS
        if self.stop_mode is None and len(self.current_workers()) < self.target_workers:
            timeout = min(timeout, max(0.0, self.next_spawn_at - now))
        for worker in self.workers.values():
            if worker.kill_at is not None and not worker.killed:
                timeout = min(timeout, max(0.0, worker.kill_at - now))
            stuck_at = self.stuck_at(worker)
            if stuck_at is not None:
                timeout = min(timeout, max(0.0, stuck_at - now))
        channels = {w.channel.fileno(): w for w in self.workers.values() if w.channel is not None}
        try:
            readable, _, _ = select.select([self.wakeup_read, *channels], [], [], timeout)
        except InterruptedError:  # pragma: no cover - PEP 475 retries select
            return
        for fd in readable:
            if fd == self.wakeup_read:
                try:
                    while os.read(self.wakeup_read, 512):
                        pass
                except BlockingIOError:
                    pass
            else:
                self.read_status(channels[fd])

    def handle_signals(self):
        while self.pending_signals:
            number = self.pending_signals.pop(0)
            if number == signal.SIGCHLD:
                continue  # reaping happens every loop turn
            name = signal.Signals(number).name
            if number == signal.SIGINT and self.stop_mode == "graceful":
                log.info("%s again: stopping now", name)  # a second Ctrl-C
                self.begin_stop(graceful=False)
            elif number in (signal.SIGTERM, signal.SIGINT):
                log.info("%s: stopping gracefully", name)
                self.begin_stop(graceful=True)
            elif number == signal.SIGQUIT:
                log.info("%s: stopping now", name)
                self.begin_stop(graceful=False)
            elif self.stop_mode is not None:
                continue
            elif number == signal.SIGHUP:
                self.reload()
            elif number == signal.SIGTTIN:
                self.target_workers += 1
                log.info("%s: %d workers", name, self.target_workers)
            elif number == signal.SIGTTOU:
                self.target_workers = max(1, self.target_workers - 1)
                log.info("%s: %d workers", name, self.target_workers)
            elif number == signal.SIGUSR2:
                self.upgrade()
            elif number == signal.SIGUSR1:
                self.reopen_log_files()

    def reload(self):
        log.info("SIGHUP: reloading: new workers start, the current ones finish their requests")
        if self.reload_settings is not None:
            try:
                settings = self.reload_settings()
            except ConfigError as exc:
                log.error("reload cancelled, the config file has an error: %s", exc)
                return
            if [str(a) for a in settings.binds] != [str(a) for a in self.settings.binds]:
                log.warning("new --bind addresses take effect only after a restart")
            settings.bind = self.settings.bind
            self.settings = settings
            try:
                setup_server_logging(settings)
            except OSError as exc:
                log.error("cannot open error log %s: %s; still writing to the previous one", settings.error_log,
                          exc.strerror)
            except ConfigError as exc:
                log.error("%s; the logging configuration stays as it was", exc)
            # New workers inherit these from the master at the fork.
            extend_python_path(settings.pythonpath)
            apply_environment(settings.raw_env)
            set_process_title("master", settings.proc_name)
            self.reload_access_log()
            self.target_workers = settings.workers
        if self.app is not None:
            log.warning("the app was loaded in the master (--preload); new workers run the same code")
        self.stop_loading_workers()
        self.generation = self.next_generation
        self.next_generation += 1
        self.respawn_delay = 0.0
        self.next_spawn_at = 0.0
        self.call_hook("on_reload", self)

    def stop_loading_workers(self):
        """A HUP during a reload restarts it: the workers still loading the
        code of the reload it supersedes would never serve. They stop now
        (a worker that gets TERM before it serves exits at once); those
        that serve stay until the new generation does."""
        loading = []
        for worker in list(self.workers.values()):
            self.read_status(worker)  # a "ready" on its way counts
            if not worker.stopping and not worker.ready:
                loading.append(worker)
        if loading:
            log.info("stopping %d worker(s) still loading the code of the previous reload", len(loading))
        for worker in loading:
            self.stop_worker(worker, graceful=True)

    def reload_access_log(self):
        """HUP: new workers get the access log the settings name now; if it
        cannot be opened, the previous one."""
        previous = self.access_log
        try:
            self.access_log = None
            self.open_access_log()
        except ConfigError as exc:
            self.access_log = previous
            log.error("%s; new workers keep the previous access log", exc)
            return
        if previous is not None:
            previous.close()  # the workers that have it keep their own copy

    def reopen_log_files(self):
        """SIGUSR1: the master opens every log file anew (it can create one
        where the worker user may not) and hands the new files to each
        worker, which puts them in place of the old ones. A file that
        cannot be opened stays as it was, with one line saying so."""
        names, fds = logfiles.reopen_master_files(self.access_log)
        if fds:
            for worker in self.workers.values():
                if worker.channel is None:
                    continue
                try:
                    logfiles.hand_files(worker.channel, names, fds)
                except OSError as exc:
                    log.error("cannot hand the reopened log files to worker %d: %s; it keeps the previous ones",
                              worker.pid, exc.strerror)
        log.info("SIGUSR1: log files reopened")

    def upgrade(self):
        """SIGUSR2: exec a new master on the same sockets (it loads the code
        and the config file as they are now). This one keeps serving until
        it is told to stop; if the new one exits first, nothing changed."""
        other = self.other_master_serving()
        if other is not None:
            log.warning("SIGUSR2: master %d serves these sockets too; stop one of the two (TERM) before "
                        "upgrading again", other)
            return
        old_pid_file = None
        if self.pid_file is not None:
            try:
                old_pid_file = pidfile.set_pid_file_aside(self.pid_file)
            except OSError as exc:
                log.error("SIGUSR2: cannot rename the pid file %s: %s; not upgrading", self.pid_file,
                          exc.strerror)
                return
        try:
            pid = upgrade.start_new_master(self.pid, self.listeners, self.start_directory)
        except OSError as exc:
            log.error("SIGUSR2: cannot start a new master: fork failed: %s", exc.strerror)
            self.restore_pid_file(old_pid_file)
            return
        self.new_master = pid
        self.pid_file = old_pid_file
        log.info("SIGUSR2: started new master %d on the %d listening socket(s); send TERM to this one (%d) "
                 "once it serves", pid, len(self.listeners.sockets), self.pid)

    def restore_pid_file(self, old_pid_file):
        """The upgrade did not happen: FILE.oldbin becomes FILE again."""
        if old_pid_file is None:
            return
        path = pidfile.restore_pid_file(old_pid_file)
        if path is not None:
            self.pid_file = path

    def new_master_exited(self, status):
        log.error("the new master %d %s; this master (%d) goes on serving", self.new_master,
                  describe_exit(status), self.pid)
        self.new_master = None
        if self.pid_file is not None and self.pid_file.endswith(pidfile.OLD_SUFFIX):
            self.restore_pid_file(self.pid_file)

    def begin_stop(self, graceful):
        if self.stop_mode == "immediate" or (self.stop_mode == "graceful" and graceful):
            return
        first = self.stop_mode is None
        self.stop_mode = "graceful" if graceful else "immediate"
        other = self.other_master_serving() if first else None
        if other is not None:
            # An upgrade: the other master goes on serving these sockets, so
            # they stay open to new clients, and their files are its own.
            log.info("master %d goes on serving the sockets", other)
            self.listeners.socket_files = []
        elif first:
            systemd.notify("STOPPING=1")
            self.listeners.close_doors()
        # Workers keep their copies; once they close theirs, clients get
        # "connection refused" rather than waiting in a dead backlog.
        self.listeners.close()
        for worker in self.workers.values():
            self.stop_worker(worker, graceful)

    def stop_worker(self, worker, graceful):
        now = time.monotonic()
        if graceful:
            signal_number = signal.SIGTERM
            kill_at = now + self.settings.graceful_timeout + KILL_MARGIN_SECONDS
        else:
            signal_number = signal.SIGQUIT
            kill_at = now + QUIT_KILL_DELAY_SECONDS
        worker.stopping = True
        worker.stop_signal = signal_number
        worker.kill_no_later_than(kill_at)
        worker.last_signal_at = now
        send_signal(worker.pid, signal_number)

    def notice_retiring_workers(self):
        """A worker that reached --max-requests leaves by itself, but its
        WebSockets may keep it until the graceful timeout: a successor
        starts now, and the worker is bounded as if stopped gracefully
        (plus the WebSocket close timeout its last close handshakes get)."""
        now = time.monotonic()
        for worker in self.workers.values():
            if worker.stopping or not worker.retiring():
                continue
            worker.stopping = True
            worker.stop_signal = None
            kill_at = now + self.settings.graceful_timeout + self.settings.websocket_close_timeout + KILL_MARGIN_SECONDS
            worker.kill_no_later_than(kill_at)

    def stuck_at(self, worker):
        """When `worker` counts as stuck if its loop does not get back to
        waiting for events; None if it waits, or without --timeout."""
        if not self.settings.timeout or worker.timed_out or worker.killed:
            return None
        since = worker.busy_since()
        return None if since is None else since + self.settings.timeout

    def kill_stuck_workers(self):
        """--timeout: a worker whose loop has been held by the app that long
        serves nobody else meanwhile. It gets SIGABRT (its Python stack goes
        to the error log), SIGKILL a second later, and a replacement now."""
        now = time.monotonic()
        for worker in list(self.workers.values()):
            stuck_at = self.stuck_at(worker)
            if stuck_at is None or now < stuck_at:
                continue
            request = worker.request_in_progress() or "no request named"
            log.critical("WORKER TIMEOUT (pid:%d): %s held its loop for more than %gs (--timeout); "
                         "killing it", worker.pid, request, self.settings.timeout)
            worker.timed_out = True
            worker.stopping = True
            worker.stop_signal = None
            kill_at = now + ABORT_KILL_DELAY_SECONDS
            worker.kill_no_later_than(kill_at)
            worker.last_signal_at = now
            send_signal(worker.pid, signal.SIGABRT)

    def signal_stopping_workers(self):
        now = time.monotonic()
        for worker in self.workers.values():
            if not worker.stopping or worker.killed:
                continue
            if now >= worker.kill_at:
                if not worker.timed_out:
                    log.warning("worker %d did not stop in time; killing it", worker.pid)
                send_signal(worker.pid, signal.SIGKILL)
                worker.killed = True
            elif worker.stop_signal is not None and now - worker.last_signal_at >= TERM_RESEND_SECONDS:
                worker.last_signal_at = now
                send_signal(worker.pid, worker.stop_signal)

    def fatal(self, message):
        """Stop everything and make run() raise ConfigError(message)."""
        if self.fatal_message is None:
            self.fatal_message = message
        self.begin_stop(graceful=False)

    # -- workers

    def current_workers(self):
        return [w for w in self.workers.values() if w.generation == self.generation and not w.stopping]

    def manage_workers(self):
        now = time.monotonic()
        current = self.current_workers()
        # Only a worker started since the last failure shows that the code
        # starts now: one that has been serving for long (the previous code
        # still running after a failed reload) says nothing about it.
        if self.respawn_delay and any(w.age > self.backoff_after_spawn and w.ready
                                      and now - w.ready_at >= CRASH_WINDOW_SECONDS for w in current):
            self.respawn_delay = 0.0
        excess = len(current) - self.target_workers
        if excess > 0:
            for worker in sorted(current, key=lambda w: w.age)[:excess]:
                self.stop_worker(worker, graceful=True)
        # Reloads cut short leave workers of several generations serving:
        # the oldest retire, so that no more than asked for keep serving.
        previous = [w for w in self.workers.values() if w.generation != self.generation and not w.stopping]
        serving_before = sorted((w for w in previous if w.ready), key=lambda w: w.age)
        for worker in serving_before[:max(0, len(serving_before) - self.target_workers)]:
            self.stop_worker(worker, graceful=True)
        # At most two generations: the one serving and the one loading.
        # Workers that served and now retire do not count (graceful_timeout
        # bounds them); stopped ones that were still loading do, until they
        # are gone.
        room = 2 * self.target_workers - sum(1 for w in self.workers.values() if not (w.stopping and w.ready))
        missing = min(self.target_workers - len(current), room)
        while missing > 0 and now >= self.next_spawn_at and self.stop_mode is None:
            self.spawn_worker()
            missing -= 1
            if self.respawn_delay:
                self.next_spawn_at = now + self.respawn_delay
                break
        # A reload retires the previous generation once the new one serves.
        previous = [w for w in self.workers.values() if w.generation != self.generation and not w.stopping]
        if previous and sum(1 for w in self.current_workers() if w.ready) >= self.target_workers:
            for worker in previous:
                self.stop_worker(worker, graceful=True)

    def spawn_worker(self):
        self.spawned += 1
        worker = Worker(self.spawned, self.generation)
        self.call_hook("pre_fork", self, worker)
        worker.heartbeats = self.heartbeats
        worker.slot = self.heartbeats.acquire()
        # Messages keep their bounds both ways: status lines from the
        # worker, reopened log files (with their descriptors) from here.
        master_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid, blocked = fork_with_signals_blocked()
        except OSError as exc:
            master_end.close()
            worker_end.close()
            worker.release_heartbeat()
            log.error("cannot start a worker: fork failed: %s", exc.strerror)
            self.delay_respawn()
            return
        if pid == 0:
            worker_main(self, worker, worker_end, blocked, master_end)  # never returns
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        worker_end.close()
        master_end.setblocking(False)
        worker.pid = pid
        worker.channel = master_end
        worker.started_at = time.monotonic()
        self.workers[pid] = worker
        log.debug("started worker %d", pid)

    def read_status(self, worker):
        """Handle the status lines a worker wrote to its channel."""
        data = b""
        while worker.channel is not None:
            try:
                chunk = worker.channel.recv(logfiles.MESSAGE_BYTES)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                worker.close_channel()
                break
            data += chunk
        for line in data.decode("utf-8", "replace").splitlines():
            kind, _, text = line.partition(" ")
            if kind == "error":
                worker.error = text
            elif kind in ("ready", "waiting") and worker.ready_at is None:
                worker.ready_at = time.monotonic()
                log.debug("worker %d is %s", worker.pid, kind)
                if not self.announced_ready:
                    self.announce_ready()

    def announce_ready(self):
        from . import __version__

        self.announced_ready = True
        app = self.settings.wsgi_app if isinstance(self.settings.wsgi_app, str) else "the app"
        log.info("ursa %s: serving %s with %d worker%s (master pid %d)", __version__, app,
                 self.target_workers, "" if self.target_workers == 1 else "s", self.pid)
        for sock in self.listeners.sockets:
            log.info("Listening at: %s (%d)", describe_socket(sock), self.pid)
        self.call_hook("when_ready", self)
        systemd.notify(f"READY=1\nMAINPID={self.pid}")

    def reap_workers(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is None:
                if pid == self.new_master:
                    self.new_master_exited(status)
                continue
            worker.release_heartbeat()
            if worker.channel is not None:
                self.read_status(worker)
                worker.close_channel()
            self.call_hook("child_exit", self, worker)
            self.worker_exited(worker, status)

    def worker_exited(self, worker, status):
        if worker.stopping or self.stop_mode is not None:
            log.debug("worker %d stopped (%s)", worker.pid, describe_exit(status))
            return
        failed_to_boot = os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_BOOT_ERROR
        if failed_to_boot or worker.error is not None:
            message = worker.error or f"worker {worker.pid} could not start"
            if not self.announced_ready:
                self.fatal(message)  # nothing runs yet: the user must fix this
            elif worker.generation != self.generation:
                # It was still loading the code when the reload came; the new
                # generation replaces it, so this says nothing about the reload.
                log.error("%s", message)
            elif any(w.generation != self.generation and not w.stopping for w in self.workers.values()):
                self.cancel_reload(message)
            else:
                log.error("%s", message)
                self.delay_respawn()
            return
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            log.debug("worker %d exited; starting a new one", worker.pid)
            return
        log.error("worker %d %s", worker.pid, describe_exit(status))
        lived = time.monotonic() - worker.ready_at if worker.ready else 0.0
        if lived < CRASH_WINDOW_SECONDS:
            self.delay_respawn()

    def cancel_reload(self, message):
        """New workers cannot load the app: keep the previous ones serving."""
        log.error("reload failed, the previous workers keep serving: %s", message)
        generation = self.next_generation
        self.next_generation += 1
        for worker in self.workers.values():
            if worker.stopping:
                continue
            if worker.generation == self.generation:
                self.stop_worker(worker, graceful=True)
            else:
                worker.generation = generation
        self.generation = generation

    def delay_respawn(self):
        self.respawn_delay = min(MAX_RESPAWN_DELAY_SECONDS,
                                 max(FIRST_RESPAWN_DELAY_SECONDS, self.respawn_delay * 2))
        self.next_spawn_at = time.monotonic() + self.respawn_delay
        self.backoff_after_spawn = self.spawned
        log.warning("workers die right after they start; next start in %.1fs", self.respawn_delay)

    def load_app(self):
        """The app, loaded in a worker; raises ConfigError."""
        if self.app_loader is not None:
            return self.app_loader()
        return load_wsgi_app(self.settings.wsgi_app)

    def call_hook(self, name, *args):
        try:
            self.settings.call_hook(name, *args)
        except Exception:
            log.exception("the %s hook failed", name)
