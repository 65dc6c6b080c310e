"""server_hum: mains hum, fans with blade-pass tones, HVAC rumble, PSU whine, disk seeks, relay ticks.

Voiced against measured data-centre noise:

- Air-cooled data halls measure 70-96 dBA, broadband, "dominant noise between 500 Hz and 4 kHz"
  (Cho et al., "Noise Exposure Assessment in the Occupational Environment of Air-Cooled Data
  Centers", J. Architectural Institute of Korea 42(1), 2026); a server room's CRAC units add
  "a significant amount of sound power below 500 Hz" (Brigham Young University Acoustics Research
  Group, "Acoustical Analysis of Active Control in the Server Room of a C7 Data Centers
  Colocation Facility", 2010). Hence the fans' rush: pink noise band-passed (first order) at
  400 Hz - 3 kHz, flat per octave over that band and falling 6 dB per octave outside it, so it
  still carries energy at 8 kHz and above, over the HVAC rumble below 120 Hz.
- Fan tones: blade-pass frequency = rpm / 60 x blades (e.g. 7000 rpm x 7 blades = 817 Hz, PC
  Perspective's fan guide, 2001); server fans run at 4,000-10,000 rpm and more (1U fans faster),
  so their tones sit at about 0.5-1.2 kHz, on a broadband floor ("a random and a repetitive
  component", Analog Devices, "Adaptively Cancelling Server Fan Noise"); ECMA-74 finds prominent
  tones in typical server configurations (Dell, "PowerEdge 14th generation acoustical performance").
- Hum: a transformer's (and a PSU's) core hums by magnetostriction, which follows the square of
  the flux: its sound is at twice the mains frequency and the harmonics of that, 120, 240, 360 Hz
  on 60 Hz mains (BBN, "Power transformer noise prediction and control", 1978; IEEE Std
  C57.136-2000). A line at the mains frequency with odd harmonics is an electrical buzz (a ground
  loop), not a room's sound: odd_even = 1 (even multiples of mains only) is the default.
- Coil whine comes and goes with load (Dell, "Dell Enterprise Acoustics", 2011: electrical
  components): off by default, and when on it sounds psu_duty of the time, in slow random spells.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

from audio.schema import show_value

from .core import (GRID_SAMPLES, TARGET_RMS, _below_nyquist, _band, _brown_sos, _children, _Chunked, _damped,
                   _db, _Events, _Filter, _Grid, _impulse_energy, _Lazy, _Phase, _mix_matrix,
                   _shape, _SlowCurves, _Wavetable, _white)
from .noise import _pink_sos


PSU_MIN_HZ = 1000.0           # coil whine is a kHz sound; lower settings would be a drone, not a whine
FAN_BAND_HZ = (400.0, 3000.0)  # the fans' rush: flat per octave here, -6 dB per octave outside


def server_hum_check(p: dict) -> tuple[str, str] | None:
    if 0 < p["psu_whine_hz"] < PSU_MIN_HZ:
        return "psu_whine_hz", f"must be 0 (off) or at least {PSU_MIN_HZ:.0f}, got {show_value(p['psu_whine_hz'])}"
    if p["odd_even"] >= 1 and p["harmonics"] < 2 and p["hum_db"] > -60:
        return "harmonics", (f"must be at least 2 with odd_even = {show_value(p['odd_even'])} (even multiples of "
                             f"the mains only: the acoustic hum), got {show_value(p['harmonics'])}; for the mains "
                             "fundamental alone set odd_even = 0")
    return None


def _seek_wave(rng: np.random.Generator, sr: int) -> np.ndarray:
    """A disk seek: 2-8 head clicks 3-25 ms apart, each ringing a resonance of 2.5-4.5 kHz."""
    clicks = int(rng.integers(2, 9))
    onsets = np.r_[0.0, np.cumsum(rng.uniform(0.003, 0.025, clicks - 1))]
    x = np.zeros(int((onsets[-1] + 0.012) * sr) + 1)
    x[(onsets * sr).astype(int)] = rng.uniform(0.3, 1.0, clicks) * rng.choice([-1.0, 1.0], clicks)
    f0 = rng.uniform(2500, 4500)
    return _band(x, f0 / 1.15, f0 * 1.15, sr) + 0.3 * _band(x, f0 * 1.4, f0 * 2.0, sr)


def _relay_wave(rng: np.random.Generator, sr: int) -> np.ndarray:
    """A relay: a metallic tick (three modes, 3-6 ms) over a soft thunk, then a quieter contact bounce."""
    decay = rng.uniform(0.003, 0.006)
    y = _damped(sr, 0.04, rng.uniform(900, 1500) * np.array([1.0, 2.32, 3.86]), [1.0, 0.7, 0.45],
                decay * np.array([1.0, 0.7, 0.5]))
    y += _damped(sr, 0.04, [rng.uniform(150, 250)], [0.5], [0.008])
    bounce = int(rng.uniform(0.002, 0.004) * sr)
    y[bounce:] += 0.35 * y[:len(y) - bounce]
    return y


class ServerHum(_Chunked):
    """Mains hum + fan noise with blade-pass tones + HVAC rumble + PSU whine + seek and relay clicks."""

    HUM_JITTER = 0.003         # mains frequency wobble scale at hum_jitter = 1 (peak ~0.6x this)
    FAN_DETUNE = 0.015         # fans sit 1-2 % apart
    RPM_DRIFT = 0.02           # rpm drift scale at drift = 1 (peak ~0.6x this)
    LEVEL_DRIFT = 0.25         # fan-noise level drift at drift = 1, relative
    STEP_S = 2.0               # spacing of the drift control points
    PSU_STEP_S = 1.5           # spacing of the control points of the whine's spells (on with load, off)
    PSU_EDGE = 0.15            # the whine fades in and out over this much of its curve's range
    # Stereo image at width = 1 (width scales each): hum L/R imbalance, blade pan spread (of 45 deg),
    # fan-noise and rumble decorrelation, PSU offset, event pan range.
    HUM_SIDE, BLADE_SPREAD, FAN_DECORR, RUMBLE_DECORR, PSU_PAN, EVENT_PAN = 0.02, 0.6, 0.65, 0.2, 0.3, 0.5

    def __init__(self, p: dict, sample_rate_hz: int, rng: np.random.Generator):
        sr = self.sr = sample_rate_hz
        setup, self.noise_rng, curve_rng, rumble_rng, seek_rng, tick_rng, psu_rng = _children(rng, 7)
        n = self.n = p["fans"]
        # Each continuous part is made at unit RMS and weighted by its dB; together they sit at TARGET_RMS
        # (the whine for the part of the time it sounds).
        w = {k: _db(p[k + "_db"]) for k in ("hum", "fan", "blade", "rumble", "psu")}
        psu_on = p["psu_whine_hz"] > 0
        self.psu_duty = min(max(p["psu_duty"], 0.0), 1.0)
        power = {k: v * v * (self.psu_duty if k == "psu" else 1.0) for k, v in w.items() if k != "psu" or psu_on}
        scale = TARGET_RMS / math.sqrt(sum(power.values()))

        # Hum: 1/k harmonics, odd ones weighted 1 - odd_even and even ones odd_even; nearly mono.
        # One pre-mixed table serves a static balance, two (odd, even) an automated one.
        amps = [1.0 / k if k * p["mains_hz"] < 0.45 * sr else 0.0 for k in range(1, p["harmonics"] + 1)]
        self.hum_parts = _Wavetable([a * (k % 2) for k, a in enumerate(amps, 1)],
                                    [a * (1 - k % 2) for k, a in enumerate(amps, 1)])
        odd, even = self._odd_even_gains(p["odd_even"])
        self.hum = _Wavetable([a * (odd if k % 2 else even) for k, a in enumerate(amps, 1)])
        self.hum_level = w["hum"] * scale
        self.hum_gain = self._sides(self.HUM_SIDE, p["width"]) * self.hum_level
        self.hum_phase = _Phase(0.0, p["mains_hz"] / sr)

        # Blade-pass tones (fan 1 nominal, the others 1-2 % off, spread in stereo) and the PSU whine:
        # n + 1 sines whose phases integrate their frequencies.
        self.blades = p["fan_blades"]
        self.detune = 1 + np.array([0.0] + [sign * self.FAN_DETUNE * setup.uniform(0.7, 1.3)
                                            for sign in np.resize([1, -1], n - 1)])[:, None]      # (n, 1)
        self.spread = (np.linspace(-1, 1, n) if n > 1 else np.zeros(1)) * self.BLADE_SPREAD
        static_hz = np.r_[p["fan_rpm"] / 60.0 * self.blades * self.detune[:, 0], self._psu_hz(p["psu_whine_hz"])]
        self.osc_phase = _Phase(setup.uniform(0, 1, n + 1), _below_nyquist(static_hz, sr) / sr)
        self.blade_level = w["blade"] * scale * math.sqrt(1.0 / n)
        self.psu_level = w["psu"] * scale * math.sqrt(2.0)          # a sine of this amplitude has that RMS
        self.osc_gain = np.hstack([self.blade_level * self._pan(self.spread, p["width"]),
                                   self.psu_level * psu_on * self._pan(self.PSU_PAN, p["width"])[:, None]
                                   ]).astype(np.float32)                                     # (2, n + 1)

        # Slow curves: hum jitter, each fan's rpm drift, fan level; and the whine's spells.
        self.curves = _SlowCurves(curve_rng, n + 2, self.STEP_S, sr)
        self.psu_spells = _SlowCurves(psu_rng, 1, self.PSU_STEP_S, sr)

        # Fan noise: air through the racks (see the module's references), partly shared between channels.
        fan_sos = np.vstack([_pink_sos(sr), signal.butter(1, [FAN_BAND_HZ[0], _below_nyquist(FAN_BAND_HZ[1], sr)],
                                                          "bandpass", fs=sr, output="sos")])
        self.fan_filter = _Filter(fan_sos)
        level_drift = self.LEVEL_DRIFT * p["drift"]
        self.fan_level = w["fan"] * scale / math.sqrt(_impulse_energy(fan_sos, sr) * (1 + level_drift**2 / 3))
        self.fan_mix = _mix_matrix(1 - self.FAN_DECORR * p["width"]) * self.fan_level

        # Rumble: brown below 120 Hz, so made at sr / GRID_SAMPLES and interpolated up; mostly shared.
        low_sr = sr / GRID_SAMPLES
        rumble_sos = np.vstack([_brown_sos(5.0, 20.0, low_sr),
                                signal.butter(2, _below_nyquist(120.0, low_sr), fs=low_sr, output="sos")])
        rumble_filter = _Filter(rumble_sos)
        self.rumble_level = w["rumble"] * scale / math.sqrt(_impulse_energy(rumble_sos, low_sr))
        self.rumble_mix = _mix_matrix(1 - self.RUMBLE_DECORR * p["width"]) * self.rumble_level
        self.rumble = _Lazy(lambda count: rumble_filter(_white(rumble_rng, count)).T, batch=2048)

        # Disk seeks and relay ticks: Poisson processes, each with its own rngs for times and shapes.
        self.seeks = self._events(seek_rng, _seek_wave, TARGET_RMS * _db(p["seek_db"]))
        self.ticks = self._events(tick_rng, _relay_wave, TARGET_RMS * _db(p["tick_db"]))

    # --- helpers: gains as functions of params that may be automated ---

    def _odd_even_gains(self, balance):
        """Table gains (odd, even) giving the hum unit RMS at this balance (float or grid array)."""
        odd, even = 1 - balance, balance
        norm = np.hypot(odd * self.hum_parts.rms[0], even * self.hum_parts.rms[1])
        norm = np.maximum(norm, 1e-12)            # e.g. one harmonic, all even: silent, not NaN
        return odd / norm, even / norm

    @staticmethod
    def _psu_hz(hz):
        """The whine's frequency: 0 stays 0 (off), anything else is at least PSU_MIN_HZ."""
        return np.where(np.asarray(hz) > 0, np.maximum(hz, PSU_MIN_HZ), 0.0)

    @staticmethod
    def _sides(amount, width):
        """(2, 1) or (2, m) gains 1 +- amount * width (a slight L/R imbalance)."""
        return np.stack([1 + amount * width, 1 - amount * width]).reshape(2, -1)

    @staticmethod
    def _pan(spread, width):
        """Equal-power pan gains sqrt(2) (cos, sin) of (1 + spread * width) * 45 degrees: (2, ...)."""
        angle = (1 + np.multiply.outer(spread, width)) * (np.pi / 4)
        return np.sqrt(2) * np.stack([np.cos(angle), np.sin(angle)])

    def _psu_gate(self, grid: _Grid) -> np.ndarray:
        """0..1 at grid points: the whine sounds for about psu_duty of the time, in spells that
        fade in and out (a slow random curve over a threshold)."""
        if self.psu_duty >= 1.0:
            return np.ones(len(grid.pos))
        if self.psu_duty <= 0.0:
            return np.zeros(len(grid.pos))
        u = self.psu_spells.at(grid)[:, 0]
        x = np.clip((u - (1.0 - 2.0 * self.psu_duty)) / self.PSU_EDGE + 0.5, 0.0, 1.0)
        return x * x * (3.0 - 2.0 * x)

    def _events(self, rng, make, peak) -> _Events:
        times, shapes = _children(rng, 2)

        def fire(onset, grid, threshold):
            pan = self.EVENT_PAN * self.ctl.at("width", grid, onset) * shapes.uniform(-1, 1)
            return _shape(make(shapes, self.sr), pan, peak), threshold + times.exponential()
        return _Events(times.exponential(), fire)

    def _mixed(self, x, decorrelation, grid, per_sample):
        """x (2, ...) mixed to correlation 1 - decorrelation * width (width static or automated)."""
        width = self.ctl["width"]
        if "width" not in self.ctl.now:
            return _mix_matrix(1 - decorrelation * width) @ x
        theta = np.arcsin(1 - decorrelation * width) / 2
        c, s = (grid.expand(np.cos(theta)), grid.expand(np.sin(theta))) if per_sample else (np.cos(theta),
                                                                                           np.sin(theta))
        return np.stack([c * x[0] + s * x[1], s * x[0] + c * x[1]])

    # --- rendering ---

    def _chunk(self, grid: _Grid) -> np.ndarray:
        c, sr, n = self.ctl, self.sr, self.n
        auto = c.now.keys()
        u = self.curves.at(grid)                                       # (points, n + 2)

        # Hum (unit RMS): phase along the mains frequency plus a slow random offset (the jitter).
        turns = self.hum_phase.at(grid, c["mains_hz"] / sr if "mains_hz" in auto else None)
        turns = turns + (self.HUM_JITTER * self.STEP_S / 2) * c["mains_hz"] * c["hum_jitter"] * u[:, 0]
        pos = grid.expand(turns, wrap=True, scale=_Wavetable.SIZE)[0]
        if "odd_even" in auto:
            odd, even = self._odd_even_gains(c["odd_even"])
            parts = self.hum_parts(pos)
            hum = grid.expand(odd) * parts[0] + grid.expand(even) * parts[1]
        else:
            hum = self.hum(pos)[0]
        if "width" in auto:
            out = self._sides(self.HUM_SIDE, grid.expand(c["width"])) * (self.hum_level * hum)
        else:
            out = self.hum_gain * hum
        if (r := c.ratio("hum_db", grid)) is not None:
            out *= r

        # Blade-pass tones and PSU whine: phases along their frequencies, blades plus slow rpm drift.
        blade_hz = c["fan_rpm"] / 60.0 * self.blades * self.detune                 # (n, 1) or (n, points)
        if auto & {"fan_rpm", "psu_whine_hz"}:
            rates = np.empty((n + 1, len(grid.pos)))
            rates[:n], rates[n] = blade_hz, self._psu_hz(c["psu_whine_hz"])
            turns = self.osc_phase.at(grid, _below_nyquist(rates, sr) / sr)
        else:
            turns = self.osc_phase.at(grid)
        drift_turns = (self.RPM_DRIFT * self.STEP_S / 2) * c["drift"] * u[:, 1:-1].T
        turns[:n] += _below_nyquist(blade_hz, sr) * drift_turns
        tones = np.sin(grid.expand(turns, wrap=True, scale=2 * np.pi))
        tones[n] *= grid.expand(self._psu_gate(grid))
        if not auto & {"blade_db", "psu_db", "psu_whine_hz", "width"}:
            out += self.osc_gain @ tones
        else:
            width = c["width"]
            if "width" in auto:
                blades = np.einsum("cnm,nm->cm", grid.expand(self._pan(self.spread, width)), tones[:n])
                blades *= self.blade_level
                psu = grid.expand(self._pan(self.PSU_PAN, width)) * tones[n]
            else:
                blades = self.osc_gain[:, :n] @ tones[:n]
                psu = self._pan(self.PSU_PAN, width)[:, None] * tones[n]
            if (r := c.ratio("blade_db", grid)) is not None:
                blades *= r
            psu_gain = self.psu_level * (np.asarray(c["psu_whine_hz"]) > 0) * c.gain("psu_db")
            out += blades + psu * (grid.expand(psu_gain) if np.ndim(psu_gain) else psu_gain)

        # Fan noise with its slow level drift (held per grid cell unless a level is automated).
        fan = self.fan_filter(_white(self.noise_rng, grid.m))
        level = 1 + self.LEVEL_DRIFT * c["drift"] * u[:, -1]
        if auto & {"fan_db", "width"}:
            fan = self._mixed(fan, self.FAN_DECORR, grid, per_sample=True)
            fan *= grid.expand(level * self.fan_level * c.gain("fan_db"))
        else:
            fan = self.fan_mix @ fan
            fan *= grid.hold(level)
        out += fan

        rumble = self.rumble.get(grid.g0, grid.g1).T                   # (2, points)
        if auto & {"rumble_db", "width"}:
            rumble = self._mixed(rumble, self.RUMBLE_DECORR, grid, per_sample=False)
            rumble *= self.rumble_level * c.gain("rumble_db")
        else:
            rumble = self.rumble_mix @ rumble
        out += grid.expand(rumble)

        for events, rate, db in ((self.seeks, "seeks_per_min", "seek_db"),
                                 (self.ticks, "relay_ticks_per_min", "tick_db")):
            y = events(grid, c[rate] / (60.0 * sr))
            if y is not None:
                out += y if (r := c.ratio(db, grid)) is None else y * r
        return out
