"""The SOURCES table, parameter validation and the generator factory."""

from __future__ import annotations

import numbers

import numpy as np

from audio.errors import score_error
from audio.schema import Param, check, check_rule, read_table, suggest

from .core import Generator, Source, _Controls
from .events import PULSE_KINDS, Glitch, Pulse, pulse_check
from .hum import ServerHum, server_hum_check
from .noise import COLOURS, Noise, noise_check
from .sample import Sample, sample_check
from .tonal import CHORDS, WAVEFORMS, Drone, Tone, tone_check

_PULSE_PARAMS = (
    Param("kind", "tick", "transient: click (1-3 ms broadband), tick (clock, band-passed), thump (heartbeat)",
          choices=tuple(PULSE_KINDS)),
    Param("rate_per_min", 60.0, "transients per minute (0 = only the first, at the layer's start)", 0, 1200,
          auto=True),
    Param("jitter", 0.0, "random timing deviation, fraction of the period (up to +-half of it at 1)", 0, 1,
          auto=True),
    Param("tone_hz", 0.0, "centre frequency of the transient, Hz (0 = the kind's: 4000, 3000, 60)", 0, 16000,
          auto=True),
    Param("decay_ms", 0.0, "decay time constant, ms (0 = the kind's: 1.5, 12, 90)", 0, 500, auto=True),
    Param("double", False, "thump only: a second, softer beat after each (lub-dub)"),
    Param("pan_spread", 0.0, "random pan of each transient, 0 = centre .. 1 = anywhere", 0, 1, auto=True),
    Param("level_db", -6.0, "peak of each transient, dBFS (a peak level, not RMS)", -60, -1, auto=True),
)

SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("server_hum", "server room: mains hum, fans with blade-pass tones, HVAC rumble, PSU whine, "
                         "disk seeks, relay ticks", (
        Param("mains_hz", 60.0, "mains frequency, Hz (50 or 60 in practice)", 40, 70, auto=True),
        Param("harmonics", 8, "multiples of the mains frequency in the hum, the fundamental included, count "
                              "(with odd_even = 1: 2x, 4x, 6x, 8x mains)", 1, 16),
        Param("hum_db", -9.0, "hum level relative to the whole mix, dB", -60, 0, auto=True),
        Param("fans", 3, "fans, each detuned 1-2 % from the others so they beat, count", 1, 8),
        Param("fan_rpm", 6000.0, "fan speed, revolutions per minute (servers: 4000-10000 and more)", 300, 15000,
              auto=True),
        Param("fan_blades", 7, "blades per fan (blade-pass Hz = rpm / 60 * blades), count", 2, 15),
        Param("drift", 0.3, "amount of slow rpm and fan-level drift, 0..1", 0, 1, auto=True),
        Param("fan_db", -3.0, "broadband fan noise level relative to the whole mix, dB", -60, 0, auto=True),
        Param("blade_db", -12.0, "blade-pass tones level relative to the whole mix, dB", -60, 0, auto=True),
        Param("rumble_db", -9.0, "HVAC rumble (below 120 Hz) level relative to the whole mix, dB", -60, 0,
              auto=True),
        Param("hum_jitter", 0.1, "slow mains-frequency instability, 0..1 (1 = up to about 0.2 %)", 0, 1,
              auto=True),
        Param("odd_even", 1.0, "hum harmonic balance: 1 = even multiples of mains only (the acoustic hum of "
                               "transformers and PSUs, at 2x mains), 0.5 = equal, 0 = odd only (an electrical "
                               "buzz, a ground loop)", 0, 1, auto=True),
        Param("psu_whine_hz", 0.0, "power-supply coil whine, Hz (0 = off, else >= 1000; kept below 0.45 x rate)",
              0, 24000, auto=True),
        Param("psu_db", -30.0, "PSU whine level relative to the whole mix, dB", -60, 0, auto=True),
        Param("psu_duty", 0.35, "fraction of the time the whine sounds, in slow random spells (1 = always)", 0, 1),
        Param("seeks_per_min", 2.0, "disk seeks (bursts of head clicks) per minute, random times (Poisson)",
              0, 120, auto=True),
        Param("seek_db", 0.0, "peak of each seek relative to the mix RMS (0.1), dB", -40, 12, auto=True),
        Param("relay_ticks_per_min", 0.5, "relay ticks per minute, random times (Poisson)", 0, 60, auto=True),
        Param("tick_db", 3.0, "peak of each relay tick relative to the mix RMS (0.1), dB", -40, 12, auto=True),
        Param("width", 1.0, "stereo width: 0 = mono, 1 = decorrelated fans, spread blades, panned clicks",
              0, 1, auto=True),
    ), ServerHum, server_hum_check),
    Source("noise", "coloured noise (white, pink, brown, blue, violet) with optional band limits", (
        Param("color", "pink", "slope: white 0, pink -3, brown -6, blue +3, violet +6 dB/oct",
              choices=tuple(COLOURS)),
        Param("low_hz", 0.0, "high-pass corner, Hz (0 = off)", 0, 20000, auto=True),
        Param("high_hz", 0.0, "low-pass corner, Hz (0 = off, else >= 40)", 0, 20000, auto=True),
        Param("stereo_width", 1.0, "0 = same noise in both channels, 1 = independent, fraction", 0, 1, auto=True),
    ), Noise, noise_check),
    Source("drone", "sustained chord of slowly beating oscillator pairs with slow motion", (
        Param("root_hz", 55.0, "root frequency, Hz", 20, 2000, auto=True),
        Param("chord", "fifth", "intervals above the root, preset name", choices=tuple(CHORDS)),
        Param("detune_cents", 6.0, "spread of each partial's detuned pair, cents", 0, 50, auto=True),
        Param("waveform", "soft_saw", "band-limited oscillator shape, name", choices=tuple(WAVEFORMS)),
        Param("brightness", 0.5, "weight of upper harmonics, 0..1 (shapes the wavetables: not automatable)",
              0, 1),
        Param("brightness_lfo_hz", 0.03, "rate of the slow brightness motion, Hz", 0, 2, auto=True),
        Param("lfo_hz", 0.05, "rate of the slow amplitude motion, Hz", 0, 5, auto=True),
        Param("lfo_depth", 0.3, "depth of the slow amplitude motion, 0..1", 0, 1, auto=True),
    ), Drone),
    Source("tone", "plain sine at -20 dBFS RMS, optionally swept (tests and calibration)", (
        Param("freq_hz", 440.0, "frequency, Hz", 10, 20000, auto=True),
        Param("to_hz", 0.0, "sweep end frequency, Hz (0 = no sweep)", 0, 20000),
        Param("sweep_s", 0.0, "sweep duration, s (0 = no sweep); held at to_hz afterwards", 0, 3600),
        Param("sweep_curve", "exponential", "sweep shape, name", choices=("linear", "exponential")),
    ), Tone, tone_check),
    Source("pulse", "sparse transients: clicks, clock ticks or heartbeat thumps; the first at the layer's start",
           _PULSE_PARAMS, Pulse, pulse_check),
    Source("ticks", "alias of pulse", _PULSE_PARAMS, Pulse, pulse_check),
    Source("glitch", "one-shot burst of digital damage: stutter, bit crush, sample-rate reduction, dropouts", (
        Param("material", "noise", "what gets damaged: noise, tone, hum (a short 60 Hz buzz)",
              choices=("noise", "tone", "hum")),
        Param("length_ms", 400.0, "length of the burst, ms; silence after it", 10, 5000),
        Param("slice_ms", 40.0, "length of the stuttered slice, ms", 1, 1000),
        Param("stutter", 4, "times the first slice plays in a row (1 = no stutter), count", 1, 64),
        Param("bitcrush_bits", 6, "quantise to 2**bits levels (0 = off), bits", 0, 16),
        Param("downsample_hz", 8000.0, "sample-and-hold rate, Hz (0 = off)", 0, 192000),
        Param("dropouts", 0.15, "fraction of the burst lost in random 5-40 ms gaps, 0..1", 0, 1),
        Param("tone_hz", 440.0, "pitch of the tone material, Hz", 20, 8000),
    ), Glitch),
    Source("sample", "a user's WAV/FLAC/OGG file, looped seamlessly or played once, at its own level", (
        Param("path", "", "audio file (relative to the score file), at most 10 minutes after trimming"),
        Param("loop", True, "loop with a crossfaded seam (false: play once, then silence)"),
        Param("crossfade_ms", 50.0, "equal-power crossfade at the loop seam, ms", 0, 5000),
        Param("start_s", 0.0, "trim: start in the file, s", 0, 36000),
        Param("end_s", 0.0, "trim: end in the file, s (0 = the file's end)", 0, 36000),
        Param("gain_db", 0.0, "gain on the file's own level, dB (samples are not normalised)", -60, 24,
              auto=True),
    ), Sample, sample_check),
)}


