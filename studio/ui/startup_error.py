"""The dialog a frozen studio shows when it cannot start (studio/launch.py writes the log)."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication, QMessageBox


def show(title: str, text: str) -> bool:
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "studio"])
    QMessageBox.critical(None, title, text)
    del app
    return True
