"""Opus packets as heard: wrapped in an Ogg Opus stream (RFC 7845) and decoded by ffmpeg's libopus.

The fake voice server keeps the Opus packets a bot sent, as a listening client gets them after
decryption. To hear them it needs an Opus decoder: the ffmpeg binary the project already uses
(the system's, or imageio-ffmpeg's, whose build has libopus) decodes an Ogg stream, so no system
libopus is needed. An Ogg page is a 27-byte header, a segment table and the packets; its CRC is
the Ogg CRC-32 (polynomial 0x04C11DB7, not reflected).
"""

from __future__ import annotations

import struct
import subprocess

import numpy as np

RATE = 48_000  # Opus always decodes at 48 kHz here; Discord sends stereo
CHANNELS = 2
FRAME_SAMPLES = 960  # 20 ms, what discord.py sends in every packet


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x8000_0000 else r << 1
        table.append(r & 0xFFFF_FFFF)
    return table


_CRC = _crc_table()


def _crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF_FFFF) ^ _CRC[((crc >> 24) & 0xFF) ^ byte]
    return crc


def _page(packets: list[bytes], granule: int, serial: int, sequence: int, flags: int = 0) -> bytes:
    segments = []
    for packet in packets:
        segments += [255] * (len(packet) // 255) + [len(packet) % 255]
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, serial, sequence, 0, len(segments))
    page = bytearray(header + bytes(segments) + b"".join(packets))
    struct.pack_into("<I", page, 22, _crc(bytes(page)))
    return bytes(page)


def ogg_opus(packets: list[bytes], *, pre_skip: int = 0, serial: int = 0x4D5A) -> bytes:
    """An Ogg Opus file of ``packets`` (20 ms each): OpusHead, OpusTags, then about a second per page."""
    head = struct.pack("<8sBBHIhB", b"OpusHead", 1, CHANNELS, pre_skip, RATE, 0, 0)
    vendor = b"fakediscord"
    tags = struct.pack("<8sI", b"OpusTags", len(vendor)) + vendor + struct.pack("<I", 0)  # no comments
    out = [_page([head], 0, serial, 0, flags=0x02), _page([tags], 0, serial, 1)]
    granule, sequence = 0, 2
    for start in range(0, len(packets), 50):
        chunk = packets[start:start + 50]
        granule += FRAME_SAMPLES * len(chunk)
        last = start + 50 >= len(packets)
        out.append(_page(chunk, granule, serial, sequence, flags=0x04 if last else 0))
        sequence += 1
    return b"".join(out)


def decode(packets: list[bytes], ffmpeg: str | None = None) -> np.ndarray:
    """The PCM of ``packets``: float32 samples in [-1, 1], shape (n, 2), at 48 kHz."""
    if not packets:
        return np.zeros((0, CHANNELS), dtype=np.float32)
    if ffmpeg is None:
        from composer.render.audio import require_ffmpeg

        ffmpeg = require_ffmpeg("decoding the Opus a voice channel carried")
    done = subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "ogg", "-i", "pipe:0",
                           "-f", "s16le", "-ac", str(CHANNELS), "-ar", str(RATE), "pipe:1"],
                          input=ogg_opus(packets), capture_output=True, check=True)
    pcm = np.frombuffer(done.stdout, dtype="<i2").reshape(-1, CHANNELS)
    return pcm.astype(np.float32) / 32768.0


def wav(pcm: np.ndarray, rate: int = RATE) -> bytes:
    """16-bit PCM WAV of float samples (n, channels), as a browser's <audio> plays it."""
    data = (np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes()
    channels = pcm.shape[1] if pcm.ndim == 2 else 1
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(data), b"WAVE", b"fmt ", 16, 1, channels, rate,
                         rate * channels * 2, channels * 2, 16, b"data", len(data))
    return header + data
