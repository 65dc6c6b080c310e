"""Speech: engines speak sentences into clips, the caches keep them, a helper process speaks beside."""

from audio.speech.engine import engines
from audio.speech.espeak import Espeak

engines[Espeak.name] = Espeak()
