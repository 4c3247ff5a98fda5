"""The model server's child process: load llama.cpp's CPU backend, then run llama-cpp-python's server.

costguard's build of llama-cpp-python (scripts/llama_wheel.py) ships the CPU backend as several
runtime-dispatched libraries (`libggml-cpu-<variant>.so`, one per instruction set), so one wheel runs on
any x86-64 CPU with AVX2 and uses AVX-512 where there is some. llama-cpp-python does not load such
backends itself, so this module does, before the server loads the model:

    python -m costguard.tools.llm.launcher --model M.gguf --host 127.0.0.1 --port 8000 ...

`COSTGUARD_LLAMA_CPU_VARIANT=haswell` (say) loads that variant only, instead of the best one for the CPU
(for measurements, or a CPU whose best variant misbehaves). A build with one static CPU backend (the
stock llama-cpp-python build) needs nothing and gets nothing.

Kept free of costguard's other modules: it runs in the server process, which holds the model.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

from costguard.errors import BackendLoadError

VARIANT_ENV = "COSTGUARD_LLAMA_CPU_VARIANT"
CRASH_ENV = "COSTGUARD_LLAMA_CRASH"  # tests: "first_completion" makes the server die as the AMX build did
VARIANT_PREFIX = "libggml-cpu-"


def _ggml() -> tuple[Any, Path]:
    """The libggml that libllama uses (its backend registry), and the directory of the libraries."""
    from llama_cpp import llama_cpp  # loads libllama, which loads libggml by its soname

    lib_dir = Path(llama_cpp._base_path)
    # A wheel holds copies, not symlinks: loading `libggml.so` by path would load a second libggml with a
    # registry of its own, which libllama never sees. Ask for the soname already in memory instead.
    sonames = sorted(p.name for p in lib_dir.glob("libggml.so.*") if re.fullmatch(r"libggml\.so\.\d+", p.name))
    if sonames:
        lib = ctypes.CDLL(sonames[0], mode=os.RTLD_NOLOAD | ctypes.RTLD_GLOBAL)
    else:  # an unversioned build: there is only one
        from llama_cpp import _ggml

        lib = _ggml.libggml
    lib.ggml_backend_reg_count.restype = ctypes.c_size_t
    lib.ggml_backend_load.restype = ctypes.c_void_p
    lib.ggml_backend_load.argtypes = [ctypes.c_char_p]
    lib.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
    lib.ggml_backend_load_all_from_path.restype = None
    return lib, lib_dir


def variants(lib_dir: Path) -> dict[str, Path]:
    """The CPU backend variants shipped in `lib_dir`, by name (`haswell`, `icelake`, ...)."""
    return {
        path.name.removeprefix(VARIANT_PREFIX).split(".so")[0]: path
        for path in sorted(lib_dir.glob(f"{VARIANT_PREFIX}*.so*"))
        if not path.is_symlink()
    }


def variant_scores(lib_dir: Path) -> dict[str, int]:
    """What each variant's own `ggml_backend_score` says of this CPU (0: it cannot run here)."""
    scores: dict[str, int] = {}
    for name, path in variants(lib_dir).items():
        handle = ctypes.CDLL(str(path))
        score = getattr(handle, "ggml_backend_score", None)
        if score is not None:
            score.restype = ctypes.c_int
            scores[name] = int(score())
    return scores


def load_cpu_backend(requested: str | None = None) -> str:
    """Register the CPU backend: the requested variant, or the best for this CPU. Returns what was loaded."""
    lib, lib_dir = _ggml()
    if lib.ggml_backend_reg_count() > 0 and not variants(lib_dir):
        return "static"  # a build with its backend linked in
    if requested:
        path = variants(lib_dir).get(requested)
        if path is None:
            raise BackendLoadError(
                f"{VARIANT_ENV}={requested}: no such variant in {lib_dir} ({sorted(variants(lib_dir))})"
            )
        if not lib.ggml_backend_load(str(path).encode()):
            raise BackendLoadError(f"{path.name} did not load (does this CPU have its instruction set?)")
        return requested
    lib.ggml_backend_load_all_from_path(str(lib_dir).encode())
    if lib.ggml_backend_reg_count() == 0:
        raise BackendLoadError(
            f"no CPU backend in {lib_dir} runs on this CPU (the build needs AVX2): {variant_scores(lib_dir)}"
        )
    scores = variant_scores(lib_dir)
    return max(scores, key=lambda name: scores[name]) if scores else "unknown"


def _die_on_first_completion() -> None:
    """Test hook: the server dies by SIGSEGV on its first completion, as the AMX kernels made it do."""
    from llama_cpp import Llama

    def crash(*args: Any, **kwargs: Any) -> Any:
        os.kill(os.getpid(), signal.SIGSEGV)
        raise AssertionError("unreachable")

    Llama.create_chat_completion = crash  # type: ignore[method-assign]
    Llama.create_completion = crash  # type: ignore[method-assign]


def main() -> None:
    """Load the backend, then hand the command line to `python -m llama_cpp.server`."""
    try:
        loaded = load_cpu_backend(os.environ.get(VARIANT_ENV) or None)
    except BackendLoadError as exc:
        sys.stderr.write(f"costguard: {exc}\n")
        raise SystemExit(2) from exc
    sys.stderr.write(f"costguard: llama.cpp CPU backend: {loaded}\n")
    if os.environ.get(CRASH_ENV) == "first_completion":
        _die_on_first_completion()
    from llama_cpp.server.__main__ import main as serve

    sys.argv[0] = "llama_cpp.server"
    serve()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
