"""Hostile and careless inputs: zip bombs, giant rows and fields, symbolic links, control
characters in file names, names with a trailing newline, folders, secrets in descriptions."""

from __future__ import annotations

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
