"""Text for doctor and the datanet operations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .base import fmt_time, plural, renders, says, table

if TYPE_CHECKING:
    from studio.commands import Context


# -- basic --------------------------------------------------------------------------------------


@renders("doctor")
def _doctor(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(f"OpenLedger Studio {r.version}")
    for c in r.checks:
        mark = "ok " if c.ok else "!! "
        ctx.say(f"  {mark}{c.check:<10} {c.detail}")
        if c.fix:
            ctx.say(f"      → {c.fix}")


# -- datanets -----------------------------------------------------------------------------------


@renders("datanet create")
def _create(d: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    owner = f", owner {d.owner}" if d.owner else ""
    ctx.say(f"Created Datanet '{d.name}' ({d.license}{owner}).")
    ctx.say(f"Next: studio datanet add {d.name} FILE… [--contributor 0x…]")


def add_result_lines(results: Iterable[Any]) -> list[str]:
    """One line per file of `datanet add` (the demo prints them too)."""
    from studio.core.results import plain

    lines = []
    for r in results:
        r = plain(r)
        if r["status"] == "added":
            flags = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in r["flags"].items() if v)
            lines.append(
                f"  {r['file']}: added {plural(r['records'], 'record')}"
                + (f" ({flags})" if flags else "")
            )
            for ref in r["refused"]:
                lines.append(f"    refused (never stored): {ref['where']}: {ref['reason']}")
        elif r["status"] == "duplicate":
            lines.append(f"  {r['file']}: {r['message']}")
        else:
            lines.append(f"  {r['file']}: error: {r['error']}")
    return lines


@renders("datanet add")
def _add(results: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    for line in add_result_lines(results):
        ctx.say(line)
    added = sum(r.records for r in results if r.status == "added")
    name = kw["name"]
    ctx.say(
        f"{plural(added, 'new record')} in '{name}'. Review: studio datanet records {name} --status pending"
    )


@renders("datanet list")
def _list(items: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    def line(d: Any) -> str:
        c, snap = d.records, d.latest_snapshot
        v = f"v{snap.version} {snap.root[:12]}…" if snap else "no snapshot"
        return f"{d.name:<24} {c.accepted:>5} accepted {c.pending:>5} pending {c.rejected:>5} rejected  {v}"

    table(ctx, items, line, empty="No Datanets yet. Create one: studio datanet create NAME")


@renders("datanet show")
def _show(d: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(f"{d.name} — {d.summary}")
    ctx.say(
        f"  license {d.license}, kind {d.kind}, tags {', '.join(d.tags) or '-'}, created {fmt_time(d.created_at)}"
    )
    ctx.say(f"  owner {d.owner or '- (set when published)'}")
    if d.description:
        ctx.say("")
        ctx.say("  " + d.description.strip().replace("\n", "\n  "))
        ctx.say("")
    c = d.records
    ctx.say(f"  records: {c.accepted} accepted, {c.pending} pending, {c.rejected} rejected")
    for f in d.files_list or ():
        ctx.say(
            f"  file #{f.id} {f.name} ({f.format}, {plural(f.records, 'record')}, contributor {f.contributor})"
        )
    for s in d.snapshots or ():
        ctx.say(f"  snapshot v{s.version}: {plural(s.records, 'record')}, root {s.root}")


@renders("datanet records")
def _records(rows: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    def line(r: Any) -> str:
        why = "; ".join(r.reasons)
        status = r.status + (
            f" ({r.status_reason})" if r.status == "rejected" and r.status_reason else ""
        )
        return f"#{r.id:<6} {r.score:.2f} {status:<9} {r.kind:<15} {r.preview[:60]!r}" + (
            f"  [{why}]" if why else ""
        )

    table(ctx, rows, line, empty="No records.")


@renders("datanet curate")
def _curate(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(f"{len(r.changed)} record(s) {r.status}.")
    if r.left_pending:
        ctx.say(
            f"{len(r.left_pending)} scored below {r.min_score:g} and stay pending: "
            + " ".join(f"#{i}" for i in r.left_pending[:20])
            + (" …" if len(r.left_pending) > 20 else "")
        )


says(
    "datanet edit",
    lambda r, kw: f"Record #{r.id} replaces #{kw['record_id']} (pending, score {r.score:.2f}).",
)


@renders("datanet snapshot")
def _snapshot(s: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    note = " (unchanged since the latest version)" if s.unchanged else ""
    ctx.say(f"Snapshot v{s.version}: {plural(s.records, 'record')}, root {s.root}{note}")


@renders("datanet proof")
def _proof(p: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(f"record #{p.record_id} in v{p.version}: leaf {p.leaf}")
    for h in p.proof:
        ctx.say(f"  {h}")


@renders("datanet verify")
def _verify(res: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    for p in res.problems:
        where = f"record #{p['record_id']}" if "record_id" in p else f"snapshot v{p['version']}"
        ctx.say(f"  !! {where}: {p['problem']}")
    if res.ok:
        ctx.say(
            f"OK: {plural(res.records_checked, 'record')} and {res.snapshots_checked} snapshot(s) verified."
        )


says(
    "datanet export",
    lambda r, kw: (
        f"Exported {plural(r.records, 'record')} of '{kw['name']}' v{r.version} to {r.path}"
    ),
)


@renders("datanet publish")
def _publish(res: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    name = kw["name"]
    where = f"{res.network} (chain {res.chain_id})"
    if not res.changed:
        ctx.say(
            f"'{name}' v{res.version} is already published on {where} as Datanet #{res.onchain_id}; "
            "nothing to do."
        )
    else:
        if res.created:
            ctx.say(f"Created '{name}' on {where} as Datanet #{res.onchain_id}.")
        if res.published:
            ctx.say(f"Published snapshot v{res.version}: root {res.root}, {res.records} records.")
        ctx.say(f"  {len(res.transactions)} transaction(s): {', '.join(res.transactions)}")
    for who, n in sorted(res.bound.items()):
        ctx.say(f"  {who}: {n} contribution(s) bound")
    for who, n in sorted(res.unbound.items()):
        why = (
            "their account could not be unlocked (see the warning); publish again with their password"
            if who in res.locked
            else "that contributor's account is not in this wallet; import it and publish again"
        )
        ctx.say(f"  {who}: {n} contribution(s) NOT bound — {why}")
