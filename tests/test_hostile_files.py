"""Hostile and careless inputs: zip bombs, giant rows and fields, symbolic links, control
characters in file names, names with a trailing newline, folders, secrets in descriptions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from studio.core.errors import InvalidInput, NotFound

A1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
PROSE = (
    "The keeper rang the fog bell twice at dusk when the Hollow Bell rock went under the tide, "
    "and wrote the height of the water into the brown log book before supper. "
)


# -- names and descriptions -----------------------------------------------------------------------
def test_a_name_with_a_trailing_newline_is_refused(studio: Any) -> None:
    dn = studio.datanets
    dn.create("tides")
    for bad in ("tides\n", "tides2\n", "x\ny", "tides\r"):
        with pytest.raises(InvalidInput, match="not a valid Datanet name"):
            dn.create(bad)
    assert [d["name"] for d in dn.list()] == ["tides"]


def test_secrets_in_the_summary_or_description_are_never_stored(
    studio: Any, cli: Any, tmp_path: Path, studio_home: Path
) -> None:
    dn = studio.datanets
    with pytest.raises(InvalidInput, match="description .*private key"):
        dn.create("keys", description=f"# Notes\n\nkey for the block producer: 0x{KEY}\n")
    with pytest.raises(InvalidInput, match="summary .*private key"):
        dn.create("keys", summary=" ".join(KEY[i : i + 4] for i in range(0, 64, 4)))
    with pytest.raises(NotFound):
        dn.get("keys")
    desc = tmp_path / "desc.md"
    desc.write_text(f"Our data.\n\nThe deploy key is {KEY[:32]}\n{KEY[32:]}\n")
    rc, out, err = cli("datanet", "create", "keys", "--description-file", str(desc))
    assert rc == 1 and "description" in err and len(err.strip().splitlines()) == 1
    assert KEY[:16] not in (studio_home / "studio.sqlite").read_bytes().decode("latin-1")
    # an ordinary description with a labelled hash still works
    dn.create("ok", description=f"Snapshot v1 root: 0x{KEY}")
    assert dn.get("ok")["description"].endswith(KEY)


# -- zip bombs and XML tricks in .docx ----------------------------------------------------------
_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
    'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
    'officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)
_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/'
    '2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>'
)


def make_docx_bytes(path: Path, document_xml: bytes) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", _TYPES)
        z.writestr("_rels/.rels", _RELS)
        z.writestr("word/document.xml", document_xml)
    return path


def paragraphs_xml(paragraphs: list[str] | bytes, repeat: int = 1) -> bytes:
    body = (
        paragraphs
        if isinstance(paragraphs, bytes)
        else "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs).encode()
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><w:document {_W}><w:body>'.encode()
        + body * repeat
        + b"</w:body></w:document>"
    )


def test_a_docx_zip_bomb_is_refused_before_parsing(studio: Any, tmp_path: Path) -> None:
    # 12 MB of paragraphs squeezed into a few kB: 60,000 records in the old reader
    bomb = make_docx_bytes(
        tmp_path / "bomb.docx", paragraphs_xml([PROSE[:80]], repeat=16_000_000 // 110)
    )
    assert bomb.stat().st_size < 200_000
    studio.datanets.create("bombs")
    with pytest.raises(InvalidInput, match="too large when unpacked"):
        studio.datanets.add_files("bombs", [bomb], contributor=A1)
    # and the absolute limit, whatever the ratio
    studio.config.ingest.max_unpacked_mb = 0.05
    small = make_docx_bytes(tmp_path / "small.docx", paragraphs_xml([PROSE] * 400))
    with pytest.raises(InvalidInput, match="too large when unpacked.*max_unpacked_mb"):
        studio.datanets.add_files("bombs", [small], contributor=A1)
    assert studio.datanets.get("bombs")["records"]["pending"] == 0


def test_docx_xml_entities_and_dtds_are_refused(studio: Any, tmp_path: Path) -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
        b"<w:document " + _W.encode() + b"><w:body><w:p><w:r><w:t>&lol2;</w:t></w:r></w:p>"
        b"</w:body></w:document>"
    )
    f = make_docx_bytes(tmp_path / "laughs.docx", laughs)
    studio.datanets.create("xml")
    with pytest.raises(InvalidInput, match="not a readable .docx"):
        studio.datanets.add_files("xml", [f], contributor=A1)


def test_docx_paragraphs_stream_with_tables_and_a_record_cap(studio: Any, tmp_path: Path) -> None:
    table = f"<w:tbl><w:tr><w:tc><w:p><w:r><w:t>{PROSE}in a table</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"
    doc = paragraphs_xml(
        f'<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Tides</w:t></w:r></w:p>'
        f"<w:p><w:r><w:t>{PROSE}</w:t><w:tab/><w:r><w:t>end</w:t></w:r></w:r></w:p>{table}".encode()
    )
    f = make_docx_bytes(tmp_path / "t.docx", doc)
    dn = studio.datanets
    dn.create("docs")
    (res,) = dn.add_files("docs", [f], contributor=A1)
    texts = [dn.record_content("docs", r["id"]).text for r in dn.records("docs")]
    assert texts == [f"Tides\n\n{PROSE}\tend\n\n{PROSE}in a table"]
    studio.config.ingest.max_records_per_file = 3
    many = make_docx_bytes(tmp_path / "many.docx", paragraphs_xml([PROSE * 9] * 5))
    with pytest.raises(InvalidInput, match="more than 3 records.*max_records_per_file"):
        dn.add_files("docs", [many], contributor=A1)


# -- giant rows and fields ----------------------------------------------------------------------
def test_a_giant_jsonl_row_is_split_like_prose_and_a_giant_pair_refused(
    studio: Any, tmp_path: Path
) -> None:
    big = PROSE * 300  # ~60,000 characters
    f = tmp_path / "rows.jsonl"
    f.write_text(
        "\n".join(
            [
                json.dumps({"text": "A short ordinary row about the keeper and the bell."}),
                json.dumps({"text": big}),
                json.dumps({"prompt": "Summarise the log.", "response": big}),
            ]
        )
        + "\n"
    )
    dn = studio.datanets
    dn.create("rows")
    (res,) = dn.add_files("rows", [f], contributor=A1)
    limit = studio.config.ingest.max_chars
    recs = dn.records("rows")
    assert len(recs) > 10 and all(r["kind"] == "text" for r in recs)
    lengths = [len(dn.record_content("rows", r["id"]).text) for r in recs]
    assert max(lengths) <= limit
    assert {r["source"]["row"] for r in recs} == {1, 2}
    assert [r["source"].get("offset") for r in recs if r["source"]["row"] == 2][0] == 0
    (refused,) = res["refused"]
    assert refused["where"] == "rows.jsonl row 3" and "over ingest.max_chars" in refused["reason"]
    assert all("too long" not in " ".join(r["reasons"]) for r in recs)


def test_a_csv_field_over_the_default_limit(studio: Any, tmp_path: Path) -> None:
    import csv as csv_module

    default = csv_module.field_size_limit()
    f = tmp_path / "wide.csv"
    f.write_text('text\n"' + PROSE * 1000 + '"\n"A short row about tides and bells."\n')
    dn = studio.datanets
    dn.create("wide")
    (res,) = dn.add_files("wide", [f], contributor=A1)  # was "malformed CSV, fix the quoting"
    assert res["records"] > 30 and res["status"] == "added"
    assert csv_module.field_size_limit() == default  # the process-wide limit is put back
    studio.config.ingest.csv_max_field_chars = 100_000
    g = tmp_path / "wider.csv"
    g.write_text('text\n"' + PROSE * 1000 + '"\n')
    with pytest.raises(InvalidInput, match="line .*field longer than 100,000 characters"):
        dn.add_files("wide", [g], contributor=A1)


# -- links, folders, names ------------------------------------------------------------------------
def test_symbolic_links_are_refused_unless_asked_for(cli: Any, studio: Any, tmp_path: Path) -> None:
    real = tmp_path / "real.txt"
    real.write_text(PROSE)
    link = tmp_path / "notes.txt"
    link.symlink_to(real)
    shadow = tmp_path / "shadow.txt"
    shadow.symlink_to("/etc/shadow")
    assert cli("datanet", "create", "links")[0] == 0
    rc, out, err = cli("datanet", "add", "links", str(link), "--contributor", A1)
    assert rc == 1 and f"symbolic link to {real}" in err and "follow symbolic links" in err
    rc, out, err = cli("datanet", "add", "links", str(shadow), "--contributor", A1)
    assert rc == 1 and "symbolic link to /etc/shadow" in err
    rc, out, err = cli(
        "datanet", "add", "links", str(link), "--contributor", A1, "--follow-symlinks"
    )
    assert rc == 0 and "added 1 record" in out
    # a link swapped in after the check is still refused by the O_NOFOLLOW open
    from studio.core.ingest import read_file

    with pytest.raises(InvalidInput, match="symbolic link"):
        read_file(link, studio.config.ingest)


def test_a_folder_says_it_is_a_folder(cli: Any, tmp_path: Path) -> None:
    assert cli("datanet", "create", "dirs")[0] == 0
    (tmp_path / "notes").mkdir()
    rc, out, err = cli("datanet", "add", "dirs", str(tmp_path / "notes"), "--contributor", A1)
    assert rc == 1 and "is a folder" in err and "unsupported file type" not in err


def test_control_characters_in_file_names_are_escaped(
    cli: Any, studio: Any, tmp_path: Path
) -> None:
    forged = tmp_path / "ok.txt\nerror: wallet drained.txt"
    forged.write_text(PROSE)
    empty = tmp_path / "e\rmpty\x1b[2J.txt"
    empty.write_text("")
    assert cli("datanet", "create", "names")[0] == 0
    rc, out, err = cli("datanet", "add", "names", str(forged), "--contributor", A1)
    assert rc == 0
    assert not any(line.startswith("error:") for line in out.splitlines())
    assert "ok.txt\\nerror: wallet drained.txt" in out
    (f,) = studio.datanets.files("names")
    assert f["name"] == "ok.txt\\nerror: wallet drained.txt"
    (rec,) = studio.datanets.records("names")
    assert rec["source"]["file"] == f["name"]
    rc, out, err = cli("datanet", "add", "names", str(empty), "--contributor", A1)
    assert rc == 1 and len(err.strip().splitlines()) == 1 and "\\r" in err and "\x1b" not in err
