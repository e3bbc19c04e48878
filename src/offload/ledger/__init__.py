"""The usage ledger: one SQLite row per model call, and the reports that show what was saved.

``store`` owns the writer (``Ledger``), ``schema`` the storage format and migrations, ``rows``
the pricing of one call, ``report``/``results`` the reading side, ``format`` number formatting,
``html`` the self-contained savings page.
"""

from offload.ledger.store import *  # noqa: F403  (the public names, listed once in store.__all__)
from offload.ledger.store import __all__ as __all__
