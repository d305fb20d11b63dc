"""Adapters a validator fetched from the nodes it checks (`GET /v1/models/{id}/adapter`), verified
against the adapter hash registered on chain and installed in its own data home:

    node/adapters/<adapter sha256>-<bundle>/adapter/   the LoRA weights and config the node sent
    node/adapters/<adapter sha256>-<bundle>/replay/    its replay record, if sent (exact method)
    node/adapters/<adapter sha256>-<bundle>/card.json  its card, base pointed at this machine's

A folder appears only by renaming a complete temporary one (a crash leaves a `.incoming-*`
folder that the next install removes), is keyed by the verified hash (and a digest of the rest of
what was sent) so a second check reuses it, and is what the re-run attributes with: never a local
model that happens to share the id."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import requests

from studio.core.errors import StudioError

if TYPE_CHECKING:
    from studio.app import Studio

MAX_ADAPTER_BYTES = 2 * 1024**3  # a LoRA adapter (plus replay record) of even a large base fits
ALLOWED_DIRS = ("", "replay")  # the zip's flat adapter files, and its replay record


class AdapterRefused(StudioError):
    """What a serving node sent as its adapter is not the one registered on chain (or not an
    adapter at all): nothing is installed and nothing is decided on it."""


class AdapterUnavailable(StudioError):
    """The serving node sent no adapter (down, or it does not serve that model)."""


def adapters_dir(studio: Studio) -> Path:
    return Path(studio.paths.home) / "node" / "adapters"


def fetch(url: str, model_id: str, *, timeout_s: float = 120.0) -> bytes:
    """The zip the serving node sends (raises AdapterRefused when it sends none)."""
    try:
        r = requests.get(f"{url}/v1/models/{model_id}/adapter", timeout=timeout_s, stream=True)
    except requests.RequestException as e:
        raise AdapterUnavailable(
            f"The adapter of {model_id} is unavailable ({type(e).__name__})."
        ) from e
    with r:
        if r.status_code != 200:
            raise AdapterUnavailable(
                f"The adapter of {model_id} is unavailable (HTTP {r.status_code})."
            )
        buf = io.BytesIO()
        for chunk in r.iter_content(1 << 20):
            buf.write(chunk)
            if buf.tell() > MAX_ADAPTER_BYTES:
                raise AdapterRefused(f"The adapter of {model_id} is larger than any LoRA adapter.")
    return buf.getvalue()


def install(studio: Studio, model_id: str, payload: bytes, onchain_hash: str) -> Any:
    """Verify `payload` (the served zip) against `onchain_hash` and install it; returns the
    ModelVersion to attribute with. Raises AdapterRefused on any mismatch, before writing."""
    from studio.train.versions import ModelVersion

    want = str(onchain_hash or "").lower().removeprefix("0x")
    if len(want) != 64:
        raise AdapterRefused(
            f"No adapter hash is registered on chain for {model_id}: cannot verify."
        )
    files = _read_zip(payload, model_id)
    weights = files.get("adapter_model.safetensors")
    if weights is None:
        raise AdapterRefused(f"The served adapter of {model_id} has no adapter_model.safetensors.")
    got = hashlib.sha256(weights).hexdigest()
    if got != want:
        raise AdapterRefused(
            f"The adapter served for {model_id} hashes to 0x{got[:16]}…, not the 0x{want[:16]}… "
            "registered on chain.",
            hint="The serving node sends other weights than it registered; it is not re-run.",
        )
    try:
        card = json.loads(files.pop("card.json"))
    except (KeyError, ValueError) as e:
        raise AdapterRefused(f"The served adapter of {model_id} has no readable card.") from e
    if str(card.get("adapter_hash", "")).lower().removeprefix("0x") != want:
        raise AdapterRefused(f"The served card of {model_id} names another adapter hash.")
    base = _local_base(studio, card, model_id)
    card = {**card, "base_dir": str(base)}

    # Keyed by the adapter hash and a digest of everything else the node sent (card, replay
    # record): what one node serves never changes how another node's report is re-run.
    bundle = hashlib.sha256()
    for name in sorted(files):
        bundle.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    bundle.update(
        b"card.json\0" + hashlib.sha256(json.dumps(card, sort_keys=True).encode()).digest()
    )
    root = adapters_dir(studio)
    dest = root / f"{want}-{bundle.hexdigest()[:16]}"
    if not (dest / "card.json").exists():
        root.mkdir(parents=True, exist_ok=True)
        for old in root.glob(".incoming-*"):  # what a crash left half-written
            shutil.rmtree(old, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=root))
        try:
            for name, data in files.items():
                p = PurePosixPath(name)
                target = tmp / ("adapter" if p.parent == PurePosixPath(".") else str(p.parent))
                target.mkdir(parents=True, exist_ok=True)
                _write(target / p.name, data)
            _write(tmp / "card.json", json.dumps(card, sort_keys=True, indent=2).encode())
            try:
                os.rename(tmp, dest)
            except OSError:
                if not (dest / "card.json").exists():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)  # another check installed it meanwhile
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    card = json.loads((dest / "card.json").read_text("utf-8"))
    return ModelVersion(
        model_id, dest, str(card.get("base_model")), Path(card["base_dir"]), dest / "adapter", card
    )


def _read_zip(payload: bytes, model_id: str) -> dict[str, bytes]:
    try:
        z = zipfile.ZipFile(io.BytesIO(payload))
    except zipfile.BadZipFile as e:
        raise AdapterRefused(f"The served adapter of {model_id} is not a zip file.") from e
    out: dict[str, bytes] = {}
    with z:
        total = 0
        for info in z.infolist():
            if info.is_dir():
                continue
            p = PurePosixPath(info.filename)
            parent = "" if p.parent == PurePosixPath(".") else str(p.parent)
            if p.is_absolute() or ".." in p.parts or parent not in ALLOWED_DIRS or not p.name:
                raise AdapterRefused(
                    f"The served adapter of {model_id} holds an unexpected path {info.filename!r}."
                )
            total += info.file_size
            if total > MAX_ADAPTER_BYTES:
                raise AdapterRefused(f"The served adapter of {model_id} unpacks too large.")
            out[str(p)] = z.read(info)
    return out


def _local_base(studio: Studio, card: dict[str, Any], model_id: str) -> Path:
    """This machine's copy of the card's base model (a catalog id: never a path or hub id a
    serving node names), checked against the card's base model hash."""
    from studio.train import catalog

    name = str(card.get("base_model") or "")
    if name not in catalog.CATALOG:
        raise AdapterRefused(
            f"{model_id} is built on {name!r}, which is not a base model this validator knows.",
            hint="Install that base model here to validate its versions.",
        )
    base = catalog.resolve_base(name, Path(studio.paths.models)).dir
    if card.get("base_model_hash") and catalog.base_model_hash(base) != card["base_model_hash"]:
        raise AdapterRefused(f"This machine's {name} is not the base {model_id} was trained on.")
    return Path(base)


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


class FetchedModels:
    """The Studio's models as a re-run sees them: the report's model id resolves to the adapter
    fetched and verified for it; the rest (bases, loading, serving) is the Studio's own."""

    def __init__(self, models: Any, fetched: dict[str, Any]) -> None:
        self._models = models
        self._fetched = fetched

    def get(self, model_id: str) -> Any:
        return self._fetched.get(model_id) or self._models.get(model_id)

    def load(self, model_id: str, device: str = "cpu") -> tuple[Any, Any]:
        from peft import PeftModel

        from studio.train.serving import load_base

        mv = self.get(model_id)
        if model_id not in self._fetched:
            return self._models.load(model_id, device)  # type: ignore[no-any-return]
        model, tokenizer = load_base(mv.base_dir, device)
        model = PeftModel.from_pretrained(model, str(mv.adapter_dir), is_trainable=False)
        model.to(device)
        model.eval()
        return model, tokenizer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._models, name)
