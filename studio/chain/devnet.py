"""The embedded devnet: anvil as a child process on a free loopback port, its state in the data home.

Genesis (documented split): the 10 accounts of the dev mnemonic
`test test test test test test test test test test test junk` (m/44'/60'/0'/0/0..9) hold
100,000,000 OPEN each, exactly 1,000,000,000 OPEN in total; no other account holds anything.
Account 0 deploys the contracts and is treasury, admin and arbiter on the devnet; `faucet` pays from it.
These keys are public knowledge: never use them on a real network.

Files under <home>/devnet: `state.json` (anvil `--state`, dumped every few seconds and on exit, so a
restart keeps every balance and contract), `state.json.bak` (last state that loaded), `anvil.json`
(pid, port, url of the running node), `anvil.log` (its output; the well-known dev keys appear there),
`genesis-time` (the genesis timestamp, fixed at the first start: anvil 1.7.1 rebuilds block 0 with
the current time on every load of its state, so without it the genesis hash changes on restart and
the journal takes the devnet for a reset chain)."""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout

from studio.core import atomic, resources
from studio.core.cancel import CancelToken
from studio.core.errors import Cancelled, ChainError
from studio.core.events import Event, EventBus
from studio.core.jobs import child_env, pid_alive
from studio.core.paths import Paths

from .devkeys import (
    DEV_ACCOUNTS,
    DEV_MNEMONIC,
    dev_account,
    dev_accounts,
    dev_address,
    dev_private_key,
)
from .networks import DEVNET_CHAIN_ID, WEI_PER_OPEN, Network, parse_address
from .rpc import rpc_call

if TYPE_CHECKING:
    from .tx import TxPipeline, TxResult

__all__ = [
    "DEV_ACCOUNTS",
    "DEV_MNEMONIC",
    "Devnet",
    "anvil_command",
    "dev_account",
    "dev_accounts",
    "dev_address",
    "dev_private_key",
    "find_anvil",
    "rpc_call",
]

log = logging.getLogger("studio.devnet")

DEV_BALANCE_OPEN = 100_000_000
GENESIS_TOTAL_WEI = DEV_ACCOUNTS * DEV_BALANCE_OPEN * WEI_PER_OPEN  # 1e27 wei = 1,000,000,000 OPEN
STATE_INTERVAL_S = 5

_ANVIL_PACKAGES = {
    ("linux", "x86_64"): "anvil-linux-amd64",
    ("linux", "amd64"): "anvil-linux-amd64",
    ("linux", "aarch64"): "anvil-linux-arm64",
    ("linux", "arm64"): "anvil-linux-arm64",
    ("darwin", "x86_64"): "anvil-darwin-amd64",
    ("darwin", "arm64"): "anvil-darwin-arm64",
    ("win32", "amd64"): "anvil-win32-amd64",
    ("win32", "x86_64"): "anvil-win32-amd64",
}


def _project_roots() -> list[Path]:
    """Folders that may hold node_modules: the source checkout, the current dir, a frozen bundle."""
    return [*resources.roots(), Path.cwd()]


def find_anvil() -> Path:
    """STUDIO_ANVIL, then node_modules/@foundry-rs/anvil-<os>-<arch>/bin/anvil, then PATH."""
    exe = "anvil.exe" if sys.platform == "win32" else "anvil"
    env = os.environ.get("STUDIO_ANVIL")
    if env:
        p = Path(env).expanduser()
        if p.is_dir():
            p = p / exe
        if p.is_file() and os.access(p, os.X_OK):
            return p
        raise ChainError(
            f"STUDIO_ANVIL points at {env}, which is not an executable anvil.",
            hint="Fix or unset STUDIO_ANVIL, or run `make setup`.",
        )
    plat = "win32" if sys.platform == "win32" else sys.platform
    pkg = _ANVIL_PACKAGES.get((plat, platform.machine().lower()))
    names = [pkg] if pkg else []
    names += [n for n in dict.fromkeys(_ANVIL_PACKAGES.values()) if n not in names]
    for root in _project_roots():
        for name in names:
            p = root / "node_modules" / "@foundry-rs" / name / "bin" / exe
            if p.is_file() and os.access(p, os.X_OK):
                return p
    found = shutil.which("anvil")
    if found:
        return Path(found)
    raise ChainError(
        "anvil (the devnet node) was not found.",
        hint="Run `make setup` (npm installs @foundry-rs/anvil) or set STUDIO_ANVIL to the anvil binary.",
    )


