"""`studio datanet …` commands (publish is registered by the chain layer)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from studio.commands import Context, arg, command
from studio.core.errors import IntegrityError, InvalidInput


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _fmt_time(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


@command(
    "datanet create",
    "Create a Datanet (a named, licensed collection of contributed records).",
    arg("name", help="lower-case name, e.g. open-field-notes"),
    arg("--summary", default="", help="one line"),
    arg("--description-file", help="markdown file with the long description"),
    arg("--tags", default="", help="comma-separated, e.g. baking,bees"),
    arg("--license", default="CC-BY-4.0", help="SPDX id (default CC-BY-4.0)"),
    arg("--owner", help="owner address 0x… (default: the active wallet account)"),
)
def create(ctx: Context, args: argparse.Namespace) -> Any:
    description = ""
    if args.description_file:
        p = Path(args.description_file)
        try:
            description = p.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InvalidInput(
                f"Cannot read the description file {p}: {e}.", hint="Pass a UTF-8 markdown file."
            ) from e
    dn = ctx.studio.datanets.create(
        args.name,
        summary=args.summary,
        description=description,
        tags=args.tags,
        license=args.license,
        owner=args.owner,
    )
    owner = f", owner {dn['owner']}" if dn.get("owner") else ""
    ctx.say(f"Created Datanet '{dn['name']}' ({dn['license']}{owner}).")
    ctx.say(f"Next: studio datanet add {dn['name']} FILE… [--contributor 0x…]")
    return dn


def say_add_results(ctx: Context, results: list[dict[str, Any]]) -> None:
    for r in results:
        if r["status"] == "added":
            flags = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in r["flags"].items() if v)
            ctx.say(
                f"  {r['file']}: added {_n(r['records'], 'record')}"
                + (f" ({flags})" if flags else "")
            )
            for ref in r["refused"]:
                ctx.say(f"    refused (never stored): {ref['where']}: {ref['reason']}")
        elif r["status"] == "duplicate":
            ctx.say(f"  {r['file']}: {r['message']}")
        else:
            ctx.say(f"  {r['file']}: error: {r['error']}")


@command(
    "datanet add",
    "Add files (txt md jsonl csv pdf docx) to a Datanet; prints a result per file.",
    arg("name"),
    arg("files", nargs="+", metavar="FILE"),
    arg("--contributor", help="address whose data this is (default: the active wallet)"),
    arg("--text-column", help="CSV column holding the text (default: 'text', or prompt/response)"),
    arg(
        "--follow-symlinks",
        action="store_true",
        help="add what symbolic links point to (refused by default)",
    ),
)
def add(ctx: Context, args: argparse.Namespace) -> Any:
    results = ctx.studio.datanets.add_files(
        args.name,
        args.files,
        contributor=args.contributor,
        text_column=args.text_column,
        follow_symlinks=args.follow_symlinks,
    )
    say_add_results(ctx, results)
    added = sum(r.get("records", 0) for r in results if r["status"] == "added")
    ctx.say(
        f"{_n(added, 'new record')} in '{args.name}'. Review: studio datanet records {args.name} --status pending"
    )
    return results


@command("datanet list", "List Datanets.")
def list_(ctx: Context, args: argparse.Namespace) -> Any:
    items = ctx.studio.datanets.list()
    if not items:
        ctx.say("No Datanets yet. Create one: studio datanet create NAME")
    for d in items:
        c = d["records"]
        snap = d["latest_snapshot"]
        v = f"v{snap['version']} {snap['root'][:12]}…" if snap else "no snapshot"
        ctx.say(
            f"{d['name']:<24} {c['accepted']:>5} accepted {c['pending']:>5} pending {c['rejected']:>5} rejected  {v}"
        )
    return items


@command(
    "datanet show", "Show a Datanet: description, files, record counts and snapshots.", arg("name")
)
def show(ctx: Context, args: argparse.Namespace) -> Any:
    dn = ctx.studio.datanets
    d = dn.get(args.name)
    d["files_list"] = dn.files(args.name)
    d["snapshots"] = dn.snapshots(args.name)
    ctx.say(f"{d['name']} — {d['summary']}")
    ctx.say(
        f"  license {d['license']}, kind {d['kind']}, tags {', '.join(d['tags']) or '-'}, created {_fmt_time(d['created_at'])}"
    )
    ctx.say(f"  owner {d.get('owner') or '- (set when published)'}")
    if d["description"]:
        ctx.say("")
        ctx.say("  " + d["description"].strip().replace("\n", "\n  "))
        ctx.say("")
    c = d["records"]
    ctx.say(
        f"  records: {c['accepted']} accepted, {c['pending']} pending, {c['rejected']} rejected"
    )
    for f in d["files_list"]:
        ctx.say(
            f"  file #{f['id']} {f['name']} ({f['format']}, {_n(f['records'], 'record')}, contributor {f['contributor']})"
        )
    for s in d["snapshots"]:
        ctx.say(f"  snapshot v{s['version']}: {_n(s['records'], 'record')}, root {s['root']}")
    return d


@command(
    "datanet records",
    "List a Datanet's records with score, reasons and status.",
    arg("name"),
    arg("--status", choices=["pending", "accepted", "rejected"]),
)
def records(ctx: Context, args: argparse.Namespace) -> Any:
    rows = ctx.studio.datanets.records(args.name, args.status)
    for r in rows:
        why = "; ".join(r["reasons"])
        status = r["status"] + (
            f" ({r['status_reason']})" if r["status"] == "rejected" and r["status_reason"] else ""
        )
        ctx.say(
            f"#{r['id']:<6} {r['score']:.2f} {status:<9} {r['kind']:<15} {r['preview'][:60]!r}"
            + (f"  [{why}]" if why else "")
        )
    if not rows:
        ctx.say("No records.")
    return rows


@command(
    "datanet curate",
    "Accept or reject records (pending → accepted / rejected).",
    arg("name"),
    arg("--accept", nargs="+", type=int, metavar="ID"),
    arg(
        "--accept-all",
        action="store_true",
        help="accept every pending record scoring >= --min-score",
    ),
    arg("--min-score", type=float, default=0.5, help="for --accept-all (default 0.5)"),
    arg("--reject", nargs="+", type=int, metavar="ID"),
    arg("--reason", default="", help="why (required with --reject)"),
)
def curate(ctx: Context, args: argparse.Namespace) -> Any:
    res = ctx.studio.datanets.curate(
        args.name,
        accept=args.accept,
        accept_all=args.accept_all,
        min_score=args.min_score,
        reject=args.reject,
        reason=args.reason or "",
    )
    ctx.say(f"{len(res['changed'])} record(s) {res['status']}.")
    if res["left_pending"]:
        ctx.say(
            f"{len(res['left_pending'])} scored below {args.min_score:g} and stay pending: "
            + " ".join(f"#{i}" for i in res["left_pending"][:20])
            + (" …" if len(res["left_pending"]) > 20 else "")
        )
    return res


@command(
    "datanet edit",
    "Edit a record: the edit is a new pending record; the old one is kept unchanged.",
    arg("name"),
    arg("record_id", type=int),
    arg(
        "--text-file",
        required=True,
        help="file with the new text (JSON for prompt/response or chat records)",
    ),
)
def edit(ctx: Context, args: argparse.Namespace) -> Any:
    try:
        text = Path(args.text_file).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInput(
            f"Cannot read {args.text_file}: {e}.", hint="Pass a UTF-8 text file."
        ) from e
    r = ctx.studio.datanets.edit_record(args.name, args.record_id, text)
    ctx.say(f"Record #{r['id']} replaces #{args.record_id} (pending, score {r['score']:.2f}).")
    return r


@command(
    "datanet snapshot",
    "Freeze the accepted records as a new immutable version with a Merkle root.",
    arg("name"),
)
def snapshot(ctx: Context, args: argparse.Namespace) -> Any:
    s = ctx.studio.datanets.snapshot(args.name)
    note = " (unchanged since the latest version)" if s.get("unchanged") else ""
    ctx.say(f"Snapshot v{s['version']}: {_n(s['records'], 'record')}, root {s['root']}{note}")
    return {"version": s["version"], "root": s["root"], "records": s["records"]}


@command(
    "datanet proof",
    "Print the Merkle proof of a record in a snapshot.",
    arg("name"),
    arg("record_id", type=int),
    arg("--version", type=int),
)
def proof(ctx: Context, args: argparse.Namespace) -> Any:
    dn = ctx.studio.datanets
    snap = dn.get_snapshot(args.name, args.version)
    p = dn.proof(args.name, args.record_id, args.version)
    leaf = next(
        r["leaf"]
        for r in ctx.studio.store.query(
            "SELECT sr.leaf FROM snapshot_records sr JOIN snapshots s ON s.id = sr.snapshot_id"
            " JOIN datanets d ON d.id = s.datanet_id WHERE d.name = ? AND s.version = ? AND sr.record_id = ?",
            (args.name, snap["version"], args.record_id),
        )
    )
    ctx.say(f"record #{args.record_id} in v{snap['version']}: leaf {leaf}")
    for h in p:
        ctx.say(f"  {h}")
    return {
        "version": snap["version"],
        "root": snap["root"],
        "record_id": args.record_id,
        "leaf": leaf,
        "proof": p,
    }


@command(
    "datanet verify",
    "Re-hash every record and rebuild every snapshot root; report tampering by record.",
    arg("name"),
)
def verify(ctx: Context, args: argparse.Namespace) -> Any:
    res = ctx.studio.datanets.verify(args.name)
    for p in res["problems"]:
        where = f"record #{p['record_id']}" if "record_id" in p else f"snapshot v{p['version']}"
        ctx.say(f"  !! {where}: {p['problem']}")
    if not res["ok"]:
        ctx.emit_result(res)
        raise IntegrityError(
            f"'{args.name}': {len(res['problems'])} problem(s) found.",
            hint="Restore the data home from a backup, or re-add the affected files.",
        )
    ctx.say(
        f"OK: {_n(res['records_checked'], 'record')} and {res['snapshots_checked']} snapshot(s) verified."
    )
    return res


@command(
    "datanet export",
    "Export a snapshot version to JSONL or Parquet (loads with Hugging Face datasets).",
    arg("name"),
    arg("--out", required=True, help="file (.jsonl/.parquet) or folder"),
    arg("--format", choices=["jsonl", "parquet"], default="jsonl"),
    arg("--version", type=int, help="snapshot version (default: latest)"),
)
def export(ctx: Context, args: argparse.Namespace) -> Any:
    res = ctx.studio.datanets.export(args.name, args.out, args.format, args.version)
    ctx.say(
        f"Exported {_n(res['records'], 'record')} of '{args.name}' v{res['version']} to {res['path']}"
    )
    return res
