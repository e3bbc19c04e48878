"""The usage ledger: one SQLite row per model call, and the reports that show what was saved.

``store`` owns the writer (``Ledger``), ``schema`` the storage format and migrations, ``rows``
the pricing of one call, ``report``/``results`` the reading side, ``format`` number formatting,
``html`` the self-contained savings page.
"""

from offload.ledger.store import (
    BASELINE_HINT,
    MIGRATIONS,
    Baseline,
    Bucket,
    CallRow,
    Ledger,
    LedgerReader,
    Summary,
    default_path,
    migrate,
    nano_usd,
    parse_when,
)

__all__ = [
    "BASELINE_HINT",
    "MIGRATIONS",
    "Baseline",
    "Bucket",
    "CallRow",
    "Ledger",
    "LedgerReader",
    "Summary",
    "default_path",
    "migrate",
    "nano_usd",
    "parse_when",
]
