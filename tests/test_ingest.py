"""Readers, prose splitting, secret/PII scanning, scores and MinHash signatures."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from studio.core import quality
from studio.core.config import IngestConfig
from studio.core.errors import InvalidInput
from studio.core.ingest import read_records, split_prose

CFG = IngestConfig()


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF with one text line per input line (Helvetica), written by hand."""
    n = len(pages)
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{' '.join(f'{4 + 2 * i} 0 R' for i in range(n))}] /Count {n} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, text in enumerate(pages):
        body = " ".join(f"({_esc(line)}) Tj T*" for line in text.split("\n"))
        stream = f"BT /F1 11 Tf 14 TL 72 740 Td {body} ET"
        objs.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >>"
            f" /Contents {5 + 2 * i} 0 R >>".encode()
        )
        objs.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream".encode())
    out = b"%PDF-1.4\n"
    offsets = []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + o + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{off:010d} 00000 n \n".encode() for off in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def make_encrypted_pdf() -> bytes:
    import pypdf

    writer = pypdf.PdfWriter(
        clone_from=pypdf.PdfReader(io.BytesIO(make_pdf(["secret page text here"])))
    )
    writer.encrypt("hunter2")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def make_docx(path: Path) -> Path:
    import docx

    d = docx.Document()
    d.add_heading("Hive notes", level=1)
    d.add_paragraph("Zephyr had eggs on seven frames this April, the strongest hive in the meadow.")
    d.add_paragraph("Mistral's queen wears a green dot on her thorax, painted last spring.")
    d.add_heading("Winter", level=1)
    d.add_paragraph("By late September each hive should weigh at least twenty kilograms of stores.")
    d.save(str(path))
    return path


def _read(tmp_path: Path, name: str, data: bytes | str, **kw: object) -> list:
    p = tmp_path / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return read_records(p, p.read_bytes(), CFG, **kw)  # type: ignore[arg-type]


# -- splitting --------------------------------------------------------------------------------


def test_prose_windows_keep_paragraphs_and_offsets() -> None:
    paras = [f"Paragraph {i} " + "word " * 50 for i in range(10)]  # ~265 chars each
    text = "\n\n".join(p.strip() for p in paras)
    chunks = split_prose(text, CFG)
    assert all(len(c) <= CFG.target_chars for _, c in chunks)
    assert "\n\n".join(c for _, c in chunks) == text  # nothing lost, nothing cut inside a paragraph
    for off, c in chunks:
        assert text[off : off + len(c)] == c


def test_markdown_heading_starts_a_new_record() -> None:
    text = "# A\n\nalpha " * 1 + "\n\n## B\n\nbeta text"
    chunks = split_prose(text, CFG, markdown=True)
    assert [c.split("\n")[0] for _, c in chunks] == ["# A", "## B"]


def test_long_paragraph_is_split_under_the_limit() -> None:
    para = " ".join(f"Sentence number {i} is here." for i in range(400))
    chunks = split_prose(para, CFG)
    assert len(chunks) > 1 and all(len(c) <= CFG.max_chars for _, c in chunks)
    glued = " ".join(c for _, c in chunks).split()
    assert glued == para.split()


# -- readers ------------------------------------------------------------------------------------


