"""What a score can ask for is bounded below what the engines and the tag formats survive: the
longest utterance handed to an engine, the longest word, the most chapters, the longest effect
chain, and MP3 chapters past the 255 one ID3 table of contents lists."""

import numpy as np
import pytest
from conftest import write_score

from audio import plan, score
from audio.errors import ScoreError
from audio.speech.cache import ClipCache
from audio.speech.clip import MAX_UTTERANCE_CHARS, Clip, synthesize
from audio.speech.engine import VoiceSettings

BODY = '[piece]\ntitle = "Limits"\ntext = "TEXT"\nsample_rate = 22050\n[pauses]\nlead_in = 0.1\ntail = 0.1\n'


class CountingEngine:
    """An engine that says each word as 0.3 s of tone and notes every utterance it is handed."""

    name = "counting"

    def __init__(self):
        self.handed = []

    def rate_hz(self, settings):
        return 8000

    def speak(self, text, settings):
        self.handed.append(text)
        n = 2400  # samples per word: 0.3 s, which the length check takes for 150 wpm
        words = text.split()
        return Clip(np.full(n * len(words), 0.1, np.float32), 8000, tuple((w, i * n) for i, w in enumerate(words)))


def test_a_sentence_over_the_utterance_limit_is_handed_to_the_engine_in_chunks_below_it():
    engine = CountingEngine()
    text = " ".join(f"word{i % 100}," if i % 37 == 36 else f"word{i % 100}" for i in range(20_000)) + "."
    assert len(text) > 120_000  # what made espeak-ng segfault
    clip = synthesize(engine, text, VoiceSettings("en-us", 150, 50, 1.0))
    assert len(engine.handed) > 1 and max(map(len, engine.handed)) <= MAX_UTTERANCE_CHARS
    assert " ".join(engine.handed) == text  # cut only between words, nothing lost
    assert [w for w, _ in clip.words] == text.split()
    assert all(a < b for (_, a), (_, b) in zip(clip.words, clip.words[1:]))


