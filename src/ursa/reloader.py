"""--reload: a worker notices edits to the source files it has loaded, by
their mtimes, and restarts (worker.py polls the watcher from a timer; the
master starts the replacement). For development only.

The watcher also covers the app's own module before it is imported, and,
when the app fails to load, the files the error came from, so that a fix
is seen even though the module never reached sys.modules.
"""
import os
import sys

# How often a worker looks for changed files.
RELOAD_POLL_SECONDS = 1.0


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
