"""Photos in: encoded bytes or arrays to a checked BGR image, with the reason when it is not one.

Why check before decoding: a server or a batch job meets whatever users upload. The size is
read from the file's header first, so a 20000 x 20000 image (1.2 GB once decoded) is refused
without decoding it, and a truncated JPEG, which OpenCV decodes into a half-grey picture with
only a console warning, is refused by its missing end marker.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

MAX_PIXELS = 40_000_000  # 40 megapixels: a 7,300 x 5,500 photo; larger ones are refused
MIN_SIDE = 16  # pixels; nothing smaller holds a person
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


class BadInput(ValueError):
    """An input the predictor cannot use, with the reason (a user error, never a crash)."""


def image_format(data: bytes) -> str | None:
    """``jpeg``, ``png``, ``webp`` or ``bmp`` by the file's magic bytes, else None."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:2] == b"BM":
        return "bmp"
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the first start-of-frame marker."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        i += 2 + length
    return None


def header_size(data: bytes, kind: str) -> tuple[int, int] | None:
    """``(width, height)`` from the header of an image of ``kind``, or None if unreadable."""
    try:
        if kind == "png" and len(data) >= 24:
            return struct.unpack(">II", data[16:24])
        if kind == "jpeg":
            return _jpeg_size(data)
        if kind == "bmp" and len(data) >= 26:
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)
        if kind == "webp" and len(data) >= 30:
            chunk = data[12:16]
            if chunk == b"VP8X":
                return (1 + int.from_bytes(data[24:27], "little"),
                        1 + int.from_bytes(data[27:30], "little"))
            if chunk == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
            if chunk == b"VP8 ":
                width, height = struct.unpack("<HH", data[26:30])
                return width & 0x3FFF, height & 0x3FFF
    except struct.error:
        return None
    return None


def check_size(width: int, height: int, name: str) -> None:
    if width * height > MAX_PIXELS:
        raise BadInput(f"{name}: {width}x{height} pixels is over the limit of "
                       f"{MAX_PIXELS // 1_000_000} megapixels; scale it down first")
    if min(width, height) < MIN_SIDE:
        raise BadInput(f"{name}: {width}x{height} pixels is too small to hold a person "
                       f"(at least {MIN_SIDE} pixels a side)")


def decode_image(data: bytes, name: str = "image") -> np.ndarray:
    """Encoded jpg/png/webp/bmp bytes -> ``(H, W, 3)`` uint8 BGR, checked; :class:`BadInput`
    names ``name`` and the problem (empty, not an image, truncated, too large or small)."""
    if not data:
        raise BadInput(f"{name}: empty (0 bytes)")
    kind = image_format(data)
    if kind is None:
        raise BadInput(f"{name}: not an image (jpg, png, webp or bmp expected; it starts with "
                       f"{bytes(data[:8])!r})")
    size = header_size(data, kind)
    if size is None:
        raise BadInput(f"{name}: a damaged or truncated {kind} (its header gives no size)")
    check_size(*size, name)
    if kind == "jpeg" and b"\xff\xd9" not in data[-64:]:
        raise BadInput(f"{name}: a truncated jpeg (no end-of-image marker): the file was cut "
                       "short")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise BadInput(f"{name}: a damaged {kind} that OpenCV cannot decode")
    return image


def as_image(value, name: str = "image") -> np.ndarray:
    """An image input (encoded bytes, or a ``(H, W, 3)`` uint8 BGR array) -> checked BGR array."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return decode_image(bytes(value), name)
    array = np.asarray(value)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise BadInput(f"{name}: an image array must be (H, W, 3) uint8 BGR; got "
                       f"{array.shape} {array.dtype}")
    check_size(array.shape[1], array.shape[0], name)
    return array