def test_a_sentence_at_the_utterance_limit_is_handed_whole():
    engine = CountingEngine()
    text = ("word " * (MAX_UTTERANCE_CHARS // 5))[:MAX_UTTERANCE_CHARS - 1].strip() + "."
    synthesize(engine, text, VoiceSettings("en-us", 150, 50, 1.0))
    assert engine.handed == [text]


def test_a_long_sentence_renders_as_one_cue_with_every_word(tmp_path):
    line = " ".join(["the", "tide", "comes", "in", "and", "goes", "out", "again"] * 70)  # ~2,200 characters
    assert len(line) > MAX_UTTERANCE_CHARS
    path = write_score(tmp_path, BODY + "[voice]\nrate = 450\n", line + ".")
    p = plan.resolve(score.load(path), ClipCache(tmp_path / "tts"))
    assert len(p.cues) == 1 and len(p.cues[0].words) == len(line.split())
    assert p.cues[0].end_s - p.cues[0].start_s > 0.5 * len(line.split()) * 60 / 450


def test_a_word_over_the_word_limit_is_refused_at_load_naming_its_line_and_offset(tmp_path):
    text = "A first line.\nThen " + "x" * (score.MAX_WORD_CHARS + 1) + " and more.\n"
    path = write_score(tmp_path, BODY, text)
    with pytest.raises(ScoreError, match=rf"piece\.text: line 2: a word of {score.MAX_WORD_CHARS + 1} characters "
                                         rf"\(at character 19: 'x+'…\); a word is at most {score.MAX_WORD_CHARS} "
                                         "characters"):
        score.load(path)
    write_score(tmp_path, BODY, "Then " + "x" * (score.MAX_WORD_CHARS - 1) + ".\n")
    score.load(path)  # a word at the limit (with its full stop) is a word


def test_more_chapter_tables_than_a_file_holds_are_refused_at_load(tmp_path):
    tables = "".join(f'[[chapter]]\ntitle = "c{i}"\nat = {i}\n' for i in range(score.MAX_CHAPTERS + 1))
    path = write_score(tmp_path, BODY + tables, "Hello.")
    with pytest.raises(ScoreError, match=rf"chapter: {score.MAX_CHAPTERS + 1} chapters; the limit is "
                                         rf"{score.MAX_CHAPTERS}$"):
        score.load(path)


def test_more_paragraphs_than_a_file_holds_chapters_start_every_few_paragraphs(tmp_path):
    path = write_score(tmp_path, BODY + "paragraph = 0.0\n",
                       "Go.\n\n" * (score.MAX_CHAPTERS + 2))
    p = plan.resolve(score.load(path), ClipCache(tmp_path / "tts"))
    assert len(p.chapters) == (score.MAX_CHAPTERS + 2 + 1) // 2
    assert [w for w in p.warnings if "1001 paragraphs, more than the 999 chapters" in w
            and "a chapter begins every 2 paragraphs" in w]


def test_an_effect_chain_over_the_limit_is_refused_at_load(tmp_path):
    from audio.effects import MAX_CHAIN_EFFECTS
    chain = ", ".join(['{effect = "reverb"}'] * (MAX_CHAIN_EFFECTS + 1))
    path = write_score(tmp_path, BODY + f"[voice]\neffects = [{chain}]\n", "Hello.")
    with pytest.raises(ScoreError, match=rf"voice\.effects: {MAX_CHAIN_EFFECTS + 1} effects; a chain holds at most "
                                         rf"{MAX_CHAIN_EFFECTS}$"):
        score.load(path)
    layer = '[[layer]]\nname = "l"\nsource = "noise"\neffects = [' + chain + "]\n"
    with pytest.raises(ScoreError, match=r'layer "l"\.effects: 17 effects'):
        score.load(write_score(tmp_path, BODY + layer, "Hello."))
    fine = ", ".join(['{effect = "reverb"}'] * MAX_CHAIN_EFFECTS)
    score.load(write_score(tmp_path, BODY + f"[voice]\neffects = [{fine}]\n", "Hello."))


def test_300_paragraphs_render_as_an_mp3_with_every_chapter_in_nested_tables(tmp_path):
    from click.testing import CliRunner
    from mutagen.id3 import ID3, CTOCFlags
    from test_tags import ffmpeg_chapters

    from audio.cli import main
    from audio.files import tags
    words = ["Go.", "Now.", "Stop.", "Wait."]
    text = "".join(f"{words[i % 4]}\n\n" for i in range(300))  # one chapter per paragraph, by default
    path = write_score(tmp_path, BODY.replace("sample_rate = 22050\n", 'sample_rate = 22050\nchannels = 1\n')
                       + 'paragraph = 0.0\n[master]\nformats = ["mp3"]\nmp3 = "cbr32"\n', text)
    result = CliRunner().invoke(main, ["render", str(path), "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    mp3 = tmp_path / "out" / "piece.mp3"
    id3 = ID3(mp3)
    assert len(id3.getall("CHAP")) == 300
    tocs = {t.element_id: t for t in id3.getall("CTOC")}
    assert tocs["toc"].flags & CTOCFlags.TOP_LEVEL and tocs["toc"].child_element_ids == ["toc0", "toc1"]
    assert [len(tocs[t].child_element_ids) for t in ("toc0", "toc1")] == [255, 45]
    found = tags.read_id3(id3).chapters
    assert [m.title for m in found] == [words[i % 4] for i in range(300)]
    assert all(a.start_s < b.start_s for a, b in zip(found, found[1:]))
    seen = ffmpeg_chapters(mp3)  # ffmpeg reads the CHAP frames themselves
    assert len(seen) == 300 and [c["title"] for c in seen] == [m.title for m in found]


def test_piece_say_refuses_a_word_over_the_limit(tmp_path):
    from click.testing import CliRunner

    from audio.cli import main
    result = CliRunner().invoke(main, ["say", "Hi " + "a" * (score.MAX_WORD_CHARS + 1), "-o", str(tmp_path / "s.wav")])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert f"TEXT: line 1: a word of {score.MAX_WORD_CHARS + 1} characters (at character 3" in result.output
    assert not (tmp_path / "s.wav").exists()
