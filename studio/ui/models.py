"""Qt item models over the store.

RecordsModel: the records of one Datanet, filtered in SQL over indexes (status, minimum score,
flag, contributor prefix, full-text search of the record text through FTS5). A filter fetches only the matching ids; row contents are read in pages of
PAGE rows when the view first shows them, so 100k records scroll smoothly in little memory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from studio.core.datanets import search
from studio.ui import theme

PAGE = 256
COLUMNS = ("#", "Status", "Score", "Flags", "Contributor", "Preview")
FLAGS = ("any", "PII", "duplicate", "too short", "too long", "clean")

Index = QModelIndex | QPersistentModelIndex


@dataclass
class RecordFilter:
    status: str | None = None  # pending | accepted | rejected | None (all)
    min_score: float = 0.0
    flag: str = "any"
    contributor: str = ""
    text: str = ""

    def sql(
        self, datanet_id: int, fts_upto: int = 0, *, fully_indexed: bool = False
    ) -> tuple[str, list[Any]]:
        """WHERE and its parameters. Text: full-text search (FTS5) over the records indexed so
        far (ids <= fts_upto), the preview for the newer ones not indexed yet (that OR costs
        a scan, so it is left out once every record is indexed)."""
        where, params = ["datanet_id = ?"], [datanet_id]
        if self.status:
            where.append("status = ?")
            params.append(self.status)
        if self.min_score > 0:
            where.append("score >= ?")
            params.append(self.min_score)
        if self.flag == "PII":
            where.append("pii != '[]'")
        elif self.flag == "clean":
            where.append("pii = '[]' AND reasons = '[]'")
        elif self.flag != "any":
            where.append("reasons LIKE ?")
            params.append(f"%{self.flag}%")
        prefix = self.contributor.strip().lower()
        if prefix:
            # a range on the (datanet_id, lower(contributor)) index instead of a LIKE scan
            where.append("lower(contributor) >= ? AND lower(contributor) < ?")
            params += [prefix, prefix + "\U0010ffff"]
        text = self.text.strip()
        if text:
            fts = search.where_clause(text) if fts_upto else None
            if fts is None:
                where.append("preview LIKE ?")
                params.append(f"%{text}%")
            elif fully_indexed:
                where.append(fts[0])
                params += fts[1]
            else:
                where.append(f"((id <= ? AND {fts[0]}) OR (id > ? AND preview LIKE ?))")
                params += [fts_upto, *fts[1], fts_upto, f"%{text}%"]
        return " AND ".join(where), params


class RecordsModel(QAbstractTableModel):
    def __init__(self, store: Any, parent: Any = None) -> None:
        super().__init__(parent)
        self.store = store
        self.datanet_id: int | None = None
        self.filter = RecordFilter()
        self.ids: list[int] = []
        self._pages: dict[int, list[dict[str, Any]]] = {}
        self.pages_loaded = 0  # how many pages were read (tests: lazy means few)
        self.contributors: dict[str, int] = {}

    # -- loading -------------------------------------------------------------------------------
    def set_datanet(self, datanet_id: int | None, *, reload: bool = True) -> None:
        self.datanet_id = datanet_id
        self.contributors = self.contributors_of(datanet_id)
        if reload:
            self.reload()

    def contributors_of(self, datanet_id: int | None) -> dict[str, int]:
        """Contributor → colour index, in order of first contribution (thread-safe)."""
        if datanet_id is None:
            return {}
        rows = self.store.query(
            "SELECT contributor, MIN(id) AS first FROM records WHERE datanet_id = ? "
            "GROUP BY contributor ORDER BY first",
            (datanet_id,),
        )
        return {r["contributor"]: i for i, r in enumerate(rows)}

    def set_filter(self, f: RecordFilter) -> None:
        self.filter = f
        self.reload()

    def query_ids(self, f: RecordFilter | None = None, datanet_id: int | None = None) -> list[int]:
        """The ids matching a filter, in order: one SQL query over the indexes. Safe off the
        GUI thread (the store gives each thread its own connection): the Datanets page runs it
        in the background and hands the ids to `set_ids`."""
        did = self.datanet_id if datanet_id is None else datanet_id
        if did is None:
            return []
        f = self.filter if f is None else f
        upto = search.indexed_upto(self.store, did) if f.text.strip() else 0
        newest = self.store.one("SELECT MAX(id) AS m FROM records") if upto else None
        complete = bool(newest) and upto >= int(newest["m"] or 0)  # type: ignore[index]
        where, params = f.sql(did, upto, fully_indexed=complete)
        cur = self.store.conn.cursor()
        cur.row_factory = None  # plain tuples: half the cost of sqlite3.Row for 100k ids
        return [
            r[0] for r in cur.execute(f"SELECT id FROM records WHERE {where} ORDER BY id", params)
        ]

    def set_ids(self, ids: list[int], f: RecordFilter | None = None) -> None:
        self.beginResetModel()
        if f is not None:
            self.filter = f
        self._pages.clear()
        self.ids = ids
        self.endResetModel()

    def reload(self) -> None:
        self.set_ids(self.query_ids())

    def _row(self, row: int) -> dict[str, Any]:
        page = row // PAGE
        if page not in self._pages:
            ids = self.ids[page * PAGE : (page + 1) * PAGE]
            got = {
                r["id"]: r
                for r in self.store.query(
                    "SELECT id, status, status_reason, score, reasons, pii, contributor, preview, "
                    f"kind FROM records WHERE id IN ({','.join('?' * len(ids))})",
                    ids,
                )
            }
            for r in got.values():
                r["reasons"] = json.loads(r["reasons"])
                r["pii"] = json.loads(r["pii"])
            self._pages[page] = [got[i] for i in ids if i in got]
            self.pages_loaded += 1
            if len(self._pages) > 64:  # keep memory flat on long scrolls
                self._pages.pop(next(iter(self._pages)))
        rows = self._pages[page]
        return rows[row % PAGE] if row % PAGE < len(rows) else {}

    def record(self, row: int) -> dict[str, Any]:
        return dict(self._row(row))

    # -- Qt model ------------------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.ids)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r = self._row(index.row())
        if not r:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return str(r["id"])
            if col == 1:
                return r["status"]
            if col == 2:
                return f"{r['score']:.2f}"
            if col == 3:
                flags = [f"PII: {p}" for p in r["pii"]] + list(r["reasons"])
                return "; ".join(flags)
            if col == 4:
                c = r["contributor"]
                return f"{c[:6]}…{c[-4:]}"
            if col == 5:
                return r["preview"].replace("\n", " ")[:160]
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == 4:
                return r["contributor"]
            if col == 1 and r["status_reason"]:
                return r["status_reason"]
            if col == 5:
                return r["preview"][:400]
        if role == Qt.ItemDataRole.ForegroundRole and col == 1:
            return theme.accent({"accepted": "ok", "rejected": "bad"}.get(r["status"], "warn"))
        if role == Qt.ItemDataRole.DecorationRole and col == 4:
            return theme.contributor_color(self.contributors.get(r["contributor"], 0))
        if role == Qt.ItemDataRole.UserRole:
            return r["id"]
        return None
