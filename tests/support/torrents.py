"""Real, seedable .torrent files made by hand (bencode), with MyAnonamouse-like tracker URLs."""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
from pathlib import Path

MAM_ANNOUNCE = "https://t.myanonamouse.net/tracker.php/s3cretpasskey/announce"
OTHER_ANNOUNCE = "https://tracker.example.invalid/announce"
PIECE_LENGTH = 16384


def bencode(value: object) -> bytes:
    """Encode ints, str/bytes, lists and dicts (keys sorted, as the spec requires)."""
    if isinstance(value, bool):
        raise TypeError("bool is not bencodable")
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError(f"cannot bencode {type(value)!r}")


@dataclass(frozen=True)
class TorrentFile:
    """A .torrent blob and its info-hash; the data file lies in ``data_dir`` when ``with_data``."""

    name: str
    blob: bytes
    info_hash: str
    data_dir: Path


def make_torrent(
    data_dir: Path,
    name: str,
    size: int = 1000,
    *,
    tracker: str = MAM_ANNOUNCE,
    torrent_id: int | None = None,
    with_data: bool = True,
) -> TorrentFile:
    """Create a private single-file torrent; with ``with_data`` its content exists so it seeds.

    Without data, qBittorrent keeps it downloading (stalledDL), which is what a "paid download in
    progress" looks like for the emergency engine.
    """
    content = (name.encode() * (size // max(len(name), 1) + 1))[:size]
    pieces = b"".join(
        hashlib.sha1(content[i : i + PIECE_LENGTH]).digest()
        for i in range(0, len(content), PIECE_LENGTH)
    )
    info = {
        "length": size,
        "name": name,
        "piece length": PIECE_LENGTH,
        "pieces": pieces,
        "private": 1,
    }
    meta: dict[str, object] = {"announce": tracker, "info": info}
    if torrent_id is not None:
        meta["comment"] = f"https://www.myanonamouse.net/t/{torrent_id}"
    data_dir.mkdir(parents=True, exist_ok=True)
    if with_data:
        (data_dir / name).write_bytes(content)
    info_hash = hashlib.sha1(bencode(info)).hexdigest()
    return TorrentFile(name, bencode(meta), info_hash, data_dir)
