"""The little SDP a G.711 voice call needs: our offer, and where the answer wants audio.

We offer exactly one codec (the agent's `codec`) so that the answer has nothing to choose;
a peer that cannot do it answers 488 and the call fails with that code.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

PAYLOAD_TYPES = {"PCMU": 0, "PCMA": 8}


def offer(host: str, rtp_port: int, codec: str) -> str:
    pt = PAYLOAD_TYPES[codec]
    session = secrets.randbelow(2**31)
    lines = [
        "v=0",
        f"o=dialbatch {session} {session} IN IP4 {host}",
        "s=dialbatch",
        f"c=IN IP4 {host}",
        "t=0 0",
        f"m=audio {rtp_port} RTP/AVP {pt}",
        f"a=rtpmap:{pt} {codec}/8000",
        "a=ptime:20",
        "a=sendrecv",
    ]
    return "\r\n".join(lines) + "\r\n"


@dataclass(frozen=True)
class RemoteMedia:
    host: str
    port: int
    payload_types: tuple[int, ...]


def parse_answer(sdp: str) -> RemoteMedia | None:
    """The first audio stream of an answer, or None when it has none we can use."""
    session_host: str | None = None
    media_host: str | None = None
    port: int | None = None
    pts: tuple[int, ...] = ()
    in_audio = False
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            if port is not None:
                break  # only the first audio stream
            parts = line[2:].split()
            in_audio = len(parts) >= 3 and parts[0] == "audio"
            if in_audio:
                try:
                    port = int(parts[1])
                    pts = tuple(int(p) for p in parts[3:] if p.isdigit())
                except ValueError:
                    return None
        elif line.startswith("c="):
            parts = line[2:].split()
            if len(parts) >= 3 and parts[1] == "IP4":
                if port is None and not in_audio:
                    session_host = parts[2]
                elif in_audio:
                    media_host = parts[2]
    host = media_host or session_host
    if port is None or host is None or port == 0 or host == "0.0.0.0":
        return None  # no audio, or audio on hold
    return RemoteMedia(host=host, port=port, payload_types=pts)
