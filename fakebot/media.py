"""Photos for the fake: what Telegram checks in an uploaded picture and in its caption.

An upload must be a real PNG or JPEG (else ``IMAGE_PROCESS_FAILED``), at most 10 MB, with
width + height at most 10000 and a side ratio at most 20 (``PHOTO_INVALID_DIMENSIONS``);
a string must be a file_id this fake issued (``wrong file identifier/HTTP URL
specified``). A caption is 0-1024 characters after entity parsing (``message caption is
too long``).
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

from .state import UploadedFile
from .validation import ApiError, bad, parse_text

__all__ = ["MAX_CAPTION", "MAX_PHOTO_BYTES", "image_size", "parse_caption", "photo_sizes"]

JSONDict = dict[str, Any]

MAX_CAPTION = 1024
MAX_PHOTO_BYTES = 10 * 1024 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG (its IHDR) or a JPEG (its first SOF marker); else None."""
    if data.startswith(PNG_SIGNATURE) and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data.startswith(b"\xff\xd8"):
        pos = 2
        while pos + 9 < len(data) and data[pos] == 0xFF:
            marker, length = data[pos + 1], int.from_bytes(data[pos + 2 : pos + 4], "big")
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
                return int(width), int(height)
            pos += 2 + length
    return None


def photo_sizes(photo: Any, known: dict[str, JSONDict]) -> list[JSONDict]:
    """The PhotoSize list Telegram answers for ``photo``; ``known`` maps the file_ids this
    fake issued to their sizes (updated with the new upload)."""
    if isinstance(photo, UploadedFile):
        if not photo.data:
            raise bad("there is no photo in the request")
        if len(photo.data) > MAX_PHOTO_BYTES:
            raise ApiError(413, "Request Entity Too Large")
        size = image_size(photo.data)
        if size is None or 0 in size:
            raise bad("IMAGE_PROCESS_FAILED")
        width, height = size
        if width + height > 10_000 or max(width, height) > 20 * min(width, height):
            raise bad("PHOTO_INVALID_DIMENSIONS")
        digest = hashlib.sha1(photo.data).hexdigest()[:24]
        entry: JSONDict = {
            "file_id": f"AgACAgIAAx{digest}",
            "file_unique_id": f"AQAD{digest[:12]}",
            "file_size": len(photo.data),
            "width": width,
            "height": height,
        }
        known[str(entry["file_id"])] = entry
        return [dict(entry)]
    if photo is None or photo == "":
        raise bad("there is no photo in the request")
    issued = known.get(str(photo))
    if issued is None:
        raise bad("wrong file identifier/HTTP URL specified")
    return [dict(issued)]


def parse_caption(params: JSONDict, *, html_strict: bool) -> tuple[str, list[JSONDict]]:
    """The caption's text and entities; ("", []) when there is none (it is optional)."""
    caption = params.get("caption")
    if caption is None or str(caption).strip() == "":
        return "", []
    try:
        return parse_text(
            caption,
            params.get("parse_mode"),
            params.get("caption_entities"),
            html_strict=html_strict,
            too_long="message caption is too long",
            limit=MAX_CAPTION,
        )
    except ApiError as err:
        if err.description == "Bad Request: message text is empty":
            return "", []  # markup only (<b></b>): Telegram sends the photo bare
        raise
