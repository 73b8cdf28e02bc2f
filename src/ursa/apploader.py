"""Loading the WSGI app the user names: MODULE:APP, MODULE:attribute.path,
MODULE:factory() or MODULE:factory(literal, key=literal), and a bare
MODULE (its `application` or `app`).

The master calls load_wsgi_app() with --preload, each worker after the
fork otherwise (arbiter.py, worker.py). Every failure is a ConfigError of
one line naming what to fix: the module that is missing, the folder a
--user cannot read, the attribute that is not there, the file and line
that raised.
"""
import ast
import importlib
import os
import pwd
import sys
import traceback

from .errors import ConfigError, did_you_mean


def load_wsgi_app(spec):
    """Import and return the WSGI app named by `spec`.

    `spec` is 'module:name', 'module:attribute.path', 'module:factory()' or
    'module:factory(literal, key=literal)'; a bare 'module' means its
    `application` (or `app`). Failures raise ConfigError naming what to fix.
    """
    if not isinstance(spec, str):
        if callable(spec):
            return spec
        raise ConfigError(f"wsgi_app must be a 'module:app' string or a callable, got {spec!r}")
    module_name, colon, expression = spec.partition(":")
    module_name = module_name.strip()
    if not module_name or (colon and not expression.strip()):
        raise ConfigError(f"app {spec!r}: expected MODULE:APP, as in myproject.wsgi:application")
    module = _import_app_module(module_name)
    if not colon:
        for default in ("application", "app"):
            if hasattr(module, default):
                expression = default
                break
        else:
            raise ConfigError(f"module {module_name!r} has no 'application' or 'app'; name the app: "
                              f"{module_name}:NAME")
    app = _evaluate_app_expression(module, module_name, expression.strip(), spec)
    if not callable(app):
        raise ConfigError(f"{spec!r} is {_a_type_name(app)}, not a WSGI app (a callable "
                          f"taking environ and start_response)")
    return app


def _import_app_module(module_name):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            unreadable = _unreadable_import_folder()
            if unreadable is not None:
                folder, blocked = unreadable
                where = "" if blocked == folder else f"on the way to {folder}, "
                raise ConfigError(f"cannot import {missing!r} as user {_user_name()}: {blocked}: permission "
                                  f"denied ({where}a folder on sys.path); give that user read access or "
                                  f"choose another --user") from None
            raise ConfigError(f"cannot import {module_name!r}: no module named {missing!r} in "
                              f"{os.getcwd()} or on sys.path; check MODULE in MODULE:APP or "
                              f"use --chdir") from None
        raise ConfigError(f"importing {module_name!r} failed: {describe_exception(exc)}") from None
    except SyntaxError as exc:
        raise ConfigError(f"importing {module_name!r} failed: syntax error in {exc.filename}, "
                          f"line {exc.lineno}: {exc.msg}") from None
    except SystemExit as exc:
        raise ConfigError(f"importing {module_name!r} failed: it called sys.exit({exc.code!r})") from None
    except Exception as exc:
        raise ConfigError(f"importing {module_name!r} failed: {describe_exception(exc)}") from None


def _unreadable_import_folder():
    """(folder, what blocks it) for the first folder of sys.path, outside
    Python's own installation, that this process cannot read (a --user
    without rights on the app's folder: the import system skips such a
    folder without a word); None if it can read them all."""
    installation = {os.path.realpath(prefix) for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    for entry in sys.path:
        folder = os.path.abspath(entry or os.curdir)
        if any(folder == prefix or folder.startswith(prefix + os.sep) for prefix in installation):
            continue
        blocked = _blocked_on_the_way(folder)
        if blocked is not None:
            return folder, blocked
    return None


def _blocked_on_the_way(path):
    """The first of `path`'s parents this process may not enter, or `path`
    itself if it may not read it; None if it can, or if `path` does not exist."""
    current = os.sep
    for part in path.split(os.sep)[1:-1]:
        current = os.path.join(current, part)
        if not os.access(current, os.F_OK):
            return None
        if not os.access(current, os.X_OK):
            return current
    if not os.access(path, os.F_OK):
        return None
    needed = os.R_OK | os.X_OK if os.path.isdir(path) else os.R_OK
    return None if os.access(path, needed) else path


def _user_name():
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def _evaluate_app_expression(module, module_name, expression, spec):
    try:
        tree = ast.parse(expression, mode="eval").body
    except SyntaxError:
        raise ConfigError(f"app {spec!r}: {expression!r} is not a name or a call like "
                          f"create_app()") from None
    call = None
    if isinstance(tree, ast.Call):
        call, tree = tree, tree.func
    path = _dotted_name(tree)
    if path is None:
        raise ConfigError(f"app {spec!r}: {expression!r} must be a name, a dotted name or a call "
                          f"of one with literal arguments")
    target = module
    walked = module_name
    for part in path:
        if not hasattr(target, part):
            names = [name for name in dir(target) if not name.startswith("_")]
            hint = did_you_mean(part, names)
            raise ConfigError(f"{walked!r} has no attribute {part!r}{hint}; check APP in MODULE:APP")
        target = getattr(target, part)
        walked = f"{walked}:{part}" if walked == module_name else f"{walked}.{part}"
    if call is None:
        return target
    try:
        args = [ast.literal_eval(argument) for argument in call.args]
        kwargs = {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}
    except ValueError:
        raise ConfigError(f"app {spec!r}: factory arguments must be literals (strings, numbers, "
                          f"lists...)") from None
    if None in kwargs:
        raise ConfigError(f"app {spec!r}: **kwargs is not supported in the factory call")
    if not callable(target):
        raise ConfigError(f"app {spec!r}: {walked!r} is {_a_type_name(target)}, not a factory "
                          f"to call")
    try:
        return target(*args, **kwargs)
    except Exception as exc:
        raise ConfigError(f"calling {expression!r} in {module_name!r} failed: "
                          f"{describe_exception(exc)}") from None


def _dotted_name(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


def describe_exception(exc):
    """'ExcType: message (file, line N)' for the frame that raised `exc`,
    skipping importlib's internals and this file's own frames (a factory
    called with the wrong arguments raises in the frame that calls it)."""
    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if ("importlib" not in frame.filename and not frame.filename.startswith("<frozen")
                and frame.filename != __file__):
            where = f" ({frame.filename}, line {frame.lineno})"
    return f"{type(exc).__name__}: {exc}{where}"


def _a_type_name(value):
    name = type(value).__name__
    return ("an " if name[0] in "aeiou" else "a ") + name
