"""Where passwords and confirmations come from: a prompter injected by the front end.

The CLI's prompter reads --password-file or asks on the terminal (getpass); the GUI's shows a
dialog; the node's never asks. Nothing below the front ends calls getpass or input()."""

from __future__ import annotations

from typing import Protocol


class Prompter(Protocol):
    @property
    def interactive(self) -> bool:
        """Whether confirm() and ask_password() reach a person now (a terminal, a dialog).
        Operations ask before an irreversible step only then; headless runs go ahead."""
        ...

    def given_password(self) -> str | None:
        """A password the user already supplied for this run (e.g. a password file), or None.
        It wins over the environment variable and the OS keyring."""
        ...

    def ask_password(self, prompt: str, *, confirm: bool = False) -> str | None:
        """Ask the user now; `confirm`: ask twice (a new password). None: cannot ask (headless)."""
        ...

    def confirm(self, question: str) -> bool:
        """Yes/no from the user; False where no one can answer."""
        ...


class NoPrompter:
    """Headless and in tests: never asks, never confirms."""

    interactive = False

    def given_password(self) -> str | None:
        return None

    def ask_password(self, prompt: str, *, confirm: bool = False) -> str | None:
        return None

    def confirm(self, question: str) -> bool:
        return False


class FixedPrompter(NoPrompter):
    """A password known up front (the demo, a test, a GUI that asked once) and a fixed answer."""

    def __init__(self, password: str | None = None, *, yes: bool = False) -> None:
        self._password = password
        self._yes = yes

    def given_password(self) -> str | None:
        return self._password

    def confirm(self, question: str) -> bool:
        return self._yes
