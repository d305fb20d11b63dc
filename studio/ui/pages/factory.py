"""ModelFactory: base model and snapshots, a hyperparameter form with defaults, validation and an
estimate, the device; start/cancel/resume of the training subprocess; live loss curve (pyqtgraph),
tokens/s, ETA and the run log; the model card; register on chain; versions side by side."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from studio.ui import theme
from studio.ui.ops import call, op, write_op
from studio.ui.pages import BasePage, button, muted
from studio.ui.pages.plots import LossPlot

if TYPE_CHECKING:
    from studio.app import Studio


def estimate(
    base_dir: Path | None, steps: int, batch: int, length: int, rank: int, device: str
) -> str:
    """A rough memory/time estimate from the base model's config (no weights loaded)."""
    try:
        cfg = json.loads((Path(base_dir) / "config.json").read_text()) if base_dir else {}
    except (OSError, ValueError):
        cfg = {}
    h = int(cfg.get("hidden_size", 576))
    layers = int(cfg.get("num_hidden_layers", 30))
    vocab = int(cfg.get("vocab_size", 49152))
    inter = int(cfg.get("intermediate_size", 4 * h))
    params = layers * (4 * h * h + 3 * h * inter) + vocab * h
    lora = layers * 7 * 2 * rank * h
    weights = params * 4
    acts = batch * length * h * layers * 34
    mem_gb = (weights + acts + lora * 16) / 1e9
    flops = 6 * params * batch * length * steps
    speed = 2e13 if device == "cuda" else 1.5e10
    secs = flops / speed
    when = f"{secs / 60:.0f} min" if secs > 90 else f"{secs:.0f} s"
    return f"≈ {params / 1e6:.1f} M base parameters, {lora / 1e6:.2f} M trainable (LoRA); memory ≈ {mem_gb:.1f} GB; time ≈ {when} on {device}"


