"""Speech: engines speak sentences into clips, the caches keep them, a helper process speaks beside."""

from audio.speech.engine import engines
from audio.speech.espeak import Espeak
from audio.speech.piper import Piper

engines[Espeak.name] = Espeak()
engines[Piper.name] = Piper()
