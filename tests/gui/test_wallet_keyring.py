"""The keyring opt-in where the wallet asks a password: a remembered password unlocks later
without asking; with no usable keyring (no daemon: keyring's fail backend) the box is off with
the reason, and asking to remember still unlocks, saying the password was not kept."""

from __future__ import annotations

from typing import Any

import pytest

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    from studio.chain import keystore

    monkeypatch.setattr(keystore, "SCRYPT_N", 2**10)


@pytest.fixture(autouse=True)
def fresh_keyring_status() -> Any:
    from studio.ui import password

    password.forget_keyring_status()
    yield
    password.forget_keyring_status()


def test_remembered_password_unlocks_without_asking(qtbot: Any, window: Any) -> None:
    ui, win = window
    win.show_page("wallet")
    page = win.pages["wallet"]
    asked: list[str] = []
    ui.answer = lambda title, text: asked.append(text) or PASSWORD
    o = page.new_account(PASSWORD, remember=True)
    qtbot.waitUntil(lambda: o.finished, timeout=30_000)
    w = ui.studio.wallet
    (addr,) = [a.address for a in w.list()]
    assert addr in w._remembered()
    assert "remembered in the OS keyring" in page.status_line.text()
    w.lock_all()
    got: list[Any] = []
    ui.with_account(page, addr, got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=30_000)
    assert got[0].address == addr and asked == []  # the keyring answered, nobody was asked


def test_without_a_keyring_the_box_is_off_and_unlock_falls_back(
    qtbot: Any, window: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyring
    from keyring.backends import fail

    from studio.ui import password

    ui, win = window
    w = ui.studio.wallet
    addr, _ = w.create(PASSWORD, label="k")
    keyring.set_keyring(fail.Keyring())  # what a desktop without a Secret Service daemon has
    d = password.PasswordDialog(win, "Unlock account", "Password:")
    qtbot.addWidget(d)
    assert not d.remember.isEnabled()
    assert "No usable OS keyring" in d.keyring_note.text()
    assert "asked each time" in d.keyring_note.text()
    # asked to remember anyway (the state changed after the dialog looked): unlocked, told why
    password.forget_keyring_status()
    acct, note = password.unlock(w, addr, PASSWORD, True)
    assert acct.address == addr and not acct.locked
    assert note.startswith("Unlocked, but the password was not remembered")
    assert addr not in w._remembered()
    # a wrong password is not hidden behind the keyring fallback
    from studio.core.errors import StudioError

    w.lock_all()
    with pytest.raises(StudioError):
        password.unlock(w, addr, "wrong password!", True)
    # through the window: the status bar says it, the action still gets its account
    w.lock_all()
    ui.answer = lambda title, text: (PASSWORD, True) if title == "password" else True
    got: list[Any] = []
    ui.with_account(win.pages["home"], addr, got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=30_000)
    assert "not remembered" in win.status.currentMessage()
