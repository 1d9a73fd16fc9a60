"""Throwaway certificates for TLS tests; the maker lives in bench/ (the soak serves TLS too, and
bench never imports the tests)."""

from __future__ import annotations

from bench.certs import Certs, make_certs

__all__ = ["Certs", "make_certs"]
