#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Deterministic test mail for scripts/bench, and the count of what a tool got back.

  bench-gen.py generate --messages N --out MAILDIR --manifest FILE [--seed S]
  bench-gen.py count MANIFEST DIR

`generate` writes N messages into a maildir (LF line endings, as on disk
after delivery) and a manifest with one tab-separated line per attachment:
message file (relative to MAILDIR), sha256, size, declared file name.
The same N and seed give the same bytes on every machine: each message
draws from its own generator seeded with "seed:index", so the output does
not depend on Python's hash seed or on the order of anything else.

The mix imitates a mailbox of the kind mailbot dissects: half the messages
are text only or text + HTML alternatives, half carry 1-3 attachments of
20-400 KB (mostly PDFs, then images, zip and docx files, a few text files
in quoted-printable), some inside a forwarded message/rfc822, some with
non-ASCII names in RFC 2231 or RFC 2047 form. The files look real to
anything that sniffs magic bytes and structure, but their content streams
are random, so no tool can guess them and every one is unique.

`count` prints "RECOVERED TOTAL": how many of the manifest's sha256 values
occur among the regular files under DIR, as a multiset (two identical
attachments need two identical files).

Only the standard library: the bench must run here without downloads.
"""

import argparse
import base64
import collections
import hashlib
import io
import os
import random
import sys
import urllib.parse
import zipfile
import zlib

WORDS = (
    "the of and to in a is that for it as was with be by on not he this are or his "
    "from at which but have an they you were her she there been one all we their has "
    "would when if so no will more about can out up what some into them could time "
    "only these then two first may any like now my such make over our even most me "
    "invoice meeting report attached please find below regards thanks schedule budget "
    "quarter review draft final version project deadline team office printer scan "
    "Rechnung Größe Übersicht café naïve résumé déjà Zürich Ørsted smörgåsbord"
).split()

ASCII_BASES = (
    "invoice", "report", "scan", "minutes", "contract", "offer", "statement",
    "slides", "budget", "timesheet", "receipt", "agenda", "manual", "datasheet",
)
UNICODE_BASES = (
    "Rechnung März", "Übersicht Größen", "résumé", "facture été", "отчёт за квартал",
    "請求書", "żółć gęś", "Ελληνικά έγγραφα", "naïve café menu", "Smörgåsbord-Preise",
    "Kostenübersicht für das erste Quartal des laufenden Geschäftsjahres",
)

KiB = 1024


def prose(rng, size):
    """Roughly `size` bytes of wrapped pseudo-text."""
    lines, line, total = [], [], 0
    while total < size:
        word = rng.choice(WORDS)
        line.append(word)
        total += len(word.encode()) + 1
        if sum(len(w) + 1 for w in line) > 66:
            lines.append(" ".join(line))
            line = []
            if rng.random() < 0.15:
                lines.append("")
    lines.append(" ".join(line))
    return "\n".join(lines) + "\n"


def attachment_size(rng):
    # Skewed towards the small end, as real mail is: 20 KB to 400 KB with
    # a mean near 100 KB, which gives about 1.4 GB for 10,000 messages.
    return int(20 * KiB * 20 ** (rng.random() ** 1.45))


def make_pdf(rng, size):
    """A structurally valid PDF whose page content streams are random."""
    out = io.BytesIO()
    out.write(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    offsets = []

    def obj(body):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % len(offsets) + body + b"\nendobj\n")

    streams = []
    left = max(size - 900, 1024)
    while left > 0:
        n = min(left, rng.randint(8 * KiB, 64 * KiB))
        streams.append(n)
        left -= n
    pages = len(streams)
    first_page = 3
    kids = b" ".join(b"%d 0 R" % (first_page + 2 * k) for k in range(pages))
    obj(b"<< /Type /Catalog /Pages 2 0 R >>")
    obj(b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages)
    for k, n in enumerate(streams):
        obj(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R >>"
            % (first_page + 2 * k + 1)
        )
        obj(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % n + rng.randbytes(n) + b"\nendstream")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(offsets) + 1, xref))
    return out.getvalue()


def png_chunk(kind, data):
    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


def make_png(rng, size):
    header = png_chunk(b"IHDR", (1024).to_bytes(4, "big") + (768).to_bytes(4, "big") + b"\x08\x02\x00\x00\x00")
    chunks = []
    left = max(size - 60, 64)
    while left > 0:
        n = min(left, 32 * KiB)
        chunks.append(png_chunk(b"IDAT", rng.randbytes(n)))
        left -= n
    return b"\x89PNG\r\n\x1a\n" + header + b"".join(chunks) + png_chunk(b"IEND", b"")


def make_jpeg(rng, size):
    app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x48\x00\x48\x00\x00"
    body = rng.randbytes(max(size - 40, 64)).replace(b"\xff", b"\xfe")
    return b"\xff\xd8" + app0 + b"\xff\xda\x00\x0c\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00" + body + b"\xff\xd9"


def make_zip(rng, size, members):
    """A valid zip (stored members, fixed dates) of the given members; the
    last one is padded with random bytes up to about `size`."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        used = 0
        for k, (name, data) in enumerate(members):
            if k == len(members) - 1:
                data = data + rng.randbytes(max(size - used - 400, 256))
            info = zipfile.ZipInfo(name, date_time=(2024, 3, 14, 9, 26, 53))
            archive.writestr(info, data)
            used += len(data) + 80
    return out.getvalue()


