"""Files people attach in Slack: downloaded with the bot token into the uploads folder."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

#: Largest attachment the bot downloads for analysis.
MAX_DOWNLOAD_BYTES = 200 * 1024 * 1024
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class AttachmentError(Exception):
    """An attachment that cannot be used; the message is shown in the thread."""


def thread_folder(channel: str, thread_ts: str) -> str:
    return SAFE_NAME.sub("_", f"{channel}-{thread_ts}")


async def download(file: dict[str, Any], *, token: str, uploads_dir: Path, folder: str) -> str:
    """Save one Slack file object; returns its name relative to ``uploads_dir``."""
    name = SAFE_NAME.sub("_", file.get("name") or file.get("id") or "file").lstrip(".") or "file"
    size = int(file.get("size") or 0)
    if size > MAX_DOWNLOAD_BYTES:
        raise AttachmentError(
            f"{name} is {size / 1e6:.0f} MB, over the {MAX_DOWNLOAD_BYTES / 1e6:.0f} MB limit"
        )
    url = file.get("url_private_download") or file.get("url_private")
    if not url:
        raise AttachmentError(f"{name} has no download link (is it an external file?)")
    dest = uploads_dir / folder / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        async with httpx.AsyncClient(timeout=60, follow_redirects=True) as client:
            headers = {"Authorization": f"Bearer {token}"}
            async with client.stream("GET", url, headers=headers) as response:
                if response.status_code != 200:
                    raise AttachmentError(
                        f"could not download {name} (HTTP {response.status_code})"
                    )
                with dest.open("wb") as out:
                    async for chunk in response.aiter_bytes():
                        written += len(chunk)
                        if written > MAX_DOWNLOAD_BYTES:
                            raise AttachmentError(f"{name} is over the download limit")
                        out.write(chunk)
    except httpx.HTTPError as exc:
        raise AttachmentError(f"could not download {name} ({type(exc).__name__})") from None
    except AttachmentError:
        dest.unlink(missing_ok=True)
        raise
    return f"{folder}/{name}"
