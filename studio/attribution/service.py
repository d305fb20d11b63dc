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

import numpy as np

from studio.attribution import report as R
from studio.attribution.gradients import GradientConfig
from studio.attribution.span import SpanConfig, SpanIndex, default_min_len
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
HYBRID_RULE = (
    "score = 0.5 * gradient share + 0.5 * span share, where a share is the record's clipped "
    "score divided by the sum over records; a method with no positive score gives its half "
    "to the other"
)
JOB = "attribution.index"
MAX_SPANS_PER_RECORD = 8  # in output order; the full list is in the report's "spans"


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


@dataclass
class Scored:
    """One query's per-record scores under a method, before the report is built."""

    method: str
    records: list[dict[str, Any]]  # datanet, version, record_id, contributor, leaf (sorted)
    scores: np.ndarray  # the method's score per record (rounded)
    gradient: np.ndarray | None  # the gradient (or exact) part, per record
    span: np.ndarray | None  # the span part, per record
    record_spans: dict[int, list[dict[str, Any]]]  # record index -> output spans it contains
    spans: list[dict[str, Any]]  # every output span found in the training data
    output_tokens: int
    params: dict[str, Any]


def adapter_files_digest(adapter_dir: Path) -> str:
    """sha256 over the adapter's weight files (names and bytes), to notice a swapped adapter."""
    h = hashlib.sha256()
    files = sorted(p for p in Path(adapter_dir).glob("*") if p.suffix in (".safetensors", ".bin"))
    for p in files:
        h.update(p.name.encode() + b"\0" + bytes.fromhex(file_sha256(p)))
    return "0x" + h.hexdigest()


