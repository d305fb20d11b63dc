"""How the command line shows each operation's typed result as text (--json prints to_dict()).

One renderer per operation path; it gets the result, the keyword arguments the operation ran
with and the console. Renderers only print: nothing here changes state."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from studio.core.errors import StudioError

if TYPE_CHECKING:
    from studio.commands import Context, Operation

Renderer = Callable[[Any, Mapping[str, Any], "Context"], None]
RENDERERS: dict[str, Renderer] = {}


def renders(path: str) -> Callable[[Renderer], Renderer]:
    def deco(fn: Renderer) -> Renderer:
        RENDERERS[path] = fn
        return fn

    return deco


def show(ctx: Context, op: Operation, result: Any, kwargs: Mapping[str, Any]) -> None:
    if ctx.json:
        ctx.emit_result(result)
        return
    fn = RENDERERS.get(op.name)
    if fn is not None:
        fn(result, kwargs, ctx)


# The core words its hints without CLI flags; here is how the command line says them.
_FLAG_PHRASES: tuple[tuple[str, str], ...] = (
    ("Give a password file", "Use --password-file FILE"),
    (
        "Try again with the right password.",
        "Try again, or use --password-file with the right password.",
    ),
    ("Choose a writable data home (or set STUDIO_HOME", "Pass --home DIR (or set STUDIO_HOME"),
    ("Name the column that holds the text", "Pass --text-column NAME"),
    ("or use another data home.", "or point --home at another folder."),
    ("Say why the records are rejected.", "Pass --reason TEXT."),
    (
        "Accept some records by id, accept all that score well enough, or reject some by id with a reason.",
        "studio datanet curate NAME (--accept ID… | --accept-all | --reject ID… --reason TEXT)",
    ),
    ("Name at least one Datanet (NAME or NAME@VERSION).", "Pass --datanet NAME[@VERSION]."),
    ("Pick another name.", "Pick another --name."),
    ("Export to a new folder.", "Pass --out to a new folder."),
)


def error_hint(e: StudioError) -> str:
    hint = e.hint or ""
    for plain, flagged in _FLAG_PHRASES:
        hint = hint.replace(plain, flagged)
    return hint


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _fmt_time(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def _open(wei: int, **kw: Any) -> str:
    from studio.chain.networks import format_open

    return str(format_open(wei, **kw))


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
                f"  {r['file']}: added {_n(r['records'], 'record')}"
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
        f"{_n(added, 'new record')} in '{name}'. Review: studio datanet records {name} --status pending"
    )


@renders("datanet list")
def _list(items: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    if not items:
        ctx.say("No Datanets yet. Create one: studio datanet create NAME")
    for d in items:
        c = d.records
        snap = d.latest_snapshot
        v = f"v{snap.version} {snap.root[:12]}…" if snap else "no snapshot"
        ctx.say(
            f"{d.name:<24} {c.accepted:>5} accepted {c.pending:>5} pending {c.rejected:>5} rejected  {v}"
        )


@renders("datanet show")
def _show(d: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(f"{d.name} — {d.summary}")
    ctx.say(
        f"  license {d.license}, kind {d.kind}, tags {', '.join(d.tags) or '-'}, created {_fmt_time(d.created_at)}"
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
            f"  file #{f.id} {f.name} ({f.format}, {_n(f.records, 'record')}, contributor {f.contributor})"
        )
    for s in d.snapshots or ():
        ctx.say(f"  snapshot v{s.version}: {_n(s.records, 'record')}, root {s.root}")


@renders("datanet records")
def _records(rows: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    for r in rows:
        why = "; ".join(r.reasons)
        status = r.status + (
            f" ({r.status_reason})" if r.status == "rejected" and r.status_reason else ""
        )
        ctx.say(
            f"#{r.id:<6} {r.score:.2f} {status:<9} {r.kind:<15} {r.preview[:60]!r}"
            + (f"  [{why}]" if why else "")
        )
    if not rows:
        ctx.say("No records.")


@renders("datanet curate")
def _curate(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(f"{len(r.changed)} record(s) {r.status}.")
    if r.left_pending:
        ctx.say(
            f"{len(r.left_pending)} scored below {r.min_score:g} and stay pending: "
            + " ".join(f"#{i}" for i in r.left_pending[:20])
            + (" …" if len(r.left_pending) > 20 else "")
        )


@renders("datanet edit")
def _edit(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(f"Record #{r.id} replaces #{kw['record_id']} (pending, score {r.score:.2f}).")


@renders("datanet snapshot")
def _snapshot(s: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    note = " (unchanged since the latest version)" if s.unchanged else ""
    ctx.say(f"Snapshot v{s.version}: {_n(s.records, 'record')}, root {s.root}{note}")


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
            f"OK: {_n(res.records_checked, 'record')} and {res.snapshots_checked} snapshot(s) verified."
        )


@renders("datanet export")
def _export(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(f"Exported {_n(r.records, 'record')} of '{kw['name']}' v{r.version} to {r.path}")


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


# -- wallet -------------------------------------------------------------------------------------


def _info_line(i: Any) -> str:
    mark = "*" if i.active else " "
    label = f"  {i.label}" if i.label else ""
    kr = "  [keyring]" if i.remembered else ""
    return f"{mark} {i.address}{label}{kr}"


@renders("wallet create")
def _wallet_create(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(f"Created account {r.address}{' (' + r.label + ')' if r.label else ''}.")
    ctx.say(f"  Keystore: {r.keystore} (scrypt, mode 0600).")
    if r.mnemonic:
        ctx.say(
            "  Recovery phrase — write it down now; it is shown only this once and never stored:"
        )
        ctx.say(f"    {r.mnemonic}")
    if r.active:
        ctx.say("  This is now the active account.")


@renders("wallet import")
def _wallet_import(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(f"Imported account {r.address}.")


@renders("wallet list")
def _wallet_list(infos: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    if not infos:
        ctx.say("No accounts yet. Create one with `studio wallet create`.")
    for i in infos:
        ctx.say(_info_line(i))


@renders("wallet show")
def _wallet_show(i: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(f"Account {i.address}{'  (active)' if i.active else ''}")
    ctx.say(f"  label:    {i.label or '-'}")
    ctx.say(f"  source:   {i.source or '-'}")
    ctx.say(f"  keystore: {i.path} (kdf {i.kdf})")
    ctx.say(f"  password in OS keyring: {'yes' if i.remembered else 'no'}")


@renders("wallet use")
def _wallet_use(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(f"Active account: {r.address}.")


@renders("wallet export")
def _wallet_export(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    if r.private_key:
        ctx.warn("this is your unencrypted private key: anyone who sees it controls the account.")
    if r.out:
        what = "private key" if r.private_key else "keystore"
        ctx.say(f"Wrote {what} of {r.address} to {r.out} (mode 0600).")
        return
    ctx.say(r.text.rstrip("\n"))


@renders("wallet balance")
def _wallet_balance(b: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(f"{b.address}: {b.balance} on {b.network} (chain {b.chain_id})")


@renders("wallet send")
def _wallet_send(t: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    res = t.tx
    if res.reused:
        how = f"with key {t.key!r}" if t.key else "(the same payment, a few minutes ago)"
        ctx.say(f"Already sent {how}: tx {res.hash} (block {res.block}); nothing sent again.")
        if not t.key:
            ctx.say("To pay the same amount again on purpose, add --again.")
    else:
        ctx.say(
            f"Sent {_open(t.amount_wei)} from {t.sender} to {t.to}: tx {res.hash}, block {res.block}, "
            f"gas {res.gas_used:,}."
        )


@renders("wallet speed-up")
def _wallet_speed_up(res: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(f"Mined: {res.hash} in block {res.block}.")


@renders("wallet history")
def _wallet_history(rows: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    if not rows:
        ctx.say("No transactions recorded on this network.")
    for r in rows:
        ctx.say(f"  {r.status:<9} nonce {r.nonce:<4} {r.tx_hash}  {r.purpose}")


@renders("wallet pending")
def _wallet_pending(rows: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    if kw.get("abandon"):
        ctx.say(f"Abandoned {kw['abandon']}: it will never be sent.")
        return
    if not rows:
        ctx.say("No signed-but-unsent transactions.")
        return
    for r in rows:
        ctx.say(f"  nonce {r.nonce:<4} {r.tx_hash}  {r.purpose}  (from {r.sender})")
    ctx.say("Re-running the command that made one sends it; --abandon TX_HASH drops it instead.")


@renders("wallet forget-chain")
def _wallet_forget_chain(rows: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(f"Forgot {len(rows)} journal row(s) and the deployments of chain {kw['chain_id']}.")


@renders("wallet keyring")
def _wallet_keyring(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    if r.action == "status":
        ctx.say(f"OS keyring: {'usable' if r.usable else 'not usable'} — {r.detail}")
    elif r.action == "remember":
        ctx.say(
            f"The keystore password of {r.address} is now kept in the OS keyring ({r.backend})."
        )
    else:
        ctx.say(
            f"Forgot the password of {r.address}."
            if r.removed
            else f"No password was kept for {r.address}."
        )


# -- devnet -------------------------------------------------------------------------------------


@renders("devnet up")
def _devnet_up(st: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    from studio.chain.devnet import DEV_ACCOUNTS, DEV_BALANCE_OPEN

    ctx.say(f"Devnet running at {st.url} (chain id {st.chain_id}, block {st.block}).")
    ctx.say(
        f"  {DEV_ACCOUNTS} dev accounts of the test mnemonic hold {DEV_BALANCE_OPEN:,} OPEN each at genesis."
    )
    ctx.say(
        "  Stop it with `studio devnet down`; it keeps every balance and contract across restarts."
    )


@renders("devnet down")
def _devnet_down(st: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say("Devnet stopped; state saved." if st.stopped else "The devnet was not running.")


@renders("devnet status")
def _devnet_status(st: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    if st.running:
        ctx.say(
            f"Devnet running at {st.url} (chain id {st.chain_id}, pid {st.pid}, block {st.block})."
        )
    else:
        ctx.say(
            f"Devnet stopped (chain id {st.chain_id}); state: {st.state_bytes:,} bytes in {st.state_file}."
        )


@renders("devnet reset")
def _devnet_reset(st: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(
        f"Devnet reset: removed {len(st.removed or ())} file(s); the next start is a fresh genesis."
    )


@renders("devnet faucet")
def _devnet_faucet(t: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(f"Sent {_open(t.amount_wei)} to {kw['address']} (tx {t.tx.hash}, block {t.tx.block}).")
    ctx.say(f"  Balance now {_open(t.balance_wei or 0)}.")


# -- stake / rewards ----------------------------------------------------------------------------


@renders("stake deposit")
def _stake_deposit(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    from studio.chain.networks import parse_open

    ctx.say(f"Staked {_open(parse_open(kw['amount']))} as {r.role} from {r.account}: tx {r.tx}.")
    ctx.say(f"  Active {r.role} stake: {_open(r.active_wei)} (minimum {_open(r.minimum_wei)}).")


@renders("stake withdraw")
def _stake_withdraw(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    role = kw["role"]
    if r.action == "requested":
        ctx.say(
            f"Requested unstake of {_open(r.amount_wei)} ({role}): tx {r.tx}. "
            f"Withdraw after the cooldown with `studio stake withdraw --role {role}`."
        )
    else:
        ctx.say(f"Withdrew {_open(r.amount_wei)} ({role}) to {r.account}: tx {r.tx}.")


@renders("stake status")
def _stake_status(st: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(f"{st.address} (cooldown {st.cooldown_s} s)")
    for role, p in st.roles.items():
        line = f"  {role:9} active {_open(p.active_wei)}, minimum {_open(p.minimum_wei)}"
        if p.pending_wei:
            left = max(0, p.unlock_at - st.chain_time)
            line += (
                f", unstaking {_open(p.pending_wei)} ({'ready' if not left else f'{left} s left'})"
            )
        ctx.say(line + (" — staked" if p.staked else ""))


@renders("rewards show")
def _rewards_show(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(f"{r.address}: {r.claimable} claimable")


@renders("rewards claim")
def _rewards_claim(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    if not r.claimed_wei:
        ctx.say(f"{r.address} has nothing to claim.")
    else:
        ctx.say(f"Claimed {_open(r.claimed_wei)} to {r.address}: tx {r.tx}.")


# -- models -------------------------------------------------------------------------------------


def _fmt_datanets(ds: Iterable[Mapping[str, Any]]) -> str:
    return ", ".join(f"{d['name']}@{d['version']}" for d in ds) or "—"


@renders("model list")
def _model_list(items: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    for m in items:
        if m.kind == "base":
            ready = "" if m.get("ready") else " (converted on first use)"
            ctx.say(f"  base  {m.id:<28} {m.get('name')}{ready}")
            continue
        total = m.get("total_steps")
        prog = f" {m.get('step')}/{total}" if m.status != "ready" and total else ""
        ctx.say(
            f"  tuned {m.id:<28} {m.status}{prog}  base {m.base}  data {_fmt_datanets(m.datanets)}"
        )
        if m.get("adapter_hash"):
            ctx.say(
                f"        adapter {m.get('adapter_hash')[:16]}…  config {m.get('config_hash')[:16]}…"
            )


def _training(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    from studio.train.results import TrainingStarted

    if isinstance(r, TrainingStarted):
        if "datanet" in kw:  # `model train --detach` says how to follow it
            ctx.say(
                f"  job running as pid {r.pid}; follow with `studio model list`, stop with `studio model cancel {r.id}`"
            )
        return
    m = (r.card or {}).get("metrics", {})
    ctx.say(f"Model {r.id} ready.")
    if m.get("eval_loss_before") is not None:
        ctx.say(f"  validation loss {m['eval_loss_before']:.4f} → {m['eval_loss_after']:.4f}")
    ctx.say(f"  train loss {m['train_loss_first']:.4f} → {m['train_loss_last']:.4f}")
    ctx.say(f"  adapter  {r.adapter_dir}")
    from pathlib import Path

    ctx.say(f"  card     {Path(r.dir) / 'card.md'}")


renders("model train")(_training)
renders("model resume")(_training)


@renders("model cancel")
def _model_cancel(st: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    model = kw["model"]
    ctx.say(
        f"{model}: {st.status} at step {st.get('step')}"
        + (f"; `studio model resume {model}` continues it" if st.status != "ready" else "")
    )


@renders("model eval")
def _model_eval(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    d = r.datanet
    ctx.say(f"{r.model} on {d['name']}@{d['version']} ({r.examples} examples)")
    ctx.say(f"  loss {r.loss:.4f}  perplexity {r.perplexity:.2f}")
    ctx.say(f"  base loss {r.base_loss:.4f}  perplexity {r.base_perplexity:.2f}")


@renders("model export")
def _model_export(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(f"Merged model written to {r.dir}")


@renders("model register")
def _model_register(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(f"Registered {r.local_id}: {r.to_dict()}")


@renders("model generate")
def _model_generate(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.end_line()  # the tokens streamed as they came


# -- attribution --------------------------------------------------------------------------------


def report_lines(rep: Mapping[str, Any]) -> list[str]:
    """An attribution report as text (the demo prints it too)."""
    out = rep["output"]
    lines = [
        f"Output{' (generated)' if out['generated'] else ''}: {out['text']}",
        f"Method: {rep['method']['name']}  ·  {rep['records_positive']} of {rep['records_scored']} "
        "records with positive influence",
        "Top contributions:",
    ]
    if not rep["top_records"]:
        lines.append("  (none: no record had a positive score)")
    for r in rep["top_records"]:
        lines.append(
            f"  #{r['rank']:<2} record {r['record_id']} in {r['datanet']}@{r['version']} by "
            f"{r['contributor']}  score {r['score']:.4g}"
        )
        for sp in r["spans"][:3]:
            lines.append(f"        matched: “{sp['text'].strip()}”")
    lines.append("Weights (basis points of the fee):")
    for w in rep["weights"]:
        lines.append(f"  {w['contributor']}  {w['bps']:>5} bps")
    for p in rep["pool"]["pooled"]:
        lines.append(f"  (pooled to {p['datanet']}'s owner {p['owner']}: score {p['score']:.4g})")
    lines.append(f"Report hash: {rep['report_hash']}")
    if rep.get("signature"):
        lines.append(f"Signed by {rep['signature']['signer']}")
    return lines


@renders("attribute")
def _attribute(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    if not hasattr(r, "report"):  # --method exact --estimate: the cost, nothing run
        ctx.say(f"Exact attribution: {r.summary}" + ("" if r.fits else " (does not fit here)"))
        return
    for line in report_lines(r.report):
        ctx.say(line)
    ctx.say(f"Saved: {r.path}  (check it: studio attribution verify {r.path})")


@renders("attribution index")
def _index(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    if r.reused:
        ctx.say(f"The index of {r.model} is up to date (use --force to rebuild).")
    ctx.say(
        f"Indexed {r.records} records ({r.examples} examples, {r.dim} gradient dims, "
        f"{r.span_tokens} tokens for spans) in {r.path}"
    )


@renders("attribution verify")
def _attribution_verify(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    from studio.attribution.report import summarize_fields

    signed = " (signature valid)" if r.signature == "valid" else ""
    if r.match:
        ctx.say(f"match: {r.report_hash}{signed}")
    elif r.match_within_tolerance:
        # Same records, contributors and weights up to float rounding on another CPU.
        ctx.say(
            f"match within float tolerance: {r.report_hash}{signed}; "
            f"last-digit differences in {summarize_fields(r.float_noise)}"
        )
