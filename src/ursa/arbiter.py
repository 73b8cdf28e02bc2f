"""The master process: binds the sockets, forks the workers, keeps the right
number of them alive and turns signals into actions. It never serves a
request itself, so a crashing app cannot take the sockets down with it.

Lifecycle of a worker:
  1. fork; the child resets its signals and, if the master is root, drops
     to --user/--group; then it asks the kernel for SIGTERM when the master
     dies, and a thread of its own watches its channel to the master (a
     unix socket pair), whose end also means the master is gone;
  2. loads the app (afresh: the master never imports it unless --preload);
  3. tells the master "ready" (or "error <why>") over its channel;
  4. serves with ursa.serve() on the shared listening sockets until SIGTERM
     (graceful) or SIGQUIT (immediate), or until --max-requests is reached;
  5. exits; the master starts a replacement unless it is stopping.
A worker whose loop is held by one app call for longer than --timeout
(read from a shared page its loop writes: the heartbeat) gets SIGABRT,
which makes it log its Python stack and die, then SIGKILL; a replacement
starts at once. Loading the app (step 2) is not timed.

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
import ctypes
import faulthandler
import fcntl
import json
import logging
import os
import pwd
import random
import select
import signal
import socket
import stat
import sys
import threading
import time

from . import _core, _socket_file_of, logfiles, systemd
from .accesslog import AccessLog, FormatError
from .addresses import describe_bind_error, describe_socket
from .apploader import load_wsgi_app
from .errors import ConfigError
from .heartbeat import HeartbeatTable

log = logging.getLogger("ursa.error")

# A worker that could not load the app (or open its logs) exits with this
# after writing the reason to its channel.
EXIT_BOOT_ERROR = 4
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
# A stopping worker gets SIGTERM again at this interval, so a signal that
# arrived in the instant before its loop started is not lost.
TERM_RESEND_SECONDS = 1.0
# Longest sleep of the master loop; every wait is also cut short by signals
# and worker status messages.
MASTER_TICK_SECONDS = 1.0
RELOAD_POLL_SECONDS = 1.0

MASTER_SIGNALS = (signal.SIGHUP, signal.SIGQUIT, signal.SIGINT, signal.SIGTERM,
                  signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD)
# Set by a master for the new master it execs on SIGUSR2: its pid and which
# of the sockets (passed as with systemd's LISTEN_FDS) are its own.
UPGRADE_ENVIRONMENT = "URSA_UPGRADE_FROM"
EXIT_EXEC_FAILED = 127


def describe_exit(status):
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = str(number)
        return f"was killed by signal {name}"
    return f"exited with status {os.WEXITSTATUS(status)}"


class Worker:
    """The master's record of one worker process (also what hooks receive)."""

    def __init__(self, age, generation):
        self.age = age              # spawn order, 1 for the first
        self.generation = generation  # bumped by each reload
        self.pid = None
        self.channel = None         # the master's end of the worker's channel (a socket)
        self.started_at = None
        self.ready_at = None
        self.error = None           # reason sent by a worker that could not boot
        self.stopping = False
        self.stop_signal = None
        self.kill_at = None
        self.last_signal_at = None
        self.killed = False
        self.timed_out = False
        self.heartbeats = None      # the master's HeartbeatTable ...
        self.slot = None            # ... and this worker's slot in it

    def busy_since(self):
        """See HeartbeatTable.busy_since; None without a slot."""
        return None if self.slot is None else self.heartbeats.busy_since(self.slot)

    def request_in_progress(self):
        return "" if self.slot is None else self.heartbeats.request(self.slot)

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
        self.app = app
        self.app_loader = app_loader
        # Where the command was started: a new master (SIGUSR2) starts there.
        self.start_directory = start_directory or os.getcwd()
        self.new_master = None      # pid of the master a SIGUSR2 started
        self.old_master = None      # pid of the master that started this one
        self.reload_settings = reload_settings
        self.pid = os.getpid()
        self.listeners = []
        # Listeners this master made (not systemd's or an fd://): at a stop
        # their doors close, and their socket files are removed.
        self.owned_listeners = []
        self.unix_paths_to_remove = []
        self.pid_file = None
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
            self.access_log = AccessLog(target, self.settings.access_log_format)
        except OSError as exc:
            raise ConfigError(f"cannot open access log {target}: {exc.strerror}; choose a writable "
                              f"--access-log path") from None
        except FormatError as exc:
            raise ConfigError(str(exc)) from None

    def bind(self):
        upgrade = os.environ.pop(UPGRADE_ENVIRONMENT, None)
        try:
            fds = systemd.listen_fds()
        except OSError as exc:
            raise ConfigError(f"systemd socket activation: {exc}") from None
        if fds and upgrade is not None:
            self.adopt_from_old_master(fds, upgrade)
            return
        if fds:
            if "bind" in self.settings.explicit:
                log.warning("ignoring --bind: using the %d socket(s) systemd passed", len(fds))
            for fd in fds:
                self.listeners.append(self.adopt_fd(fd, f"systemd socket fd {fd}"))
            return
        # A stale socket file (its server died) is replaced last, once every
        # other address is bound: a failure leaves it as it was.
        addresses = self.settings.binds
        order = sorted(range(len(addresses)), key=lambda index: self.stale_socket_file_at(addresses[index]))
        bound = {}
        for index in order:
            sock = bound[index] = self.bind_address(addresses[index])
            self.listeners.append(sock)  # closed by cleanup() if a later one fails
        self.listeners = [bound[index] for index in range(len(addresses))]
        self.owned_listeners = [bound[index] for index, address in enumerate(addresses) if address.kind != "fd"]

    def stale_socket_file_at(self, address):
        """Whether binding `address` replaces a stale socket file. A socket
        file a server listens on is refused (ConfigError)."""
        from . import _stale_socket_file

        if address.kind != "unix" or address.path.startswith("@"):
            return False
        try:
            return _stale_socket_file(address.path)
        except OSError as exc:
            raise ConfigError(describe_bind_error(address, exc)) from None

    def adopt_from_old_master(self, fds, upgrade):
        """This master was started by another one on SIGUSR2: serve its
        sockets, and own those it owned (their doors, their socket files)."""
        try:
            described = json.loads(upgrade)
            self.old_master = int(described["pid"])
            owned = set(described["owned"])
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"{UPGRADE_ENVIRONMENT} is garbled: {upgrade!r}; unset it") from None
        for index, fd in enumerate(fds):
            sock = self.adopt_fd(fd, f"socket fd {fd} of master {self.old_master}")
            self.listeners.append(sock)
            if index in owned:
                self.owned_listeners.append(sock)
                path = _socket_file_of(sock)
                if path is not None:
                    self.unix_paths_to_remove.append(path)
        log.info("upgrade: serving the %d socket(s) of master %d", len(fds), self.old_master)

    def adopt_fd(self, fd, what):
        try:
            sock = socket.socket(fileno=fd)
        except OSError as exc:
            raise ConfigError(f"{what} is not a usable socket: {exc.strerror}") from None
        if sock.type != socket.SOCK_STREAM or not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            sock.detach()
            raise ConfigError(f"{what} is not a listening stream socket; call listen() on it "
                              f"before passing it")
        return sock

    def bind_address(self, address):
        from . import bind_and_listen

        if address.kind == "fd":
            return self.adopt_fd(address.fd, f"fd://{address.fd}")
        try:
            if address.kind == "unix":
                sock = bind_and_listen("unix:" + address.path, None, listen_backlog=self.settings.backlog)
                if not address.path.startswith("@"):
                    self.unix_paths_to_remove.append(address.path)
                    self.give_socket_file_to_workers(address.path)
                return sock
            return bind_and_listen(address.host, address.port, self.settings.reuse_port, self.settings.backlog)
        except socket.gaierror as exc:
            raise ConfigError(f"cannot listen on {address}: unknown host {address.host!r} "
                              f"({exc.strerror}); use an IP address or a name in /etc/hosts") from None
        except OSError as exc:
            raise ConfigError(describe_bind_error(address, exc)) from None

    def give_socket_file_to_workers(self, path):
        """With --user/--group the socket file belongs to that user and
        group (its mode is the --umask's): nginx gets in through the group,
        as --group www-data --umask 007 lets it."""
        uid, gid = self.settings.uid_gid()
        if uid is not None or gid is not None:
            os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)

    def write_pid_file(self):
        path = self.settings.pid
        if path is None:
            return
        try:
            with open(path) as existing:
                other = int(existing.read().strip() or 0)
        except (OSError, ValueError):
            other = 0
        if other and other != self.pid and process_exists(other):
            raise ConfigError(f"pid file {path} names process {other}, which is running; stop it "
                              f"or choose another --pid")
        temporary = f"{path}.{self.pid}.tmp"
        try:
            with open(temporary, "w") as pid_file:
                pid_file.write(f"{self.pid}\n")
            os.replace(temporary, path)
        except OSError as exc:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise ConfigError(f"cannot write pid file {path}: {exc.strerror}; choose a writable "
                              f"--pid path") from None
        self.pid_file = path

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
        self.close_listeners()
        for worker in self.workers.values():
            worker.release_heartbeat()
        if self.access_log is not None:
            self.access_log.close()
            self.access_log = None
        if self.other_master_serving() is None:
            self.remove_socket_files()
        if self.pid_file is not None:
            try:
                with open(self.pid_file) as pid_file:
                    if pid_file.read().strip() == str(self.pid):
                        os.unlink(self.pid_file)
            except OSError:
                pass
            self.pid_file = None
        self.call_hook("on_exit", self)

    def close_listeners(self):
        for sock in self.listeners:
            sock.close()

    def remove_socket_files(self):
        for path in self.unix_paths_to_remove:
            try:
                if stat.S_ISSOCK(os.lstat(path).st_mode):
                    os.unlink(path)
            except OSError:
                pass
        self.unix_paths_to_remove = []

    def other_master_serving(self):
        """The pid of another master serving these sockets (the one a
        SIGUSR2 started, or the one that started this one), or None."""
        for pid in (self.new_master, self.old_master):
            if pid is None:
                continue
            if pid == self.old_master and os.getppid() != pid:
                continue  # it exited: this one was handed to init
            try:
                if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
                    return pid
            except ChildProcessError:  # not our child: the old master
                if process_exists(pid):
                    return pid
        return None

    def close_doors(self):
        """The service stops: from now on new clients are refused (socket
        files removed, new TCP connections dropped at the SYN), while the
        workers serve what the kernel has already queued before they close
        the sockets (the core does that when it finds the door closed)."""
        self.remove_socket_files()
        for sock in self.owned_listeners:
            try:
                _core.close_door(sock)
            except OSError as exc:
                log.warning("cannot close %s to new connections: %s", describe_socket(sock), exc.strerror)

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
                logfiles.setup_error_log(settings.error_log, settings.log_level)
            except OSError as exc:
                log.error("cannot open error log %s: %s; still writing to the previous one", settings.error_log,
                          exc.strerror)
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
            old_pid_file = self.pid_file + ".oldbin"
            try:
                os.replace(self.pid_file, old_pid_file)
            except OSError as exc:
                log.error("SIGUSR2: cannot rename the pid file %s: %s; not upgrading", self.pid_file,
                          exc.strerror)
                return
        owned = [index for index, sock in enumerate(self.listeners) if sock in self.owned_listeners]
        environment = dict(os.environ)
        for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            environment.pop(name, None)
        environment[UPGRADE_ENVIRONMENT] = json.dumps({"pid": self.pid, "owned": owned})
        environment["LISTEN_FDS"] = str(len(self.listeners))
        argv = restart_argv()
        fds = [sock.fileno() for sock in self.listeners]
        try:
            pid, blocked = fork_with_signals_blocked()
        except OSError as exc:
            log.error("SIGUSR2: cannot start a new master: fork failed: %s", exc.strerror)
            self.restore_pid_file(old_pid_file)
            return
        if pid == 0:
            exec_new_master(argv, environment, fds, self.start_directory, blocked)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        self.new_master = pid
        self.pid_file = old_pid_file
        log.info("SIGUSR2: started new master %d on the %d listening socket(s); send TERM to this one (%d) "
                 "once it serves", pid, len(fds), self.pid)

    def restore_pid_file(self, old_pid_file):
        """The upgrade did not happen: FILE.oldbin becomes FILE again."""
        if old_pid_file is None:
            return
        path = old_pid_file[:-len(".oldbin")]
        try:
            os.replace(old_pid_file, path)
        except OSError as exc:
            log.error("cannot restore the pid file %s from %s: %s", path, old_pid_file, exc.strerror)
            return
        self.pid_file = path

    def new_master_exited(self, status):
        log.error("the new master %d %s; this master (%d) goes on serving", self.new_master,
                  describe_exit(status), self.pid)
        self.new_master = None
        if self.pid_file is not None and self.pid_file.endswith(".oldbin"):
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
            self.unix_paths_to_remove = []
        elif first:
            systemd.notify("STOPPING=1")
            self.close_doors()
        # Workers keep their copies; once they close theirs, clients get
        # "connection refused" rather than waiting in a dead backlog.
        self.close_listeners()
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
        worker.kill_at = kill_at if worker.kill_at is None else min(worker.kill_at, kill_at)
        worker.last_signal_at = now
        send_signal(worker.pid, signal_number)

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
            worker.kill_at = kill_at if worker.kill_at is None else min(worker.kill_at, kill_at)
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
            exit_code = 1
            try:
                master_end.close()
                exit_code = WorkerProcess(self, worker, worker_end, blocked).run()
            except SystemExit as exc:
                exit_code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                log.exception("worker %d failed", os.getpid())
            finally:
                self.call_hook("worker_exit", self, worker)
                for stream in (sys.stdout, sys.stderr):
                    try:
                        stream.flush()
                    except (OSError, ValueError, AttributeError):
                        pass
                os._exit(exit_code)
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
        for sock in self.listeners:
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


