"""Attributor: the one entry point the CLI, GUI and node use for Proof of Attribution.

    attributor = studio.attribution   # Attributor(models=, datanets=, events=, paths=)
    attributor.build_index("my-model")               # gradient + span index beside the adapter
    report = attributor.attribute("my-model", "question?", method="hybrid", top_k=5)
    attributor.verify(report)                        # re-run, compare field by field

Methods: "gradient" (influence on the LoRA parameters, needs the index), "span" (verbatim
spans of the output found in the training snapshots), "hybrid" (both; see HYBRID_RULE).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.attribution.gradients import GradientConfig
from studio.attribution.query_cache import QueryCache, card_key, files_key
from studio.attribution.scoring import HYBRID_RULE as HYBRID_RULE
from studio.attribution.scoring import Scored, _first, _pad_id, build_report, score_query
from studio.attribution.span import SpanIndex
from studio.attribution.verification import load_report as load_report
from studio.attribution.verification import verify_report
from studio.core.cancel import CancelToken, check
from studio.core.errors import AttributionError, InvalidInput, NotFound, Suggestion
from studio.core.events import Event
from studio.core.hashing import file_sha256

if TYPE_CHECKING:
    from studio.core.datanets import Datanets
    from studio.core.events import EventBus
    from studio.core.paths import Paths
    from studio.train.factory import ModelFactory

METHODS = ("gradient", "span", "hybrid", "exact")
JOB = "attribution.index"


@dataclass
class ModelInfo:
    """What attribution needs to know about a fine-tuned model (from the ModelFactory)."""

    id: str
    dir: Path
    adapter_dir: Path
    card: dict[str, Any]
    base_dir: Path | None = None

    @property
    def attribution_dir(self) -> Path:
        return self.dir / "attribution"


def adapter_files_digest(adapter_dir: Path) -> str:
    """sha256 over the adapter's weight files (names and bytes), to notice a swapped adapter."""
    h = hashlib.sha256()
    files = sorted(p for p in Path(adapter_dir).glob("*") if p.suffix in (".safetensors", ".bin"))
    for p in files:
        h.update(p.name.encode() + b"\0" + bytes.fromhex(file_sha256(p)))
    return "0x" + h.hexdigest()


