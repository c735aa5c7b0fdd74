"""Make greeting.pcap, the recorded greeting sipp plays into the SIP tests (`play_pcap_audio`).

Run once from the repository root and commit the result; the tests never need espeak:

    .venv/bin/python tests/providers/sip/scenarios/make_greeting.py

Speech comes from `espeak-ng` + `sox` when both are installed (Debian packages `espeak-ng`,
`sox`), else a two-tone chime is synthesised. Either way the audio is G.711 µ-law in 20 ms
frames, each wrapped as RTP / UDP / IPv4 / Ethernet in a classic pcap file, pure `struct`.
"""

from __future__ import annotations

import math
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "src"))

from dialbatch.providers.sip.g711 import ulaw_encode

HERE = Path(__file__).resolve().parent
TEXT = "Hello, this is a recorded greeting from the far end of a SIP call."
RATE = 8000
FRAME = 160  # 20 ms of 8 kHz G.711
MAX_SECONDS = 4.0


def speech_ulaw() -> bytes | None:
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        wav, raw = Path(tmp) / "speech.wav", Path(tmp) / "speech.ul"
        subprocess.run(["espeak-ng", "-s", "160", "-w", str(wav), TEXT], check=True)
        subprocess.run(
            ["sox", str(wav), "-r", str(RATE), "-c", "1", "-e", "u-law", "-t", "raw", str(raw)],
            check=True,
        )
        return raw.read_bytes()


def tone_ulaw(seconds: float = 3.0) -> bytes:
    out = bytearray()
    for n in range(int(seconds * RATE)):
        freq = 660.0 if n < seconds * RATE / 2 else 880.0
        out.append(ulaw_encode(int(8000 * math.sin(2 * math.pi * freq * n / RATE))))
    return bytes(out)


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def packet(payload: bytes, seq: int) -> bytes:
    rtp = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, seq * FRAME, 0x5EED1E55) + payload
    udp = struct.pack("!HHHH", 6000, 6000, 8 + len(rtp), 0) + rtp
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), seq & 0xFFFF, 0, 64, 17, 0,
        bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]),
    )  # fmt: skip
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    ether = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    return ether + ip + udp


def write_pcap(audio: bytes, path: Path) -> int:
    frames = [audio[i : i + FRAME] for i in range(0, len(audio) - FRAME + 1, FRAME)]
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet
        for seq, frame in enumerate(frames):
            data = packet(frame, seq)
            usec = seq * 20_000
            f.write(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(data), len(data)))
            f.write(data)
    return len(frames)


def main() -> None:
    audio = speech_ulaw()
    source = "espeak-ng speech"
    if audio is None:
        audio, source = tone_ulaw(), "synthesised tone"
    audio = audio[: int(MAX_SECONDS * RATE)]
    count = write_pcap(audio, HERE / "greeting.pcap")
    size = (HERE / "greeting.pcap").stat().st_size
    print(f"greeting.pcap: {count} RTP packets, {count * 0.02:.2f} s of {source}, {size} bytes")


if __name__ == "__main__":
    main()
