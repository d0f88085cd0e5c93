"""Builds the packet core (datareach._core.NATIVE_MODULES) with mypyc when a C compiler is there.

Everything else about the package is in pyproject.toml. ``pip install .``, ``pip install -e .``
(and so ``make``) and a wheel build compile those modules into extension modules beside their
sources, in one shared library inside the package (``datareach/packetcore__mypyc*.so``).
Without a working C compiler, or with ``DATAREACH_PURE_PYTHON=1``, or without mypy (a build
with ``--no-build-isolation`` in an environment that lacks it), one line says so and the
package installs as pure Python: same results, slower. At run time ``DATAREACH_NATIVE=0``
selects the sources of a native build (datareach._core).
"""

from __future__ import annotations

import ast
import os
import sys
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
CORE = HERE / "src" / "datareach" / "_core.py"
GROUP = "datareach.packetcore"


def native_modules() -> list[str]:
    """NATIVE_MODULES of datareach/_core.py, read from its source (the package is not imported)."""
    for node in ast.parse(CORE.read_text()).body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            if any(isinstance(t, ast.Name) and t.id == "NATIVE_MODULES" for t in targets):
                assert node.value is not None
                return list(ast.literal_eval(node.value))
    raise RuntimeError("NATIVE_MODULES not found in " + str(CORE))


def compiler_works() -> bool:
    """Whether the C compiler the build would use (CC, sysconfig) compiles a trivial file."""
    try:
        from setuptools._distutils import ccompiler, sysconfig
    except ImportError:  # an older setuptools
        from distutils import ccompiler, sysconfig  # type: ignore[no-redef]
    try:
        compiler = ccompiler.new_compiler()
        sysconfig.customize_compiler(compiler)
        with tempfile.TemporaryDirectory() as tmp:
            source = os.path.join(tmp, "probe.c")
            with open(source, "w") as f:
                f.write("int datareach_probe(void) { return 0; }\n")
            with open(os.devnull, "w") as devnull:
                saved = os.dup(2), os.dup(1)
                os.dup2(devnull.fileno(), 2)
                os.dup2(devnull.fileno(), 1)
                try:
                    compiler.compile([source], output_dir=tmp)
                finally:
                    os.dup2(saved[0], 2)
                    os.dup2(saved[1], 1)
                    os.close(saved[0])
                    os.close(saved[1])
    except Exception:
        return False
    return True


def ext_modules() -> list[object]:
    if os.environ.get("DATAREACH_PURE_PYTHON", "").strip() not in ("", "0"):
        print("datareach: DATAREACH_PURE_PYTHON is set: installing the pure-Python packet core", file=sys.stderr)
        return []
    if not compiler_works():
        print("datareach: no working C compiler: installing the pure-Python packet core", file=sys.stderr)
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("datareach: mypy (mypyc) is not installed: installing the pure-Python packet core", file=sys.stderr)
        return []
    os.chdir(HERE)  # mypy reads its configuration (pyproject.toml) from here
    paths = ["src/" + m.replace(".", "/") + ".py" for m in native_modules()]
    # Third-party packages are absent from an isolated build environment: their types are then
    # Any, which changes nothing in the compiled code's behaviour. Only the compiled modules'
    # errors stop the build (the modules they import are analysed, their errors not reported),
    # and none of the strict checks that an Any from a missing package would trip: the type check
    # proper is `make lint`'s, in the full environment.
    options = ["--ignore-missing-imports", "--follow-imports=silent", "--no-warn-unused-ignores",
               "--no-warn-return-any"]
    return list(mypycify(options + paths, group_name=GROUP))


class BuildExt(build_ext):
    """build_ext that marks the extension modules it leaves in the source tree as new.

    (mypyc skips copying an unchanged build into the tree, and datareach._core falls back to the
    sources of a tree whose compiled modules are older than their sources.)"""

    def run(self) -> None:
        super().run()
        if self.inplace:
            for ext in self.extensions:
                built = Path(self.get_ext_fullpath(ext.name))
                if built.exists():
                    os.utime(built)


setup(ext_modules=ext_modules(), cmdclass={"build_ext": BuildExt})
