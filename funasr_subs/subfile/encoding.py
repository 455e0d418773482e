"""The encoding of a subtitle file from outside: found among the ones subtitles use, and kept when writing back.

A byte order mark decides first (UTF-8, UTF-16 LE/BE, UTF-32), then UTF-16 without a mark (NUL bytes in every other
place), then strict UTF-8; anything else goes to charset-normalizer restricted to the legacy encodings subtitle files
come in (GB18030/GBK, Big5, Big5-HKSCS, Shift-JIS, EUC-JP, EUC-KR, Windows-1250/1251/1252). Trying GB18030 alone is
not enough: it decodes Big5 bytes without an error, as mojibake.
"""

from __future__ import annotations

import codecs
import logging
from dataclasses import dataclass

import charset_normalizer

log = logging.getLogger(__name__)

#: Legacy (non-Unicode) encodings subtitle files come in, as Python codec names.
LEGACY = ("gb18030", "big5", "big5hkscs", "shift_jis", "euc_jp", "euc_kr", "cp1252", "cp1250", "cp1251")
#: Byte order marks, longest first (the UTF-32 LE mark starts with the UTF-16 LE one).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf_32_le"),
    (codecs.BOM_UTF32_BE, "utf_32_be"),
    (codecs.BOM_UTF8, "utf_8"),
    (codecs.BOM_UTF16_LE, "utf_16_le"),
    (codecs.BOM_UTF16_BE, "utf_16_be"),
)
#: Names for messages and reports.
_NAMES = {
    "utf_8": "UTF-8",
    "utf_16_le": "UTF-16 LE",
    "utf_16_be": "UTF-16 BE",
    "utf_32_le": "UTF-32 LE",
    "utf_32_be": "UTF-32 BE",
    "gb18030": "GB18030",
    "big5": "Big5",
    "big5hkscs": "Big5-HKSCS",
    "shift_jis": "Shift-JIS",
    "euc_jp": "EUC-JP",
    "euc_kr": "EUC-KR",
    "cp1252": "Windows-1252",
    "cp1250": "Windows-1250",
    "cp1251": "Windows-1251",
}


class UnknownEncodingError(ValueError):
    """The bytes are not text in any encoding subtitles use."""


@dataclass(frozen=True, slots=True)
class Encoding:
    """How a file's text is stored: a Python codec name and the byte order mark it started with (b"" for none)."""

    codec: str
    bom: bytes = b""

    @property
    def name(self) -> str:
        return _NAMES.get(self.codec, self.codec) + (" with BOM" if self.bom and self.codec == "utf_8" else "")

    def encode(self, text: str) -> bytes:
        """``text`` stored the same way; ValueError when a character has no place in the encoding or the bytes would
        not read back as exactly ``text``."""
        try:
            data = self.bom + text.encode(self.codec)
        except UnicodeEncodeError as exc:
            raise ValueError(f"{text[exc.start : exc.end]!r} cannot be written in {self.name}") from None
        if data[len(self.bom) :].decode(self.codec) != text:  # a codec that maps two ways (never expected)
            raise ValueError(f"the text does not read back the same in {self.name}")
        return data


def decode(data: bytes) -> tuple[str, Encoding]:
    """The text of a subtitle file and how it was stored; UnknownEncodingError when it is not such text."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return _strict(data[len(bom) :], Encoding(codec, bom))
    bomless = _utf16_without_bom(data)
    if bomless is not None:
        return _strict(data, Encoding(bomless))
    try:
        return data.decode("utf_8"), Encoding("utf_8")
    except UnicodeDecodeError as exc:
        where = f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})"
    if b"\x00" in data:
        raise UnknownEncodingError(f"{where} and holds NUL bytes: not text")
    best = charset_normalizer.from_bytes(data, cp_isolation=list(LEGACY)).best()
    if best is None or best.encoding not in LEGACY:
        raise UnknownEncodingError(f"{where}, nor another encoding subtitles use (UTF-16, GB18030, Big5, Shift-JIS...)")
    log.debug("encoding detected: %s (of %s)", best.encoding, LEGACY)
    return _strict(data, Encoding(best.encoding))


def _strict(data: bytes, encoding: Encoding) -> tuple[str, Encoding]:
    try:
        return data.decode(encoding.codec), encoding
    except UnicodeDecodeError:
        raise UnknownEncodingError(f"not valid {encoding.name} text") from None


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 without a mark: subtitles are full of ASCII (digits, arrows), whose high byte is NUL."""
    if len(data) < 8 or len(data) % 2:
        return None
    even, odd = data[0::2].count(0), data[1::2].count(0)
    half = len(data) // 2
    if odd >= 0.3 * half and even <= 0.02 * half:
        return "utf_16_le"
    if even >= 0.3 * half and odd <= 0.02 * half:
        return "utf_16_be"
    return None
