"""Playground: ask a model version; for each answer an attribution panel — the answer with the
matching spans highlighted in each contributor's colour, a bar chart of contributor weights, the
top records with their text and Datanet, method and report hash; verify; pay and record on chain."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from studio.ui import theme
from studio.ui.format import short_hash
from studio.ui.ops import call, op, write_op
from studio.ui.pages import BasePage, button, heading, muted
from studio.ui.pages.plots import WeightBars

if TYPE_CHECKING:
    from studio.app import Studio


def highlighted(text: str, rep: dict[str, Any], colours: dict[str, int]) -> str:
    """The answer as HTML with each matched span on its contributor's colour."""
    marks: list[tuple[int, int, int]] = []  # start, end, colour
    for r in rep.get("top_records", []):
        c = colours.get(r["contributor"], 0)
        for sp in r.get("spans", []):
            frag = (sp.get("text") or "").strip()
            if len(frag) < 3:
                continue
            at = text.find(frag)
            while at >= 0:
                if not any(s < at + len(frag) and at < e for s, e, _ in marks):
                    marks.append((at, at + len(frag), c))
                at = text.find(frag, at + len(frag))
    marks.sort()
    out, pos = [], 0
    for s, e, c in marks:
        out.append(html.escape(text[pos:s]))
        bg = theme.highlight_background(c)
        rgba = f"rgba({bg.red()},{bg.green()},{bg.blue()},{bg.alpha() / 255:.2f})"
        out.append(
            f"<span style='background-color:{rgba}; border-bottom: 2px solid {theme.contributor_color(c).name()}'>{html.escape(text[s:e])}</span>"
        )
        pos = e
    out.append(html.escape(text[pos:]))
    return "".join(out)


METHODS = (
    ("Fast: index + verbatim spans", "hybrid"),
    ("Fast: gradient index only", "gradient"),
    ("Exact: replay the training run", "exact"),
)