def make_docx(rng, size):
    content_types = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        b'<Default Extension="png" ContentType="image/png"/>'
        b'<Override PartName="/word/document.xml" '
        b'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
        b"</Types>"
    )
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
        + "".join("<w:p><w:r><w:t>%s</w:t></w:r></w:p>" % p for p in prose(rng, 4000).split("\n") if p)
        + "</w:body></w:document>"
    ).encode()
    return make_zip(
        rng,
        size,
        [
            ("[Content_Types].xml", content_types),
            ("_rels/.rels", b'<?xml version="1.0"?><Relationships/>'),
            ("word/document.xml", document),
            ("word/media/image1.png", make_png(rng, 64)),
        ],
    )


def make_text_file(rng, size):
    # Sent in quoted-printable with every line break escaped (=0A), so the
    # bytes are unambiguous for any decoder. Unix line endings: decoders
    # that turn CRLF into LF for text types (munpack does) still write the
    # same bytes, so the count measures decoding, not a line-end policy.
    rows = ["Datum;Betrag;Empfänger;Verwendungszweck"]
    while sum(len(r) + 1 for r in rows) < size:
        rows.append(
            "2024-%02d-%02d;%d,%02d;%s;%s"
            % (rng.randint(1, 12), rng.randint(1, 28), rng.randint(1, 9999), rng.randint(0, 99),
               rng.choice(WORDS), " ".join(rng.choice(WORDS) for _ in range(6)))
        )
    return ("\n".join(rows) + "\n").encode()


# (weight, extension, MIME type, maker, transfer encoding)
KINDS = (
    (55, "pdf", "application/pdf", make_pdf, "base64"),
    (10, "jpg", "image/jpeg", make_jpeg, "base64"),
    (8, "png", "image/png", make_png, "base64"),
    (10, "zip", "application/zip", lambda rng, size: make_zip(rng, size, [("data.bin", b"")]), "base64"),
    (12, "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", make_docx, "base64"),
    (5, "csv", "text/csv", make_text_file, "quoted-printable"),
)


def qp_encode_binary(data):
    """Quoted-printable that escapes everything but safe printable ASCII,
    CR and LF included, with soft breaks before 76 columns."""
    out, line = [], []
    width = 0
    for byte in data:
        piece = chr(byte) if 33 <= byte <= 126 and byte != 61 else "=%02X" % byte
        if width + len(piece) > 75:
            out.append("".join(line) + "=")
            line, width = [], 0
        line.append(piece)
        width += len(piece)
    out.append("".join(line))
    return "\n".join(out) + "\n"


def qp_encode_text(text):
    """Quoted-printable for a UTF-8 text body, keeping its line breaks."""
    out = []
    for raw in text.encode().split(b"\n"):
        line, width = [], 0
        for k, byte in enumerate(raw):
            last = k == len(raw) - 1
            safe = (33 <= byte <= 126 and byte != 61) or (byte == 32 and not last)
            piece = chr(byte) if safe else "=%02X" % byte
            if width + len(piece) > 75:
                out.append("".join(line) + "=")
                line, width = [], 0
            line.append(piece)
            width += len(piece)
        out.append("".join(line))
    return "\n".join(out)


