"""Demo stage: the bundled sample Datanet, from files to a verified, exported snapshot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from studio.commands import Context
from studio.core.errors import AlreadyExists
from studio.core.resources import resource_path

MIN_SCORE = 0.6


def sample_dir() -> Path:
    """resources/sample-datanet in a checkout, or inside a frozen (PyInstaller) build."""
    folder = resource_path("sample-datanet")
    if (folder / "manifest.json").exists():
        return folder
    raise FileNotFoundError("resources/sample-datanet is missing from this installation")


def run_stage(ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
    from studio.commands.render import add_result_lines

    studio = ctx.studio
    dn = studio.datanets
    folder = sample_dir()
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    name = manifest["name"]

    ctx.say(f"1. Create the Datanet '{name}' ({manifest['license']})")
    try:
        dn.create(
            name,
            summary=manifest["summary"],
            description=manifest["description"],
            tags=manifest["tags"],
            license=manifest["license"],
        )
    except AlreadyExists:
        ctx.say("   already exists in this data home: reusing it")

    ctx.say("2. Add the contributors' files (each file's contributor comes from manifest.json)")
    for entry in manifest["files"]:
        results = dn.add_files(name, [folder / entry["file"]], contributor=entry["contributor"])
        for line in add_result_lines(results):
            ctx.say(line)

    ctx.say(
        f"3. Curate: accept every pending record scoring >= {MIN_SCORE}, reject the rest with their reasons"
    )
    res = dn.curate(name, accept_all=True, min_score=MIN_SCORE)
    ctx.say(f"   accepted {len(res['changed'])} records")
    by_id = {r["id"]: r for r in dn.records(name, "pending")}
    for rid in res["left_pending"]:
        r = by_id[rid]
        why = f"score {r['score']:.2f}: " + "; ".join(r["reasons"])
        dn.curate(name, reject=[rid], reason=why)
        ctx.say(f"   rejected #{rid} {r['preview'][:50]!r} — {why}")

    snap = dn.snapshot(name)
    ctx.say(
        f"4. Snapshot v{snap['version']}: {snap['records']} records, Merkle root {snap['root']}"
        + (" (unchanged)" if snap.get("unchanged") else "")
    )

    check = dn.verify(name)
    ctx.say(
        f"5. Verify: {'OK' if check['ok'] else 'PROBLEMS'} — {check['records_checked']} records re-hashed, "
        f"{check['snapshots_checked']} snapshot root(s) rebuilt"
    )
    for p in check["problems"]:
        ctx.say(f"   !! {p}")

    exports = []
    for fmt in ("jsonl", "parquet"):
        out = dn.export(name, studio.paths.exports, fmt)
        exports.append(out["path"])
        ctx.say(f"6. Exported v{out['version']} as {fmt}: {out['path']}")

    counts = dn.get(name)["records"]
    state["datanet"] = name
    state["snapshot"] = {
        "version": snap["version"],
        "root": snap["root"],
        "records": snap["records"],
    }
    return {
        "datanet": name,
        "snapshot": state["snapshot"],
        "records": counts,
        "verified": check["ok"],
        "exports": exports,
    }
