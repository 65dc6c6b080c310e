"""Sound sources for ambience layers, kept as data.

``SOURCES`` maps a source name to its one-line doc, its parameter spec and a factory, so
``piece sources``, score validation and the docs all read one table.

``gen.render(n_samples, controls=None)`` returns float32 of shape (n_samples, 2).  ``controls``
maps automatable float params (``automatable(name)``; ``Param.auto``) to float64 arrays of
n_samples per-sample values; the generator reads them at a control point every CONTROL_SAMPLES
(128) samples of the absolute sample index and follows them one control step later, linearly:

- generators stay block invariant with automation: everything periodic is integrated on an
  absolute grid, filter state is carried, and each random stream has its own child rng consumed
  strictly in order (event times included);
- oscillators integrate frequency into phase (no phase jumps); automated filter corners retune
  every 256 samples keeping their state; ``*_db`` levels glide per sample along an S-curve
  (~17 ms for a step, no clicks or zipper); count-like and shape-defining params (fans, chord,
  brightness, a glitch's recipe, a sample's trim) are not automatable.

Continuous sources (server_hum, noise, drone, tone) sit at RMS 0.1 (-20 dBFS) per channel at
default parameters, set analytically (noise keeps that RMS while its corners move).  pulse/ticks
set a peak per transient instead, the one-shot glitch has RMS 0.1 over its burst, and sample
plays the file at its own level.
"""

from audio.schema import Param

from .core import CONTROL_SAMPLES, Generator, Source
from .table import SOURCES, automatable, check_params, check_value, lookup, make_generator

__all__ = ["CONTROL_SAMPLES", "SOURCES", "Generator", "Param", "Source", "automatable", "check_params",
           "check_value", "lookup", "make_generator"]
