"""
Write the sample invoices that the example DAGs send to Opus: small, valid, one-page PDFs.

The PDFs are built by hand (no PDF library): a page with text in Helvetica and a byte-exact
cross-reference table, so any PDF reader opens them. Run it from the repository root to
regenerate ``example_dags/data/``; the output is deterministic.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "example_dags" / "data"

INVOICES = [
    ("INV-1001", "ACME GmbH", "2025-11-03", [("Steel brackets, 40 pcs", 480.00), ("Delivery", 35.50)]),
    ("INV-1002", "Globex Ltd", "2025-11-04", [("Consulting, 6 h", 900.00)]),
    ("INV-1003", "Initech SA", "2025-11-05", [("Printer toner, 3 pcs", 171.90), ("Paper, 10 reams", 59.00)]),
]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def invoice_pdf(number: str, customer: str, date: str, lines: list[tuple[str, float]]) -> bytes:
    """A one-page PDF invoice."""
    net = sum(amount for _, amount in lines)
    vat = round(net * 0.19, 2)
    text = [
        (18, f"Invoice {number}"),
        (11, "Opus Demo Supplies, 1 Example Street, Berlin"),
        (11, f"Bill to: {customer}"),
        (11, f"Date: {date}    Due: 30 days"),
        (11, ""),
        *((11, f"{item:<40} EUR {amount:>10.2f}") for item, amount in lines),
        (11, ""),
        (11, f"{'Net':<40} EUR {net:>10.2f}"),
        (11, f"{'VAT 19%':<40} EUR {vat:>10.2f}"),
        (12, f"{'Total':<40} EUR {net + vat:>10.2f}"),
    ]
    ops = ["BT", "72 770 Td", "16 TL"]
    for size, line in text:
        ops.append(f"/F1 {size} Tf ({_escape(line)}) Tj T*")
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        f"<< /Title (Invoice {number}) /Producer (airflow-provider-opus sample data) >>".encode("latin-1"),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number_, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number_ + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def main() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    for number, customer, date, lines in INVOICES:
        (DATA / f"invoice-{number.removeprefix('INV-')}.pdf").write_bytes(invoice_pdf(number, customer, date, lines))
    print(f"wrote {len(INVOICES)} invoices to {DATA}")


if __name__ == "__main__":
    main()
