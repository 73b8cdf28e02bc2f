"""--user and --group: who the workers run as.

The master stays who it was started as (root, to bind low ports, open the
log files and reopen them later). It checks at start that it may switch
(check_can_switch), makes its unix socket files the workers' user's and
group's (give_socket_file), and each worker drops to them right after the
fork, before it loads the app (drop_privileges). The names are looked up
when the settings are read (config.parse_user, config.parse_group).
"""
import os
import pwd

from .errors import ConfigError


def check_can_switch(uid, gid):
    """ConfigError unless this process may become `uid`/`gid` (None: unchanged)."""
    changes_identity = (uid is not None and uid != os.getuid()) or (gid is not None and gid != os.getgid())
    if changes_identity and os.geteuid() != 0:
        raise ConfigError(f"--user/--group need ursa to start as root (it runs as uid {os.getuid()}); "
                          f"drop them or start as root")


def give_socket_file(path, uid, gid):
    """With --user/--group the socket file belongs to that user and
    group (its mode is the --umask's): nginx gets in through the group,
    as --group www-data --umask 007 lets it."""
    if uid is not None or gid is not None:
        os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)


def drop_privileges(uid, gid):
    """Become `uid` and `gid` (None: unchanged), with that user's groups; raises OSError."""
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
