"""One window per data home: a QLockFile in the home; a second launch asks the first (through a
QLocalServer named after the home) to come forward, then exits."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject
from PySide6.QtNetwork import QLocalServer, QLocalSocket


def server_name(home: Path) -> str:
    return (
        "openledger-studio-" + hashlib.sha256(str(Path(home).resolve()).encode()).hexdigest()[:16]
    )


class SingleInstance(QObject):
    def __init__(self, home: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = server_name(home)
        self.lock = QLockFile(str(Path(home) / "gui.lock"))
        self.lock.setStaleLockTime(0)  # a crashed window's lock is stale once its pid is gone
        self.server: QLocalServer | None = None

    def acquire(self) -> bool:
        if self.lock.tryLock(100):
            return True
        if self.lock.removeStaleLockFile() and self.lock.tryLock(100):
            return True
        return False

    def listen(self, on_raise: Callable[[], None]) -> None:
        QLocalServer.removeServer(self.name)
        self.server = QLocalServer(self)
        self.server.listen(self.name)

        def answer(sock: QLocalSocket) -> None:
            if sock.property("answered") or not sock.bytesAvailable():
                return
            sock.setProperty("answered", True)
            sock.readAll()
            on_raise()
            sock.disconnectFromServer()

        def accept() -> None:
            assert self.server is not None
            while self.server.hasPendingConnections():
                sock = self.server.nextPendingConnection()
                sock.readyRead.connect(lambda s=sock: answer(s))
                answer(sock)  # the bytes may have arrived before readyRead was connected

        self.server.newConnection.connect(accept)

    def raise_other(self) -> bool:
        sock = QLocalSocket()
        sock.connectToServer(self.name)
        if not sock.waitForConnected(3000):
            return False
        sock.write(b"raise\n")
        sock.waitForBytesWritten(3000)
        sock.waitForDisconnected(3000)
        return True

    def release(self) -> None:
        if self.server is not None:
            self.server.close()
        self.lock.unlock()