class WorkerProcess:
    """What runs in a forked worker: load the app, report, serve."""

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
            app = self.access_log.wrap_app(app)
        self.arbiter.call_hook("post_worker_init", self.worker)
        self.loading = False
        self.report("ready")
        if self.stop_requested:
            return 0
        if self.source_watcher is not None:
            self.source_watcher.snapshot(new_files_only=True)
            signal.signal(signal.SIGALRM, self.on_reload_poll)
            signal.siginterrupt(signal.SIGALRM, False)
            signal.setitimer(signal.ITIMER_REAL, RELOAD_POLL_SECONDS, RELOAD_POLL_SECONDS)
        self.serve(app)
        return 0

    def serve(self, app):
        from . import serve

        options = self.settings.core_options()
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
            serve(self.arbiter.listeners, app, **options)
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
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
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


class SourceWatcher:
    """Notices edits to the source files of loaded modules by their mtimes."""

    def __init__(self):
        self.extra_files = set()
        self.mtimes = {}

    def files(self):
        names = set(self.extra_files)
        for module in list(sys.modules.values()):
            name = getattr(module, "__file__", None)
            if name:
                names.add(name)
        return names

    def add_app_module(self, spec):
        """Watch the file of the app's module ('module:app'), known before
        it is imported (and when its import fails)."""
        module_name = spec.partition(":")[0].strip() if isinstance(spec, str) else ""
        if not module_name:
            return
        try:
            import importlib.util
            found = importlib.util.find_spec(module_name)
        except Exception:  # a parent package that fails to import: seen when the app loads
            found = None
        if found is not None and found.origin and os.path.exists(found.origin):
            self.extra_files.add(found.origin)

    def add_files_of(self, error):
        """Also watch the files in `error`'s cause (a module that failed to
        import is not in sys.modules)."""
        cause = error.__cause__ or error.__context__
        while cause is not None:
            if isinstance(cause, SyntaxError) and cause.filename:
                self.extra_files.add(cause.filename)
            traceback = cause.__traceback__
            while traceback is not None:
                self.extra_files.add(traceback.tb_frame.f_code.co_filename)
                traceback = traceback.tb_next
            cause = cause.__cause__ or cause.__context__

    def snapshot(self, new_files_only=False):
        """Record the mtimes of the watched files; with `new_files_only`,
        of those not recorded yet (the others keep their earlier mtime)."""
        for name in self.files():
            if not new_files_only or name not in self.mtimes:
                self.mtimes[name] = mtime_of(name)

    def changed_file(self):
        for name, mtime in self.mtimes.items():
            if mtime_of(name) != mtime:
                return name
        return None