def _first(d: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for k in keys:
        if isinstance(d, dict) and d.get(k) is not None:
            return d[k]
    return default


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
        self._loaded: dict[str, tuple[Any, Any]] = {}

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
        if model_id not in self._loaded:
            import torch

            from studio.train.trainer import quiet_transformers

            quiet_transformers()
            model, tok = self.models.load(model_id)
            model.eval()
            torch.manual_seed(0)
            self._loaded[model_id] = (model, tok)
        return self._loaded[model_id]

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
            si = SpanIndex.open(path)
            want = [{k: s[k] for k in ("datanet", "version", "root")} for s in self.snapshots(info)]
            if si.meta["identity"].get("snapshots") != want:
                raise AttributionError(
                    "The span index was built for other snapshots than this model's.",
                    hint=f"Rebuild it: studio attribution index {info.id}.",
                )
            return si
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
        if top_k < 1:
            raise InvalidInput("The number of top records must be at least 1.")
        if not prompt or not prompt.strip():
            raise InvalidInput("The prompt is empty.", hint="Give the question that was asked.")
        if output is not None and not output.strip():
            raise InvalidInput(
                "The output is empty: there is nothing to attribute.",
                hint="Give a non-empty output, or a prompt the model answers.",
            )
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
        """Per-record scores of one query (token ids + labels) under a method, with the spans
        of the output found in the training data (shown whatever the method)."""
        from studio.attribution import gradients as G

        model, tok = self.load(info.id)
        out_ids = [t for t, y in zip(ids, labels, strict=True) if y != G.IGNORE]
        gi = self._gradient_index(info) if method in ("gradient", "hybrid") else None
        rows: list[dict[str, Any]] = []
        grad_scores = span_scores = None
        params: dict[str, Any] = {}
        if gi is not None:
            cfg = gi.config
            mods = G.find_lora_modules(model, cfg)
            gi.check_modules(mods)
            qg = G.batch_gradients(model, mods, [(ids, labels)], _pad_id(tok))[0]
            grad_scores = gi.scores(qg)
            rows = gi.records
            params["gradient"] = {
                "seed": cfg.seed,
                "proj_dim": cfg.proj_dim,
                "damping": cfg.damping,
                "curvature": cfg.curvature,
                "examples": gi.meta["n"],
                "dim": gi.meta["dim"],
            }
        check(cancel)
        if method == "exact":
            from studio.attribution.replay import exact_scores

            rows, grad_scores, params["exact"] = exact_scores(
                self, info, [(ids, labels)], block=exact_block, cancel=cancel
            )
            grad_scores = grad_scores[0]
        si = self._span_index(info, tok)
        check(cancel)
        scfg = SpanConfig(min_len=span_min_len or default_min_len(len(tok)))
        spans = si.find_spans(out_ids, scfg)
        if method in ("span", "hybrid"):
            by_row = si.record_scores(spans, scfg)
            span_scores = np.zeros(len(si.records))
            for row_i, value in by_row.items():
                span_scores[row_i] = value
            rows = rows or si.records
            params["span"] = {
                **scfg.to_dict(),
                "weight": "sum of -log unigram p over span tokens / occurrences",
            }
            if gi is not None and [(x["datanet"], x["record_id"]) for x in gi.records] != [
                (x["datanet"], x["record_id"]) for x in si.records
            ]:
                raise AttributionError(
                    "The gradient and span indexes cover different records.",
                    hint=f"Rebuild them: studio attribution index {info.id}.",
                )
        if method == "hybrid":
            params["hybrid"] = HYBRID_RULE

        # Rows (examples) -> records: a long text record may have several windows.
        keys = sorted({(x["datanet"], x["version"], x["record_id"]) for x in rows})
        pos = {k: i for i, k in enumerate(keys)}
        first_row: dict[tuple[str, int, int], dict[str, Any]] = {}
        for x in rows:
            first_row.setdefault((x["datanet"], x["version"], x["record_id"]), x)
        recs = [first_row[k] for k in keys]

        def per_record(vals: np.ndarray | None) -> np.ndarray | None:
            if vals is None:
                return None
            acc = np.zeros(len(keys))
            for x, v in zip(rows, vals, strict=True):
                acc[pos[(x["datanet"], x["version"], x["record_id"])]] += v
            return np.array([R.rounded(x) for x in acc])

        g = per_record(grad_scores)
        sp_rec = per_record(span_scores)
        if method in ("gradient", "exact"):
            final = g
        elif method == "span":
            final = sp_rec
        else:
            final = _hybrid(g, sp_rec)
        assert final is not None

        # Which output spans each record contains (shown with the record, whatever the method).
        row_to_rec: dict[int, int] = {}
        for i, x in enumerate(si.records):
            key = (x["datanet"], x["version"], x["record_id"])
            if key in pos:
                row_to_rec[i] = pos[key]
        rec_spans: dict[int, list[dict[str, Any]]] = {}
        span_list = []
        for sp in spans:
            text = tok.decode(out_ids[sp.start : sp.end], skip_special_tokens=True)
            span_list.append(
                {
                    "text": text,
                    "output_tokens": [sp.start, sp.end],
                    "occurrences": sp.count,
                    "weight": R.rounded(sp.weight),
                }
            )
            for rec_i in sorted({row_to_rec[x] for x in sp.records if x in row_to_rec}):
                rec_spans.setdefault(rec_i, []).append(
                    {"text": text, "output_tokens": [sp.start, sp.end], "occurrences": sp.count}
                )
        return Scored(method, recs, final, g, sp_rec, rec_spans, span_list, len(out_ids), params)

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
        method, recs, g, sp_rec = scored.method, scored.records, scored.gradient, scored.span
        ranked = R.rank_records(recs, list(scored.scores))
        params = dict(scored.params)
        names = [d["datanet"] for d in self.snapshots(info)]
        if owners is None:
            owners = self._owners(names)
        owners = {n: owners.get(n) for n in names}
        params["owners"] = owners
        payees, per_datanet, pool = R.split_weights(recs, ranked, top_k, owners)
        top = []
        for rank, (i, sc) in enumerate(ranked[:top_k], start=1):
            rec = recs[i]
            entry = {
                "rank": rank,
                "record_id": rec["record_id"],
                "datanet": rec["datanet"],
                "version": rec["version"],
                "contributor": rec["contributor"],
                "leaf": rec.get("leaf"),
                "score": sc,
                "spans": scored.record_spans.get(i, [])[:MAX_SPANS_PER_RECORD],
            }
            if method == "hybrid":
                entry["gradient_score"] = float(max(0.0, g[i])) if g is not None else 0.0
                entry["span_score"] = float(sp_rec[i]) if sp_rec is not None else 0.0
            top.append(entry)
        datanet_w = R.largest_remainder({k: v for k, v in per_datanet.items()})
        snaps = {d["datanet"]: d for d in self.snapshots(info)}
        rep: dict[str, Any] = {
            "format": R.FORMAT,
            "model": {
                "id": info.id,
                "base": _first(info.card, "base_model", "base"),
                "base_model_hash": info.card.get("base_model_hash"),
                "adapter_hash": info.card.get("adapter_hash"),
                "config_hash": info.card.get("config_hash"),
            },
            "snapshots": self.snapshots(info),
            "method": {"name": method, "params": params},
            "input": {"prompt": prompt, "prompt_hash": R.keccak_hex(prompt.encode("utf-8"))},
            "output": {
                "text": output,
                "output_hash": R.keccak_hex(output.encode("utf-8")),
                "tokens": scored.output_tokens,
                "generated": generated,
            },
            "records_scored": len(recs),
            "records_positive": len(ranked),
            "top_records": top,
            "spans": scored.spans,
            "pool": {"rule": R.POOL_RULE, "pooled": pool},
            "datanets": [
                {
                    "datanet": d["contributor"],
                    "version": snaps[d["contributor"]]["version"],
                    "bps": d["bps"],
                }
                for d in datanet_w
            ],
            "weights": R.largest_remainder(payees),
        }
        rep["report_hash"] = R.compute_hash(rep)
        if signer is not None:
            rep = R.sign(rep, signer)
        return rep

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
        rep = load_report(report)
        claimed = rep.get("report_hash")
        content_hash = R.compute_hash(rep)
        problems: list[str] = []
        if claimed != content_hash:
            problems.append("report_hash")
        sig_state = "absent"
        if rep.get("signature"):
            try:
                who = R.recover_signer({**rep, "report_hash": claimed})
                ok = (
                    who is not None
                    and who.lower() == str(rep["signature"].get("signer", "")).lower()
                )
            except Exception:  # noqa: BLE001 - a malformed signature is simply invalid
                ok = False
            sig_state = "valid" if ok else "invalid"
            if not ok:
                problems.append("signature")
        try:
            method = rep["method"]["name"]
            params = rep["method"]["params"]
            rerun = self.attribute(
                rep["model"]["id"],
                rep["input"]["prompt"],
                rep["output"]["text"],
                method=method,
                top_k=int(params["top_k"]),
                span_min_len=(params.get("span") or {}).get("min_len"),
                owners=params.get("owners"),
                exact_block=(params.get("exact") or {}).get("block"),
            )
        except (KeyError, TypeError) as e:
            raise AttributionError(
                f"The report is missing a field needed to re-run it ({e}).",
                hint="Pass a report written by studio attribute.",
            ) from e
        rerun["output"]["generated"] = rep.get("output", {}).get(
            "generated", rerun["output"]["generated"]
        )
        rerun["report_hash"] = R.compute_hash(rerun)
        differences = R.diff(R.body(rep), R.body(rerun))
        problems += differences
        # Another CPU may round a float32 gradient differently in the last bit; a difference that
        # is only that (scores within 1e-4 relative, bps within 1) is reported as such.
        noise = [
            p
            for p in differences
            if R.within_tolerance(R.get_path(rep, p), R.get_path(rerun, p), p)
        ]
        return {
            "match": not problems,
            "match_within_tolerance": claimed == content_hash
            and sig_state != "invalid"
            and set(differences) == set(noise),
            "float_noise": noise,
            "differences": problems,
            "report_hash": claimed,
            "recomputed_hash": rerun["report_hash"],
            "signature": sig_state,
            "signer": (rep.get("signature") or {}).get("signer"),
        }

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


def load_report(report: str | Path | dict[str, Any]) -> dict[str, Any]:
    if isinstance(report, dict):
        return report
    p = Path(report)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise NotFound(f"No report at {p}.") from e
    except (OSError, ValueError) as e:
        raise AttributionError(
            f"{p} is not a readable report ({e}).",
            hint="Pass the JSON written by studio attribute.",
        ) from e
    if not isinstance(data, dict) or data.get("format") != R.FORMAT:
        raise AttributionError(
            f"{p} is not an attribution report.", hint="Pass the JSON written by studio attribute."
        )
    return data


def _hybrid(g: np.ndarray | None, s: np.ndarray | None) -> np.ndarray:
    parts = []
    for v in (g, s):
        if v is None:
            continue
        c = np.clip(v, 0, None)
        tot = float(c.sum())
        if tot > 0:
            parts.append(c / tot)
    if not parts:
        return np.zeros(len(g if g is not None else s))  # type: ignore[arg-type]
    return np.array([R.rounded(x) for x in sum(parts) / len(parts)])


def _pad_id(tok: Any) -> int:
    for t in (tok.pad_token_id, tok.eos_token_id, 0):
        if t is not None:
            return int(t)
    return 0


def _context_length(model: Any, tok: Any) -> int:
    cfg = getattr(model, "config", None)
    n = getattr(cfg, "max_position_embeddings", None)
    if n is None and hasattr(model, "get_base_model"):
        n = getattr(model.get_base_model().config, "max_position_embeddings", None)
    tm = getattr(tok, "model_max_length", None)
    cands = [int(x) for x in (n, tm) if x and int(x) < 10**8]
    return min(cands) if cands else 2048
