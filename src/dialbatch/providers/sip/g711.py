"""G.711 in pure Python: the agent WebSocket always speaks µ-law (Twilio Media Streams), a
trunk may insist on A-law, so PCMA calls are transcoded byte for byte through two 256-entry
tables. Linear encoders are here for tools that make test audio (no `audioop`: it is gone
from Python 3.13).
"""

from __future__ import annotations

_BIAS = 0x84


def ulaw_decode(byte: int) -> int:
    byte = ~byte & 0xFF
    sign = byte & 0x80
    exponent = (byte >> 4) & 0x07
    mantissa = byte & 0x0F
    sample = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return -sample if sign else sample


def ulaw_encode(sample: int) -> int:
    """The reference (CCITT / Sun) encoder: 14-bit magnitude, bias 33."""
    sample >>= 2
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sample < 0 else sample, 8159) + 0x21
    exponent = max(magnitude.bit_length() - 6, 0)
    if exponent > 7:  # the clipped maximum
        return ~(sign | 0x7F) & 0xFF
    mantissa = (magnitude >> (exponent + 1)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def alaw_decode(byte: int) -> int:
    byte ^= 0x55
    sign = byte & 0x80
    exponent = (byte >> 4) & 0x07
    mantissa = byte & 0x0F
    if exponent == 0:
        return ((mantissa << 4) + 8) * (1 if sign else -1)
    sample = ((mantissa << 4) + 0x108) << (exponent - 1)
    return sample if sign else -sample


def alaw_encode(sample: int) -> int:
    sign = 0x80 if sample >= 0 else 0
    magnitude = min(sample if sample >= 0 else -sample - 1, 32767)
    if magnitude < 256:
        code = magnitude >> 4
    else:
        exponent = magnitude.bit_length() - 8
        code = (exponent << 4) | ((magnitude >> (exponent + 3)) & 0x0F)
    return (sign | code) ^ 0x55


ULAW_TO_ALAW = bytes(alaw_encode(ulaw_decode(b)) for b in range(256))
ALAW_TO_ULAW = bytes(ulaw_encode(alaw_decode(b)) for b in range(256))


def ulaw_to_alaw(payload: bytes) -> bytes:
    return payload.translate(ULAW_TO_ALAW)


def alaw_to_ulaw(payload: bytes) -> bytes:
    return payload.translate(ALAW_TO_ULAW)
