"""Builds ursa._core: the C server core, libev for the loop, llhttp for parsing,
wslay for WebSocket framing, zlib for WebSocket compression.

llhttp: a system library found by pkg-config is preferred; otherwise its C
sources (Debian's node-llhttp ships them in /usr/share/llhttp) are compiled
into the extension with their own relaxed warning flags, since they are not
our code. URSA_LLHTTP_SRC overrides where those sources are looked for.
llhttp is looked up when the extension is built, so an sdist can be made
without it.

URSA_SANITIZE=1 builds with AddressSanitizer and UBSan (see `make test-asan`).

URSA_WHEEL=1 builds the extension for a self-contained wheel (see
scripts/build-wheels.sh): llhttp's sources are always compiled in (a system
libllhttp is ignored), and the interpreter's RPATH, the symbol table and the
debug information are left out. libev stays a shared library, which
`auditwheel repair` copies into the wheel.
"""
import os
import shutil
import subprocess
from glob import glob

import setuptools
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

WARNINGS = ["-Wall", "-Wextra", "-Werror", "-Wno-missing-field-initializers"]
LLHTTP_SRC_DIRS = [os.environ.get("URSA_LLHTTP_SRC", ""), "/usr/share/llhttp", "/usr/local/share/llhttp"]
LLHTTP_INCLUDE_DIRS = ["/usr/share/include/llhttp", "/usr/include/llhttp", "/usr/local/include/llhttp"]
WHEEL = os.environ.get("URSA_WHEEL") == "1"


def accept_pep639_license_on_old_setuptools():
    """Let setuptools 61 to 76 read pyproject.toml's PEP 639 license.

    `license = "BSD-2-Clause"` with `license-files` needs setuptools 77, which
    needs Python 3.9; on Python 3.8 the newest is 75.3, whose pyproject.toml
    validation rejects both (pyproject.toml's build requirements pin it there
    on 3.8). For those versions only, the SPDX string is handed over in the
    table form they know (`{text = ...}`, written to the License field) and
    `license-files` is dropped: their default patterns include LICENSE.
    setuptools before 61 reads no [project] table and needs nothing.
    """
    try:
        from setuptools.config import pyprojecttoml
    except ImportError:
        return
    load_file = pyprojecttoml.load_file

    def load_file_with_license_table(filepath):
        config = load_file(filepath)
        project = config.get("project", {})
        if isinstance(project.get("license"), str):
            project["license"] = {"text": project["license"]}
            project.pop("license-files", None)
        return config

    pyprojecttoml.load_file = load_file_with_license_table


if int(setuptools.__version__.split(".")[0]) < 77:
    accept_pep639_license_on_old_setuptools()


def pkg_config(*args):
    if shutil.which("pkg-config") is None:
        return None
    try:
        out = subprocess.run(["pkg-config", *args], check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError:
        return None
    return out.stdout.split()


def find_llhttp():
    """Return (include_dirs, libraries, bundled_sources)."""
    cflags = None if WHEEL else pkg_config("--cflags", "libllhttp")
    libs = None if WHEEL else pkg_config("--libs", "libllhttp")
    if cflags is not None and libs is not None:
        return [f[2:] for f in cflags if f.startswith("-I")], [f[2:] for f in libs if f.startswith("-l")], []
    for src_dir in LLHTTP_SRC_DIRS:
        sources = sorted(glob(os.path.join(src_dir, "*.c"))) if src_dir else []
        if sources:
            include = [d for d in [src_dir, *LLHTTP_INCLUDE_DIRS] if os.path.exists(os.path.join(d, "llhttp.h"))]
            if include:
                return include[:1], [], sources
    raise SystemExit(
        "ursa: llhttp's C sources not found. Install Debian's node-llhttp (apt-get install node-llhttp), "
        + ("" if WHEEL else "a libllhttp with a pkg-config file, ")
        + "or set URSA_LLHTTP_SRC to a directory of llhttp's C sources."
    )


class BuildExt(build_ext):
    """Finds llhttp, compiles its bundled sources with their own flags, then the core with ours."""

    def build_extension(self, ext):
        include, libraries, bundled = find_llhttp()
        ext.include_dirs = [*ext.include_dirs, *include]
        ext.libraries = [*ext.libraries, *libraries]
        if bundled:
            objects = self.compiler.compile(
                bundled,
                output_dir=self.build_temp,
                include_dirs=ext.include_dirs,
                extra_postargs=["-O2", "-fPIC", "-w"] + SIZE_FLAGS + SANITIZE_FLAGS,
            )
            ext.extra_objects = list(ext.extra_objects or []) + objects
        if WHEEL:
            # An interpreter built with a shared libpython (pyenv's, say) puts
            # -Wl,-rpath,<its lib dir> into LDSHARED; a wheel must not carry it.
            self.compiler.linker_so = [a for a in self.compiler.linker_so if not a.startswith("-Wl,-rpath")]
        super().build_extension(ext)


SANITIZE_FLAGS = (
    ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
    if os.environ.get("URSA_SANITIZE") == "1"
    else []
)
OPT_FLAGS = ["-O1", "-g"] if SANITIZE_FLAGS else ["-O2"]
# Only PyInit__core is exported: calls between our files and into llhttp
# bind directly, and the symbol tables shrink. Unused sections (llhttp's
# name tables, say) are dropped, and no unwind tables are kept for C code
# that never unwinds: all of it is memory every server process maps.
SIZE_FLAGS = ["-fvisibility=hidden", "-ffunction-sections", "-fdata-sections", "-fno-asynchronous-unwind-tables"]
SIZE_LINK_FLAGS = ["-Wl,--gc-sections", "-Wl,-O1"]

# For a wheel, -s strips the symbol table and the debug information that the
# interpreter's CFLAGS (-g) put in; the dynamic symbols stay. libev stays a
# shared library there too: `auditwheel repair` copies Debian's libev.so.4
# into the wheel (ursa.libs/, renamed with a hash, so it cannot be mistaken
# for another libev in the process) and points the extension's RPATH at it.
# A static link would leave one file, but Debian's libev.a is compiled as
# PIE, not PIC: ld refuses its reference to glibc's `stderr` in a shared
# object (R_X86_64_PC32 ... recompile with -fPIC), and rebuilding libev with
# -fPIC would need its sources, which Debian ships only from a deb-src apt
# source. The bundled copy is the very library `make build` links and the
# test suite runs against, and it needs no newer glibc than the core does.
STRIP = ["-s"] if WHEEL else []

core = Extension(
    "ursa._core",
    sources=sorted(glob("src/ursa/_core/**/*.c", recursive=True)),
    include_dirs=["src/ursa/_core"],
    # libev for the loop; wslay frames WebSockets, zlib compresses them
    # (permessage-deflate).
    libraries=["ev", "wslay", "z"],
    extra_compile_args=["-std=c11", *OPT_FLAGS, *SIZE_FLAGS, *WARNINGS, *SANITIZE_FLAGS],
    extra_link_args=[*SIZE_LINK_FLAGS, *STRIP, *SANITIZE_FLAGS],
    depends=sorted(glob("src/ursa/_core/**/*.h", recursive=True)),
)

setup(ext_modules=[core], cmdclass={"build_ext": BuildExt})