def encoded_word(text, charset, rng):
    """RFC 2047 encoded words for `text`, split so that none is longer than
    RFC 2047 allows (75 characters), separated by spaces as mailers do."""
    q = rng.random() < 0.5
    words = []
    for start in range(0, len(text), 16):
        raw = text[start:start + 16].encode(charset)
        if q:
            body = "".join(
                "_" if b == 32 else chr(b) if (48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122 or b in b".-")
                else "=%02X" % b
                for b in raw
            )
            words.append("=?%s?Q?%s?=" % (charset, body))
        else:
            words.append("=?%s?B?%s?=" % (charset, base64.b64encode(raw).decode()))
    return " ".join(words)


def name_parameters(name, rng, style):
    """The Content-Type and Content-Disposition parameter text for a file
    name: plain, RFC 2231 (with continuations when long) or RFC 2047."""
    if style == "ascii":
        return '; name="%s"' % name, '; filename="%s"' % name
    if style == "rfc2047":
        try:
            name.encode("ISO-8859-1")
            charset = "ISO-8859-1" if rng.random() < 0.3 else "UTF-8"
        except UnicodeEncodeError:
            charset = "UTF-8"
        word = encoded_word(name, charset, rng)
        return '; name="%s"' % word, '; filename="%s"' % word
    quoted = urllib.parse.quote(name.encode(), safe="")
    # Thunderbird's form: the encoded word in name= for old readers, RFC 2231 in filename*.
    legacy = '; name="%s"' % encoded_word(name, "UTF-8", rng)
    if len(quoted) <= 60:
        return legacy, ";\n filename*=UTF-8''%s" % quoted
    pieces, k = [], 0
    while quoted:
        cut = 60
        while "%" in quoted[max(cut - 2, 0):cut] and cut < len(quoted):
            cut += 1
        head, quoted = quoted[:cut], quoted[cut:]
        pieces.append(";\n filename*%d*=%s%s" % (k, "UTF-8''" if k == 0 else "", head))
        k += 1
    return legacy, "".join(pieces)


def attachment_part(rng, index, used_names):
    weights = [k[0] for k in KINDS]
    _, ext, mime, make, cte = rng.choices(KINDS, weights)[0]
    data = make(rng, attachment_size(rng))
    roll = rng.random()
    if roll < 0.8:
        style = "ascii"
        base = "%s-%04d" % (rng.choice(ASCII_BASES), rng.randint(1, 9999))
    else:
        style = "rfc2231" if roll < 0.9 else "rfc2047"
        base = rng.choice(UNICODE_BASES)
    name = "%s.%s" % (base, ext)
    while name in used_names:
        name = "%s (%d).%s" % (base, len(used_names), ext)
    used_names.add(name)
    ctype_param, disp_param = name_parameters(name, rng, style)
    if cte == "base64":
        body = base64.encodebytes(data).decode()
    else:
        body = qp_encode_binary(data)
    headers = "Content-Type: %s%s\nContent-Disposition: attachment%s\nContent-Transfer-Encoding: %s\n" % (
        mime, ctype_param, disp_param, cte)
    return headers + "\n" + body, (hashlib.sha256(data).hexdigest(), len(data), name)


def text_part(rng, text):
    if all(ord(c) < 128 for c in text):
        return "Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\n" + text
    if rng.random() < 0.8:
        return ("Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: quoted-printable\n\n"
                + qp_encode_text(text) + "\n")
    return "Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\n" + text


def body_part(rng, boundary):
    """A text body, or text + HTML as multipart/alternative."""
    text = prose(rng, rng.randint(300, 6000))
    if rng.random() < 0.5:
        return text_part(rng, text)
    html = "<html><body>\n" + "".join(
        "<p>%s</p>\n" % p.replace("&", "&amp;").replace("<", "&lt;") for p in text.split("\n\n")
    ) + "</body></html>\n"
    html_part = ("Content-Type: text/html; charset=UTF-8\nContent-Transfer-Encoding: quoted-printable\n\n"
                 + qp_encode_text(html) + "\n")
    return multipart("alternative", boundary, [text_part(rng, text), html_part])


def multipart(subtype, boundary, parts):
    out = ['Content-Type: multipart/%s;\n boundary="%s"\n\nThis is a multi-part message in MIME format.\n'
           % (subtype, boundary)]
    for part in parts:
        out.append("--%s\n%s" % (boundary, part if part.endswith("\n") else part + "\n"))
    out.append("--%s--\n" % boundary)
    return "".join(out)


