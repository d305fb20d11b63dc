"""The command line's prompter: --password-file, else the terminal (getpass), else nobody."""

from __future__ import annotations

import getpass
import logging
import sys
from pathlib import Path

from studio.core.errors import WalletError

log = logging.getLogger("studio")


class ConsolePrompter:
    def __init__(self, password_file: str | None = None) -> None:
        self.password_file = password_file
        self._warned = False

    def given_password(self) -> str | None:
        if not self.password_file:
            return None
        path = Path(self.password_file).expanduser()
        try:
            mode = path.stat().st_mode
        except OSError:
            mode = 0
        if sys.platform != "win32" and mode & 0o077 and not self._warned:
            self._warned = True  # shown once: anyone on this machine may be able to read it
            print(
                f"warning: the password file {self.password_file} can be read by other users; "
                f"run `chmod 600 {self.password_file}`",
                file=sys.stderr,
                flush=True,
            )
        from studio.chain.wallet import read_password_file

        return read_password_file(path)

    @staticmethod
    def _interactive() -> bool:
        return sys.stdin is not None and sys.stdin.isatty()

    @property
    def interactive(self) -> bool:
        return self._interactive()

    def ask_password(self, prompt: str, *, confirm: bool = False) -> str | None:
        if not self._interactive():
            return None
        pw = getpass.getpass(prompt)
        if confirm and getpass.getpass("Repeat the password: ") != pw:
            raise WalletError("The two passwords differ.")
        return pw

    def confirm(self, question: str) -> bool:
        if not self._interactive():
            return False
        try:
            answer = input(f"{question} [y/N] ")
        except EOFError:
            return False
        return answer.strip().lower() in ("y", "yes")
