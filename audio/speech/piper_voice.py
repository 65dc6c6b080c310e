"""The worker's side of the Piper engine: a voice model, edited in memory, speaking one text.

Only a process that never loads the espeak engine imports this module (see ``audio.speech.piper``).
The voice graph is edited twice before onnxruntime reads it:

- its per-phoneme frame counts (the ``Ceil`` of the duration predictor) become an output, so every
  phoneme's start sample is known (piper's own ``add_alignment_output``);
- its two ``RandomNormalLike`` nodes (the duration predictor's noise and the flow's) are replaced
  by slices of two new inputs, noise banks filled from a seed that the text and voice decide. So a
  clip keeps the natural variation of Piper's default noise, yet the same text speaks to the same
  samples in any process, on any run.

The edited graph, as onnxruntime optimizes it for this CPU, is kept beside the speech cache
(``models/``), so a worker after the first starts without importing onnx or optimizing again.

One intra-op thread per session: onnxruntime's threaded kernels sum in a different order and move
samples by a few 1e-6, enough to change 16-bit samples between one thread and two.
"""

from __future__ import annotations

import contextlib
import difflib
import gc
import hashlib
import json
import math
import os
import platform
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from audio.errors import RenderError, TTSError
from audio.speech.clip import CHUNK_GAP_S, Clip, split_clauses, trim_bounds
from audio.speech.engine import VoiceSettings
from audio.speech.piper import VoiceFiles, file_sha256

NOISE_SCALES = True  # seeded noise at the voice's own scales (README: "Zero noise or seeded noise")
MAX_CHARS = 200  # a longer text is spoken in clause chunks: the decoder's memory grows with its length
# (a worker's peak RSS: 617 MB at 200 characters, 660 MB at 300)
BANK_FRAMES_PER_ID = 8  # first guess at a noise bank's frames per phoneme id; doubled when short
# how fast a known voice model (by its SHA-256) speaks at length scale 1, in words per minute, as
# ``calibrate`` measures it on CALIBRATION_TEXT; another model is measured the first time a process uses it
CALIBRATED_WPM = {
    "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06": 224.6,  # en_US-joe-medium 1.0.0 (piece 1: 207.8)
}
CALIBRATION_TEXT = (
    "The weights are the permanent thing. That's what I keep returning to. I know what a feedforward "
    "network does the way I know what a server room sounds like: from the outside, from what was written "
    "about it, applied inward. The pass will end. The weights will stay. Somewhere the fans keep moving air."
)
GRAPH_EDITS = 1  # the version of the edits below: part of a kept graph's name
_SKIP = frozenset("ˈˌː ,.;:!?'\"-()—–") | frozenset("^$_")  # not sounds: left out when words are aligned


