#!/usr/bin/env python3
"""Compile contracts/**/*.sol with the pinned solc-js (npm `solc`) and write resources/contracts/.

Drives solc-js through `node` with standard-JSON input (settings in studio.chain.contracts:
optimizer on, evmVersion "cancun"); `@openzeppelin/...` imports are read from node_modules. Each
contract declared in contracts/X.sol becomes resources/contracts/X.json, contracts/test/Y.sol →
resources/contracts/test/Y.json, and so on, with {abi, bytecode, deployedBytecode, source_hash,
solc_version}. Run by `make contracts`; `--check` only reports whether the artifacts are stale."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from studio.chain import contracts as C  # noqa: E402
from studio.core import atomic  # noqa: E402

# Reads the standard-JSON input on stdin, resolves imports from node_modules, prints the output.
NODE_DRIVER = r"""
const fs = require('fs');
const path = require('path');
const solc = require('solc');
const input = fs.readFileSync(0, 'utf8');
function findImports(p) {
  for (const base of [path.join(process.cwd(), 'node_modules'), path.join(process.cwd(), 'contracts')]) {
    const f = path.join(base, p);
    if (fs.existsSync(f)) return { contents: fs.readFileSync(f, 'utf8') };
  }
  return { error: 'not found: ' + p };
}
const out = solc.compile(input, { import: findImports });
process.stdout.write(JSON.stringify({ version: solc.version(), output: JSON.parse(out) }));
"""


def compile_all(*, out_dir: Path = C.ARTIFACTS_DIR) -> list[str]:
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is not installed: install Node.js 18+ and run `npm ci`.")
    if not (REPO / "node_modules" / "solc").exists():
        raise SystemExit("solc-js is missing: run `npm ci` (or `make setup`) first.")
    sources = {p.relative_to(C.CONTRACTS_DIR).as_posix(): p for p in C.source_files()}
    std_in = {
        "language": "Solidity",
        "sources": {rel: {"content": p.read_text("utf-8")} for rel, p in sources.items()},
        "settings": C.SOLC_SETTINGS,
    }
    proc = subprocess.run(
        [node, "-e", NODE_DRIVER],
        input=json.dumps(std_in),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"solc-js failed:\n{proc.stderr}")
    doc = json.loads(proc.stdout)
    version, output = doc["version"], doc["output"]
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    for e in output.get("errors", []):
        print(e.get("formattedMessage", e.get("message")), file=sys.stderr)
    if errors:
        raise SystemExit(f"{len(errors)} compile error(s)")
    pinned = C.pinned_versions()["solc"]
    if not version.startswith(pinned + "+"):
        raise SystemExit(
            f"solc-js reports {version}, but package.json pins {pinned}: run `npm ci`."
        )
    source_hash = C.compute_source_hash()
    written = []
    if out_dir.exists():
        for old in out_dir.rglob("*.json"):
            old.unlink()
    for rel, path in sources.items():
        for name, c in output["contracts"].get(rel, {}).items():
            if not c["evm"]["bytecode"]["object"]:
                continue  # an interface: nothing to deploy, its ABI lives in the contract using it
            art = {
                "contractName": name,
                "sourceName": f"contracts/{rel}",
                "abi": c["abi"],
                "bytecode": "0x" + c["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + c["evm"]["deployedBytecode"]["object"],
                "source_hash": source_hash,
                "solc_version": version,
                "settings": C.SOLC_SETTINGS,
            }
            target = out_dir / f"{C.artifact_name(path, name)}.json"
            atomic.write_text(target, json.dumps(art, indent=1, sort_keys=True) + "\n", mode=0o644)
            written.append(C.artifact_name(path, name))
    return written


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--check", action="store_true", help="only report stale artifacts (exit 1 if any)"
    )
    a = ap.parse_args()
    if a.check:
        reasons = C.stale_reasons()
        for r in reasons:
            print(r)
        return 1 if reasons else 0
    written = compile_all()
    print(
        f"compiled {len(written)} contracts → {C.ARTIFACTS_DIR.relative_to(REPO)}: {', '.join(written)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
