"""Reading PDF pages and DOCX paragraphs into raw records (see core.ingest): a PDF through pypdf,
a DOCX streamed from its main document part with defusedxml's protections, after the zip's
unpacked size and ratio are checked (a zip bomb is refused before any parsing)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from studio.core.config import IngestConfig
from studio.core.errors import InvalidInput
from studio.core.ingest import Row, _prose_records, _too_many_records, split_prose


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


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_OFFICE_DOCUMENT = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
)


def _docx_error(name: str, why: str) -> InvalidInput:
    return InvalidInput(
        f"{name}: not a readable .docx file ({why}).",
        hint="Save it again from Word/LibreOffice as .docx.",
    )


def _docx_parts(name: str, data: bytes, cfg: IngestConfig) -> tuple[Any, str]:
    """The open zip and the name of its main document part, after the unpacked-size checks
    (a zip states each member's size, and zipfile never returns more than that)."""
    import zipfile

    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise _docx_error(name, str(e) or type(e).__name__) from e
    unpacked = sum(i.file_size for i in infos)
    limit = cfg.max_unpacked_mb * 1_000_000
    ratio = unpacked / max(1, len(data))
    # the ratio matters only for sizes worth a bomb: a small document may compress very well
    if unpacked > limit or (ratio > cfg.max_unpack_ratio and unpacked > 10_000_000):
        raise InvalidInput(
            f"{name}: too large when unpacked ({unpacked / 1e6:,.0f} MB from"
            f" {len(data) / 1e6:,.2f} MB, {ratio:,.0f} times its size; the limits are"
            f" {cfg.max_unpacked_mb:g} MB and {cfg.max_unpack_ratio:g} times, ingest.max_unpacked_mb"
            " and ingest.max_unpack_ratio).",
            hint="This looks like a zip bomb. If the document is genuine, save it as .txt and add that.",
        )
    part = "word/document.xml"
    try:
        rels = _xml_root(zf, "_rels/.rels")
    except KeyError:
        rels = None
    for rel in rels if rels is not None else ():
        if rel.get("Type") == _OFFICE_DOCUMENT and rel.get("Target"):
            part = rel.get("Target", part).lstrip("/")
    if part not in zf.namelist():
        raise _docx_error(name, f"no {part}")
    return zf, part


def _xml_root(zf: Any, part: str) -> Any:
    import defusedxml.ElementTree as safe_xml

    with zf.open(part) as f:
        return safe_xml.parse(f, forbid_dtd=True).getroot()


def _docx_styles(zf: Any) -> dict[str, str]:
    """Style id -> style name ("Heading1" -> "heading 1"), so localised ids still read as headings."""
    try:
        root = _xml_root(zf, "word/styles.xml")
    except KeyError:
        return {}
    out = {}
    for st in root.iter(_W + "style"):
        sid, nm = st.get(_W + "styleId"), st.find(_W + "name")
        if sid and nm is not None:
            out[sid] = (nm.get(_W + "val") or sid).lower()
    return out


def read_docx(name: str, data: bytes, cfg: IngestConfig) -> list[Row]:
    """Paragraphs of the main document part, streamed (each paragraph is dropped once read), with
    defusedxml's protections (no DTD, no entities) on every XML part."""
    import xml.etree.ElementTree as std_xml
    import zipfile

    import defusedxml
    import defusedxml.ElementTree as safe_xml

    zf, part = _docx_parts(name, data, cfg)
    paras: list[tuple[int, str, bool]] = []
    try:
        styles = _docx_styles(zf)
        index = 0
        body = None
        with zf.open(part) as f:
            for event, elem in safe_xml.iterparse(f, events=("start", "end"), forbid_dtd=True):
                if event == "start":
                    if elem.tag == _W + "body":
                        body = elem
                    continue
                if elem.tag == _W + "p":
                    text = "".join(_run_text(elem)).strip()
                    if text:
                        style = elem.find(f"{_W}pPr/{_W}pStyle")
                        sid = style.get(_W + "val", "") if style is not None else ""
                        label = styles.get(sid, sid.lower())
                        paras.append((index, text, label.startswith(("heading", "title"))))
                        if len(paras) > cfg.max_records_per_file:
                            raise _too_many_records(name, cfg)
                    index += 1
                    elem.clear()
                elif body is not None and elem.tag == _W + "tbl":
                    elem.clear()
                if body is not None and len(body) > 64:
                    del body[:-1]  # paragraphs already read: keep memory flat
    except (zipfile.BadZipFile, std_xml.ParseError, defusedxml.DefusedXmlException, OSError) as e:
        raise _docx_error(name, str(e) or type(e).__name__) from e
    if not paras:
        raise InvalidInput(
            f"{name}: the document has no text.", hint="Add a document with content."
        )
    # For docx the offset is the paragraph index.
    return [
        ("text", t, None, None, None, {"file": name, "paragraph": o})
        for o, t in split_prose("", cfg, paragraphs=paras)
    ]


def _run_text(p: Any) -> Iterator[str]:
    for el in p.iter():
        tag = el.tag
        if tag == _W + "t" and el.text:
            yield el.text
        elif tag == _W + "tab":
            yield "\t"
        elif tag in (_W + "br", _W + "cr"):
            yield "\n"