def header_block(rng, index, seed, subject):
    minute = index * 7
    date = "%s, %02d %s 2024 %02d:%02d:%02d +0100" % (
        ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[(minute // 1440) % 7],
        1 + (minute // 1440) % 28, ("Jan", "Feb", "Mar", "Apr", "May", "Jun")[(minute // 40320) % 6],
        (minute // 60) % 24, minute % 60, rng.randint(0, 59))
    if any(ord(c) > 127 for c in subject):
        subject = encoded_word(subject, "UTF-8", rng)
    return (
        "Return-Path: <sender%d@example.org>\n"
        "Delivered-To: student@example.edu\n"
        "From: Sender %d <sender%d@example.org>\n"
        "To: Student <student@example.edu>\n"
        "Subject: %s\n"
        "Date: %s\n"
        "Message-ID: <bench.%d.%d@mailbot.test>\n"
        "MIME-Version: 1.0\n"
    ) % (index % 97, index % 97, index % 97, subject, date, index, seed)


def make_message(seed, index):
    """Returns (message bytes, [(sha256, size, name)], in cur/ or new/)."""
    rng = random.Random("%d:%d" % (seed, index))
    subject = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 7)))
    headers = header_block(rng, index, seed, subject)
    boundary = "----=_Part_%d_%08x" % (index, rng.getrandbits(32))
    manifest = []
    if rng.random() < 0.5:
        body = body_part(rng, boundary + ".alt")
        # body_part starts with its own Content-Type header line(s).
        message = headers + body
    else:
        parts = [body_part(rng, boundary + ".alt")]
        used_names = set()
        count = rng.choices((1, 2, 3), (35, 40, 25))[0]
        forward_at = rng.randrange(count) if rng.random() < 0.08 else -1
        for k in range(count):
            part, entry = attachment_part(rng, k, used_names)
            manifest.append(entry)
            if k == forward_at:
                inner_boundary = boundary + ".fwd"
                inner = header_block(rng, index + 1_000_000, seed, "Fwd: " + subject) + multipart(
                    "mixed", inner_boundary, [text_part(rng, prose(rng, 800)), part])
                part = ("Content-Type: message/rfc822\nContent-Disposition: inline\n\n" + inner)
            parts.append(part)
        message = headers + multipart("mixed", boundary, parts)
    folder = "new" if rng.random() < 0.1 else "cur"
    return message.encode(), manifest, folder


def generate(args):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(args.out, sub), exist_ok=True)
    total_bytes = 0
    attachments = 0
    with open(args.manifest, "w", encoding="utf-8") as manifest:
        for index in range(args.messages):
            data, entries, folder = make_message(args.seed, index)
            name = "%d.M%dP4242Q%d.bench.mailbot.test" % (1_700_000_000 + index, index, index)
            if folder == "cur":
                name += ":2,S"
            relative = "%s/%s" % (folder, name)
            with open(os.path.join(args.out, relative), "wb") as out:
                out.write(data)
            total_bytes += len(data)
            for sha, size, declared in entries:
                manifest.write("%s\t%s\t%d\t%s\n" % (relative, sha, size, declared))
                attachments += 1
    print("%d messages, %d bytes, %d attachments" % (args.messages, total_bytes, attachments))


def count(args):
    wanted = collections.Counter()
    with open(args.manifest, encoding="utf-8") as manifest:
        for line in manifest:
            wanted[line.split("\t")[1]] += 1
    found = collections.Counter()
    for root, _dirs, files in os.walk(args.dir):
        for name in files:
            path = os.path.join(root, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
            found[digest.hexdigest()] += 1
    recovered = sum(min(n, found[sha]) for sha, n in wanted.items())
    print(recovered, sum(wanted.values()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write the maildir and manifest")
    gen.add_argument("--messages", type=int, default=10_000)
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument("--out", required=True, help="maildir to create")
    gen.add_argument("--manifest", required=True)
    gen.set_defaults(run=generate)
    cnt = sub.add_parser("count", help="count manifest attachments found under DIR")
    cnt.add_argument("manifest")
    cnt.add_argument("dir")
    cnt.set_defaults(run=count)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    sys.exit(main())
