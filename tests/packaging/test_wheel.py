"""The sdist and the self-contained wheel of `make wheel` (scripts/build-wheels.sh).

Once per module the script builds the sdist and, from an unpacked copy of it,
the manylinux wheel for the interpreter running the tests. The wheel is then
installed into a fresh venv with no index, no compiler and no source tree on
sys.path, and serves examples/hello.py from there over a real socket.

The build needs gcc, libev-dev, node-llhttp, libwslay-dev and zlib1g-dev,
which the script installs when it runs as root; a test run that is not root
and lacks them is skipped, said why, except in CI, where that is a failure. The sanitizer run (make
test-asan) skips the module: the wheel is a release build of its own, which
make test and make test-pythons check.
"""
import http.client
import json
import os
import pathlib
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import zipfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
AUDITWHEEL = REPO / "build" / "wheel-tools" / "bin" / "auditwheel"
TAG = "cp%d%d" % sys.version_info[:2]
# What a manylinux wheel may take from the system: glibc's own libraries, and
# zlib, which every manylinux policy counts as part of the system (auditwheel
# leaves it there; see scripts/build-wheels.sh).
SYSTEM = re.compile(r"(libc|libm|libpthread|libdl|librt|libutil|libresolv|libz)\.so\.\d+|ld-linux[\w.-]*\.so\.\d+")
# Generous bounds against a hang, not measurements: 2 cores, other suites beside.
BUILD_TIMEOUT = 600
TIMEOUT = 60
BUILD_PACKAGES = ("libev-dev", "node-llhttp", "libwslay-dev", "zlib1g-dev", "gcc", "binutils",
                  "python3-venv")  # as build-wheels.sh

if os.environ.get("URSA_SANITIZE") == "1":
    pytest.skip("the wheel is a release build: make test and make test-pythons check it, not the "
                "sanitizer run", allow_module_level=True)


def missing_build_packages():
    """The Debian packages the build lacks, when this user cannot install them."""
    if os.geteuid() == 0:
        return []  # scripts/build-wheels.sh installs what is missing
    if shutil.which("dpkg") is None:
        return ["Debian's packages (no dpkg here)"]
    return [package for package in BUILD_PACKAGES
            if subprocess.run(["dpkg", "-s", package], capture_output=True).returncode != 0]


def clean_env(**extra):
    """The environment of a user's shell: nothing that points at this tree."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH") and not k.startswith("URSA_")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(args, **kwargs):
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          timeout=kwargs.pop("timeout", TIMEOUT), **kwargs)
    assert proc.returncode == 0, f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The sdist and the wheel for this interpreter, made by scripts/build-wheels.sh."""
    missing = missing_build_packages()
    if missing:
        reason = f"cannot build the wheel without {', '.join(missing)} (apt-get install them, or run as root)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("wheel")
    log = run(["bash", REPO / "scripts" / "build-wheels.sh", sys.executable], cwd=REPO, timeout=BUILD_TIMEOUT,
              env=clean_env(URSA_DIST_DIR=out / "dist", URSA_WHEEL_WORK=out / "work"))
    wheels = sorted((out / "dist").glob("ursa-*.whl"))
    sdists = sorted((out / "dist").glob("ursa-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, log
    return wheels[0], sdists[0]


@pytest.fixture(scope="module")
def venv(built, tmp_path_factory):
    """A fresh venv with the wheel installed from the file alone: no index, no build."""
    wheel, _ = built
    path = tmp_path_factory.mktemp("venv") / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", path], env=clean_env())
    # A compiler that fails: installing the wheel must not build anything.
    run([sys.executable, "-m", "pip", "--python", path / "bin" / "python", "install", "-q",
         "--disable-pip-version-check", "--no-index", "--no-deps", "--only-binary=:all:", wheel],
        env=clean_env(CC="false", LDSHARED="false"), cwd=path.parent)
    return path


def test_wheel_is_tagged_manylinux(built):
    wheel, _ = built
    match = re.fullmatch(rf"ursa-[\w.]+-{TAG}-{TAG}-(manylinux_(\d+)_(\d+)_{platform.machine()})\.whl", wheel.name)
    assert match, wheel.name
    show = run([AUDITWHEEL, "show", wheel], cwd=wheel.parent)
    assert re.search(rf'consistent\s+with\s+the\s+following\s+platform\s+tag:\s+"{match[1]}"', show), show
    # auditwheel names the libraries outside its policy that a wheel would need.
    assert "external shared libraries" not in show, show


def test_extension_needs_only_glibc_zlib_and_what_the_wheel_bundles(built, tmp_path):
    wheel, _ = built
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path)
        names = archive.namelist()
    extensions = [n for n in names if re.fullmatch(r"ursa/_core\.[\w-]+\.so", n)]
    bundled = {pathlib.PurePath(n).name: n for n in names if n.startswith("ursa.libs/") and not n.endswith("/")}
    assert len(extensions) == 1, names
    assert not [n for n in names if n.endswith((".c", ".h"))], "the wheel carries C sources"
    for name in [*extensions, *bundled.values()]:
        dynamic = run(["readelf", "-d", tmp_path / name])
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dynamic)
        outside = [lib for lib in needed if not SYSTEM.fullmatch(lib) and lib not in bundled]
        assert not outside, f"{name} needs {outside} from the system"
        assert not [lib for lib in needed if "llhttp" in lib], f"{name} links llhttp instead of holding it"
        for paths in re.findall(r"\((?:RPATH|RUNPATH)\)\s+Library r(?:un)?path: \[(.*?)\]", dynamic):
            assert all(p.startswith("$ORIGIN") for p in paths.split(":")), f"{name} searches {paths}"


