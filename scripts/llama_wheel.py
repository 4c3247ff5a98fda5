"""Build once, cache and install costguard's portable build of llama-cpp-python (the embedded model server).

    python scripts/llama_wheel.py install --python .venv/bin/python   # what `make setup` runs
    python scripts/llama_wheel.py path                                 # build if needed; print the wheel's path
    python scripts/llama_wheel.py key                                  # the cache key of this recipe

Why not `pip install llama-cpp-python`: its default build compiles with `-march=native`, and on CPUs with
AMX (Xeon Sapphire Rapids and later) the AMX kernels crash on the first token (llama.cpp issue 20824); and
pip caches the built wheel by the sdist alone, so a changed `CMAKE_ARGS` silently reuses an old build.

The recipe here: never `-march=native`; the CPU backend built as runtime-dispatched modules, one per
instruction set (`CPU_VARIANTS`: AVX2 up to AVX-512 with VNNI and BF16, no AMX), so one wheel runs on any
x86-64 CPU with AVX2 and picks the best module at start (costguard.tools.llm.launcher loads it); only the
libraries the server needs (no multimodal library, no common library, no tools).

The wheel is cached under `$COSTGUARD_WHEEL_CACHE` (default `~/.cache/costguard/wheels`) by a key made of
the version, the sdist's SHA-256, the CMake arguments, the source edits, the build requirements and the
platform: a fresh clone reuses it in seconds, and any change to the recipe builds a new one.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENT = ROOT / "requirements" / "llama-cpp-python.txt"  # name==version --hash=sha256:... (as in uv.lock)
BUILD_REQUIREMENTS = ROOT / "requirements" / "llama-build.txt"  # scikit-build-core, hash-pinned
RECIPE = 1  # bump to rebuild when something outside the key changes how the wheel comes out
MIN_CMAKE = (3, 21)
MARKER = "costguard-llama-wheel.key"  # in the environment's prefix: which build is installed there

# x86-64 CPU backend modules: name -> ggml feature flags. The AVX2 one is the floor; ggml scores each against
# the running CPU and loads the best. Sapphire Rapids' AMX module is left out on purpose (it crashes).
CPU_VARIANTS = {
    "haswell": "SSE42 AVX F16C FMA AVX2 BMI2",
    "alderlake": "SSE42 AVX F16C FMA AVX2 BMI2 AVX_VNNI",
    "skylakex": "SSE42 AVX F16C FMA AVX2 BMI2 AVX512",
    "icelake": "SSE42 AVX F16C FMA AVX2 BMI2 AVX512 AVX512_VBMI AVX512_VNNI",
    "zen4": "SSE42 AVX F16C FMA AVX2 BMI2 AVX512 AVX512_VBMI AVX512_VNNI AVX512_BF16",
}

CMAKE_ARGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=OFF",  # the wheel must not depend on the CPU it was built on
    "-DGGML_BACKEND_DL=ON",  # the CPU backend as loadable modules ...
    "-DGGML_CPU_ALL_VARIANTS=ON",  # ... one per instruction set (the list is CPU_VARIANTS, see EDITS)
    "-DCMAKE_INSTALL_BINDIR=llama_cpp/lib",  # the modules next to libllama, where the launcher looks
    "-DCMAKE_INSTALL_LIBDIR=llama_cpp/lib",  # upstream's own install rules: inside the package, not
    "-DCMAKE_INSTALL_INCLUDEDIR=llama_cpp/include",  # site-packages/lib and site-packages/include
    "-DLLAVA_BUILD=OFF",  # no multimodal library: the server loads it only for image models
    "-DGGML_CCACHE=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
)


def _variant_block() -> str:
    lines = [f"        ggml_add_cpu_backend_variant({name} {features})" for name, features in CPU_VARIANTS.items()]
    return '    if (GGML_SYSTEM_ARCH STREQUAL "x86")\n' + "\n".join(lines) + "\n"


# (file in the sdist, regular expression that must match exactly once, replacement)
EDITS: tuple[tuple[str, str, str], ...] = (
    (
        "vendor/llama.cpp/ggml/src/CMakeLists.txt",
        r'    if \(GGML_SYSTEM_ARCH STREQUAL "x86"\)\n        ggml_add_cpu_backend_variant\(x64\)\n'
        r'.*?(?=    elseif\(GGML_SYSTEM_ARCH STREQUAL "ARM"\))',
        _variant_block(),
    ),
    (
        # llama-cpp-python forces the common library on; the Python package never loads it
        "CMakeLists.txt",
        r'set\(LLAMA_BUILD_COMMON ON CACHE BOOL "Build llama.cpp common library" FORCE\)',
        'set(LLAMA_BUILD_COMMON OFF CACHE BOOL "Build llama.cpp common library" FORCE)',
    ),
)


class BuildError(RuntimeError):
    """The wheel could not be built or installed; the message says where the log is."""


def pinned() -> tuple[str, str, str]:
    """(name, version, sdist sha256) from requirements/llama-cpp-python.txt."""
    text = REQUIREMENT.read_text(encoding="utf-8")
    found = re.search(r"^([A-Za-z0-9_.-]+)==([^\s]+)\s+--hash=sha256:([0-9a-f]{64})", text, re.MULTILINE)
    if found is None:
        raise BuildError(f"{REQUIREMENT}: no 'name==version --hash=sha256:...' line")
    return found.group(1), found.group(2), found.group(3)


def cache_key() -> str:
    name, version, sdist_sha = pinned()
    recipe = {
        "recipe": RECIPE,
        "name": name,
        "version": version,
        "sdist_sha256": sdist_sha,
        "cmake_args": CMAKE_ARGS,
        "edits": EDITS,
        "build_requirements": BUILD_REQUIREMENTS.read_text(encoding="utf-8"),
        "platform": sysconfig.get_platform(),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:20]


def cache_root() -> Path:
    explicit = os.environ.get("COSTGUARD_WHEEL_CACHE")
    if explicit:
        return Path(explicit)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "costguard" / "wheels"


def cached_wheel(key: str) -> Path | None:
    wheels = sorted((cache_root() / "llama-cpp-python" / key).glob("*.whl"))
    return wheels[0] if wheels else None


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # a second `make` waits for the first build, then reuses it
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(command: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    with log.open("a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    if code != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise BuildError(f"{command[0]} ... failed with exit code {code}; log {log}:\n{tail}")


def _cmake_ok() -> bool:
    try:
        text = subprocess.run(["cmake", "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return False
    found = re.search(r"(\d+)\.(\d+)", text)
    return found is not None and (int(found.group(1)), int(found.group(2))) >= MIN_CMAKE


def apply_edits(source: Path) -> None:
    for relative, pattern, replacement in EDITS:
        path = source / relative
        text = path.read_text(encoding="utf-8")
        matches = list(re.finditer(pattern, text, re.DOTALL))
        if len(matches) != 1:
            raise BuildError(f"{relative}: expected one match of the recipe's edit, found {len(matches)}")
        start, end = matches[0].span()
        path.write_text(text[:start] + replacement + text[end:], encoding="utf-8")


def build(key: str, log_out: bool = True) -> Path:
    name, version, _ = pinned()
    target = cache_root() / "llama-cpp-python" / key
    with tempfile.TemporaryDirectory(prefix="costguard-llama-build-") as tmp_name:
        tmp = Path(tmp_name)
        log = tmp / "build.log"
        started = time.monotonic()
        if log_out:
            sys.stderr.write(f"building {name} {version} (key {key}): a few minutes, once per machine\n")
        _run(
            [sys.executable, "-m", "venv", str(tmp / "env")],
            log,
        )
        python = str(tmp / "env" / "bin" / "python")
        _run([python, "-m", "pip", "install", "-q", "--require-hashes", "-r", str(BUILD_REQUIREMENTS)], log)
        if not _cmake_ok():
            _run([python, "-m", "pip", "install", "-q", "cmake==3.31.6"], log)
        _run(
            [
                python,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--require-hashes",
                "-r",
                str(REQUIREMENT),
                "-d",
                str(tmp / "sdist"),
            ],
            log,
        )
        (sdist,) = (tmp / "sdist").glob("*.tar.gz")
        with tarfile.open(sdist) as archive:
            archive.extractall(tmp / "src", filter="data")
        (source,) = (tmp / "src").iterdir()
        apply_edits(source)
        env = dict(os.environ)
        env["CMAKE_ARGS"] = " ".join(CMAKE_ARGS)
        env["CMAKE_BUILD_PARALLEL_LEVEL"] = str(os.cpu_count() or 2)
        env.pop("PIP_REQUIRE_VIRTUALENV", None)
        _run(
            [python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(source)],
            log,
            env=env,
        )
        (wheel,) = (tmp / "dist").glob("*.whl")
        staging = target.with_name(f"{key}.partial-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        shutil.copy2(wheel, staging / wheel.name)
        shutil.copy2(log, staging / "build.log")
        seconds = time.monotonic() - started
        (staging / "recipe.json").write_text(
            json.dumps(
                {
                    "key": key,
                    "version": version,
                    "cmake_args": CMAKE_ARGS,
                    "cpu_variants": CPU_VARIANTS,
                    "build_seconds": round(seconds, 1),
                },
                indent=1,
            )
            + "\n",
            encoding="utf-8",
        )
        staging.rename(target)  # atomic: a half-built cache entry is never seen
    if log_out:
        sys.stderr.write(f"built {name} {version} in {seconds:.0f} s; cached in {target}\n")
    built = cached_wheel(key)
    assert built is not None
    return built


def ensure_wheel() -> Path:
    key = cache_key()
    found = cached_wheel(key)
    if found is not None:
        return found
    with _lock(cache_root() / "llama-cpp-python" / f"{key}.lock"):
        return cached_wheel(key) or build(key)


def install(python: str) -> None:
    """Install the cached wheel into `python`'s environment, unless this very build is there already."""
    wheel = ensure_wheel()
    key = cache_key()
    probe = (
        "import importlib.metadata as m, pathlib, sys\n"
        "try: m.distribution('llama_cpp_python')\n"
        "except m.PackageNotFoundError: print(''); raise SystemExit\n"
        "print(sys.prefix)"
    )
    prefix = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    if prefix:
        marker = Path(prefix) / MARKER
        if marker.exists() and marker.read_text(encoding="utf-8").strip() == key:
            return
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)], check=True)
    prefix = subprocess.run(
        [python, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True, check=True
    ).stdout.strip()
    (Path(prefix) / MARKER).write_text(key + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("key", help="print the cache key of this recipe")
    sub.add_parser("path", help="build if needed; print the cached wheel's path")
    inst = sub.add_parser("install", help="build if needed; install into the environment of --python")
    inst.add_argument("--python", default=sys.executable)
    args = parser.parse_args(argv)
    try:
        if args.command == "key":
            sys.stdout.write(cache_key() + "\n")
        elif args.command == "path":
            sys.stdout.write(f"{ensure_wheel()}\n")
        else:
            install(args.python)
    except BuildError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