class Attributor:
    def __init__(
        self, *, models: ModelFactory, datanets: Datanets, events: EventBus, paths: Paths
    ) -> None:
        """`models`: the fine-tuned versions and their training snapshots' provenance;
        `datanets`: those snapshots' records; `paths`: where reports are saved."""
        self.models = models
        self.datanets = datanets
        self.events = events
        self.paths = paths
        self._cache = QueryCache()  # per model: loaded model, index + LoRA modules, span index

    # -- the model and its training data -----------------------------------------------------

    def model_info(self, model_id: str) -> ModelInfo:
        v = self.models.get(model_id)
        adapter_dir = getattr(v, "adapter_dir", None)
        card = dict(getattr(v, "card", None) or {})
        if adapter_dir is None or not Path(adapter_dir).exists() or not card.get("datanets"):
            raise AttributionError(
                f"{model_id} is a base model: attribution needs a model fine-tuned on Datanets.",
                hint="Fine-tune one on a Datanet first, then attribute that model.",
                suggest=Suggestion("model train", {"datanet": ["NAME"]}),
            )
        base_dir = getattr(v, "base_dir", None)
        return ModelInfo(
            str(v.id), Path(v.dir), Path(adapter_dir), card, Path(base_dir) if base_dir else None
        )

    def load(self, model_id: str) -> tuple[Any, Any]:
        """The model and tokenizer, loaded once and reused until the adapter's files change."""

        def make() -> tuple[Any, Any]:
            import torch

            from studio.train.trainer import quiet_transformers

            quiet_transformers()
            model, tok = self.models.load(model_id)
            model.eval()
            torch.manual_seed(0)
            return model, tok

        adapter = getattr(self.models.get(model_id), "adapter_dir", None)
        key = files_key(Path(adapter) if adapter else None)
        return self._cache.get("model", model_id, key, make)  # type: ignore[no-any-return]

    def gradient_parts(self, info: ModelInfo) -> tuple[Any, list[Any]]:
        """The opened, identity-checked gradient index and the model's LoRA modules (with their
        projections), reused across queries while the adapter, the index and the card are
        unchanged (see query_cache.py)."""
        from studio.attribution import gradients as G

        model, _ = self.load(info.id)

        def make() -> tuple[Any, list[Any]]:
            gi = self._gradient_index(info)
            mods = G.find_lora_modules(model, gi.config)
            gi.check_modules(mods)
            return gi, mods

        key = (id(model), files_key(info.adapter_dir, self.gradient_dir(info)), card_key(info.card))
        return self._cache.get("gradient", info.id, key, make)  # type: ignore[no-any-return]

    def _train_settings(self, info: ModelInfo) -> dict[str, Any]:
        tc = _first(info.card, "training_config", "training", default={}) or {}
        return {
            "fmt": _first(tc, "fmt", "format", default="auto"),
            "max_length": int(_first(tc, "max_length", "max_seq_len", default=512)),
            # Records held out for validation did not shape the model: they are not indexed.
            "val_split": float(_first(tc, "val_split", default=0.0)),
            "seed": int(_first(tc, "seed", default=0)),
        }

    def snapshots(self, info: ModelInfo) -> list[dict[str, Any]]:
        return [
            {
                "datanet": d["name"],
                "version": int(d["version"]),
                "root": d["root"],
                "records": int(d.get("records", 0)),
            }
            for d in info.card["datanets"]
        ]

    def training_records(self, info: ModelInfo) -> list[Any]:
        """The snapshot records the model was trained on, in the card's datanet order."""
        out: list[Any] = []
        for d in info.card["datanets"]:
            try:
                recs = list(self.datanets.snapshot_records(d["name"], int(d["version"])))
            except NotFound as e:
                raise AttributionError(
                    f"Datanet {d['name']} snapshot {d['version']} (the model's training data) is not in this "
                    "data home.",
                    hint="Attribution needs the snapshot the model was trained on.",
                ) from e
            ids = d.get("record_ids")
            if ids is not None:
                keep = {int(i) for i in ids}
                recs = [r for r in recs if int(r.record_id) in keep]
            out.extend(recs)
        return out

    def identity(self, info: ModelInfo, cfg: GradientConfig) -> dict[str, Any]:
        return {
            "model": info.id,
            "adapter_hash": info.card.get("adapter_hash") or adapter_files_digest(info.adapter_dir),
            "adapter_files": adapter_files_digest(info.adapter_dir),
            "snapshots": [
                {k: s[k] for k in ("datanet", "version", "root")} for s in self.snapshots(info)
            ],
            "config": cfg.to_dict(),
            "format": self._train_settings(info),
        }

    def _examples(self, info: ModelInfo, tokenizer: Any) -> list[Any]:
        from studio.train.data import examples_from_snapshot

        records = self.training_records(info)
        settings = self._train_settings(info)
        exs = examples_from_snapshot(
            records, tokenizer, max_length=settings["max_length"], fmt=settings["fmt"]
        )
        if settings["val_split"] > 0:
            from studio.train.trainer import split_examples

            exs, _ = split_examples(exs, settings["val_split"], settings["seed"])
        leaves = {
            (r.datanet, int(r.version), int(r.record_id)): getattr(r, "leaf", None) for r in records
        }
        for e in exs:
            e.leaf = leaves.get((e.datanet, int(e.version), int(e.record_id)))  # type: ignore[attr-defined]
        return exs

    # -- index ---------------------------------------------------------------------------------

    def gradient_dir(self, info: ModelInfo) -> Path:
        return info.attribution_dir / "gradient"

    def span_dir(self, info: ModelInfo) -> Path:
        return info.attribution_dir / "span"

    def build_index(
        self,
        model_id: str,
        *,
        config: GradientConfig | None = None,
        cancel: CancelToken | None = None,
        force: bool = False,
    ) -> dict[str, Any]:
        """Build (or resume) the gradient index and the span index for a fine-tuned model. An
        index that already matches this model, its snapshots and the settings is kept unless
        `force` (re-running is cheap and safe)."""
        from studio.attribution.index import GradientIndex, build_gradient_index

        info = self.model_info(model_id)
        cfg = config or GradientConfig()
        ident = self.identity(info, cfg)
        path = self.gradient_dir(info)
        if (
            not force
            and (path / "meta.json").exists()
            and (self.span_dir(info) / "meta.json").exists()
        ):
            try:
                gi = GradientIndex.open(path)
                gi.check_identity(ident)
                si = SpanIndex.open(self.span_dir(info))
                return self._index_summary(info, gi, si, reused=True)
            except AttributionError:
                pass  # stale or damaged: rebuild below
        model, tok = self.load(model_id)
        exs = self._examples(info, tok)
        events = self.events
        events.progress(JOB, 0, len(exs), f"gradient index over {len(exs)} training examples")

        def progress(step: int, total: int, msg: str) -> None:
            events.progress(JOB, step, total, msg)

        gi = build_gradient_index(
            self.gradient_dir(info),
            model,
            exs,
            ident,
            pad_id=_pad_id(tok),
            progress=progress,
            cancel=cancel,
        )
        check(cancel)
        si = self._build_span(info, tok, exs)
        return self._index_summary(info, gi, si, reused=False)

    def _index_summary(
        self, info: ModelInfo, gi: Any, si: SpanIndex, *, reused: bool
    ) -> dict[str, Any]:
        return {
            "model": info.id,
            "records": len({(r["datanet"], r["record_id"]) for r in gi.records}),
            "examples": gi.meta["n"],
            "dim": gi.meta["dim"],
            "span_tokens": si.meta["tokens"],
            "path": str(info.attribution_dir),
            "reused": reused,
        }

    def _build_span(self, info: ModelInfo, tok: Any, exs: Sequence[Any]) -> SpanIndex:
        ident = {
            "model": info.id,
            "snapshots": [
                {k: s[k] for k in ("datanet", "version", "root")} for s in self.snapshots(info)
            ],
            "format": self._train_settings(info),
            "tokenizer_vocab": len(tok),
        }
        rows = [
            {
                "record_id": int(e.record_id),
                "datanet": e.datanet,
                "version": int(e.version),
                "contributor": e.contributor,
                "leaf": getattr(e, "leaf", None),
            }
            for e in exs
        ]
        si = SpanIndex.build([e.input_ids for e in exs], rows, len(tok), ident)
        si.save(self.span_dir(info))
        return si

    def _gradient_index(self, info: ModelInfo) -> Any:
        from studio.attribution.index import GradientIndex

        path = self.gradient_dir(info)
        if not (path / "meta.json").exists():
            raise AttributionError(
                f"{info.id} has no attribution index yet.",
                hint=f"Build it first: studio attribution index {info.id} (or use the span method).",
                suggest=Suggestion("attribution index", {"model": info.id}),
            )
        gi = GradientIndex.open(path)
        gi.check_identity(self.identity(info, gi.config))
        return gi

    def _span_index(self, info: ModelInfo, tok: Any) -> SpanIndex:
        path = self.span_dir(info)
        if (path / "meta.json").exists():

            def make() -> SpanIndex:
                si = SpanIndex.open(path)
                want = [
                    {k: s[k] for k in ("datanet", "version", "root")} for s in self.snapshots(info)
                ]
                if si.meta["identity"].get("snapshots") != want:
                    raise AttributionError(
                        "The span index was built for other snapshots than this model's.",
                        hint=f"Rebuild it: studio attribution index {info.id}.",
                    )
                return si

            key = (files_key(path), card_key(info.card))
            return self._cache.get("span", info.id, key, make)  # type: ignore[no-any-return]
        # The span index is cheap (no gradients): build it on first use.
        return self._build_span(info, tok, self._examples(info, tok))

    # -- attribution ---------------------------------------------------------------------------

    def attribute(
        self,
        model_id: str,
        prompt: str,
        output: str | None = None,
        *,
        method: str = "gradient",
        top_k: int = 10,
        signer: Any = None,
        max_new_tokens: int = 64,
        seed: int = 0,
        span_min_len: int | None = None,
        owners: dict[str, str | None] | None = None,
        exact_block: int | None = None,
        cancel: CancelToken | None = None,
    ) -> dict[str, Any]:
        """Attribute `output` (generated from `prompt` when None) to the model's training records.
        Read only (the span index aside, built on first use by an atomic rename): a cancel stops it.

        `owners` maps each Datanet to the address its pooled share goes to (see report.py); by
        default the owner the Datanets store knows, if any. The owners used are in the report so
        that a verifier re-runs with the same ones. Scoring (`score`) and the report built from
        the scores (`build_report`) are separate steps."""
        from studio.train.data import encode_query

        if method not in METHODS:
            raise InvalidInput(
                f"Unknown method {method!r}.", hint=f"Use one of: {', '.join(METHODS)}."
            )
        self.check_query(prompt, output, top_k)
        info = self.model_info(model_id)
        if method == "exact":
            from studio.attribution.replay import check_exact

            check_exact(self, info)  # refuse before generating anything
        if (
            method in ("gradient", "hybrid")
            and not (self.gradient_dir(info) / "meta.json").exists()
        ):
            # First use: build the index now, with a progress line (later calls reuse it).
            self.events.emit(
                Event(
                    "log",
                    job=JOB,
                    message=f"{model_id} has no attribution index yet: building it now "
                    "(once; later calls reuse it)",
                )
            )
            self.build_index(model_id, cancel=cancel)
        model, tok = self.load(model_id)
        check(cancel)
        generated = output is None
        if generated:
            output = self.models.generate(
                model_id, prompt, max_new_tokens=max_new_tokens, seed=seed, temperature=0.0
            )
        if not output or not output.strip():
            raise InvalidInput(
                "The output is empty: there is nothing to attribute.",
                hint="Give a non-empty output, or a prompt the model answers.",
            )
        context = _context_length(model, tok)
        settings = self._train_settings(info)
        ids, labels = encode_query(
            tok, prompt, output, chat=settings["fmt"] == "auto", max_length=context
        )
        check(cancel)
        scored = self.score(
            info,
            ids,
            labels,
            method=method,
            span_min_len=span_min_len,
            exact_block=exact_block,
            cancel=cancel,
        )
        scored.params["top_k"] = top_k
        return self.build_report(
            info,
            scored,
            prompt=prompt,
            output=output,
            generated=generated,
            top_k=top_k,
            owners=owners,
            signer=signer,
        )

    def score(
        self,
        info: ModelInfo,
        ids: Sequence[int],
        labels: Sequence[int],
        *,
        method: str,
        span_min_len: int | None = None,
        exact_block: int | None = None,
        cancel: Any = None,
    ) -> Scored:
        """Per-record scores of one query (token ids + labels) under a method (see scoring.py)."""
        return score_query(
            self,
            info,
            ids,
            labels,
            method=method,
            span_min_len=span_min_len,
            exact_block=exact_block,
            cancel=cancel,
        )

    def build_report(
        self,
        info: ModelInfo,
        scored: Scored,
        *,
        prompt: str,
        output: str,
        generated: bool,
        top_k: int,
        owners: dict[str, str | None] | None = None,
        signer: Any = None,
    ) -> dict[str, Any]:
        """The report (records -> contributors -> bps), hashed and optionally signed."""
        return build_report(
            self,
            info,
            scored,
            prompt=prompt,
            output=output,
            generated=generated,
            top_k=top_k,
            owners=owners,
            signer=signer,
        )

    @staticmethod
    def check_query(prompt: str, output: str | None, top_k: int) -> None:
        if top_k < 1:
            raise InvalidInput("The number of top records must be at least 1.")
        if not prompt or not prompt.strip():
            raise InvalidInput("The prompt is empty.", hint="Give the question that was asked.")
        if output is not None and not output.strip():
            raise InvalidInput(
                "The output is empty: there is nothing to attribute.",
                hint="Give a non-empty output, or a prompt the model answers.",
            )

    # -- exact attribution: cost and choice (for the CLI, the GUI and the node's validator) ----

    def exact_estimate(self, model_id: str, queries: int = 1) -> dict[str, Any]:
        """Memory and time an exact attribution needs here ({"memory_bytes", "seconds", "fits",
        "summary", ...}); raises AttributionError when the version has no replay record."""
        from studio.attribution.replay import estimate

        return estimate(self, model_id, queries)

    def choose_method(self, model_id: str, fallback: str = "gradient") -> str:
        """ "exact" when this version can be attributed exactly on this machine, else fallback
        (what a validator uses to decide a challenge)."""
        from studio.attribution.replay import choose_method

        return choose_method(self, model_id, fallback)

    def exact_job(
        self,
        model_id: str,
        prompt: str,
        output: str | None = None,
        *,
        top_k: int = 10,
        owners: dict[str, str | None] | None = None,
        max_new_tokens: int = 64,
    ) -> Any:
        """An exact attribution prepared as a job (see exact_job.py): `.estimate` to show before
        it starts; `start_exact_job` runs it in a subprocess; re-preparing the same query resumes."""
        from studio.attribution import exact_job

        return exact_job.prepare(
            self,
            model_id,
            prompt,
            output,
            top_k=top_k,
            owners=owners,
            max_new_tokens=max_new_tokens,
        )

    def start_exact_job(self, job: Any) -> Any:
        """The job subprocess (a JobProcess: follow/cancel/kill/wait)."""
        from studio.attribution import exact_job

        return exact_job.start(self, job)

    def exact_job_report(self, job: Any) -> dict[str, Any]:
        from studio.attribution import exact_job

        return exact_job.result(self, job)

    def run_exact_job(self, key: str, cancel: CancelToken | None = None) -> dict[str, Any]:
        """Inside the job subprocess: run the prepared job `key` to its report."""
        from studio.attribution import exact_job

        return exact_job.run(self, key, cancel)

    def _owners(self, names: Sequence[str]) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for n in names:
            try:
                d = self.datanets.get(n)
            except Exception:  # noqa: BLE001 - an unknown owner only disables pooling
                d = {}
            out[n] = _first(d, "owner", "owner_address", "creator", default=None)
        return out

    # -- verification -------------------------------------------------------------------------

    def verify(self, report: str | Path | dict[str, Any]) -> dict[str, Any]:
        """Re-run a report and compare: {"match", "differences", "report_hash", "recomputed_hash", ...}."""
        return verify_report(self, report)

    def save_report(self, report: dict[str, Any], path: str | Path | None = None) -> Path:
        from studio.core.atomic import write_text

        if path is None:
            path = self.paths.home / "reports" / f"{report['report_hash'][2:18]}.json"
        path = Path(path)
        write_text(
            path,
            json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
            mode=0o644,
        )
        return path


def _context_length(model: Any, tok: Any) -> int:
    cfg = getattr(model, "config", None)
    n = getattr(cfg, "max_position_embeddings", None)
    if n is None and hasattr(model, "get_base_model"):
        n = getattr(model.get_base_model().config, "max_position_embeddings", None)
    tm = getattr(tok, "model_max_length", None)
    cands = [int(x) for x in (n, tm) if x and int(x) < 10**8]
    return min(cands) if cands else 2048
