"""`studio datanet …` operations (publish is declared with the chain operations in stake.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from studio.commands import arg, operation
from studio.core.errors import IntegrityError, InvalidInput
from studio.core.results import (
    AddFileResult,
    CurateResult,
    Datanet,
    DatanetFile,
    ExportResult,
    Record,
    RecordProof,
    Snapshot,
    VerifyResult,
)

if TYPE_CHECKING:
    from studio.app import Studio
    from studio.core.cancel import CancelToken


def _read_text(path: str, what: str, hint: str) -> str:
    try:
        return Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInput(f"Cannot read {what}{path}: {e}.", hint=hint) from e


@operation(
    "datanet create", "Create a Datanet (a named, licensed collection of contributed records)."
)
def create(
    studio: Studio,
    name: Annotated[str, arg("lower-case name, e.g. open-field-notes")],
    *,
    summary: Annotated[str, arg("one line")] = "",
    description_file: Annotated[str | None, arg("markdown file with the long description")] = None,
    tags: Annotated[str, arg("comma-separated, e.g. baking,bees")] = "",
    license: Annotated[str, arg("SPDX id (default CC-BY-4.0)")] = "CC-BY-4.0",
    owner: Annotated[
        str | None, arg("owner address 0x… (default: the active wallet account)")
    ] = None,
) -> Datanet:
    description = ""
    if description_file:
        description = _read_text(
            description_file, "the description file ", "Pass a UTF-8 markdown file."
        )
    d = studio.datanets.create(
        name, summary=summary, description=description, tags=tags, license=license, owner=owner
    )
    return Datanet.from_dict(d)


@operation(
    "datanet add", "Add files (txt md jsonl csv pdf docx) to a Datanet; prints a result per file."
)
def add(
    studio: Studio,
    name: str,
    files: Annotated[list[str], arg(metavar="FILE")],
    *,
    contributor: Annotated[
        str | None, arg("address whose data this is (default: the active wallet)")
    ] = None,
    text_column: Annotated[
        str | None, arg("CSV column holding the text (default: 'text', or prompt/response)")
    ] = None,
    follow_symlinks: Annotated[
        bool, arg("add what symbolic links point to (refused by default)")
    ] = False,
    cancel: CancelToken | None = None,
) -> list[AddFileResult]:
    results = studio.datanets.add_files(
        name,
        files,
        contributor=contributor,
        text_column=text_column,
        follow_symlinks=follow_symlinks,
        cancel=cancel,
    )
    return [AddFileResult.from_dict(r) for r in results]


@operation("datanet list", "List Datanets.")
def list_(studio: Studio) -> list[Datanet]:
    return [Datanet.from_dict(d) for d in studio.datanets.list()]


@operation("datanet show", "Show a Datanet: description, files, record counts and snapshots.")
def show(studio: Studio, name: str) -> Datanet:
    dn = studio.datanets
    d = dn.get(name)
    return Datanet.from_dict(
        d,
        files_list=tuple(DatanetFile.from_dict(f) for f in dn.files(name)),
        snapshots=tuple(Snapshot.from_dict(s) for s in dn.snapshots(name)),
    )


@operation("datanet records", "List a Datanet's records with score, reasons and status.")
def records(
    studio: Studio,
    name: str,
    *,
    status: Literal["pending", "accepted", "rejected"] | None = None,
) -> list[Record]:
    return [Record.from_dict(r) for r in studio.datanets.records(name, status)]


@operation("datanet curate", "Accept or reject records (pending → accepted / rejected).")
def curate(
    studio: Studio,
    name: str,
    *,
    accept: Annotated[list[int] | None, arg(metavar="ID")] = None,
    accept_all: Annotated[bool, arg("accept every pending record scoring >= --min-score")] = False,
    min_score: Annotated[float, arg("for --accept-all (default 0.5)")] = 0.5,
    reject: Annotated[list[int] | None, arg(metavar="ID")] = None,
    reason: Annotated[str, arg("why (required with --reject)")] = "",
) -> CurateResult:
    res = studio.datanets.curate(
        name,
        accept=accept,
        accept_all=accept_all,
        min_score=min_score,
        reject=reject,
        reason=reason or "",
    )
    return CurateResult.from_dict(res, min_score=min_score)


@operation(
    "datanet edit",
    "Edit a record: the edit is a new pending record; the old one is kept unchanged.",
)
def edit(
    studio: Studio,
    name: str,
    record_id: int,
    *,
    text_file: Annotated[
        str, arg("file with the new text (JSON for prompt/response or chat records)")
    ],
) -> Record:
    text = _read_text(text_file, "", "Pass a UTF-8 text file.")
    r = studio.datanets.edit_record(name, record_id, text)
    return Record.from_dict(r)


@operation(
    "datanet snapshot",
    "Freeze the accepted records as a new immutable version with a Merkle root.",
)
def snapshot(studio: Studio, name: str, *, cancel: CancelToken | None = None) -> Snapshot:
    s = studio.datanets.snapshot(name, cancel=cancel)
    return Snapshot(
        version=s["version"],
        root=s["root"],
        records=s["records"],
        unchanged=bool(s.get("unchanged")),
    )


@operation("datanet proof", "Print the Merkle proof of a record in a snapshot.")
def proof(studio: Studio, name: str, record_id: int, *, version: int | None = None) -> RecordProof:
    from studio.core.proofs import record_proof

    return record_proof(studio.datanets, studio.store, name, record_id, version)


@operation(
    "datanet verify",
    "Re-hash every blob and record, rebuild every snapshot root; report tampering by record.",
)
def verify(studio: Studio, name: str, *, cancel: CancelToken | None = None) -> VerifyResult:
    res = VerifyResult.from_dict(studio.datanets.verify(name, cancel=cancel))
    if not res.ok:
        raise IntegrityError(
            f"'{name}': {len(res.problems)} problem(s) found.",
            hint="Restore the data home from a backup, or re-add the affected files.",
            result=res,
        )
    return res


@operation(
    "datanet export",
    "Export a snapshot version to JSONL or Parquet (loads with Hugging Face datasets).",
)
def export(
    studio: Studio,
    name: str,
    *,
    out: Annotated[str, arg("file (.jsonl/.parquet) or folder")],
    fmt: Annotated[Literal["jsonl", "parquet"], arg(flags="--format")] = "jsonl",
    version: Annotated[int | None, arg("snapshot version (default: latest)")] = None,
    cancel: CancelToken | None = None,
) -> ExportResult:
    return ExportResult.from_dict(studio.datanets.export(name, out, fmt, version, cancel=cancel))