def mtime_of(path):
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def fork_with_signals_blocked():
    """fork() with the master's signals blocked: the child unblocks them
    once it has its own handlers (or execs), so none reaches the master's
    handlers in the child. Returns (pid, the previous mask); the parent
    restores that mask. Raises OSError (mask restored) if fork fails."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, MASTER_SIGNALS)
    try:
        return os.fork(), blocked
    except OSError:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        raise


def restart_argv():
    """The command line that started this process, to exec it again."""
    original = getattr(sys, "orig_argv", None)  # 3.10+: with the interpreter's options
    if original:
        return [sys.executable] + list(original[1:])
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:  # python -m PACKAGE
        package = spec.name[:-len(".__main__")] if spec.name.endswith(".__main__") else spec.name
        return [sys.executable, "-m", package] + sys.argv[1:]
    return [sys.executable] + sys.argv


def exec_new_master(argv, environment, fds, directory, signal_mask):
    """In the child of a SIGUSR2 fork: the listening sockets become fds 3,
    4, ... (as systemd passes them), then exec. Never returns."""
    try:
        count = len(fds)
        # First out of the way of 3..3+count, then into place: a socket may
        # already sit where another one goes.
        floor = max(fds + [systemd.SD_LISTEN_FDS_START + count])
        moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor) for fd in fds]
        for index, fd in enumerate(moved):
            os.dup2(fd, systemd.SD_LISTEN_FDS_START + index, inheritable=True)
            os.close(fd)
        environment["LISTEN_PID"] = str(os.getpid())
        os.chdir(directory)
        signal.pthread_sigmask(signal.SIG_SETMASK, signal_mask)
        os.execve(argv[0], argv, environment)
    except BaseException as exc:  # nothing of the master's may run here
        try:
            os.write(2, f"ursa: error: cannot exec the new master {argv}: {exc}\n".encode("utf-8", "replace"))
        finally:
            os._exit(EXIT_EXEC_FAILED)


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


def send_signal(pid, number):
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


PR_SET_PDEATHSIG = 1


def set_parent_death_signal(number):
    """Linux: have the kernel send `number` to this process when the master
    dies, so workers never outlive it (even after SIGKILL)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(number), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def drop_privileges(uid, gid):
    if gid is not None and gid != os.getgid():
        if uid is not None:
            try:
                os.initgroups(pwd.getpwuid(uid).pw_name, gid)
            except KeyError:
                os.setgroups([gid])
        else:
            os.setgroups([gid])
        os.setgid(gid)
    if uid is not None and uid != os.getuid():
        if gid is None:
            entry = pwd.getpwuid(uid)
            os.initgroups(entry.pw_name, entry.pw_gid)
            os.setgid(entry.pw_gid)
        os.setuid(uid)