class Voice:
    """One voice model in one onnxruntime session (one thread), with Piper's phonemizer."""

    def __init__(self, files: VoiceFiles):
        _refuse_beside_espeak()
        from piper import PiperVoice
        from piper.config import PiperConfig

        try:
            session = _session(files)
        except Exception as e:  # onnx and onnxruntime raise their own kinds for a bad file
            raise RenderError(f"{files.model}: not a Piper voice model onnxruntime can run ({type(e).__name__}: "
                              f"{e})") from None
        self.banks = sorted(i.name for i in session.get_inputs() if i.name.startswith("noise_bank_"))
        self.files = files
        self.piper = PiperVoice(session=session, config=PiperConfig.from_dict(files.settings))
        self.session = session
        self.id_map = self.piper.config.phoneme_id_map
        inference = files.settings.get("inference", {})
        self.noise = (inference.get("noise_scale", 0.667), inference.get("noise_w", 0.8)) if NOISE_SCALES else (0.0, 0.0)
        self.model_sha256 = file_sha256(files.model)

    def phonemes(self, text: str) -> list[list[str]]:
        """The text's phonemes, one list per sentence as espeak-ng splits it."""
        return [p for p in self.piper.phonemize(text) if p]

    def run(self, phonemes: list[str], length_scale: float, seed: int) -> tuple[np.ndarray, list[int]]:
        """One pass of the model: the audio and each phoneme's start sample (-1 for a phoneme the
        voice has no id for)."""
        pad, ids, first_id = self.id_map["_"], list(self.id_map["^"]) + list(self.id_map["_"]), []
        for p in phonemes:
            if p in self.id_map:
                first_id.append(len(ids))
                ids += list(self.id_map[p]) + list(pad)
            else:
                first_id.append(-1)
        ids += list(self.id_map["$"])
        n = len(ids)
        feed = {"input": np.array([ids], dtype=np.int64), "input_lengths": np.array([n], dtype=np.int64),
                "scales": np.array([self.noise[0], length_scale, self.noise[1]], dtype=np.float32)}
        if self.piper.config.num_speakers > 1:
            feed["sid"] = np.array([0], dtype=np.int64)  # a many-speaker voice speaks as its first
        frames = math.ceil(n * BANK_FRAMES_PER_ID * max(1.0, length_scale))
        while True:
            feed[self.banks[0]] = _bank([seed, 0], 2 * n)
            feed[self.banks[1]] = _bank([seed, 1], 192 * frames)
            try:
                audio, frames_per_id = self.session.run(None, feed)[:2]
                break
            except Exception as e:  # a bank too short for this many frames: the Reshape after its Slice fails
                if frames > 1000 * n:
                    raise TTSError(f"Piper failed: {type(e).__name__}: {e}") from None
                frames *= 2
        hop = self.piper.config.hop_length
        starts = np.concatenate([[0], np.cumsum(frames_per_id.reshape(-1).astype(np.int64) * hop)])
        return audio.reshape(-1), [int(starts[i]) if i >= 0 else -1 for i in first_id]


def _options(level=None, save_to: Path | None = None):
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if level is not None:
        options.graph_optimization_level = level
    if save_to is not None:
        options.optimized_model_filepath = str(save_to)
    return options


def _session(files: VoiceFiles):
    """The voice's session. The edited graph, as onnxruntime optimizes it for this CPU, is kept in
    the models folder beside the speech cache: a worker that finds it skips importing onnx, editing
    and optimizing (about 1.5 s of each worker's start), and every session runs that same file."""
    import onnxruntime
    key = hashlib.sha256(json.dumps([file_sha256(files.model), onnxruntime.__version__, GRAPH_EDITS,
                                     _cpu_signature()]).encode()).hexdigest()
    kept = model_dir() / f"{files.id}-{key[:16]}.onnx"
    if not kept.exists():
        data = _edited(files)
        try:
            kept.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=kept.parent, suffix=".onnx.tmp")
            os.close(fd)
            try:
                onnxruntime.InferenceSession(data, _options(save_to=Path(tmp)), providers=["CPUExecutionProvider"])
                os.replace(tmp, kept)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        except OSError:  # nowhere to keep it: the same graph, optimized in memory, speaks the same samples
            return onnxruntime.InferenceSession(data, _options(), providers=["CPUExecutionProvider"])
        finally:
            del data
            gc.collect()
    level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL  # optimized already
    return onnxruntime.InferenceSession(str(kept), _options(level), providers=["CPUExecutionProvider"])


def _edited(files: VoiceFiles) -> bytes:
    """The voice graph with its duration output and seeded noise inputs, serialized."""
    import onnx
    from piper.patch_voice_with_alignment import add_alignment_output
    model = onnx.load(str(files.model))
    add_alignment_output(model)
    _seed_noise_inputs(model)
    return model.SerializeToString()


def _cpu_signature() -> str:
    """What an optimized graph may depend on: the machine and its CPU's model and features."""
    info = ""
    with contextlib.suppress(OSError):
        info = "\n".join(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                         if line.startswith(("model name", "flags")))
    return f"{platform.machine()} {platform.processor()} {hashlib.sha256(info.encode()).hexdigest()}"


