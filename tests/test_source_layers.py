"""The C core's shape (scripts/check-layers.py): no include cycle, includes
pointing down the layers, no mutable file-scope state. The checker runs on
the real core, and on small made-up cores that break each rule."""
import importlib.util
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("check_layers", REPO / "scripts" / "check-layers.py")
check_layers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_layers)


def test_the_core_has_no_cycle_no_upward_include_and_no_mutable_static():
    problems, nodes = check_layers.check(check_layers.DEFAULT_CORE)
    assert problems == []
    assert nodes > 20


def make_core(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize("files, expected", [
    ({"transport/a.h": '#include "transport/b.h"\n', "transport/b.c": '#include "transport/a.h"\n',
      "transport/b.h": ""}, "include cycle: transport/a -> transport/b -> transport/a"),
    ({"common/x.h": '#include "http/y.h"\n', "http/y.h": ""}, "common/x includes http/y"),
    ({"wsgi/x.c": '#include "asgi/y.h"\n', "asgi/y.h": ""}, "wsgi/x includes asgi/y"),
    ({"http/z.c": "static int counter = 0;\n"}, "http/z.c:1: mutable file-scope state"),
    ({"http/z.c": '#include "missing.h"\n'}, 'includes "missing.h", which is not a core file'),
])
def test_each_rule_is_caught(tmp_path, files, expected):
    problems, _ = check_layers.check(make_core(tmp_path, files))
    assert any(expected in problem for problem in problems), problems


def test_what_the_rules_allow_passes(tmp_path):
    core = make_core(tmp_path, {
        "common/x.h": "static const int limit = 3;\nstatic inline int twice(int n) { return 2 * n; }\n",
        "transport/t.c": '#include "common/x.h"\nstatic PyMethodDef methods[] = {};\n',
        "http/h.c": '#include "transport/t.h"\n', "transport/t.h": "",
        "wsgi/w.c": '#include "http/h.h"\n', "http/h.h": "",
        "module.c": '#include "wsgi/w.h"\n', "wsgi/w.h": "",
    })
    assert check_layers.check(core)[0] == []
