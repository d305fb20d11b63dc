"""Reading contributor files into raw records: txt md jsonl csv pdf docx.

Prose (txt, md, pdf pages, docx: ingest_documents) is split at paragraph/section boundaries into windows near
`target_chars`; structured files (jsonl, csv) give one record per row. Every record keeps where it
came from (file, page / row / offset). Anything we cannot read raises InvalidInput with a message
that says what to do; nothing is written here."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.config import IngestConfig
from studio.core.errors import InvalidInput

FORMATS = {
    ".txt": "txt",
    ".text": "txt",
    ".md": "md",
    ".markdown": "md",
    ".jsonl": "jsonl",
    ".csv": "csv",
    ".pdf": "pdf",
    ".docx": "docx",
}
KINDS = ("text", "prompt_response", "chat")
# what json.loads runs after skipping whitespace (the C scanner)
_SCAN_JSON: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
# json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False), built once (dumps
# with options builds a new encoder per call)
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_json_str: Callable[[str], str] = json.encoder.encode_basestring  # the string encoder it uses


@dataclass
class RawRecord:
    kind: str  # text | prompt_response | chat
    text: str = ""
    prompt: str | None = None
    response: str | None = None
    messages: list[dict[str, str]] | None = None
    source: dict[str, Any] = field(default_factory=dict)

    def canonical(self) -> bytes:
        """The bytes whose sha256 is the record's content hash (and Merkle leaf input).
        Prose: its UTF-8 text. Structured rows: compact JSON with sorted keys."""
        if self.kind == "text":
            return self.text.encode("utf-8")
        if self.kind == "prompt_response":
            p, r = self.prompt, self.response
            if type(p) is str and type(r) is str:  # what the encoder below writes, built directly
                return f'{{"prompt":{_json_str(p)},"response":{_json_str(r)}}}'.encode()
            obj: dict[str, Any] = {"prompt": p, "response": r}
        else:
            obj = {"messages": self.messages}
        return _CANONICAL_JSON.encode(obj).encode("utf-8")

    def plain_text(self) -> str:
        return render_text(self.kind, self.text, self.prompt, self.response, self.messages)


def render_text(
    kind: str,
    text: str,
    prompt: str | None,
    response: str | None,
    messages: list[dict[str, str]] | None,
) -> str:
    """Plain-text rendering used for scoring, dedupe, PII scans, previews and training text."""
    if kind == "prompt_response":
        return f"Prompt: {prompt}\nResponse: {response}"
    if kind == "chat":
        return "\n".join(f"{m.get('role', '')}: {m.get('content', '')}" for m in messages or [])
    return text


def record_from_canonical(kind: str, data: bytes) -> RawRecord:
    if kind == "text":
        return RawRecord("text", text=data.decode("utf-8"))
    obj = json.loads(data)
    if kind == "prompt_response":
        return RawRecord(kind, prompt=obj["prompt"], response=obj["response"])
    return RawRecord(kind, messages=obj["messages"])


# -- validation of the file itself -------------------------------------------------------------


def display_name(name: str) -> str:
    """A file name or path as shown and stored: control and other invisible characters escaped
    (a newline in a name must not forge an `error:` line in the output)."""
    if name.isprintable():
        return name
    return "".join(c if c.isprintable() else _escape_char(c) for c in name)


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(c: str) -> str:
    if c in _ESCAPES:
        return _ESCAPES[c]
    n = ord(c)
    if n < 0x100:
        return f"\\x{n:02x}"
    return f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def file_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = " ".join(sorted({f".{v}" for v in FORMATS.values()}))
        raise InvalidInput(
            f"{display_name(path.name)}: unsupported file type"
            f" '{display_name(path.suffix) or '(none)'}'.",
            hint=f"Use one of: {known}.",
        )
    return fmt


def check_path(path: Path, *, follow_symlinks: bool = False) -> None:
    """Refuse what is not a plain file before anything else is said about it: a missing path,
    a folder, a symbolic link (unless follow_symlinks), a device or a pipe."""
    shown = display_name(str(path))
    try:
        st = os.lstat(path)
    except FileNotFoundError as e:
        raise InvalidInput(f"{shown}: no such file.", hint="Check the path.") from e
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        if not follow_symlinks:
            raise InvalidInput(
                f"{shown}: is a symbolic link to {display_name(target)}; links are not followed.",
                hint="Add the file it points to, or choose to follow symbolic links for this add.",
            )
        try:
            st = os.stat(path)
        except FileNotFoundError as e:
            raise InvalidInput(
                f"{shown}: is a broken symbolic link (to {display_name(target)}).",
                hint="Check the path.",
            ) from e
    if stat.S_ISDIR(st.st_mode):
        raise InvalidInput(
            f"{shown}: is a folder, not a file.",
            hint=f"Pass the files inside it, e.g. {shown}/*.txt",
        )
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInput(f"{shown}: not a regular file.", hint="Pass plain files.")


def check_size(path: Path, cfg: IngestConfig, size: int | None = None) -> int:
    if size is None:
        try:
            size = path.stat().st_size
        except FileNotFoundError as e:
            raise InvalidInput(
                f"{display_name(str(path))}: no such file.", hint="Check the path."
            ) from e
    name = display_name(path.name)
    if size == 0:
        raise InvalidInput(f"{name}: the file is empty.", hint="Add a file with content.")
    limit = int(cfg.max_file_mb * 1_000_000)  # decimal MB, as the message says
    if size > limit:
        raise InvalidInput(
            f"{name}: {size / 1e6:.1f} MB is over the {cfg.max_file_mb:g} MB limit"
            " (ingest.max_file_mb).",
            hint="Split the file, or raise ingest.max_file_mb in config.json.",
        )
    return size


def read_file(path: Path, cfg: IngestConfig, *, follow_symlinks: bool = False) -> bytes:
    """The bytes of one checked file, never more than the size limit. Without follow_symlinks
    the file is opened with O_NOFOLLOW, so a link swapped in after the check is refused too."""
    check_path(path, follow_symlinks=follow_symlinks)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) * (not follow_symlinks)
    flags |= getattr(os, "O_NONBLOCK", 0)  # a pipe swapped in must not hang the read
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise InvalidInput(
            f"{display_name(str(path))}: cannot be opened ({e.strerror}).",
            hint="Check the path (symbolic links are followed only when you choose to follow them).",
        ) from e
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise InvalidInput(
                f"{display_name(str(path))}: not a regular file.", hint="Pass plain files."
            )
        check_size(path, cfg, st.st_size)
        data = f.read(int(cfg.max_file_mb * 1_000_000) + 1)
    check_size(path, cfg, len(data))  # it may have changed while we read it
    return data


_CONTROL = bytes(i for i in range(32) if i not in (9, 10, 12, 13))


def decode_text(
    name: str,
    data: bytes,
    *,
    byte_base: int = 0,
    line_base: int = 0,
    first: bool = True,
    whole: bool = True,
) -> str:
    """Strict UTF-8 with a clear message; refuses files that look binary. For a chunk of a file
    (core.ingest_plan): byte_base and line_base are the bytes and lines of the file before it, so
    a message points into the file; only the first chunk is checked for a binary start and has
    its BOM dropped; and a blank chunk is no error (whole=False: the caller checks the file)."""
    if first:
        head = data[:8192]
        if b"\x00" in head or (
            head and len(head) - len(head.translate(None, _CONTROL)) > len(head) // 10
        ):
            raise InvalidInput(
                f"{name}: looks like a binary file, not text.",
                hint="Add text files only (txt md jsonl csv), or the original pdf/docx.",
            )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = line_base + data.count(b"\n", 0, e.start) + 1
        raise InvalidInput(
            f"{name}: invalid UTF-8 at byte {byte_base + e.start} (line {line}).",
            hint="Re-save the file as UTF-8.",
        ) from e
    if first and text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if whole and (not text or text.isspace()):  # (text.strip() would copy the whole file)
        raise InvalidInput(f"{name}: the file has no text.", hint="Add a file with content.")
    return text


# -- prose splitting ------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _paragraphs(text: str, markdown: bool = False) -> list[tuple[int, str, bool]]:
    """(char offset, stripped paragraph, is a markdown heading) for each non-blank paragraph."""
    out = []
    pos = 0
    for part in text.split("\n\n"):
        stripped = part.strip()  # the same object when there is nothing to strip
        if stripped:
            lead = (
                0 if stripped is part or not part[0].isspace() else len(part) - len(part.lstrip())
            )
            out.append((pos + lead, stripped, markdown and stripped.startswith("#")))
        pos += len(part) + 2
    return out


def _split_long(offset: int, para: str, target: int, limit: int) -> Iterator[tuple[int, str]]:
    """A paragraph over the limit: split at sentence ends near target, else at whitespace."""
    pieces: list[tuple[int, str]] = []
    start = 0
    for m in _SENTENCE_END.finditer(para):
        if m.start() - start >= target:
            pieces.append((start, para[start : m.start()]))
            start = m.end()
    pieces.append((start, para[start:]))
    for s, piece in pieces:
        while len(piece) > limit:
            cut = piece.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            yield offset + s, piece[:cut].rstrip()
            rest = piece[cut:]
            s += cut + (len(rest) - len(rest.lstrip()))
            piece = rest.lstrip()
        if piece:
            yield offset + s, piece


def split_prose(
    text: str,
    cfg: IngestConfig,
    *,
    markdown: bool = False,
    paragraphs: list[tuple[int, str, bool]] | None = None,
) -> list[tuple[int, str]]:
    """Windows of whole paragraphs near cfg.target_chars, never over cfg.max_chars.
    A markdown heading (or a docx heading) starts a new window. Returns (char offset, text)."""
    target, limit = cfg.target_chars, cfg.max_chars
    if paragraphs is None:
        paragraphs = _paragraphs(text, markdown)
    out: list[tuple[int, str]] = []
    cur: list[str] = []
    cur_off = cur_len = 0
    has_body = False  # a heading right after a heading stays with it
    for off, para, heading in paragraphs:
        n = len(para)
        if n > limit:
            if cur:
                out.append((cur_off, "\n\n".join(cur)))
                cur, cur_len, has_body = [], 0, False
            out.extend(_split_long(off, para, target, limit))
            continue
        if cur and ((heading and has_body) or cur_len + 2 + n > target):
            out.append((cur_off, "\n\n".join(cur)))
            cur, cur_len, has_body = [], 0, False
        if cur:
            cur.append(para)
            cur_len += n + 2
        else:
            cur_off, cur, cur_len = off, [para], n
        if not heading:
            has_body = True
    if cur:
        out.append((cur_off, "\n\n".join(cur)))
    return out


# -- readers --------------------------------------------------------------------------------------


# A record as the readers produce it, RawRecord's fields in order: a plain tuple, which the garbage
# collector stops tracking (a big file's records would otherwise cost it repeated full passes).
Row = tuple[str, str, str | None, str | None, list[dict[str, str]] | None, dict[str, Any]]


def _prose_records(name: str, chunks: list[tuple[int, str]], **where: Any) -> list[Row]:
    return [("text", t, None, None, None, {"file": name, **where, "offset": o}) for o, t in chunks]


def read_txt(name: str, data: bytes, cfg: IngestConfig, markdown: bool = False) -> list[Row]:
    text = decode_text(name, data)
    return _prose_records(name, split_prose(text, cfg, markdown=markdown))


def _row_record(obj: Any, name: str, line: int) -> Row | str:
    """One JSONL object → a record, or a short reason why not."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    src = {"file": name, "row": line}
    if "messages" in obj:
        msgs = obj["messages"]
        if (
            not isinstance(msgs, list)
            or not msgs
            or not all(
                isinstance(m, dict)
                and isinstance(m.get("role"), str)
                and isinstance(m.get("content"), str)
                for m in msgs
            )
        ):
            return "'messages' must be a non-empty list of {role, content} strings"
        return (
            "chat",
            "",
            None,
            None,
            [{"role": m["role"], "content": m["content"]} for m in msgs],
            src,
        )
    if "prompt" in obj or "response" in obj:
        p, r = obj.get("prompt"), obj.get("response")
        if not isinstance(p, str) or not isinstance(r, str):
            return "'prompt' and 'response' must both be strings"
        return ("prompt_response", "", p, r, None, src)
    if "text" in obj:
        if not isinstance(obj["text"], str):
            return "'text' must be a string"
        return ("text", obj["text"], None, None, None, src)
    return "no 'text', 'prompt'/'response' or 'messages' field"


