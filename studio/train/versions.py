"""Model versions: base models and fine-tuned versions (list, status, get, load) and inference
(one adapter server per base model). The rest of ModelFactory builds on this."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.core.cancel import CancelToken
from studio.core.errors import InvalidInput, NotFound
from studio.core.events import EventBus
from studio.core.jobs import pid_alive
from studio.train import catalog

if TYPE_CHECKING:
    from studio.chain.context import OnChain
    from studio.core.datanets import Datanets
    from studio.core.paths import Paths
    from studio.core.store import Store

RESUMABLE = ("cancelled", "failed", "interrupted", "queued")


@dataclass
class ModelVersion:
    id: str
    dir: Path
    base: str
    base_dir: Path
    adapter_dir: Path | None  # None for a base model
    card: dict[str, Any]

    @property
    def is_base(self) -> bool:
        return self.adapter_dir is None


def parse_datanet_spec(spec: str) -> tuple[str, int | None]:
    name, _, ver = spec.partition("@")
    if not name:
        raise InvalidInput(f"Bad Datanet {spec!r}.", hint="Use NAME or NAME@VERSION.")
    if ver:
        if not ver.isdigit():
            raise InvalidInput(
                f"Bad snapshot version in {spec!r}.", hint="Use NAME@VERSION, e.g. notes@2."
            )
        return name, int(ver)
    return name, None


def record_to_dict(rec: Any) -> dict[str, Any]:
    if isinstance(rec, dict):
        return dict(rec)
    if dataclasses.is_dataclass(rec) and not isinstance(rec, type):
        return dataclasses.asdict(rec)
    return dict(vars(rec))


class ModelVersions:
    """The `models` table and the model folders of the data home."""

    def __init__(
        self,
        *,
        paths: Paths,
        store: Store,
        events: EventBus,
        datanets: Datanets,
        on_chain: OnChain | None = None,
    ) -> None:
        """`datanets`: where training data comes from; `on_chain`: the chain and the store,
        needed only to register a version (the Studio facade passes itself: its chain is lazy)."""
        self.paths = paths
        self.store = store
        self.events = events
        self.datanets = datanets
        self.on_chain = on_chain
        self.models_dir: Path = paths.models
        self.ft_dir = self.models_dir / "ft"
        self.jobs_dir: Path = paths.jobs
        self._servers: dict[tuple[str, str], Any] = {}

    # -- listing -----------------------------------------------------------------------------
    def _row(self, model_id: str) -> dict[str, Any] | None:
        return self.store.one("SELECT * FROM models WHERE id = ?", (model_id,))

    def _status(self, row: dict[str, Any]) -> str:
        if row["status"] == "training" and not pid_alive(row.get("pid")):
            return "interrupted"
        return str(row["status"])

    def _public(self, row: dict[str, Any]) -> dict[str, Any]:
        datanets = json.loads(row["datanets"])
        return {
            "id": row["id"],
            "kind": "fine-tune",
            "base": row["base"],
            "datanets": [
                {k: d.get(k) for k in ("name", "version", "root", "records")} for d in datanets
            ],
            "status": self._status(row),
            "step": row["step"],
            "total_steps": row["total_steps"],
            "dir": row["dir"],
            "config_hash": row["config_hash"],
            "adapter_hash": row["adapter_hash"],
            "base_model_hash": row["base_model_hash"],
            "registration": json.loads(row["registration"]) if row["registration"] else None,
            "error": row["error"],
            "created_at": row["created_at"],
        }

    def list(self) -> list[dict[str, Any]]:
        """Base models first, then fine-tuned versions oldest → newest (newest last)."""
        rows = self.store.query("SELECT * FROM models ORDER BY created_at, rowid")
        return catalog.list_bases(self.models_dir) + [self._public(r) for r in rows]

    def status(self, model_id: str) -> dict[str, Any]:
        row = self._row(model_id)
        if row is None:
            raise NotFound(f"No fine-tuned model {model_id!r}.", hint="See `studio model list`.")
        return self._public(row)

    # -- one model ---------------------------------------------------------------------------
    def get(self, model_id: str) -> ModelVersion:
        row = self._row(model_id)
        if row is None:
            if model_id in catalog.CATALOG or Path(model_id).expanduser().exists():
                base = catalog.resolve_base(model_id, self.models_dir)
                return ModelVersion(base.id, base.dir, base.id, base.dir, None, {})
            raise NotFound(
                f"No model {model_id!r}.",
                hint="See `studio model list`, or pass a base model id or folder.",
            )
        status = self._status(row)
        out = Path(row["dir"])
        if status != "ready" or not (out / "card.json").exists():
            hint = (
                "Wait for training to finish (`studio model list`)."
                if status == "training"
                else f"Run `studio model resume {model_id}` to finish it."
            )
            raise NotFound(f"Model {model_id!r} is not finished (status: {status}).", hint=hint)
        card = json.loads((out / "card.json").read_text("utf-8"))
        base_dir = Path(card.get("base_dir") or row["base_dir"])
        return ModelVersion(row["id"], out, row["base"], base_dir, out / "adapter", card)

    def load(self, model_id: str, device: str = "cpu") -> tuple[Any, Any]:
        """(model, tokenizer): a fresh copy with the adapter attached, eval mode, deterministic."""
        from peft import PeftModel

        from studio.train.serving import load_base
        from studio.train.trainer import quiet_transformers

        quiet_transformers()
        mv = self.get(model_id)
        model, tokenizer = load_base(mv.base_dir, device)
        if mv.adapter_dir is not None:
            model = PeftModel.from_pretrained(model, str(mv.adapter_dir), is_trainable=False)
            model.to(device)
        model.eval()
        return model, tokenizer

    # -- inference ---------------------------------------------------------------------------
    def server(self, base_dir: Path, device: str = "cpu") -> Any:
        """One AdapterServer per (base, device): adapters of the same base share it."""
        from studio.train.serving import AdapterServer
        from studio.train.trainer import quiet_transformers

        quiet_transformers()
        key = (str(Path(base_dir).resolve()), device)
        if key not in self._servers:
            self._servers[key] = AdapterServer(Path(base_dir), device)
        return self._servers[key]

    def generate(
        self,
        model_id: str,
        prompt: str,
        *,
        max_new_tokens: int = 64,
        seed: int = 0,
        temperature: float = 0.0,
        top_p: float = 1.0,
        top_k: int = 0,
        chat: bool = True,
        on_token: Callable[[str], None] | None = None,
        device: str = "cpu",
    ) -> str:
        from studio.train.serving import BASE

        if not prompt:
            raise InvalidInput("The prompt is empty.")
        mv = self.get(model_id)
        srv = self.server(mv.base_dir, device)
        name = BASE
        if mv.adapter_dir is not None:
            srv.add_adapter(mv.id, mv.adapter_dir)
            name = mv.id
        return str(
            srv.generate(
                name,
                prompt,
                max_new_tokens=max_new_tokens,
                seed=seed,
                temperature=temperature,
                top_p=top_p,
                top_k=top_k,
                chat=chat,
                on_token=on_token,
            )
        )

    # -- training: prepare -------------------------------------------------------------------
    def snapshot(
        self, spec: str, *, cancel: CancelToken | None = None
    ) -> tuple[dict[str, Any], Sequence[Any]]:
        """NAME[@VERSION] → (provenance entry, snapshot records)."""
        name, version = parse_datanet_spec(spec)
        dn = self.datanets
        try:
            snap = dn.get_snapshot(name, version)
        except NotFound as e:
            raise NotFound(
                f"Datanet {spec!r} has no such snapshot: {e}",
                hint=f"Take one with `studio datanet snapshot {name}`.",
            ) from e
        records = list(dn.snapshot_records(name, snap["version"], cancel=cancel))
        if not records:
            raise InvalidInput(
                f"Snapshot {name}@{snap['version']} is empty.",
                hint="Accept records and take a new snapshot.",
            )
        entry = {
            "name": name,
            "version": int(snap["version"]),
            "root": snap["root"],
            "records": len(records),
            "record_ids": [int(record_to_dict(r)["record_id"]) for r in records],
        }
        return entry, records

    def _update(self, model_id: str, **cols: Any) -> None:
        if not cols:
            return
        sets = ", ".join(f"{k} = ?" for k in cols)
        with self.store.transaction():
            self.store.execute(f"UPDATE models SET {sets} WHERE id = ?", (*cols.values(), model_id))
