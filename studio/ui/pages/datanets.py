"""Datanets: list, create, add files (also by drag and drop), the record table with filters and a
preview, curation, snapshots, verify, export, publish."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QItemSelectionModel, QSize, Qt, QTimer
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QTableView,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from studio.ui.format import short_hash
from studio.ui.models import FLAGS, RecordFilter, RecordsModel
from studio.ui.ops import call, op, write_op
from studio.ui.pages import BasePage, button, muted
from studio.ui.pages.datanet_dialogs import CreateDatanetDialog
from studio.ui.pages.datanet_snapshots import SnapshotsTab

if TYPE_CHECKING:
    pass


def add_result_line(r: dict[str, Any]) -> str:
    name = Path(str(r.get("file", "?"))).name
    if r.get("status") == "added":
        flags = ", ".join(
            f"{v} {k.replace('_', ' ')}" for k, v in (r.get("flags") or {}).items() if v
        )
        refused = len(r.get("refused") or [])
        return (
            f"{name}: added {r['records']} record(s)"
            + (f" ({flags})" if flags else "")
            + (f"; {refused} refused, never stored" if refused else "")
        )
    if r.get("status") == "duplicate":
        return f"{name}: {r.get('message', 'already added')}"
    return f"{name}: error: {r.get('error')}"


class Page(SnapshotsTab, BasePage):
    title = "Datanets"
    subtitle = "Collect data with its contributors, curate it, snapshot it and publish the root on chain. Drop files here to add them."

    def __init__(self, ui: Any) -> None:
        super().__init__(ui)
        self.setAcceptDrops(True)
        self.current: dict[str, Any] | None = None
        split = QSplitter()
        # left: the Datanets
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        self.list = QListWidget()
        self.list.setAccessibleName("Datanets")
        self.list.setToolTip("Your Datanets; pick one to see its records")
        self.list.setSpacing(2)
        self.list.currentItemChanged.connect(self._picked)
        ll.addWidget(self.list, 1)
        self.create_btn = button(
            "New Datanet…", "Create a Datanet (name, summary, license, tags)", self.create
        )
        self.add_btn = button(
            "Add files…",
            "Add txt, md, jsonl, csv, pdf or docx files to this Datanet",
            self.add_files,
        )
        ll.addWidget(self.create_btn)
        ll.addWidget(self.add_btn)
        split.addWidget(left)
        # right: tabs
        self.tabs = QTabWidget()
        self.tabs.addTab(self._records_tab(), "Records")
        self.tabs.addTab(self._snapshots_tab(), "Snapshots")
        split.addWidget(self.tabs)
        split.setSizes([220, 900])
        split.setStretchFactor(1, 1)
        self.info = muted("")
        self.outer.addWidget(self.info)
        self.outer.addWidget(split, 1)
        ui.changed.connect(self._changed)

    # -- layout -------------------------------------------------------------------------------
    def _records_tab(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        bar = QHBoxLayout()
        self.f_status = QComboBox()
        self.f_status.addItems(["all", "pending", "accepted", "rejected"])
        self.f_status.setToolTip("Show records with this status")
        self.f_status.setAccessibleName("Status filter")
        self.f_score = QDoubleSpinBox()
        self.f_score.setRange(0, 1)
        self.f_score.setSingleStep(0.05)
        self.f_score.setPrefix("score ≥ ")
        self.f_score.setToolTip("Only records whose validation score is at least this")
        self.f_score.setAccessibleName("Minimum score")
        self.f_flag = QComboBox()
        self.f_flag.addItems(FLAGS)
        self.f_flag.setToolTip("Only records with this flag (PII, duplicate, too short…)")
        self.f_flag.setAccessibleName("Flag filter")
        self.f_contrib = QLineEdit()
        self.f_contrib.setPlaceholderText("contributor 0x…")
        self.f_contrib.setToolTip("Only records of contributors whose address starts with this")
        self.f_contrib.setAccessibleName("Contributor filter")
        self.f_text = QLineEdit()
        self.f_text.setPlaceholderText("search the record text")
        self.f_text.setToolTip(
            "Full-text search over the whole record text (every word, as a word start: "
            "'tide keep' finds 'the keeper of the tides')"
        )
        self.f_text.setAccessibleName("Search")
        self.f_text.setClearButtonEnabled(True)
        for wd in (self.f_status, self.f_score, self.f_flag, self.f_contrib, self.f_text):
            bar.addWidget(wd, 2 if wd is self.f_text else 1)
        lay.addLayout(bar)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(150)
        self._debounce.timeout.connect(self.apply_filter)
        self.f_status.currentIndexChanged.connect(lambda _i: self._debounce.start())
        self.f_flag.currentIndexChanged.connect(lambda _i: self._debounce.start())
        self.f_score.valueChanged.connect(lambda _v: self._debounce.start())
        self.f_contrib.textChanged.connect(lambda _t: self._debounce.start())
        self.f_text.textChanged.connect(lambda _t: self._debounce.start())
        split = QSplitter(Qt.Orientation.Vertical)
        self.model = RecordsModel(self.studio.store, self)
        self._filter_gen = 0  # each filter request's number: only the newest answer is shown
        self._indexing: set[int] = set()  # Datanets whose search index is being brought up to date
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setAccessibleName("Records")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setStretchLastSection(True)
        for col, width in enumerate((56, 80, 56, 170, 140)):
            self.table.setColumnWidth(col, width)
        self.table.selectionModel().currentRowChanged.connect(
            lambda cur, _p: self._preview(cur.row())
        )
        split.addWidget(self.table)
        self.preview = QTextBrowser()
        self.preview.setAccessibleName("Record preview")
        self.preview.setPlaceholderText("Pick a record to see its text, provenance and reasons.")
        split.addWidget(self.preview)
        split.setSizes([400, 180])
        lay.addWidget(split, 1)
        acts = QHBoxLayout()
        self.count = muted("")
        acts.addWidget(self.count, 1)
        acts.addWidget(button("Accept", "Accept the selected records", self.accept_selected))
        acts.addWidget(
            button("Reject…", "Reject the selected records with a reason", self.reject_selected)
        )
        acts.addWidget(
            button(
                "Accept all ≥ score…",
                "Accept every pending record at or above a score",
                self.accept_all,
            )
        )
        acts.addWidget(
            button(
                "Edit as new…",
                "Write a corrected copy of this record (the original is kept)",
                self.edit_selected,
            )
        )
        lay.addLayout(acts)
        return w

    # -- data ---------------------------------------------------------------------------------
    def _changed(self, what: str) -> None:
        if what == "datanets":
            self.refresh()

    def refresh(self) -> None:
        op(self, lambda: self.studio.datanets.list()).success(self._show_list).run_in_background()

    def screenshot_ready(self) -> bool:
        return self.model.rowCount() > 0 and bool(self.preview.toPlainText())

    def _show_list(self, dns: list[dict[str, Any]]) -> None:
        keep = self.current["name"] if self.current else None
        self.list.blockSignals(True)
        self.list.clear()
        pick = 0
        for i, d in enumerate(dns):
            c = d["records"]
            item = QListWidgetItem(
                f"{d['name']}\n{sum(c.values())} records · {c['accepted']} accepted"
            )
            item.setData(Qt.ItemDataRole.UserRole, d)
            item.setToolTip(d.get("summary") or d["name"])
            item.setSizeHint(QSize(180, 46))
            self.list.addItem(item)
            if d["name"] == keep:
                pick = i
        self.list.blockSignals(False)
        if dns:
            self.list.setCurrentRow(pick)
            self._picked(self.list.currentItem(), None)
        else:
            self.current = None
            self.info.setText("No Datanet yet: create one, then add files.")
            self.model.set_datanet(None)
        self.add_btn.setEnabled(bool(dns))

    def _picked(self, item: QListWidgetItem | None, _prev: Any) -> None:
        if item is None:
            return
        d = item.data(Qt.ItemDataRole.UserRole)
        self.current = d
        owner = d.get("owner") or "not set (publishing sets it)"
        self.info.setText(
            f"{d['name']} · {d['license']} · tags {', '.join(d['tags']) or '—'} · {d['files']} files · owner {owner}"
        )
        store, model, f = self.studio.store, self.model, self._filter()

        def load() -> tuple[int | None, dict[str, int], list[int]]:
            row = store.one("SELECT id FROM datanets WHERE name = ?", (d["name"],))
            did = row["id"] if row else None
            return did, model.contributors_of(did), model.query_ids(f, did)

        self._filter_gen += 1
        gen = self._filter_gen
        op(self, load).success(lambda r: self._datanet_loaded(gen, f, *r)).run_in_background()
        self._show_snapshots()

    def _datanet_loaded(
        self,
        gen: int,
        f: RecordFilter,
        did: int | None,
        contributors: dict[str, int],
        ids: list[int],
    ) -> None:
        self.model.datanet_id = did
        self.model.contributors = contributors
        if gen == self._filter_gen:
            self._filtered(gen, f, ids)
        else:
            self.apply_filter()  # the filter changed meanwhile
        if did is not None:
            self._index_for_search(did)

    def _index_for_search(self, did: int) -> None:
        """Bring the full-text index up to date with the Datanet's records (in the background;
        a write, so it queues behind ingest), then re-run a text search that was waiting."""
        if did in self._indexing:
            return
        from studio.core.datanets import search

        self._indexing.add(did)
        datanets = self.studio.datanets

        def work(ctx: Any) -> int:
            return search.index_records(datanets, did, cancel=ctx.cancel, progress=ctx.report)

        def done(n: int) -> None:
            if n and self.f_text.text().strip() and self.model.datanet_id == did:
                self.apply_filter()

        write_op(self, work).success(done).after(
            lambda: self._indexing.discard(did)
        ).run_in_background()

    def _filter(self) -> RecordFilter:
        st = self.f_status.currentText()
        return RecordFilter(
            status=None if st == "all" else st,
            min_score=self.f_score.value(),
            flag=self.f_flag.currentText(),
            contributor=self.f_contrib.text(),
            text=self.f_text.text(),
        )

    def apply_filter(self) -> Any:
        """Filter in SQL off the GUI thread; the newest request wins."""
        f, model = self._filter(), self.model
        if model.datanet_id is None:
            self._filtered(self._filter_gen, f, [])
            return None
        self._filter_gen += 1
        gen, did = self._filter_gen, model.datanet_id
        return (
            op(self, lambda: model.query_ids(f, did))
            .success(lambda ids: self._filtered(gen, f, ids))
            .run_in_background()
        )

    def _filtered(self, gen: int, f: RecordFilter, ids: list[int]) -> None:
        if gen != self._filter_gen:
            return  # an older filter's answer: a newer one is on its way
        self.model.set_ids(ids, f)
        total = sum(self.current["records"].values()) if self.current else 0
        self.count.setText(f"{self.model.rowCount():,} of {total:,} records")
        if self.model.rowCount():
            self.table.selectionModel().setCurrentIndex(
                self.model.index(0, 0),
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows,
            )
        else:
            self.preview.clear()

    def _preview(self, row: int) -> None:
        if row < 0 or not self.current:
            return
        r = self.model.record(row)
        if not r:
            return
        name = self.current["name"]
        full = self.studio.datanets.record_content(name, r["id"])
        detail = self.studio.store.one(
            "SELECT source, license, content_sha256 FROM records WHERE id = ?", (r["id"],)
        )
        reasons = "; ".join(r["reasons"]) or "none"
        pii = ", ".join(r["pii"]) or "none"
        text = full.plain_text() or r["preview"]
        self.preview.setHtml(
            f"<p><b>#{r['id']}</b> · {r['status']} {html.escape(r['status_reason'] or '')} · score {r['score']:.2f} · "
            f"reasons: {html.escape(reasons)} · PII: {html.escape(pii)}</p>"
            f"<p>contributor {r['contributor']} · license {html.escape(detail['license'])} · "
            f"sha256 {short_hash(detail['content_sha256'], 16)}<br>source {html.escape(detail['source'])}</p>"
            f"<pre style='white-space: pre-wrap'>{html.escape(text)}</pre>"
        )

    def selected_ids(self) -> list[int]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.model.ids[r] for r in rows]

    # -- actions ------------------------------------------------------------------------------
    def create(self) -> None:
        dlg = CreateDatanetDialog(self)
        if self.ui.answer is None and not dlg.exec():
            return
        self.create_with(**dlg.values())

    def create_with(self, **kw: Any) -> Any:
        return (
            write_op(self, lambda: self.studio.datanets.create(**kw))
            .success(lambda d: (self._select_after(d["name"]), self.ui.changed.emit("datanets")))
            .run_in_background()
        )

    def _select_after(self, name: str) -> None:
        self.current = {"name": name}

    def add_files(self, paths: list[str] | None = None, contributor: str | None = None) -> Any:
        if not self.current:
            return None
        if paths is None:
            paths, _ = QFileDialog.getOpenFileNames(
                self, "Add files", "", "Data (*.txt *.md *.jsonl *.csv *.pdf *.docx);;All files (*)"
            )
        if not paths:
            return None
        name = self.current["name"]

        def work() -> list[Any]:
            return self.studio.datanets.add_files(
                name, [Path(p) for p in paths], contributor=contributor
            )

        return (
            write_op(self, work)
            .with_progress(f"Adding {len(paths)} file(s) to {name}")
            .success(self._added)
            .run_in_background()
        )

    def _added(self, results: list[Any]) -> None:
        self.snap_log.setHtml("<br>".join(html.escape(add_result_line(r)) for r in results))
        self.ui.changed.emit("datanets")

    def dragEnterEvent(self, e: QDragEnterEvent) -> None:  # noqa: N802 - Qt name
        if e.mimeData().hasUrls() and self.current:
            e.acceptProposedAction()

    def dropEvent(self, e: QDropEvent) -> None:  # noqa: N802 - Qt name
        paths = [u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.add_files(paths)

    def _curate(self, **kw: Any) -> Any:
        if not self.current:
            return None
        name = self.current["name"]
        return (
            write_op(self, lambda: call(self.studio, "datanet curate", name=name, **kw))
            .success(
                lambda res: (
                    self.snap_log.setText(f"{res['status']}: {len(res['changed'])} record(s)"),
                    self.ui.changed.emit("datanets"),
                )
            )
            .run_in_background()
        )

    def accept_selected(self) -> Any:
        ids = self.selected_ids()
        return self._curate(accept=ids) if ids else None

    def reject_selected(self, reason: str | None = None) -> Any:
        ids = self.selected_ids()
        if not ids:
            return None
        if reason is None:
            reason, ok = QInputDialog.getText(self, "Reject", f"Why reject {len(ids)} record(s)?")
            if not ok or not reason.strip():
                return None
        return self._curate(reject=ids, reason=reason)

    def accept_all(self, min_score: float | None = None) -> Any:
        if min_score is None:
            min_score, ok = QInputDialog.getDouble(
                self, "Accept all", "Accept pending records scoring at least:", 0.6, 0, 1, 2
            )
            if not ok:
                return None
        return self._curate(accept_all=True, min_score=min_score)

    def edit_selected(self) -> Any:
        ids = self.selected_ids()
        if len(ids) != 1 or not self.current:
            return None
        name = self.current["name"]
        old = self.studio.datanets.record_content(name, ids[0])
        text, ok = QInputDialog.getMultiLineText(
            self, "Edit as new record", "The corrected text:", old.text or ""
        )
        if not ok:
            return None
        return (
            write_op(self, lambda: self.studio.datanets.edit_record(name, ids[0], text))
            .success(lambda _r: self.ui.changed.emit("datanets"))
            .run_in_background()
        )
