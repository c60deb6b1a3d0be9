"""A real kreuzberg extraction with phases, for the screenshots: make a PDF, extract it, post-process.

Usage: kreuzberg_extract.py [PAGES]; phases "make pdf" (writes a PAGES-page PDF to a temp file),
"extract" (kreuzberg.extract_bytes_sync), "chunk" (splits the text into 1 KiB chunks, kept), with
a mark per step. Needs ``pip install kreuzberg``; not used by the test suite.
"""

import sys
import tempfile
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # this checkout's memview (the probe)
from memview.probe import mark, phase  # noqa: E402


def make_pdf(pages: int) -> bytes:
    """A plain PDF with ``pages`` pages of text (Helvetica), built by hand."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    pages_id = len(objects) + 1 + 2 * pages  # the Pages object comes after every page and stream
    kids = []
    for p in range(pages):
        lines = [f"Page {p + 1} line {i}: memview measures what kreuzberg holds while it extracts." for i in range(48)]
        text = "BT /F1 9 Tf 40 800 Td 11 TL " + " ".join(f"({line}) '" for line in lines) + " ET"
        data = zlib.compress(text.encode())
        stream = add(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream")
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] /Contents %d 0 R "
                b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (pages_id, stream, font)
            )
        )
    assert (
        add(b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % k for k in kids) + b"] /Count %d >>" % pages) == pages_id
    )
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, catalog, xref)
    return bytes(out)


pages = int(sys.argv[1]) if len(sys.argv) > 1 else 400
with phase("make pdf"):
    pdf = make_pdf(pages)
    path = Path(tempfile.mkstemp(suffix=".pdf")[1])
    path.write_bytes(pdf)
    mark(f"{pages} pages, {len(pdf) // 1024} KiB")
import kreuzberg  # noqa: E402

with phase("extract"):
    result = kreuzberg.extract_bytes_sync(path.read_bytes(), "application/pdf")
    mark(f"{len(result.content) // 1024} KiB of text")
with phase("chunk"):
    chunks = [result.content[i : i + 1024].encode() * 8 for i in range(0, len(result.content), 1024)]
    mark(f"{len(chunks)} chunks")
path.unlink()
print(f"extracted {len(result.content)} characters from {pages} pages", flush=True)