def _bad_lines_error(name: str, bad: list[tuple[int, str]]) -> InvalidInput:
    shown = ", ".join(f"{n} ({why})" for n, why in bad[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    return InvalidInput(
        f"{name}: malformed JSON lines: {shown}{more}.",
        hint="Fix those lines (one JSON object per line) and add the file again.",
    )


def read_jsonl(name: str, data: bytes, cfg: IngestConfig) -> list[Row]:
    records, bad = _jsonl_rows(name, decode_text(name, data), cfg)
    if bad:
        raise _bad_lines_error(name, bad)
    if not records:
        raise InvalidInput(f"{name}: no records found.", hint="Add one JSON object per line.")
    return records


def _jsonl_rows(
    name: str, text: str, cfg: IngestConfig, line_base: int = 0
) -> tuple[list[Row], list[tuple[int, str]]]:
    """The records of JSONL text whose first line is line_base + 1, and the malformed lines."""
    records: list[Row] = []
    bad: list[tuple[int, str]] = []
    loads = json.loads
    scan = _SCAN_JSON
    for n, line in enumerate(text.split("\n"), line_base + 1):
        if not line.strip():
            continue
        try:
            # Fast path: a line that is exactly one object (the C scanner json.loads ends in);
            # anything else goes through json.loads itself for its exact rules and errors.
            if line[0] == "{" and line[-1] == "}":
                try:
                    obj, end = scan(line, 0)
                except (StopIteration, ValueError):
                    end = -1
                if end != len(line):
                    obj = loads(line)
            else:
                obj = loads(line)
        except ValueError:
            bad.append((n, "not valid JSON"))
            continue
        rec = _row_record(obj, name, n)
        if isinstance(rec, str):
            bad.append((n, rec))
        elif rec[0] == "text" and len(rec[1]) > cfg.max_chars:
            records += _split_row(rec, cfg)  # split like prose, each piece keeps its row
        else:
            records.append(rec)
    return records, bad


def _split_row(rec: Row, cfg: IngestConfig) -> list[Row]:
    """A text row over max_chars becomes several records, split like prose (row + offset)."""
    return [
        ("text", t, None, None, None, {**rec[5], "offset": o}) for o, t in split_prose(rec[1], cfg)
    ]


def read_csv(
    name: str, data: bytes, cfg: IngestConfig, text_column: str | None = None
) -> list[Row]:
    text = decode_text(name, data)
    limit = cfg.csv_max_field_chars
    previous = csv.field_size_limit(limit)
    try:
        return _read_csv(name, text, cfg, text_column, limit)
    finally:
        csv.field_size_limit(previous)


def _read_csv(
    name: str, text: str, cfg: IngestConfig, text_column: str | None, limit: int
) -> list[Row]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        cols = reader.fieldnames or []
    except csv.Error as e:
        raise _csv_error(name, reader.line_num, e, limit) from e
    want = text_column or cfg.csv_text_column
    structured = text_column is None and "prompt" in cols and "response" in cols
    if not structured and want not in cols:
        raise InvalidInput(
            f"{name}: no column '{want}' (columns: {', '.join(cols) or 'none'}).",
            hint="Name the column that holds the text, or use 'prompt' and 'response' columns.",
        )
    records: list[Row] = []
    try:
        for row in reader:
            line = reader.line_num
            src = {"file": name, "row": line}
            if structured:
                p, r = (row.get("prompt") or "").strip(), (row.get("response") or "").strip()
                if p or r:
                    records.append(("prompt_response", "", p, r, None, src))
            else:
                t = (row.get(want) or "").strip()
                if len(t) > cfg.max_chars:
                    records += _split_row(("text", t, None, None, None, src), cfg)
                elif t:
                    records.append(("text", t, None, None, None, src))
    except csv.Error as e:
        raise _csv_error(name, reader.line_num, e, limit) from e
    if not records:
        raise InvalidInput(
            f"{name}: column '{want}' is empty in every row.", hint="Check the column."
        )
    return records


def _csv_error(name: str, line: int, e: csv.Error, limit: int) -> InvalidInput:
    if "field larger than field limit" in str(e):
        return InvalidInput(
            f"{name}: line {line}: a field longer than {limit:,} characters"
            " (ingest.csv_max_field_chars).",
            hint="Split that text over several rows, or raise ingest.csv_max_field_chars in config.json.",
        )
    return InvalidInput(
        f"{name}: malformed CSV at line {line}: {e}.", hint="Fix the quoting on that line."
    )


def _too_many_records(name: str, cfg: IngestConfig) -> InvalidInput:
    return InvalidInput(
        f"{name}: more than {cfg.max_records_per_file:,} records in one file"
        " (ingest.max_records_per_file).",
        hint="Split the file, or raise ingest.max_records_per_file in config.json.",
    )


def read_records(
    path: Path, data: bytes, cfg: IngestConfig, *, text_column: str | None = None
) -> list[RawRecord]:
    return [RawRecord(*row) for row in read_rows(path, data, cfg, text_column=text_column)]


def read_rows(
    path: Path, data: bytes, cfg: IngestConfig, *, text_column: str | None = None
) -> list[Row]:
    """read_records() as plain tuples (see Row)."""
    fmt = file_format(path)
    name = display_name(path.name)
    rows = _READERS[fmt](name, data, cfg, text_column)
    if len(rows) > cfg.max_records_per_file:
        raise _too_many_records(name, cfg)
    return rows


_READERS: dict[str, Callable[[str, bytes, IngestConfig, str | None], list[Row]]] = {
    "txt": lambda n, d, c, _: read_txt(n, d, c),
    "md": lambda n, d, c, _: read_txt(n, d, c, markdown=True),
    "jsonl": lambda n, d, c, _: read_jsonl(n, d, c),
    "csv": read_csv,
    "pdf": lambda n, d, c, _: _documents().read_pdf(n, d, c),
    "docx": lambda n, d, c, _: _documents().read_docx(n, d, c),
}


def _documents() -> Any:
    """The PDF and DOCX readers (their own module: they import pypdf and defusedxml)."""
    from studio.core import ingest_documents

    return ingest_documents