# --- validation -------------------------------------------------------------------

def lookup(source_name: str, file: str = "", where: str = "") -> Source:
    """The SOURCES row of a generator; an unknown name is a ScoreError at ``where``."""
    if source_name not in SOURCES:
        raise score_error(file, where, f'unknown source "{source_name}"{suggest(source_name, SOURCES)}'
                                       f' (known: {", ".join(SOURCES)})')
    return SOURCES[source_name]


def check_params(source_name: str, params: dict, file: str, where: str) -> dict:
    """Validate a layer's [layer.params] table; return a new dict with every param (defaults filled in)."""
    source = lookup(source_name, file, where)
    full = read_table(source.params, params, file, where, owner=f"source {source_name}")
    check_rule(source.check, full, file, where)
    return full


def check_value(source_name: str, name: str, value, file: str, where: str):
    """Validate one value of a source's parameter (e.g. an envelope point): type and range; return it."""
    rows = {p.name: p for p in lookup(source_name, file, where).params}
    if name not in rows:
        raise score_error(file, where, f'unknown parameter "{name}" for source {source_name}'
                                       f'{suggest(name, rows)} (known: {", ".join(rows)})')
    return check(rows[name], value, file, where)


def automatable(source_name: str) -> tuple[str, ...]:
    """Names of the source's float params that accept envelopes (render's controls), in table order."""
    return tuple(p.name for p in lookup(source_name).params if p.auto)


def make_generator(source_name: str, params: dict, sample_rate_hz: int,
                   rng: np.random.Generator) -> Generator:
    """Validate params (defaults filled in) and build the source's generator."""
    full = check_params(source_name, params, "", "params")
    if isinstance(sample_rate_hz, bool) or not isinstance(sample_rate_hz, numbers.Integral) \
            or not 8000 <= sample_rate_hz <= 384000:
        raise ValueError(f"sample_rate_hz must be a whole number from 8000 to 384000, got {sample_rate_hz!r}")
    source = SOURCES[source_name]
    generator = source.factory(full, int(sample_rate_hz), rng)
    generator.ctl = _Controls(source.params, full)
    return generator