class Page(BasePage):
    title = "Playground"
    subtitle = "Ask a fine-tuned model; every answer shows which records — and so which contributors — shaped it."

    def __init__(self, ui: Any) -> None:
        super().__init__(ui)
        self.report: dict[str, Any] | None = None
        self.report_path: str | None = None
        top = QHBoxLayout()
        self.model = QComboBox()
        self.model.setAccessibleName("Model")
        self.model.setToolTip("A finished fine-tuned model version")
        self.model.setMinimumWidth(260)
        top.addWidget(QLabel("Model"))
        top.addWidget(self.model, 1)
        top.addWidget(QLabel("Attribution"))
        self.method = QComboBox()
        self.method.setAccessibleName("Attribution method")
        self.method.setToolTip(
            "Fast: the gradient index built after training (seconds). Exact: differentiate "
            "through the recorded training run (slower; only for versions trained with a replay "
            "record, on a machine with the memory it needs)"
        )
        for label, name in METHODS:
            self.method.addItem(label, name)
        self.method.setMinimumWidth(230)
        top.addWidget(self.method)
        self.model.currentIndexChanged.connect(lambda _i: self._check_exact())
        self.outer.addLayout(top)
        split = QSplitter()
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 8, 0)
        ll.addWidget(QLabel("Prompt"))
        self.prompt = QPlainTextEdit()
        self.prompt.setAccessibleName("Prompt")
        self.prompt.setToolTip("Your question")
        self.prompt.setPlaceholderText("Ask something your Datanet knows about…")
        ll.addWidget(self.prompt, 1)
        row = QHBoxLayout()
        self.gen_btn = button(
            "Generate",
            "Let the model answer the prompt (the answer streams in; click again to stop)",
            self.generate,
            primary=True,
        )
        self._gen_op: Any = None
        self.att_btn = button(
            "Attribute",
            "Which records shaped the answer below (gradients + verbatim spans)",
            self.attribute,
        )
        row.addWidget(self.gen_btn)
        row.addWidget(self.att_btn)
        ll.addLayout(row)
        ll.addWidget(QLabel("Answer (edit it to attribute another text)"))
        self.answer = QPlainTextEdit()
        self.answer.setAccessibleName("Answer")
        self.answer.setToolTip("The model's answer; attribution explains this text")
        ll.addWidget(self.answer, 1)
        split.addWidget(left)
        split.addWidget(self._panel())
        split.setSizes([420, 680])
        split.setStretchFactor(1, 1)
        self.outer.addWidget(split, 1)
        ui.changed.connect(lambda w: self.refresh() if w == "models" else None)
        last = getattr(ui, "last_report", None)
        if last is not None:  # the page was rebuilt (theme change): keep the conversation
            self.prompt.setPlainText(last[0]["input"]["prompt"])
            self.answer.setPlainText(last[0]["output"]["text"])
            self.show_report(last)

    def _panel(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.setContentsMargins(8, 0, 0, 0)
        lay.addWidget(heading("Attribution", 1.15))
        self.meta = muted("No report yet: generate an answer, then attribute it.")
        self.meta.setAccessibleName("Report summary")
        lay.addWidget(self.meta)
        self.spans = QTextBrowser()
        self.spans.setAccessibleName("Answer with matched spans")
        self.spans.setMaximumHeight(80)
        lay.addWidget(self.spans)
        self.bars = WeightBars()
        lay.addWidget(self.bars, 1)
        self.records = QTextBrowser()
        self.records.setAccessibleName("Top records")
        lay.addWidget(self.records, 1)
        row = QHBoxLayout()
        self.verify_btn = button(
            "Verify report", "Re-run the report from scratch and compare the hash", self.verify
        )
        self.pay_btn = button(
            "Pay and record…",
            "Pay the model's price and record this report's weights on chain",
            self.pay_and_record,
        )
        self.verify_btn.setEnabled(False)
        self.pay_btn.setEnabled(False)
        row.addWidget(self.verify_btn)
        row.addWidget(self.pay_btn)
        row.addStretch(1)
        lay.addLayout(row)
        self.result = muted("")
        self.result.setAccessibleName("Result")
        lay.addWidget(self.result)
        return w

    def refresh(self) -> None:
        op(self, lambda: self.studio.models.list()).success(self._models).run_in_background()

    def screenshot_ready(self) -> bool:
        return self.model.count() > 0 or "No finished model" in self.meta.text()

    def _models(self, models: list[dict[str, Any]]) -> None:
        keep = self.model.currentData()
        self.model.clear()
        for m in models:
            if m.get("kind") == "fine-tune" and m["status"] == "ready":
                self.model.addItem(f"{m['id']} (base {m['base']})", m["id"])
        if keep is not None and self.model.findData(keep) >= 0:
            self.model.setCurrentIndex(self.model.findData(keep))
        elif self.model.count():
            self.model.setCurrentIndex(self.model.count() - 1)
        ok = self.model.count() > 0
        self.gen_btn.setEnabled(ok)
        self.att_btn.setEnabled(ok)
        if not ok:
            self.meta.setText("No finished model yet: train one on the ModelFactory page.")

    def _check_exact(self) -> None:
        """Offer "exact" only when this version can be attributed exactly here (the replay
        record exists and the machine has the memory): asked off the GUI thread."""
        mid = self.model.currentData()
        self._set_exact(False, "Checking whether this version allows exact attribution…")
        if not mid:
            return
        studio = self.studio

        def check() -> tuple[str, str]:
            if studio.attribution.choose_method(mid) != "exact":
                return mid, ""
            est = call(studio, "attribute", model=mid, prompt="-", method="exact", estimate=True)
            return mid, str(est.get("summary", ""))

        op(self, check).success(self._exact_checked).failure(
            lambda e: self._set_exact(False, f"Exact attribution is not available: {e}")
        ).run_in_background()

    def _exact_checked(self, r: tuple[str, str]) -> None:
        mid, summary = r
        if mid != self.model.currentData():
            return  # the user picked another version meanwhile
        if summary:
            self._set_exact(True, f"Exact attribution: {summary}")
        else:
            self._set_exact(
                False,
                "Exact attribution needs the version's replay record (trained by this studio) "
                "and enough memory here; the fast index is used.",
            )

    def _set_exact(self, ok: bool, why: str) -> None:
        item = self.method.model().item(self.method.findData("exact"))  # type: ignore[attr-defined]
        item.setEnabled(ok)
        item.setToolTip(why)
        if not ok and self.method.currentData() == "exact":
            self.method.setCurrentIndex(0)

    # -- actions ------------------------------------------------------------------------------
    def generate(self) -> Any:
        if self._gen_op is not None:  # the button reads "Stop" while an answer streams
            self._gen_op.cancel()
            return None
        mid, prompt = self.model.currentData(), self.prompt.toPlainText().strip()
        if not mid or not prompt:
            self.meta.setText("Pick a model and write a prompt first.")
            return None
        studio = self.studio

        def work(ctx: Any) -> dict[str, Any]:
            # The "model generate" operation emits one "token" event per new piece of text;
            # the ones of this operation become progress (coalesced to <= 20 GUI updates/s).
            with studio.events.operation("playground generate") as op_id:
                parts: list[str] = []

                def on_event(ev: Any) -> None:
                    if ev.kind == "token" and ev.op == op_id:
                        parts.append(ev.message)
                        ctx.report(len(parts), None, "".join(parts))

                unsubscribe = studio.events.subscribe(on_event)
                try:
                    return dict(
                        call(
                            studio,
                            "model generate",
                            model=mid,
                            prompt=prompt,
                            max_new_tokens=64,
                            seed=0,
                            cancel=ctx.cancel,
                        )
                    )
                finally:
                    unsubscribe()

        self.answer.clear()
        self.answer.setReadOnly(True)
        self.gen_btn.setText("Stop")
        self.gen_btn.setToolTip("Stop the answer here (what was generated so far is kept)")
        self.meta.setText("Generating…")
        self._gen_op = (
            op(self, work)
            .on_progress(lambda _n, _t, text: self._streamed(text))
            .success(self._generated)
            .cancelled(lambda: self.meta.setText("Stopped: the answer so far is kept."))
            .after(self._generation_over)
            .run_in_background()
        )
        return self._gen_op

    def _streamed(self, text: str) -> None:
        self.answer.setPlainText(text.lstrip())
        self.answer.moveCursor(self.answer.textCursor().MoveOperation.End)

    def _generated(self, r: dict[str, Any]) -> None:
        self.answer.setPlainText(str(r.get("output", "")).strip())
        self.meta.setText("Answer ready: attribute it to see which records shaped it.")

    def _generation_over(self) -> None:
        self._gen_op = None
        self.answer.setReadOnly(False)
        self.gen_btn.setText("Generate")
        self.gen_btn.setToolTip(
            "Let the model answer the prompt (the answer streams in; click again to stop)"
        )

    def attribute(self) -> Any:
        mid, prompt = self.model.currentData(), self.prompt.toPlainText().strip()
        output = self.answer.toPlainText().strip() or None
        if not mid or not prompt:
            self.meta.setText("Pick a model and write a prompt first.")
            return None
        studio, method = self.studio, str(self.method.currentData() or "hybrid")

        def work(ctx: Any) -> tuple[dict[str, Any], str]:
            if method != "exact":  # the fast methods read the index (built once, then reused)
                call(studio, "attribution index", model=mid, cancel=ctx.cancel)
            from studio.commands import invoke

            r = invoke(
                "attribute",
                studio,
                model=mid,
                prompt=prompt,
                output=output,
                method=method,
                top=5,
                cancel=ctx.cancel,
            )
            return dict(r.report), str(r.path)  # to_dict() is the report alone, without its path

        self.att_btn.setEnabled(False)
        return (
            op(self, work)
            .with_progress(
                "Exact attribution (replaying the training run)"
                if method == "exact"
                else "Attributing the answer"
            )
            .success(self.show_report)
            .after(lambda: self.att_btn.setEnabled(True))
            .run_in_background()
        )

    def show_report(self, r: tuple[dict[str, Any], str]) -> None:
        rep, path = r
        self.report, self.report_path = rep, path
        self.ui.last_report = r
        if not self.answer.toPlainText().strip():
            self.answer.setPlainText(rep["output"]["text"])
        colours = {w["contributor"]: i for i, w in enumerate(rep["weights"])}
        for rec in rep["top_records"]:
            colours.setdefault(rec["contributor"], len(colours))
        self.colours = colours
        self.meta.setText(
            f"Method {rep['method']['name']} · {rep['records_positive']} of {rep['records_scored']} records with positive influence · "
            f"report {short_hash(rep['report_hash'], 14)}"
        )
        self.meta.setToolTip(rep["report_hash"])
        self.spans.setHtml(highlighted(rep["output"]["text"], rep, colours))
        self.bars.set_weights(
            [
                (
                    f"{w['contributor'][:6]}…{w['contributor'][-4:]}",
                    int(w["bps"]),
                    colours[w["contributor"]],
                )
                for w in rep["weights"]
            ]
        )
        rows = []
        for rec in rep["top_records"]:
            c = theme.contributor_color(colours[rec["contributor"]]).name()
            try:
                text = (
                    self.studio.datanets.record_content(rec["datanet"], rec["record_id"]).text or ""
                )
            except Exception:  # noqa: BLE001 - a record of another home: show what the report has
                text = ""
            rows.append(
                f"<p><span style='color:{c}'>■</span> <b>#{rec['rank']}</b> record {rec['record_id']} in "
                f"{html.escape(rec['datanet'])}@{rec['version']} · {rec['contributor']} · score {rec['score']:.3g}<br>"
                f"{html.escape(text[:280])}</p>"
            )
        wl = "".join(
            f"<li><span style='color:{theme.contributor_color(colours[w['contributor']]).name()}'>■</span> {w['contributor']}: {w['bps']} bps</li>"
            for w in rep["weights"]
        )
        self.records.setHtml(
            f"<p><b>Weights</b></p><ul>{wl}</ul><p><b>Top records</b></p>" + "".join(rows)
        )
        self.verify_btn.setEnabled(True)
        self.pay_btn.setEnabled(True)
        self.result.setText(f"Saved {path}")

    def verify(self) -> Any:
        if not self.report_path:
            return None
        path = self.report_path
        return (
            op(self, lambda: _check(self.studio, path))
            .with_progress("Re-running the report")
            .success(
                lambda v: self.result.setText(
                    f"Verified: the report re-runs to the same hash {short_hash(v['report_hash'], 14)}"
                    if v["match"]
                    else "MISMATCH: " + ", ".join(v["differences"][:6])
                )
            )
            .run_in_background()
        )

    def pay_and_record(self) -> None:
        rep, mid = self.report, self.model.currentData()
        if rep is None or not mid:
            return
        reg = (self.studio.models.status(mid) or {}).get("registration") or {}
        onchain = reg.get("onchain_id")
        if onchain is None:
            self.result.setText("Register this model first (ModelFactory page → Register).")
            return
        if not self.ui.confirm_tx(
            self,
            f"Pay for this inference on model #{onchain} and record its attribution.",
            2 * 10**18,
        ):
            return

        def go(account: Any) -> None:
            from studio.chain import ledger

            def work() -> dict[str, Any]:
                paid = ledger.pay_for_inference(
                    self.studio,
                    account,
                    int(onchain),
                    node=account.address,  # this studio serves it, so it names itself
                    key=f"gui-pay:{mid}:{rep['report_hash']}",
                )
                info = ledger.inference(self.studio, paid["inference_id"])
                if info["status"] == "paid":
                    payees, bps = ledger.payable_weights(
                        self.studio,
                        int(onchain),
                        [w["contributor"] for w in rep["weights"]],
                        [w["bps"] for w in rep["weights"]],
                    )
                    ledger.record_attribution(
                        self.studio, account, paid["inference_id"], rep["report_hash"], payees, bps
                    )
                return {**paid, **ledger.inference(self.studio, paid["inference_id"])}

            write_op(self, work).with_progress("Paying and recording").success(
                self._recorded
            ).run_in_background()

        self.ui.with_account(self, None, go)

    def _recorded(self, r: dict[str, Any]) -> None:
        self.last_inference = r["inference_id"]
        self.result.setText(
            f"Inference #{r['inference_id']} {r['status']}: report {short_hash(r['report_hash'], 14)} on chain; "
            "after the challenge window, finalize it on the Rewards page."
        )
        self.ui.settings.setValue("last_inference", r["inference_id"])
        self.ui.changed.emit("chain")


def _check(studio: Studio, path: str) -> dict[str, Any]:
    """The "attribution verify" operation's check, also when it is a mismatch (then it raises
    with the check as its result)."""
    from studio.core.errors import StudioError

    try:
        return dict(call(studio, "attribution verify", report=path))
    except StudioError as e:
        if e.result is None:
            raise
        return dict(e.result.to_dict())


__all__ = ["Page", "highlighted", "Qt"]
