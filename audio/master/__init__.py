"""Mastering: the meters (BS.1770, true peak), the limiter, and the gain search to the target.

The measuring and limiting names are re-exported here (``master.LoudnessMeter``, ``master.limit``);
the gain search is ``audio.master.target``, imported by name.
"""

from audio.master.limiter import limit, limiter_ceiling, limiter_context
from audio.master.meters import LoudnessMeter, TruePeakMeter, integrated_lufs, true_peak_envelope

__all__ = ["LoudnessMeter", "TruePeakMeter", "integrated_lufs", "limit", "limiter_ceiling", "limiter_context",
           "true_peak_envelope"]