def test_installed_wheel_imports_from_its_venv(venv, tmp_path):
    code = "import json, sys, ursa, ursa._core; print(json.dumps([ursa.__file__, ursa._core.__file__, sys.path]))"
    out = run([venv / "bin" / "python", "-I", "-c", code], cwd=tmp_path, env=clean_env())
    package, extension, path = json.loads(out)
    site = str(venv)
    assert package.startswith(site) and extension.startswith(site), (package, extension)
    assert not [p for p in path if p.startswith(str(REPO))], path


def test_installed_wheel_serves_hello(venv, tmp_path):
    shutil.copy(REPO / "examples" / "hello.py", tmp_path / "hello.py")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    log = open(tmp_path / "server.log", "wb")
    server = subprocess.Popen(
        [venv / "bin" / "python", "-I", "-m", "ursa", "-b", f"fd://{listener.fileno()}", "hello:app"],
        cwd=tmp_path, env=clean_env(), pass_fds=[listener.fileno()], stdout=log, stderr=subprocess.STDOUT)
    listener.close()  # the server holds its copy; a connection waits in the backlog until it serves
    try:
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        client.request("GET", "/")
        response = client.getresponse()
        assert (response.status, response.read()) == (200, b"Hello, World!\n")
        client.close()
        # Whatever libev the server maps is the wheel's own, not the system's.
        maps = pathlib.Path(f"/proc/{server.pid}/maps").read_text()
        libev = {line.split()[-1] for line in maps.splitlines() if "/libev" in line}
        assert all(p.startswith(str(venv)) for p in libev), libev
    finally:
        server.send_signal(signal.SIGTERM)
        status = server.wait(timeout=TIMEOUT)
        log.close()
    assert status == 0, (tmp_path / "server.log").read_text()


def test_sdist_holds_every_c_source(built):
    _, sdist = built
    with tarfile.open(sdist) as archive:
        names = {name.partition("/")[2] for name in archive.getnames()}
    sources = {str(p.relative_to(REPO)) for pattern in ("**/*.c", "**/*.h") for p in (REPO / "src/ursa/_core").glob(pattern)}
    assert sources and sources <= names, sorted(sources - names)
    assert {"setup.py", "pyproject.toml", "MANIFEST.in", "LICENSE", "README.md", "examples/hello.py"} <= names
    assert not [n for n in names if n.endswith((".so", ".o", ".pyc"))], names
    # The wheel above was built by pip from an unpacked copy of this sdist.
