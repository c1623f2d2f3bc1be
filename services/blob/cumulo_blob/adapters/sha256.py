"""SHA-256 whose running state can be saved and restored, so an upload resumed in another
process (or after a crash) goes on hashing where it stopped instead of re-reading its bytes.

hashlib cannot export its state; OpenSSL's SHA256_CTX (the same library hashlib uses) is a
plain 112-byte struct that can. ctypes calls release the GIL, so hashing does not stall the
event loop's other work on a second core.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_STATE_SIZE = 112  # sizeof(SHA256_CTX): h[8], Nl, Nh, data[16], num, md_len (32-bit words)


class _Context(ctypes.Structure):
    _fields_ = [("raw", ctypes.c_ubyte * _STATE_SIZE)]


def _load() -> ctypes.CDLL:
    name = ctypes.util.find_library("crypto")
    if name is None:
        raise ImportError("libcrypto (OpenSSL) is needed for resumable SHA-256")
    lib = ctypes.CDLL(name)
    lib.SHA256_Init.argtypes = [ctypes.POINTER(_Context)]
    lib.SHA256_Update.argtypes = [ctypes.POINTER(_Context), ctypes.c_char_p, ctypes.c_size_t]
    lib.SHA256_Final.argtypes = [ctypes.c_char_p, ctypes.POINTER(_Context)]
    return lib


_lib = _load()


class ResumableSha256:
    def __init__(self, state: bytes | None = None) -> None:
        if state is None:
            self._ctx = _Context()
            if _lib.SHA256_Init(ctypes.byref(self._ctx)) != 1:
                raise RuntimeError("SHA256_Init failed")
        else:
            if len(state) != _STATE_SIZE:
                raise ValueError("not a saved SHA-256 state")
            self._ctx = _Context.from_buffer_copy(state)

    def update(self, data: bytes) -> None:
        if data and _lib.SHA256_Update(ctypes.byref(self._ctx), data, len(data)) != 1:
            raise RuntimeError("SHA256_Update failed")

    def state(self) -> bytes:
        return bytes(self._ctx.raw)

    def hexdigest(self) -> str:
        final = _Context.from_buffer_copy(bytes(self._ctx.raw))  # finishing does not consume this one
        out = ctypes.create_string_buffer(32)
        if _lib.SHA256_Final(out, ctypes.byref(final)) != 1:
            raise RuntimeError("SHA256_Final failed")
        return out.raw.hex()
