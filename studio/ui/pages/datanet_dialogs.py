"""Dialogs of the Datanets page: create (validated as you type) and the publish confirmation."""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QWidget,
)

from studio.ui import theme

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
TAG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
SPDX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$|^LicenseRef-[A-Za-z0-9.-]+$")


def name_problem(name: str) -> str | None:
    if not name:
        return "A name is needed."
    if not NAME_RE.match(name):
        return "2–64 characters: lower-case letters, digits, '.', '_' or '-', starting with a letter or digit."
    return None


class CreateDatanetDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New Datanet")
        form = QFormLayout(self)
        self.name = QLineEdit()
        self.name.setPlaceholderText("field-notes")
        self.name.setToolTip("Lower-case letters, digits, '.', '_' or '-'")
        self.summary = QLineEdit()
        self.summary.setToolTip("One line that says what this data is")
        self.license = QLineEdit("CC-BY-4.0")
        self.license.setToolTip("An SPDX license id, e.g. CC-BY-4.0 or Apache-2.0")
        self.tags = QLineEdit()
        self.tags.setPlaceholderText("tides, coast")
        self.tags.setToolTip("Comma-separated tags")
        self.description = QPlainTextEdit()
        self.description.setToolTip("A longer description (Markdown)")
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        pal = self.problem.palette()
        pal.setColor(self.problem.foregroundRole(), theme.accent("bad"))
        self.problem.setPalette(pal)
        for label, w in (
            ("Name", self.name),
            ("Summary", self.summary),
            ("License", self.license),
            ("Tags", self.tags),
            ("Description", self.description),
        ):
            w.setAccessibleName(label)
            form.addRow(label, w)
        form.addRow(self.problem)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        for w in (self.name, self.license, self.tags):
            w.textChanged.connect(self.validate)
        self.validate()

    def validate(self) -> bool:
        problem = name_problem(self.name.text().strip())
        if problem is None and not SPDX_RE.match(self.license.text().strip()):
            problem = "The license must be an SPDX id such as CC-BY-4.0."
        if problem is None:
            bad = [t for t in self._tags() if not TAG_RE.match(t)]
            if bad:
                problem = f"Tags are lower-case words with '-': {', '.join(bad)}"
        self.problem.setText(problem or "")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(problem is None)
        return problem is None

    def _tags(self) -> list[str]:
        return [t.strip() for t in self.tags.text().split(",") if t.strip()]

    def values(self) -> dict[str, Any]:
        return {
            "name": self.name.text().strip(),
            "summary": self.summary.text().strip(),
            "description": self.description.toPlainText(),
            "tags": self._tags(),
            "license": self.license.text().strip(),
        }


def publish_text(ui: Any, d: dict[str, Any]) -> str:
    from studio.chain.datanets_onchain import IRREVERSIBLE
    from studio.ui.format import open_amount

    snap = d["latest_snapshot"]
    fee = _publish_fee(ui)
    gas = 2_000_000 * 2 * 10**9
    return (
        f"Publish '{d['name']}' v{snap['version']} ({snap['records']} records)\n"
        f"root {snap['root']}\n\n"
        f"Chain: {ui.studio.network_name} (chain id {ui.chain_id()})\n"
        f"Publishing fee: {open_amount(fee)}\n"
        f"Maximum network fee: {open_amount(gas)}\n"
        f"Total at most: {open_amount((fee or 0) + gas)}\n\n"
        "Each contributor whose account this wallet holds signs their records (EIP-712).\n\n"
        + IRREVERSIBLE
    )


def _publish_fee(ui: Any) -> int | None:
    try:
        from studio.chain import contracts

        reg = contracts.contract(ui.studio.chain, "DatanetRegistry")
        for fn in ("publishFee", "snapshotFee", "fee"):
            if hasattr(reg.functions, fn):
                return int(getattr(reg.functions, fn)().call())
    except Exception:  # noqa: BLE001 - the dialog still shows chain and gas
        return None
    return None