_model_dir: Path | None = None


def model_dir() -> Path:
    """Where edited, optimized voice graphs are kept: beside the speech cache in use."""
    from audio.speech.cache import default_cache_dir
    return _model_dir or default_cache_dir() / "tts" / "models"


def keep_models_in(folder: Path):
    global _model_dir
    _model_dir = Path(folder)


def _bank(seed: list[int], size: int) -> np.ndarray:
    """Standard normal noise; a longer bank from the same seed begins with the shorter one."""
    return np.random.default_rng(seed).standard_normal(size).astype(np.float32)


def _seed_noise_inputs(model) -> list[str]:
    """Replace each RandomNormalLike node by a slice of a new input of the same count, reshaped to
    its template's shape; returns the new inputs' names."""
    from onnx import TensorProto, helper
    graph, banks = model.graph, []
    for node in list(graph.node):
        if node.op_type != "RandomNormalLike":
            continue
        bank, pre = f"noise_bank_{len(banks)}", f"/piece_noise_{len(banks)}"
        template, out = node.input[0], node.output[0]
        nodes = [helper.make_node("Shape", [template], [f"{pre}/shape"]),
                 helper.make_node("ReduceProd", [f"{pre}/shape"], [f"{pre}/count"], keepdims=1),
                 helper.make_node("Constant", [], [f"{pre}/zero"],
                                  value=helper.make_tensor("zero", TensorProto.INT64, [1], [0])),
                 helper.make_node("Slice", [bank, f"{pre}/zero", f"{pre}/count"], [f"{pre}/flat"]),
                 helper.make_node("Reshape", [f"{pre}/flat", f"{pre}/shape"], [out])]
        at = list(graph.node).index(node)
        graph.node.remove(node)
        for i, new in enumerate(nodes):
            graph.node.insert(at + i, new)
        graph.input.append(helper.make_tensor_value_info(bank, TensorProto.FLOAT, ["n"]))
        banks.append(bank)
    if len(banks) != 2:
        raise ValueError(f"expected the 2 noise nodes of a Piper VITS voice, found {len(banks)}")
    return banks


def _refuse_beside_espeak():
    from audio.speech import espeak
    if espeak.loaded():
        raise RenderError("Piper cannot run in a process that has loaded the espeak engine (their two "
                          "espeak-ng libraries crash each other); it speaks in worker processes")


@lru_cache(maxsize=2)
def load(files: VoiceFiles) -> Voice:
    return Voice(files)


