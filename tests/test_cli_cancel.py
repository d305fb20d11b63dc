"""The command line's Ctrl-C: for a chain operation that takes a cancel token (publish) the first one
cancels it politely, a second one interrupts; other operations keep Ctrl-C as an interrupt."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from studio.cli import _cancel_on_interrupt
from studio.commands import get, load_all
from studio.core.cancel import CancelToken


def test_first_ctrl_c_cancels_publish_politely_the_second_interrupts() -> None:
    load_all()
    kwargs: dict[str, Any] = {"name": "notes"}
    before = signal.getsignal(signal.SIGINT)
    with _cancel_on_interrupt(get("datanet publish"), kwargs):
        token = kwargs["cancel"]
        assert isinstance(token, CancelToken) and not token.cancelled
        signal.raise_signal(signal.SIGINT)  # handled: no KeyboardInterrupt
        assert token.cancelled
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert "cancel" not in kwargs and signal.getsignal(signal.SIGINT) is before


def test_other_operations_keep_ctrl_c_as_an_interrupt() -> None:
    load_all()
    kwargs: dict[str, Any] = {"name": "notes", "files": []}
    # Python's own handler, whatever an earlier in-process job command left installed.
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with _cancel_on_interrupt(get("datanet add"), kwargs):  # cancellable, but no chain
            assert "cancel" not in kwargs
            assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, before)


def test_speed_up_cancel_is_an_option_not_the_cancel_token() -> None:
    """`wallet speed-up --cancel` once vanished: its parameter had the cancel token's name."""
    from studio.cli import build_parser

    args = build_parser().parse_args(["wallet", "speed-up", "0x" + "ab" * 32, "--cancel"])
    assert args.cancel_tx is True and not get("wallet speed-up").cancellable
