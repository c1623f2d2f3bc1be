"""The reference client SDK for cumulo, and the `cumulo` command built on it."""

from cumulo_sdk.client import Cumulo, TokenStore
from cumulo_sdk.errors import CumuloRpcError

__all__ = ["Cumulo", "CumuloRpcError", "TokenStore"]