def test_jsonl_kinds_and_rows(tmp_path: Path) -> None:
    lines = [
        {"text": "plain text row"},
        {"prompt": "Q?", "response": "A."},
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
            ]
        },
    ]
    recs = _read(tmp_path, "a.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    assert [r.kind for r in recs] == ["text", "prompt_response", "chat"]
    assert [r.source["row"] for r in recs] == [1, 2, 3]
    assert recs[2].plain_text() == "user: hi\nassistant: hello"


def test_malformed_jsonl_reports_line_numbers(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"lines: 2 \(not valid JSON\), 4 \(no 'text'"):
        _read(tmp_path, "b.jsonl", '{"text": "ok"}\n{oops\n{"text": "fine"}\n{"other": 1}\n')


def test_csv_text_column_and_prompt_response(tmp_path: Path) -> None:
    recs = _read(tmp_path, "a.csv", 'id,text\n1,"first, with comma"\n2,second\n3,\n')
    assert [r.text for r in recs] == ["first, with comma", "second"]
    assert [r.source["row"] for r in recs] == [2, 3]
    recs = _read(tmp_path, "b.csv", "prompt,response\nWhat?,That.\n")
    assert recs[0].kind == "prompt_response" and recs[0].response == "That."
    recs = _read(tmp_path, "c.csv", "note\nhello there\n", text_column="note")
    assert recs[0].text == "hello there"
    with pytest.raises(InvalidInput, match="no column 'text' .*column that holds the text"):
        _read(tmp_path, "d.csv", "body\nhello\n")


def test_pdf_pages_and_docx_paragraphs(tmp_path: Path) -> None:
    recs = _read(
        tmp_path, "a.pdf", make_pdf(["Tide log page one.\nHigh water at dawn.", "Page two: seals."])
    )
    assert [r.source["page"] for r in recs] == [1, 2]
    assert "High water at dawn." in recs[0].text and "seals" in recs[1].text
    recs = read_records(make_docx(tmp_path / "h.docx"), (tmp_path / "h.docx").read_bytes(), CFG)
    assert (
        len(recs) == 2
        and recs[0].text.startswith("Hive notes")
        and recs[1].text.startswith("Winter")
    )


@pytest.mark.parametrize(
    "name,data,message",
    [
        ("x.exe", b"MZ", "unsupported file type"),
        ("bin.txt", bytes(range(256)) * 4, "binary"),
        ("bad.txt", "caf\u00e9 ok\n".encode("latin-1"), "invalid UTF-8 at byte 3 .line 1"),
        ("blank.md", b"  \n\n \n", "no text"),
        ("enc.pdf", None, "encrypted"),
        (
            "corrupt.pdf",
            b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 9 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF",
            "PDF",
        ),
        ("fake.pdf", b"hello, not a pdf", "not a PDF"),
        ("fake.docx", b"PK\x03\x04 broken zip", "docx"),
    ],
)
def test_unreadable_files_raise_with_a_fix(
    tmp_path: Path, name: str, data: bytes | None, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        _read(tmp_path, name, data if data is not None else make_encrypted_pdf())


# -- secrets, PII, score --------------------------------------------------------------------------

KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


@pytest.mark.parametrize(
    "text,refused",
    [
        (f"my wallet key is {KEY}", "private key"),
        (f"backup: {KEY[2:]}", "private key"),
        ("test test test test test test test test test test test junk", "recovery phrase"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIB...", "PEM"),
        ("export OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz012345", "API key"),
        ("aws AKIAIOSFODNN7EXAMPLE here", "API key"),
    ],
)
def test_secrets_are_refused(text: str, refused: str) -> None:
    s = quality.scan(text)
    assert s.refused and refused in s.refused


def test_hashes_and_ordinary_text_are_not_secrets() -> None:
    assert quality.scan(f"the tx hash was {KEY}").refused is None
    assert quality.scan("In 1987 the keeper counted 33 steps and 114 stairs.").refused is None
    s = quality.scan("write to maren@skerry.example or call +44 20 7946 0958")
    assert s.pii == ["email", "phone"] and s.refused is None
    assert quality.scan("version 1.2.3 on 2026-11-25, 10 200 3000").pii == []


def test_score_reasons() -> None:
    score, reasons = quality.assess("short", CFG)
    assert score == 0.5 and reasons[0].startswith("too short")
    score, reasons = quality.assess("1234 5678 9012 3456 7890 1234 5678 9012 3456 7890 !!", CFG)
    assert any("non-text" in r for r in reasons)
    score, reasons = quality.assess("a" * 100, CFG, exact_duplicate_of=7)
    assert score == 0.0 and "exact duplicate of record #7" in reasons
    score, reasons = quality.assess("x" * 100, CFG, pii=["email"])
    assert score == 0.7 and reasons == ["PII found: email"]


# -- MinHash ---------------------------------------------------------------------------------------


def test_signatures_equal_datasketch_update_batch() -> None:
    from datasketch import MinHash

    texts = [
        "The lamp is a fourth-order Fresnel lens with a single flash every seven seconds.",
        "",
        "hi",
        "Old Brindle is fed twice a day at one to five to five with rye flour.",
    ]
    sigs = quality.signatures(texts, sample=1)
    hv, owner = quality.shingle_hashes(texts)
    for i in range(len(texts)):
        m = MinHash(
            num_perm=quality.NUM_PERM, seed=quality.SEED, scheme="affine32", hashfunc=lambda x: x
        )
        m.update_batch([int(h) for h in hv[owner == i]])
        assert np.array_equal(m.hashvalues, sigs[i]), i
    assert quality.empty_rows(sigs).tolist() == [False, True, False, False]


def test_permutations_and_premix_are_datasketch_s() -> None:
    """minhash draws datasketch's permutations and applies its premix itself (so that ingest
    workers need not import datasketch and scipy): both must stay bit-for-bit datasketch's."""
    from datasketch import MinHash
    from datasketch.minhash import _fmix

    from studio.core.quality import minhash

    a, b = MinHash(num_perm=quality.NUM_PERM, seed=quality.SEED, scheme="affine32").permutations
    mine_a, mine_b = minhash._permutations()
    assert np.array_equal(a, mine_a) and np.array_equal(b, mine_b)
    assert mine_a.dtype == mine_b.dtype == np.uint32
    hv = np.random.default_rng(3).integers(0, 1 << 32, 10_000, dtype=np.uint64).astype(np.uint32)
    hv[:3] = [0, 1, 0xFFFFFFFF]
    assert np.array_equal(minhash._fmix32(hv.copy()), _fmix(hv, 32))


def test_lsh_params_are_datasketch_s() -> None:
    """lsh_params replaces datasketch's _optimal_param (scipy) with exact quadrature: the same
    (bands, rows) at every threshold, and nothing of scipy imported for it."""
    import subprocess
    import sys

    from datasketch.lsh import _optimal_param

    from studio.core.quality.dedupe import lsh_params

    for i in range(5, 100):
        t = round(i / 100, 2)
        assert lsh_params(t) == tuple(_optimal_param(t, quality.NUM_PERM, 0.5, 0.5)), t
    code = (
        "import sys; from studio.core import quality; quality.lsh_params(0.55);"
        " quality.analyze(['a few words here']); print('scipy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_near_duplicates_are_found_and_distinct_texts_are_not() -> None:
    base = (
        "Varroa mites are counted by the sugar roll method: half a cup of bees, about three hundred, "
        "are shaken with icing sugar and the mites that fall through the mesh are counted. More than "
        "nine mites per roll in August means the colony needs treatment before winter arrives."
    )
    near = base.replace("icing sugar", "powdered sugar")
    other = (
        "The lamp is a fourth-order Fresnel lens with a single flash every seven seconds. I polished "
        "the prisms with rouge and spirit, then trimmed the wick to a quarter inch this morning."
    )
    sigs = quality.signatures([base, near, other])
    index = quality.DuplicateIndex(0.85)
    keys = index.band_keys(sigs)
    index.add(1, sigs[0], keys[0])
    cands = index.candidates(sigs[1], keys[1])
    assert cands and cands[0][0] == 1
    assert quality.jaccard(base, near) >= 0.85
    assert index.candidates(sigs[2], keys[2]) == []
    assert quality.jaccard(base, other) < 0.3


def test_near_duplicate_candidates_do_not_depend_on_how_records_are_batched() -> None:
    """An add writes a file in runs of chunks whose sizes depend on timing: every split of the
    same records into check_and_add_many calls must find the same candidates, also for a record
    with more than CAP earlier copies (there the index's and the batch's were once merged)."""
    import numpy as np

    from studio.core import quality

    rng = np.random.default_rng(3)
    sigs = rng.integers(0, 2**32, size=(3000, quality.NUM_PERM), dtype=np.uint32)
    sigs[1000:1080] = sigs[10]  # many copies of one signature, more than CAP
    for _ in range(60):  # near copies, scattered
        a, b = sorted(rng.integers(0, 3000, 2).tolist())
        if a != b:
            sigs[b] = sigs[a]
            sigs[b, :6] = rng.integers(0, 2**32, 6)

    def found(batch: int) -> tuple[dict[int, object], list[object]]:
        index = quality.DuplicateIndex(0.85)
        out: dict[int, object] = {}
        for lo in range(0, len(sigs), batch):
            ids = list(range(lo + 1, min(lo + batch, len(sigs)) + 1))
            out.update(index.check_and_add_many(ids, sigs[lo : lo + batch]))
        keys = index.band_keys(sigs[::97])
        later = [index.candidates(sigs[i * 97], keys[i], i * 97 + 1) for i in range(len(keys))]
        return out, later

    whole = found(len(sigs))
    assert len(whole[0]) > 100 and whole[0][1005][0] == (11, 1.0)
    for batch in (1, 7, 64, 500, 1024):
        assert found(batch) == whole, batch
