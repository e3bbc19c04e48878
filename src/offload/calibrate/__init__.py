"""``offload calibrate``: measure on your own samples which tasks can go local, and at what saving.

::

    from offload.calibrate import CalibrateSpec, calibrate
    cal = await calibrate(CalibrateSpec("classify", "tickets.jsonl", local=("lmstudio/auto",),
                                        reference="anthropic/claude-haiku-4-5"))
    print(cal.recommendation.chain, cal.recommendation.saved_per_1000)

``preflight`` checks everything before any call, ``run`` runs (each model through the batch
engine, so runs resume) and scores, ``metrics`` and ``table`` hold the arithmetic, ``judge`` the
pairwise comparison and its resumable verdict file, ``report`` the HTML page and
``apply`` the config rewrite.
"""

from offload.calibrate.preflight import CalibrateSpec
from offload.calibrate.run import Calibration, calibrate

__all__ = ["CalibrateSpec", "Calibration", "calibrate"]
