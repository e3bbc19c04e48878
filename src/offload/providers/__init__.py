"""Providers: one object per configured model server, all speaking the same contract (``base``)."""
