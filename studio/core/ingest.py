"""Reading contributor files into raw records: txt md jsonl csv pdf docx.

Prose (txt, md, pdf pages, docx) is split at paragraph/section boundaries into windows near
`target_chars`; structured files (jsonl, csv) give one record per row. Every record keeps where it
came from (file, page / row / offset). Anything we cannot read raises InvalidInput with a message
that says what to do; nothing is written here."""

from __future__ import annotations

import csv
import io
import json
import re
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


def file_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = " ".join(sorted({f".{v}" for v in FORMATS.values()}))
        raise InvalidInput(
            f"{path.name}: unsupported file type '{path.suffix or '(none)'}'.",
            hint=f"Use one of: {known}.",
        )
    return fmt


def check_size(path: Path, cfg: IngestConfig) -> int:
    try:
        st = path.stat()
    except FileNotFoundError as e:
        raise InvalidInput(f"{path}: no such file.", hint="Check the path.") from e
    if not path.is_file():
        raise InvalidInput(f"{path}: not a regular file.", hint="Pass files, not folders.")
    if st.st_size == 0:
        raise InvalidInput(f"{path.name}: the file is empty.", hint="Add a file with content.")
    limit = int(cfg.max_file_mb * 1_000_000)  # decimal MB, as the message says
    if st.st_size > limit:
        raise InvalidInput(
            f"{path.name}: {st.st_size / 1e6:.1f} MB is over the {cfg.max_file_mb:g} MB limit"
            " (ingest.max_file_mb).",
            hint="Split the file, or raise ingest.max_file_mb in config.json.",
        )
    return st.st_size


_CONTROL = bytes(i for i in range(32) if i not in (9, 10, 12, 13))


def decode_text(name: str, data: bytes) -> str:
    """Strict UTF-8 with a clear message; refuses files that look binary."""
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
        line = data.count(b"\n", 0, e.start) + 1
        raise InvalidInput(
            f"{name}: invalid UTF-8 at byte {e.start} (line {line}).",
            hint="Re-save the file as UTF-8.",
        ) from e
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text or text.isspace():  # (text.strip() would copy the whole file)
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
    text = decode_text(name, data)
    records: list[Row] = []
    bad: list[tuple[int, str]] = []
    loads = json.loads
    scan = _SCAN_JSON
    for n, line in enumerate(text.split("\n"), 1):
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
        else:
            records.append(rec)
    if bad:
        raise _bad_lines_error(name, bad)
    if not records:
        raise InvalidInput(f"{name}: no records found.", hint="Add one JSON object per line.")
    return records


def read_csv(
    name: str, data: bytes, cfg: IngestConfig, text_column: str | None = None
) -> list[Row]:
    text = decode_text(name, data)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    cols = reader.fieldnames or []
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
                if t:
                    records.append(("text", t, None, None, None, src))
    except csv.Error as e:
        raise InvalidInput(
            f"{name}: malformed CSV at line {reader.line_num}: {e}.",
            hint="Fix the quoting on that line.",
        ) from e
    if not records:
        raise InvalidInput(
            f"{name}: column '{want}' is empty in every row.", hint="Check the column."
        )
    return records


def read_pdf(name: str, data: bytes, cfg: IngestConfig) -> list[Row]:
    import logging

    import pypdf
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise InvalidInput(
            f"{name}: not a PDF file (corrupt or renamed).", hint="Export the PDF again."
        )
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise InvalidInput(
                f"{name}: the PDF is encrypted.",
                hint="Save an unencrypted copy (remove the password) and add that.",
            )
        records: list[Row] = []
        for page_no, page in enumerate(reader.pages, 1):
            text = (page.extract_text() or "").replace("\r\n", "\n").replace("\r", "\n")
            records += _prose_records(name, split_prose(text, cfg), page=page_no)
    except InvalidInput:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as e:
        raise InvalidInput(
            f"{name}: corrupt PDF ({type(e).__name__}: {e}).",
            hint="Export the PDF again from its source.",
        ) from e
    if not records:
        raise InvalidInput(
            f"{name}: no extractable text (a scanned PDF?).",
            hint="Run OCR first, or add the text as .txt.",
        )
    return records


def read_docx(name: str, data: bytes, cfg: IngestConfig) -> list[Row]:
    import zipfile

    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise InvalidInput(
            f"{name}: not a readable .docx file ({e}).",
            hint="Save it again from Word/LibreOffice as .docx.",
        ) from e
    except Exception as e:  # noqa: BLE001 - python-docx raises assorted errors on corrupt packages
        raise InvalidInput(
            f"{name}: not a readable .docx file ({type(e).__name__}).",
            hint="Save it again from Word/LibreOffice as .docx.",
        ) from e
    paras: list[tuple[int, str, bool]] = []
    for i, p in enumerate(document.paragraphs):
        t = p.text.strip()
        if t:
            style = (p.style.name if p.style is not None else "") or ""
            paras.append((i, t, style.lower().startswith(("heading", "title"))))
    if not paras:
        raise InvalidInput(
            f"{name}: the document has no text.", hint="Add a document with content."
        )
    # For docx the offset is the paragraph index.
    return [
        ("text", t, None, None, None, {"file": name, "paragraph": o})
        for o, t in split_prose("", cfg, paragraphs=paras)
    ]


def read_records(
    path: Path, data: bytes, cfg: IngestConfig, *, text_column: str | None = None
) -> list[RawRecord]:
    return [RawRecord(*row) for row in read_rows(path, data, cfg, text_column=text_column)]


def read_rows(
    path: Path, data: bytes, cfg: IngestConfig, *, text_column: str | None = None
) -> list[Row]:
    """read_records() as plain tuples (see Row)."""
    fmt = file_format(path)
    name = path.name
    if fmt in ("txt", "md"):
        return read_txt(name, data, cfg, markdown=fmt == "md")
    if fmt == "jsonl":
        return read_jsonl(name, data, cfg)
    if fmt == "csv":
        return read_csv(name, data, cfg, text_column)
    if fmt == "pdf":
        return read_pdf(name, data, cfg)
    return read_docx(name, data, cfg)