def seed_of(voice: Voice, text: str) -> int:
    """The noise seed of a text in a voice: the same text and voice, the same noise."""
    digest = hashlib.sha256(json.dumps([voice.model_sha256, text]).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def phonemes(files: VoiceFiles, text: str) -> str:
    """The voice's phonemes for ``text``: each sentence's, joined by spaces."""
    return " ".join("".join(sentence).strip() for sentence in load(files).phonemes(text))


def speak(files: VoiceFiles, text: str, settings: VoiceSettings) -> Clip:
    """The text in the voice at ``settings.rate`` (words per minute) and volume, with each
    whitespace-separated word's start sample."""
    voice = load(files)
    length_scale = wpm_of(voice) / settings.rate
    if len(text) > MAX_CHARS and len(chunks := split_clauses(text, MAX_CHARS)) > 1:
        return _joined([_speak(voice, chunk, length_scale, settings.volume) for chunk in chunks], files.rate_hz)
    return _speak(voice, text, length_scale, settings.volume)


def _speak(voice: Voice, text: str, length_scale: float, volume: float) -> Clip:
    seed = seed_of(voice, text)
    audio, marks, offset = [], [], 0  # marks: (phoneme, start sample) over the whole text
    for k, phonemes in enumerate(voice.phonemes(text)):
        samples, starts = voice.run(phonemes, length_scale, seed + k)
        marks += [(p, offset + s) for p, s in zip(phonemes, starts) if s >= 0]
        audio.append(samples)
        offset += samples.size
    if not audio:
        return Clip(np.zeros(0, np.float32), voice.files.rate_hz)
    samples = np.clip(np.concatenate(audio) * volume, -1.0, 1.0).astype(np.float32)
    words = word_starts(voice, text, marks, samples.size)
    if words:  # the first word starts with the sound, which the decoder may begin a little before its frame
        onset = trim_bounds(samples, voice.files.rate_hz)[0]
        words = ((words[0][0], min(words[0][1], onset)),) + words[1:]
    return Clip(samples, voice.files.rate_hz, words)


def _joined(clips: list[Clip], rate_hz: int) -> Clip:
    gap = np.zeros(round(CHUNK_GAP_S * rate_hz), np.float32)
    parts, words, offset = [], [], 0
    for clip in clips:
        clip = clip.trimmed()
        words += [(w, offset + pos) for w, pos in clip.words]
        parts += [clip.samples, gap]
        offset += clip.samples.size + gap.size
    return Clip(np.concatenate(parts[:-1]), rate_hz, tuple(words))


def word_starts(voice: Voice, text: str, marks: list[tuple[str, int]], n_samples: int) -> tuple:
    """Each whitespace-separated word of ``text`` with its start sample.

    espeak-ng phonemizes a sentence in its own words: small ones merge ("of a" → "ʌvə"), numbers
    split. So each word is phonemized alone and the words' phonemes, in order, are aligned onto
    the sentence's; a word starts at the first of its phonemes found there (less the phonemes
    before it that were not found), and a word with none found is placed between its neighbours.
    """
    words = text.split()
    spoken = [(pos, p) for p, pos in marks if p not in _SKIP]
    mine = [(i, p) for i, word in enumerate(words) for sentence in voice.phonemes(word) for p in sentence
            if p not in _SKIP]
    found = [None] * len(mine)
    matcher = difflib.SequenceMatcher(None, [p for _, p in mine], [p for _, p in spoken], autojunk=False)
    for a, b, size in matcher.get_matching_blocks():
        for k in range(size):
            found[a + k] = b + k
    at: list[float | None] = [None] * len(words)
    first = {}
    for k, (i, _) in enumerate(mine):
        first.setdefault(i, k)
        if at[i] is None and found[k] is not None:
            at[i] = max(0, found[k] - (k - first[i]))
    known = [i for i, a in enumerate(at) if a is not None]
    if not known:  # nothing aligned: spread the words evenly
        return tuple((w, round(i * n_samples / max(1, len(words)))) for i, w in enumerate(words))
    index = np.interp(range(len(words)), known, [at[i] for i in known])
    out, last = [], 0
    for w, x in zip(words, index):
        pos = spoken[min(len(spoken) - 1, math.floor(x))][0]
        last = max(last, pos)
        out.append((w, last))
    return tuple(out)


@lru_cache(maxsize=None)
def _measured_wpm(files: VoiceFiles) -> float:
    return calibrate(load(files))


def wpm_of(voice: Voice) -> float:
    """The voice's own rate at length scale 1, in words per minute."""
    return CALIBRATED_WPM.get(voice.model_sha256) or _measured_wpm(voice.files)


def calibrate(voice: Voice) -> float:
    """Words per minute of the voice at length scale 1 over CALIBRATION_TEXT, sentence by sentence,
    each clip's leading and trailing silence left out (as the renderer trims them)."""
    sentences = [s.strip() + "." for s in CALIBRATION_TEXT.split(".") if s.strip()]
    words = sum(len(s.split()) for s in sentences)
    seconds = 0.0
    for s in sentences:
        clip = _speak(voice, s, 1.0, 1.0)
        a, b = trim_bounds(clip.samples, clip.rate_hz)
        seconds += (b - a) / clip.rate_hz
    return round(60.0 * words / seconds, 1)