class Page(BasePage):
    title = "ModelFactory"
    subtitle = "Fine-tune a base model with LoRA on your Datanet snapshots. Training runs in its own process: the window stays responsive, and the job survives closing it if you ask."

    def __init__(self, ui: Any) -> None:
        super().__init__(ui)
        self.device = "cpu"
        split = QSplitter()
        split.addWidget(self._form())
        self.tabs = QTabWidget()
        self.tabs.addTab(self._run_tab(), "Run")
        self.tabs.addTab(self._card_tab(), "Model card")
        self.tabs.addTab(self._compare_tab(), "Compare")
        self.tabs.currentChanged.connect(self._tab_shown)
        split.addWidget(self.tabs)
        split.setSizes([360, 760])
        split.setStretchFactor(1, 1)
        self.outer.addWidget(split, 1)
        ui.jobs.changed.connect(self._job_changed)
        ui.jobs.finished.connect(lambda m, s: (self.refresh(), self._job_changed(m)))
        ui.changed.connect(lambda w: self.refresh() if w in ("datanets", "models") else None)
        self.selected: str | None = None
        self._device_checked = False
        self._log_of: str | None = None  # the run whose log the Run tab shows, and how many
        self._log_lines = 0  # of its lines it has appended

    # -- layout -------------------------------------------------------------------------------
    def _form(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.setContentsMargins(0, 0, 8, 0)
        form = QFormLayout()
        self.base = QComboBox()
        self.base.setToolTip("The base model LoRA adapts")
        self.snapshot = QComboBox()
        self.snapshot.setToolTip("The Datanet snapshot to train on")
        self.steps = QSpinBox()
        self.steps.setRange(1, 100_000)
        self.steps.setValue(24)
        self.steps.setToolTip("Optimizer steps")
        self.rank = QSpinBox()
        self.rank.setRange(1, 256)
        self.rank.setValue(8)
        self.rank.setToolTip("LoRA rank: adapter capacity (8–16 is typical)")
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(0.00001, 0.1)
        self.lr.setSingleStep(0.0001)
        self.lr.setValue(0.003)
        self.lr.setToolTip("Learning rate")
        self.batch = QSpinBox()
        self.batch.setRange(1, 512)
        self.batch.setValue(2)
        self.batch.setToolTip("Rows per step")
        self.length = QSpinBox()
        self.length.setRange(16, 32768)
        self.length.setValue(192)
        self.length.setToolTip("Maximum tokens per row")
        for label, wd in (
            ("Base model", self.base),
            ("Snapshot", self.snapshot),
            ("Steps", self.steps),
            ("LoRA rank", self.rank),
            ("Learning rate", self.lr),
            ("Batch size", self.batch),
            ("Max length", self.length),
        ):
            wd.setAccessibleName(label)
            form.addRow(label, wd)
            if hasattr(wd, "valueChanged"):
                wd.valueChanged.connect(lambda _v: self._estimate())
        self.base.currentIndexChanged.connect(lambda _i: self._estimate())
        lay.addLayout(form)
        self.device_label = muted("Device: checking…")
        self.device_label.setAccessibleName("Device")
        lay.addWidget(self.device_label)
        self.estimate_label = muted("")
        self.estimate_label.setAccessibleName("Estimate")
        lay.addWidget(self.estimate_label)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        lay.addWidget(self.problem)
        self.start_btn = button(
            "Start training",
            "Freeze the snapshot and start the training job",
            self.start,
            primary=True,
        )
        lay.addWidget(self.start_btn)
        lay.addWidget(QLabel("Models"))
        self.list = QListWidget()
        self.list.setAccessibleName("Models")
        self.list.setToolTip("Fine-tuned model versions; pick one to see its run and card")
        self.list.currentItemChanged.connect(self._picked)
        lay.addWidget(self.list, 1)
        row = QHBoxLayout()
        self.cancel_btn = button("Cancel", "Stop the job (a checkpoint is saved)", self.cancel)
        self.resume_btn = button("Resume", "Continue an interrupted or cancelled job", self.resume)
        self.register_btn = button(
            "Register…", "Register this version in the on-chain ModelRegistry", self.register
        )
        for b in (self.cancel_btn, self.resume_btn, self.register_btn):
            row.addWidget(b)
        lay.addLayout(row)
        self.result = muted("")
        self.result.setAccessibleName("Result")
        lay.addWidget(self.result)
        return w

    def _run_tab(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        self.run_title = QLabel("No run selected")
        lay.addWidget(self.run_title)
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Training progress")
        lay.addWidget(self.progress)
        self.speed = muted("")
        lay.addWidget(self.speed)
        plots = QHBoxLayout()
        self.plot = LossPlot(series="train")
        self.val_plot = LossPlot(series="validation")
        plots.addWidget(self.plot, 3)
        plots.addWidget(self.val_plot, 2)
        lay.addLayout(plots, 2)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setAccessibleName("Run log")
        self.log.setMaximumBlockCount(500)
        lay.addWidget(self.log, 1)
        return w

    def _card_tab(self) -> QWidget:
        self.card = QTextBrowser()
        self.card.setAccessibleName("Model card")
        self.card.setPlaceholderText("Pick a finished model to see its card.")
        return self.card

    def _compare_tab(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.addWidget(
            muted("Every finished version of this home: loss curves and evaluation side by side.")
        )
        # Its plot is built on the tab's first showing: a pyqtgraph plot costs ~20 ms to build and
        # paint, and the page's first visit should stay under 100 ms.
        self._compare_lay = lay
        self.compare_plot: LossPlot | None = None
        self._compare_curves: list[Any] = []
        self.compare = QTextBrowser()
        self.compare.setAccessibleName("Comparison")
        lay.addWidget(self.compare, 1)
        return w

    def _tab_shown(self, index: int) -> None:
        if self.tabs.tabText(index) == "Compare" and self.compare_plot is None:
            self.compare_plot = LossPlot()
            self._compare_lay.insertWidget(1, self.compare_plot, 2)
            self.compare_plot.set_many(self._compare_curves)

    # -- data ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        def load() -> dict[str, Any]:
            models = self.studio.models.list()
            snaps = []
            for d in self.studio.datanets.list():
                for s in self.studio.datanets.snapshots(d["name"]):
                    snaps.append(f"{d['name']}@{s['version']}")
            return {"models": models, "snapshots": snaps}

        op(self, load).success(self._show).run_in_background()
        if not self._device_checked:
            self._device_checked = True
            from studio.ui import hardware

            hardware.probe(self._show_device, self)

    def screenshot_ready(self) -> bool:
        return "checking" not in self.device_label.text() and self.list.count() > 0

    def _show_device(self, info: dict[str, Any]) -> None:
        from studio.ui import hardware

        self.device = str(info.get("device", "cpu"))
        self.device_label.setText(f"Device: {hardware.describe(info)}")
        self._estimate()

    def _show(self, data: dict[str, Any]) -> None:
        models = data["models"]
        self._models = {m["id"]: m for m in models}
        cur_base = self.base.currentData()
        self.base.blockSignals(True)
        self.base.clear()
        for m in models:
            if m.get("kind") == "base":
                self.base.addItem(str(m["id"]), m["id"])
                i = self.base.count() - 1
                self.base.setItemData(i, m["dir"], Qt.ItemDataRole.UserRole + 1)
                self.base.setItemData(i, str(m["name"]), Qt.ItemDataRole.ToolTipRole)
        tuned_bases = [m["base"] for m in models if m.get("kind") == "fine-tune"]
        if cur_base is None and tuned_bases:
            cur_base = tuned_bases[-1]  # the base the newest version was trained on
        if cur_base is not None and self.base.findData(cur_base) >= 0:
            self.base.setCurrentIndex(self.base.findData(cur_base))
        self.base.blockSignals(False)
        cur = self.snapshot.currentText()
        self.snapshot.clear()
        self.snapshot.addItems(data["snapshots"])
        if cur in data["snapshots"]:
            self.snapshot.setCurrentText(cur)
        elif data["snapshots"]:
            self.snapshot.setCurrentIndex(len(data["snapshots"]) - 1)
        keep = self.selected
        self.list.blockSignals(True)
        self.list.clear()
        tuned = [m for m in models if m.get("kind") == "fine-tune"]
        for m in tuned:
            item = QListWidgetItem(f"{m['id']}  ·  {self._state(m)}")
            item.setData(Qt.ItemDataRole.UserRole, m["id"])
            item.setToolTip(
                f"base {m['base']}; trained on "
                + ", ".join(f"{d['name']}@{d['version']}" for d in m["datanets"])
            )
            self.list.addItem(item)
        self.list.blockSignals(False)
        ids = [m["id"] for m in tuned]
        if ids:
            self.list.setCurrentRow(ids.index(keep) if keep in ids else len(ids) - 1)
        self._validate()
        self._estimate()
        self._show_compare(tuned)

    def _state(self, m: dict[str, Any]) -> str:
        job = self.ui.jobs.jobs.get(m["id"])
        if job is not None and job.state == "running":
            return "stalled" if job.stalled else f"training {job.step}/{job.total or '?'}"
        return str(m["status"])

    def _validate(self) -> bool:
        problem = None
        if self.base.count() == 0:
            problem = "No base model found."
        elif self.snapshot.count() == 0:
            problem = "Take a snapshot of a Datanet first (Datanets page)."
        if self.lr.value() > 0.05:
            problem = "A learning rate above 0.05 usually diverges."
        self.problem.setText(problem or "")
        pal = self.problem.palette()
        pal.setColor(self.problem.foregroundRole(), theme.accent("bad"))
        self.problem.setPalette(pal)
        self.start_btn.setEnabled(problem is None)
        return problem is None

    def _estimate(self) -> None:
        base_dir = self.base.currentData(Qt.ItemDataRole.UserRole + 1)
        self.estimate_label.setText(
            "Estimate: "
            + estimate(
                Path(base_dir) if base_dir else None,
                self.steps.value(),
                self.batch.value(),
                self.length.value(),
                self.rank.value(),
                self.device,
            )
        )

    def settings(self) -> dict[str, Any]:
        return dict(
            max_steps=self.steps.value(),
            rank=self.rank.value(),
            alpha=float(2 * self.rank.value()),
            learning_rate=self.lr.value(),
            batch_size=self.batch.value(),
            max_length=self.length.value(),
            packing=True,
            warmup_ratio=0.1,
            val_split=0.1,
            checkpoint_every=max(1, self.steps.value() // 4),
            seed=0,
        )

    # -- selection and live run ---------------------------------------------------------------
    def _picked(self, item: QListWidgetItem | None, _prev: Any) -> None:
        if item is None:
            return
        self.selected = item.data(Qt.ItemDataRole.UserRole)
        self._show_run()
        m = self._models.get(self.selected or "", {})
        self.cancel_btn.setEnabled(m.get("status") == "training")
        self.resume_btn.setEnabled(m.get("status") in ("interrupted", "cancelled", "failed"))
        self.register_btn.setEnabled(m.get("status") == "ready")
        if m.get("status") == "ready":
            card = Path(m["dir"]) / "card.md"
            self.card.setMarkdown(card.read_text("utf-8") if card.exists() else "No card.")
        else:
            self.card.setMarkdown(
                f"**{self.selected}** is {m.get('status')}: the card is written when training finishes."
            )

    def _job_changed(self, model_id: str) -> None:
        if model_id == self.selected:
            self._show_run()
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == model_id and model_id in self._models:
                item.setText(f"{model_id}  ·  {self._state(self._models[model_id])}")

    def _show_run(self) -> None:
        mid = self.selected
        if not mid:
            return
        job = self.ui.jobs.jobs.get(mid)
        m = self._models.get(mid, {})
        if job is None:
            hist = _history(m)
            self.run_title.setText(f"{mid}: {m.get('status')}")
            self.progress.setRange(0, max(1, m.get("total_steps") or 1))
            self.progress.setValue(m.get("step") or 0)
            self.plot.set_curves(hist["train"], hist["val"])
            self.val_plot.set_curves(hist["train"], hist["val"])
            self.speed.setText(hist["summary"])
            self.log.setPlainText("\n".join(_run_log(self.studio, mid)))
            self._log_of = None
            return
        state = "stalled: no progress for 30 s" if job.stalled else job.state
        self.run_title.setText(f"{mid}: {state}")
        self.progress.setRange(0, job.total or 0)
        self.progress.setValue(job.step)
        eta = job.eta if job.eta is not None else job.eta_s()
        self.speed.setText(
            f"step {job.step}/{job.total or '?'} · {job.tokens_per_s:,.0f} tokens/s"
            + (f" · ETA {eta:.0f} s" if eta is not None and job.state == "running" else "")
        )
        self.plot.set_curves(job.loss, job.val_loss)
        self.val_plot.set_curves(job.loss, job.val_loss)
        # Append what is new instead of re-setting 200 lines on every poll (GUI-thread time).
        new = job.lines - self._log_lines if self._log_of == mid else -1
        if new < 0 or new > 200:
            self.log.setPlainText("\n".join(job.log[-200:]))
        elif new:
            self.log.appendPlainText("\n".join(job.log[-new:]))
        self._log_of, self._log_lines = mid, job.lines
        self.log.verticalScrollBar().setValue(self.log.verticalScrollBar().maximum())

    def _show_compare(self, tuned: list[dict[str, Any]]) -> None:
        curves = []
        rows = [
            "<table cellpadding=4><tr><th align=left>Version</th><th>steps</th><th>first loss</th><th>last loss</th><th>eval before → after</th></tr>"
        ]
        for m in tuned:
            h = _history(m)
            if not h["train"]:
                continue
            curves.append((m["id"], h["train"]))
            met = h["metrics"]
            ev = (
                f"{met['eval_loss_before']:.3f} → {met['eval_loss_after']:.3f}"
                if met.get("eval_loss_before") is not None
                and met.get("eval_loss_after") is not None
                else "—"
            )
            rows.append(
                f"<tr><td>{html.escape(m['id'])}</td><td align=right>{len(h['train'])}</td>"
                f"<td align=right>{h['train'][0][1]:.3f}</td><td align=right>{h['train'][-1][1]:.3f}</td><td align=center>{ev}</td></tr>"
            )
        self._compare_curves = curves
        if self.compare_plot is not None:
            self.compare_plot.set_many(curves)
        self.compare.setHtml("".join(rows) + "</table>" if curves else "No finished versions yet.")

    # -- actions ------------------------------------------------------------------------------
    def start(self, name: str | None = None, base: str | None = None) -> Any:
        if not self._validate() and base is None:
            return None
        base = base or self.base.currentData()
        spec = self.snapshot.currentText()
        settings = self.settings()

        def work() -> str:
            from studio.ui.jobs import spawn

            model_id = self.studio.models.prepare(
                base=base, datanets=[spec], settings=settings, name=name
            )
            proc = spawn(self.studio, model_id)
            return model_id, proc  # type: ignore[return-value]

        def started(r: Any) -> None:
            model_id, proc = r
            self.ui.jobs.follow(model_id, proc, from_start=True)
            self.selected = model_id
            self.ui.changed.emit("models")

        return (
            write_op(self, work)
            .with_progress("Preparing the training data")
            .success(started)
            .run_in_background()
        )

    def cancel(self) -> Any:
        mid = self.selected
        if not mid:
            return None
        return (
            op(self, lambda: call(self.studio, "model cancel", model=mid))
            .success(lambda _s: self.ui.changed.emit("models"))
            .run_in_background()
        )

    def resume(self) -> Any:
        mid = self.selected
        if not mid:
            return None

        def work() -> Any:
            from studio.ui.jobs import spawn

            return spawn(self.studio, mid, resume=True)

        return (
            write_op(self, work)
            .success(lambda proc: (self.ui.jobs.follow(mid, proc), self.ui.changed.emit("models")))
            .run_in_background()
        )

    def register(self, price_wei: int = 2 * 10**18) -> None:
        mid = self.selected
        if not mid:
            return
        if not self.ui.confirm_tx(
            self, f"Register {mid} in the ModelRegistry at 2 OPEN per inference.", 0
        ):
            return

        def go(account: Any) -> None:
            write_op(
                self, lambda: self.studio.models.register(mid, account, price_wei=price_wei)
            ).with_progress(f"Registering {mid}").success(
                lambda r: (
                    self.result.setText(
                        f"{mid} registered as model #{r.get('onchain_id')} (tx {str(r.get('tx'))[:18]}…)"
                    ),
                    self.ui.changed.emit("models"),
                )
            ).run_in_background()

        self.ui.with_account(self, None, go)


def _run_log(studio: Studio, model_id: str, n: int = 200) -> list[str]:
    """The messages of a run that is not followed live (finished, or before this window)."""
    row = studio.store.one("SELECT job_dir FROM models WHERE id = ?", (model_id,))
    path = Path(row["job_dir"]) / "events.jsonl" if row and row.get("job_dir") else None
    if path is None or not path.exists():
        return []
    out = []
    for line in path.read_text("utf-8", errors="replace").splitlines()[-2000:]:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("kind") in (
            "log",
            "warning",
            "train.step",
            "train.eval",
            "done",
            "error",
        ) and ev.get("message"):
            step = (
                f"[{ev['step']}/{ev['total']}] "
                if ev.get("step") is not None and ev.get("total")
                else ""
            )
            out.append(step + str(ev["message"]))
    return out[-n:]


def _history(m: dict[str, Any]) -> dict[str, Any]:
    """Loss curves of a finished (or interrupted) run from its card or its events file."""
    train: list[tuple[int, float]] = []
    val: list[tuple[int, float]] = []
    metrics: dict[str, Any] = {}
    card = Path(m.get("dir") or "") / "card.json"
    if card.exists():
        try:
            metrics = json.loads(card.read_text("utf-8")).get("metrics", {})
        except ValueError:
            metrics = {}
        train = [(i + 1, float(x)) for i, x in enumerate(metrics.get("loss_history", []))]
        for e in metrics.get("evals", []) or []:
            val.append((int(e["step"]), float(e["eval_loss"])))
        if metrics.get("eval_loss_before") is not None:
            val.insert(0, (0, float(metrics["eval_loss_before"])))
        if metrics.get("eval_loss_after") is not None:
            val.append((len(train), float(metrics["eval_loss_after"])))
    summary = ""
    if train:
        summary = f"{len(train)} steps · loss {train[0][1]:.3f} → {train[-1][1]:.3f}"
        if metrics.get("tokens_per_s"):
            summary += f" · {metrics['tokens_per_s']:,.0f} tokens/s"
    return {"train": train, "val": val, "metrics": metrics, "summary": summary}