def _pid_is_anvil(pid: int) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS, Windows): trust the recorded pid
    return b"anvil" in cmd


def anvil_command(port: int, chain_id: int, *, anvil: Path | None = None) -> list[str]:
    """argv of an anvil with the devnet's genesis (10 dev accounts × 100,000,000 OPEN) on
    127.0.0.1:port (0 = any free port). The devnet, the tests and the benchmarks all start this."""
    return [
        str(anvil or find_anvil()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--chain-id",
        str(chain_id),
        "--accounts",
        str(DEV_ACCOUNTS),
        "--balance",
        str(DEV_BALANCE_OPEN),
        "--mnemonic",
        DEV_MNEMONIC,
    ]


def _stray_anvils(state_file: Path) -> list[int]:
    """Anvil processes writing to this state file (Linux /proc only). Such a process, left behind
    by a crashed studio, would keep dumping its chain over ours every few seconds."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    target = str(state_file).encode()
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args and b"anvil" in args[0] and target in args and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


class Devnet:
    """Start, stop, inspect and reset the embedded anvil of one data home."""

    def __init__(
        self,
        paths: Paths,
        *,
        chain_id: int = DEVNET_CHAIN_ID,
        state_interval_s: int = STATE_INTERVAL_S,
        events: EventBus | None = None,
    ) -> None:
        self.paths = paths
        self.events = events
        self.chain_id = chain_id
        self.state_interval_s = state_interval_s
        self.dir = paths.devnet
        self.state_file = self.dir / "state.json"
        self.info_file = self.dir / "anvil.json"
        self.log_file = self.dir / "anvil.log"
        self.genesis_time_file = self.dir / "genesis-time"
        self._lock = FileLock(str(self.dir / "anvil.lock"))

    @property
    def network(self) -> Network:
        return Network("devnet", self.chain_id, self.url, embedded=True)

    # -- inspection --------------------------------------------------------------------------
    def _info(self) -> dict[str, Any] | None:
        try:
            info = json.loads(self.info_file.read_text())
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    def _healthy(self, info: dict[str, Any] | None) -> bool:
        if not info or not pid_alive(int(info.get("pid", 0))):
            return False
        try:
            return int(rpc_call(info["url"], "eth_chainId", timeout=2.0), 16) == self.chain_id
        except (OSError, ValueError, KeyError, TypeError):
            return False

    @property
    def url(self) -> str | None:
        info = self._info()
        return str(info["url"]) if info and self._healthy(info) else None

    def status(self) -> dict[str, Any]:
        info = self._info()
        running = self._healthy(info)
        st: dict[str, Any] = {
            "running": running,
            "chain_id": self.chain_id,
            "url": info.get("url") if running and info else None,
            "pid": info.get("pid") if running and info else None,
            "state_file": str(self.state_file),
            "state_bytes": self.state_file.stat().st_size if self.state_file.exists() else 0,
        }
        if running and info:
            try:
                st["block"] = int(rpc_call(info["url"], "eth_blockNumber"), 16)
            except (OSError, ValueError):
                st["block"] = None
        return st

    # -- lifecycle ---------------------------------------------------------------------------
    def up(self, *, timeout: float = 30.0, cancel: CancelToken | None = None) -> dict[str, Any]:
        """Start anvil unless it already runs (safe to call from several processes at once).
        Cancelled while anvil starts, it is stopped again and nothing is recorded."""
        try:
            with self._lock.acquire(timeout=timeout + 30):
                info = self._info()
                if self._healthy(info):
                    return self.status()
                if info and pid_alive(int(info.get("pid", 0))) and _pid_is_anvil(int(info["pid"])):
                    self._stop_pid(int(info["pid"]), 5.0)  # hung: replace it
                self._start(timeout, cancel)
                return self.status()
        except Timeout as e:
            raise ChainError(
                "Another studio process is starting the devnet and did not finish.",
                hint="Run `studio devnet status`; if it is stuck, `studio devnet down`.",
            ) from e

    def _check_state_file(self) -> None:
        """A state file anvil cannot load (cut short by a crash) is replaced by the last good copy."""
        if not self.state_file.exists():
            return
        bak = self.state_file.with_name("state.json.bak")
        try:
            json.loads(self.state_file.read_bytes())
        except ValueError:
            if bak.exists():
                shutil.copyfile(
                    bak, self.state_file
                )  # keep the copy: the next crash may need it too
                self._warn(
                    f"the devnet state {self.state_file} was unreadable (cut short?); "
                    "restarted from the last good copy, so the latest transactions may be gone"
                )
            else:
                aside = self.state_file.with_name(f"state.corrupt-{int(time.time())}.json")
                self.state_file.rename(aside)
                # Say it where the user looks: every balance and contract is back at genesis.
                self._warn(
                    f"the devnet state was unreadable and had no good copy; it was moved to {aside} "
                    "and the devnet starts again from genesis (balances and contracts are reset)"
                )
            return
        shutil.copyfile(self.state_file, bak)
        os.chmod(bak, 0o600)

    def _warn(self, message: str) -> None:
        log.warning(message)
        if self.events is not None:
            self.events.emit(Event("warning", job="devnet", message=f"warning: {message}"))

    def _start(self, timeout: float, cancel: CancelToken | None = None) -> None:
        anvil = find_anvil()
        for stray in _stray_anvils(self.state_file):
            logging.getLogger("studio.devnet").warning(
                "stopping a stray anvil (pid %s) left on this data home", stray
            )
            self._stop_pid(stray, 5.0)
        self._check_state_file()
        args = [
            *anvil_command(0, self.chain_id, anvil=anvil),
            "--state",
            str(self.state_file),
            "--state-interval",
            str(self.state_interval_s),
            "--timestamp",
            str(self._genesis_time()),
        ]
        old = os.umask(0o077)
        try:
            log = open(self.log_file, "wb")  # noqa: SIM115 - handed to the child
            kwargs: dict[str, Any] = {}
            if sys.platform == "win32":
                kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
            else:
                kwargs["start_new_session"] = (
                    True  # Ctrl-C in the terminal must not kill the devnet
                )
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                env=child_env(),  # no secrets (STUDIO_PASSWORD) in anvil's environment
                **kwargs,
            )
        finally:
            os.umask(old)
        log.close()
        # Reap it when it exits while we live (GUI, tests), so it never lingers as a zombie.
        threading.Thread(target=proc.wait, name=f"anvil-{proc.pid}-reaper", daemon=True).start()
        deadline = time.monotonic() + timeout
        url = None
        while time.monotonic() < deadline:
            if cancel is not None:
                try:
                    cancel.check()
                except Cancelled:
                    self._stop_pid(proc.pid, 5.0)
                    raise
            if proc.poll() is not None:
                raise ChainError(
                    f"anvil exited at start (code {proc.returncode}): {self._log_tail()}",
                    hint=f"See {self.log_file}; `studio devnet reset` starts from a fresh genesis.",
                )
            if url is None:
                url = self._listening_url()
            if url:
                try:
                    if int(rpc_call(url, "eth_chainId", timeout=2.0), 16) == self.chain_id:
                        break
                except (OSError, ValueError):
                    pass
            time.sleep(0.05)
        else:
            self._stop_pid(proc.pid, 5.0)
            raise ChainError(
                f"anvil did not answer within {timeout:.0f}s.", hint=f"See {self.log_file}."
            )
        port = int(url.rsplit(":", 1)[1])
        atomic.write_json(
            self.info_file,
            {
                "pid": proc.pid,
                "port": port,
                "url": url,
                "chain_id": self.chain_id,
                "anvil": str(anvil),
                "started_at": time.time(),
            },
        )

    def _listening_url(self) -> str | None:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith("Listening on "):
                hostport = line.split()[-1]
                return f"http://{hostport}"
        return None

    def _log_tail(self, n: int = 3) -> str:
        try:
            lines = [
                ln for ln in self.log_file.read_text(errors="replace").splitlines() if ln.strip()
            ]
        except OSError:
            return "no log"
        return " | ".join(lines[-n:]) or "no output"

    def _stop_pid(self, pid: int, timeout: float) -> None:
        try:
            os.kill(pid, signal.SIGTERM)  # anvil dumps its state on SIGTERM
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.05)
        try:
            os.kill(pid, signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass

    def down(self, *, timeout: float = 20.0) -> dict[str, Any]:
        """Stop anvil (its state is written on the way out). Safe when it is not running."""
        with self._lock.acquire(timeout=timeout + 30):
            info = self._info()
            was_running = False
            if info:
                pid = int(info.get("pid", 0))
                if pid_alive(pid) and _pid_is_anvil(pid):
                    was_running = True
                    self._stop_pid(pid, timeout)
                self.info_file.unlink(missing_ok=True)
            for stray in _stray_anvils(self.state_file):
                was_running = True
                self._stop_pid(stray, timeout)
        st = self.status()
        st["stopped"] = was_running
        return st

    def reset(self, *, store: Any = None) -> dict[str, Any]:
        """Stop anvil and forget the chain: state, deployment file and (with `store`) journal rows."""
        self.down()
        with self._lock.acquire(timeout=60):
            removed = []
            for p in (
                self.state_file,
                self.state_file.with_name("state.json.bak"),
                self.genesis_time_file,
                self.network.deployment_file(self.paths.home),
            ):
                if p.exists():
                    p.unlink()
                    removed.append(str(p))
        if store is not None:
            from .journal import forget_chain

            forget_chain(store, self.chain_id)
        st = self.status()
        st["removed"] = removed
        return st

    # -- money -------------------------------------------------------------------------------
    def faucet(self, address: str, amount_wei: int, *, pipeline: TxPipeline) -> TxResult:
        """Send `amount_wei` OPEN from dev account 0 to `address` through `pipeline` (the same
        as ChainClient.faucet, which is the one to call when you hold a client)."""
        address = parse_address(address)
        if amount_wei <= 0:
            raise ChainError("The faucet amount must be positive.")
        return pipeline.send(dev_account(0), to=address, value=int(amount_wei), purpose="faucet")

    def _genesis_time(self) -> int:
        """The genesis timestamp of this devnet, chosen once. A state written before this file
        existed keeps its earliest block 0 (the one the journal first saw)."""
        try:
            return int(self.genesis_time_file.read_text().strip())
        except (OSError, ValueError):
            pass
        stamp = int(time.time())
        if self.state_file.exists():
            try:
                blocks = json.loads(self.state_file.read_bytes()).get("blocks") or []
                zeros = [
                    int(b["header"]["timestamp"], 16)
                    for b in blocks
                    if int(b["header"]["number"], 16) == 0
                ]
                stamp = min(zeros) if zeros else stamp
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                pass
        atomic.write_bytes(self.genesis_time_file, f"{stamp}\n".encode(), mode=0o600)
        return stamp

    def save_state(self, w3: object) -> None:
        """Write the chain's state to the state file now (anvil_dumpState), atomically; anvil
        itself only dumps every few seconds and on a clean exit."""
        import gzip

        raw = w3.provider.make_request("anvil_dumpState", [])  # type: ignore[attr-defined]
        blob = bytes.fromhex(str(raw.get("result", ""))[2:])
        doc = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
        json.loads(doc)  # only a readable state replaces the file
        with self._lock.acquire(timeout=30):
            atomic.write_bytes(self.state_file, doc, mode=0o600)
