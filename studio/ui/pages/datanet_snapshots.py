"""The Datanets page's Snapshots tab: versions with their roots, take a snapshot, verify, export,
a record's proof, and publish on chain (a mixin of the page: it shares the page's current Datanet
and record selection)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from studio.ui.format import short_hash
from studio.ui.ops import call, op, write_op
from studio.ui.pages import button
from studio.ui.pages.datanet_dialogs import publish_text

if TYPE_CHECKING:
    from studio.app import Studio


class SnapshotsTab:
    """Needs from the page: studio, ui, current (the Datanet shown) and selected_ids()."""

    studio: Studio
    ui: Any
    current: dict[str, Any] | None

    def selected_ids(self) -> list[int]:
        raise NotImplementedError

    def _snapshots_tab(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        self.snaps = QTableWidget(0, 4)
        self.snaps.setHorizontalHeaderLabels(["Version", "Records", "Merkle root", "Manifest"])
        self.snaps.setAccessibleName("Snapshots")
        self.snaps.verticalHeader().hide()
        self.snaps.horizontalHeader().setStretchLastSection(True)
        self.snaps.setColumnWidth(2, 420)
        self.snaps.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        lay.addWidget(self.snaps, 1)
        self.snap_log = QTextBrowser()
        self.snap_log.setAccessibleName("Results")
        self.snap_log.setMaximumHeight(160)
        lay.addWidget(self.snap_log)
        acts = QHBoxLayout()
        self.snapshot_btn = button(
            "Take snapshot",
            "A new immutable version over the accepted records",
            self.take_snapshot,
            primary=True,
        )
        acts.addWidget(self.snapshot_btn)
        acts.addWidget(
            button("Verify", "Re-hash every record and rebuild every snapshot root", self.verify)
        )
        acts.addWidget(button("Export…", "Export a snapshot as JSONL or Parquet", self.export))
        acts.addWidget(
            button(
                "Proof of record…",
                "The Merkle proof of one record in the latest snapshot",
                self.proof,
            )
        )
        acts.addStretch(1)
        self.publish_btn = button(
            "Publish on chain…",
            "Create the Datanet on chain, publish the snapshot root, bind contributions",
            self.publish,
        )
        acts.addWidget(self.publish_btn)
        lay.addLayout(acts)
        return w

    def _show_snapshots(self) -> None:
        if not self.current:
            return
        snaps = self.studio.datanets.snapshots(self.current["name"])
        self.snaps.setRowCount(len(snaps))
        for i, s in enumerate(snaps):
            for j, v in enumerate(
                (
                    f"v{s['version']}",
                    str(s["records"]),
                    s["root"],
                    short_hash(s["manifest_hash"], 16),
                )
            ):
                item = QTableWidgetItem(v)
                item.setToolTip(v)
                self.snaps.setItem(i, j, item)

    def take_snapshot(self) -> Any:
        if not self.current:
            return None
        name = self.current["name"]
        return (
            write_op(self, lambda: call(self.studio, "datanet snapshot", name=name))
            .success(self._snapped)
            .run_in_background()
        )

    def _snapped(self, s: dict[str, Any]) -> None:
        same = " (unchanged)" if s.get("unchanged") else ""
        self.snap_log.setText(
            f"Snapshot v{s['version']}: {s['records']} records, root {s['root']}{same}"
        )
        self.ui.changed.emit("datanets")

    def verify(self) -> Any:
        if not self.current:
            return None
        name = self.current["name"]
        return (
            op(
                self,
                lambda ctx: _with_result(
                    self.studio, "datanet verify", name=name, cancel=ctx.cancel
                ),
            )
            .with_progress(f"Verifying {name}")
            .success(
                lambda r: self.snap_log.setHtml(
                    f"<b>{'OK' if r['ok'] else 'PROBLEMS'}</b>: {r['records_checked']} records re-hashed, "
                    f"{r['snapshots_checked']} snapshot root(s) rebuilt<br>"
                    + "<br>".join(html.escape(str(p)) for p in r["problems"])
                )
            )
            .run_in_background()
        )

    def export(self, out: str | None = None, fmt: str = "jsonl") -> Any:
        if not self.current:
            return None
        name = self.current["name"]
        if out is None:
            out, flt = QFileDialog.getSaveFileName(
                self, "Export snapshot", f"{name}.jsonl", "JSONL (*.jsonl);;Parquet (*.parquet)"
            )
            if not out:
                return None
            fmt = "parquet" if out.endswith(".parquet") else "jsonl"
        return (
            op(
                self,
                lambda ctx: call(
                    self.studio, "datanet export", name=name, out=out, fmt=fmt, cancel=ctx.cancel
                ),
            )
            .success(
                lambda r: self.snap_log.setText(f"Exported v{r['version']} ({fmt}) to {r['path']}")
            )
            .run_in_background()
        )

    def proof(self) -> Any:
        ids = self.selected_ids()
        if not ids or not self.current:
            self.snap_log.setText("Pick a record on the Records tab first.")
            return None
        name = self.current["name"]
        return (
            op(self, lambda: call(self.studio, "datanet proof", name=name, record_id=ids[0]))
            .success(
                lambda p: self.snap_log.setText(
                    f"Proof of #{ids[0]} in v{p['version']} (root {short_hash(p['root'], 14)}, "
                    f"{len(p['proof'])} hashes):\n" + "\n".join(p["proof"])
                )
            )
            .run_in_background()
        )

    def publish(self, signers: dict[str, Any] | None = None) -> None:
        if not self.current:
            return
        name = self.current["name"]
        d = self.studio.datanets.get(name)
        if not d["latest_snapshot"]:
            self.snap_log.setText("Take a snapshot first: publishing sends its root.")
            return
        if not self.ui.confirm(self, "Publish Datanet", publish_text(self.ui, d)):
            return

        def go(account: Any) -> None:
            from studio.chain import datanets_onchain

            write_op(
                self,
                lambda ctx: datanets_onchain.publish(
                    self.studio, account, name, signers=signers or {}, cancel=ctx.cancel
                ),
            ).with_progress(f"Publishing {name}").success(self._published).run_in_background()

        self.ui.with_account(self, None, go)

    def _published(self, res: dict[str, Any]) -> None:
        if not res["changed"]:
            self.snap_log.setText(
                f"Already published as Datanet #{res['onchain_id']} v{res['version']}: nothing sent."
            )
        else:
            bound = ", ".join(f"{w[:10]}…: {n}" for w, n in sorted(res["bound"].items()))
            self.snap_log.setText(
                f"Published Datanet #{res['onchain_id']} v{res['version']}, root {res['root']}, "
                f"{len(res['transactions'])} transaction(s). Bound: {bound or 'none'}"
            )
        self.ui.changed.emit("chain")


def _with_result(studio: Studio, path: str, **kw: Any) -> dict[str, Any]:
    """An operation's result as a dict, also when it fails with one (verify's problem list)."""
    from studio.core.errors import StudioError

    try:
        return dict(call(studio, path, **kw))
    except StudioError as e:
        if e.result is None:
            raise
        return dict(e.result.to_dict())
