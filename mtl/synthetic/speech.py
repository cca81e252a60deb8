"""A source-filter speech synthesiser whose prosody and voice quality carry emotion.

One utterance is built in four steps, all vectorised numpy:

1. **Phone content.** The sentence id (``text``) fixes a syllable sequence --
   consonant + vowel, some syllables stressed, phrase breaks -- drawn from the
   corpus's *language* (:class:`CorpusStyle`: German-like vowels and
   consonants for EMO-DB, British English for SAVEE, accented English for
   eNTERFACE). The same sentence has the same phones whoever speaks it.
2. **Prosody** (:class:`Prosody`, one per emotion): F0 level, F0 range and
   contour shape (falling, rising, rise-fall, flat), syllable rate, pauses,
   energy, jitter, shimmer, tremor, spectral tilt, open quotient and
   breathiness, small formant shifts (smiling raises F2, anger opens the jaw).
3. **Source and filter.** A Rosenberg glottal pulse train (its derivative:
   lip radiation) with per-cycle jitter and shimmer plus aspiration noise is
   shaped, frame by frame in the STFT domain, by five formant resonances whose
   targets glide between syllables; consonants are band-shaped noise bursts
   (fricatives, plosive bursts after a closure) or voiced murmurs (nasals,
   liquids).
4. **Channel.** The corpus's microphone/room colouring (EQ curve, band
   limits), room reverberation, hum, a noise floor at the corpus's SNR, the
   recording's level, at the corpus's original sample rate (EMO-DB 16 kHz,
   SAVEE 44.1 kHz, eNTERFACE 48 kHz).

Speakers (:class:`Speaker`) differ in F0 baseline, vocal-tract length
(formant scaling), speaking rate, breathiness, tilt and their *own way* of
expressing each emotion. Within a class every utterance draws an intensity
(how strongly the emotion is acted: the corpus's actors differ) and random
deviations of every parameter, and a recording gain, so no single spectral
feature decides the emotion; corpora differ in language, channel, noise,
acting intensity and rate: a real domain shift.

Deterministic: the same arguments and generator state give the same samples.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass

import librosa
import numpy as np
from scipy.signal import fftconvolve

# --------------------------------------------------------------------------- emotions


@dataclass(frozen=True)
class Prosody:
    """How one emotion is spoken, relative to the speaker's neutral voice."""

    f0_scale: float
    """F0 level, times the speaker's baseline."""
    f0_range: float
    """Size of pitch accents and drift, times the neutral size."""
    contour: str
    """Global F0 shape: "fall", "rise" (final rise), "risefall" or "flat"."""
    rate: float
    """Syllable rate, times the speaker's rate."""
    pause: float
    """Length of phrase-break pauses, times the neutral length."""
    energy_db: float
    """Loudness, dB re neutral."""
    jitter: float
    """Cycle-to-cycle period perturbation (standard deviation, fraction of the period)."""
    shimmer: float
    """Cycle-to-cycle amplitude perturbation (standard deviation, fraction)."""
    tremor: float
    """Depth of a 5-7 Hz F0 tremor, fraction of F0."""
    tilt_db: float
    """Extra spectral slope above 500 Hz, dB per octave (positive = brighter, tense voice)."""
    open_quotient: float
    """Fraction of the glottal cycle the glottis is open (small = pressed, large = breathy)."""
    breathiness: float
    """Aspiration noise relative to the voiced source."""
    formant_shift: tuple[float, float, float]
    """Multipliers of F1, F2, F3 (jaw opening, lip spreading)."""


PROSODY: dict[str, Prosody] = {
    "neutral": Prosody(1.00, 1.0, "fall", 1.00, 1.0, 0.0, 0.010, 0.04, 0.00, 0.0, 0.60, 0.05, (1.00, 1.00, 1.00)),
    "calm": Prosody(0.96, 0.8, "fall", 0.90, 1.2, -2.0, 0.008, 0.03, 0.00, -1.0, 0.63, 0.09, (0.99, 1.00, 1.00)),
    "anger": Prosody(1.30, 1.4, "fall", 1.12, 0.7, 8.0, 0.015, 0.06, 0.00, 4.0, 0.42, 0.03, (1.10, 1.02, 1.01)),
    "happiness": Prosody(1.22, 1.8, "risefall", 1.08, 0.8, 3.0, 0.012, 0.05, 0.00, 1.5, 0.55, 0.05, (1.03, 1.08, 1.05)),
    "fear": Prosody(1.40, 0.7, "flat", 1.25, 0.8, 1.0, 0.030, 0.08, 0.05, 0.0, 0.60, 0.14, (1.00, 1.03, 1.02)),
    "surprise": Prosody(1.35, 2.2, "rise", 1.00, 1.0, 2.0, 0.012, 0.05, 0.00, 0.5, 0.58, 0.08, (1.08, 1.00, 1.00)),
    "sadness": Prosody(0.90, 0.5, "fall", 0.78, 1.6, -5.0, 0.020, 0.07, 0.01, -3.5, 0.70, 0.20, (0.97, 0.97, 0.98)),
    "disgust": Prosody(0.85, 1.0, "fall", 0.85, 1.3, 1.0, 0.045, 0.11, 0.00, 0.5, 0.45, 0.04, (0.96, 0.94, 1.00)),
    "boredom": Prosody(0.90, 0.4, "flat", 0.85, 1.3, -3.0, 0.012, 0.05, 0.00, -2.0, 0.64, 0.10, (0.98, 0.99, 1.00)),
}
"""Prosody of every canonical emotion."""

_NUMERIC = ("f0_scale", "f0_range", "rate", "pause", "energy_db", "jitter", "shimmer", "tremor", "tilt_db",
            "open_quotient", "breathiness")

# --------------------------------------------------------------------------- speakers


@dataclass(frozen=True)
class Speaker:
    """One synthetic voice."""

    name: str
    gender: str
    """"m" or "f"."""
    f0: float
    """Neutral F0 baseline, Hz."""
    formant_scale: float
    """Formant frequencies times this (shorter vocal tract = higher formants)."""
    rate: float
    """Neutral syllable rate, syllables per second."""
    breathiness: float
    """Added to every emotion's aspiration level."""
    tilt_db: float
    """Added to every emotion's spectral slope, dB per octave."""
    style_seed: int
    """Seeds this speaker's own deviations from each emotion's prototype."""


def make_speaker(name: str, gender: str, rng: np.random.Generator) -> Speaker:
    """A random voice of the given gender ("m" or "f")."""
    if gender not in ("m", "f"):
        raise ValueError(f"gender must be 'm' or 'f', got {gender!r}")
    male = gender == "m"
    return Speaker(
        name=name, gender=gender,
        f0=float(rng.normal(115.0, 14.0) if male else rng.normal(205.0, 20.0)),
        formant_scale=float(rng.normal(1.0, 0.04) if male else rng.normal(1.15, 0.04)),
        rate=float(np.clip(rng.normal(4.6, 0.45), 3.5, 6.0)),
        breathiness=float(rng.uniform(0.0, 0.05) if male else rng.uniform(0.03, 0.10)),
        tilt_db=float(rng.normal(0.0, 0.8)),
        style_seed=int(rng.integers(2**31)),
    )


# --------------------------------------------------------------------------- corpora


@dataclass(frozen=True)
class Consonant:
    """A consonant class: how it sounds and how long it lasts."""

    kind: str
    """"fricative", "plosive", "nasal" or "liquid"."""
    centre_hz: float
    """Centre of the noise band (fricatives, plosive bursts)."""
    width_octaves: float
    """Width of the noise band."""
    level_db: float
    """Level re the vowel."""
    formants: tuple[float, float, float]
    """F1-F3 targets while voiced (nasals, liquids)."""
    voiced: bool
    duration: float
    """Seconds at the neutral rate."""


CONSONANTS: dict[str, Consonant] = {
    "s": Consonant("fricative", 6000, 0.8, -8, (300, 1700, 2600), False, 0.10),
    "sh": Consonant("fricative", 3000, 0.7, -6, (300, 1800, 2400), False, 0.10),
    "f": Consonant("fricative", 4500, 2.0, -18, (300, 1200, 2300), False, 0.09),
    "th": Consonant("fricative", 5500, 2.2, -22, (300, 1500, 2500), False, 0.08),
    "x": Consonant("fricative", 1800, 0.8, -10, (300, 1300, 2300), False, 0.10),
    "h": Consonant("fricative", 1500, 2.0, -16, (500, 1500, 2500), False, 0.07),
    "z": Consonant("fricative", 5500, 0.8, -12, (280, 1700, 2600), True, 0.08),
    "v": Consonant("fricative", 4000, 2.0, -20, (280, 1200, 2300), True, 0.07),
    "t": Consonant("plosive", 4500, 1.0, -6, (300, 1800, 2600), False, 0.07),
    "k": Consonant("plosive", 2200, 0.6, -6, (300, 1600, 2200), False, 0.08),
    "p": Consonant("plosive", 1000, 1.2, -12, (300, 900, 2200), False, 0.07),
    "d": Consonant("plosive", 4000, 1.0, -10, (300, 1700, 2600), True, 0.06),
    "b": Consonant("plosive", 900, 1.2, -14, (300, 900, 2200), True, 0.06),
    "m": Consonant("nasal", 0, 0, -8, (250, 1100, 2300), True, 0.07),
    "n": Consonant("nasal", 0, 0, -8, (250, 1700, 2600), True, 0.06),
    "l": Consonant("liquid", 0, 0, -4, (360, 1300, 2700), True, 0.06),
    "r": Consonant("liquid", 0, 0, -5, (420, 1250, 1650), True, 0.06),
    "w": Consonant("liquid", 0, 0, -5, (300, 700, 2200), True, 0.06),
    "j": Consonant("liquid", 0, 0, -5, (280, 2200, 2950), True, 0.06),
}
"""Consonant classes every language draws from."""


@dataclass(frozen=True)
class CorpusStyle:
    """Language, speaking style and recording channel of one corpus."""

    name: str
    sample_rate: int
    """The original recordings' rate, Hz."""
    vowels: tuple[tuple[float, float, float], ...]
    """F1, F2, F3 targets of the language's vowels for an adult male, Hz."""
    consonants: tuple[tuple[str, float], ...]
    """(consonant class, relative frequency in the language) pairs."""
    syllables: tuple[int, int]
    """Syllables per sentence, min and max (free-length utterances)."""
    rate: float
    """Syllable rate of this corpus's speakers, times the speaker's own rate."""
    intensity: tuple[float, float]
    """Range of acted emotion intensity (0 = neutral voice, 1 = the prototype)."""
    eq: tuple[tuple[float, float], ...]
    """Channel colouring: (frequency Hz, gain dB) points, interpolated on a log-frequency axis."""
    band: tuple[float, float]
    """Channel pass band, Hz (4th-order high-pass and 8th-order low-pass edges)."""
    snr_db: float
    """Mean speech-to-noise ratio of the recordings."""
    noise_slope_db: float
    """Noise floor spectral slope, dB per octave."""
    reverb_s: float
    """Room reverberation time RT60, seconds (0 = anechoic)."""
    hum_db: float | None
    """Mains hum (50 Hz and harmonics) re speech RMS, dB; None = none."""
    level_db: float
    """Recording level: RMS of a neutral utterance, dB re full scale."""


def _frequencies(**weights: float) -> tuple[tuple[str, float], ...]:
    return tuple(weights.items())


_GERMAN_VOWELS = ((280, 2250, 2900), (280, 1650, 2150), (380, 2150, 2600), (550, 1800, 2500), (750, 1300, 2500),
                  (400, 800, 2400), (300, 750, 2300), (380, 1500, 2200), (500, 1500, 2500), (390, 1900, 2550),
                  (420, 1000, 2400))
_ENGLISH_VOWELS = ((280, 2250, 2900), (390, 1950, 2600), (530, 1800, 2550), (690, 1660, 2500), (640, 1190, 2390),
                   (680, 1100, 2450), (560, 900, 2400), (450, 750, 2450), (420, 1050, 2300), (310, 900, 2250),
                   (480, 1400, 2450), (500, 1500, 2500))
_ACCENTED_VOWELS = ((300, 2150, 2800), (420, 1850, 2550), (560, 1700, 2500), (720, 1450, 2500), (650, 1150, 2400),
                    (450, 900, 2400), (330, 850, 2300), (500, 1450, 2500))

CORPUS_STYLES: dict[str, CorpusStyle] = {
    # Anechoic studio, professional actors, German.
    "emodb": CorpusStyle(
        "emodb", 16000, _GERMAN_VOWELS,
        _frequencies(s=8, sh=5, x=7, f=5, h=4, z=3, v=3, t=12, k=8, p=4, d=5, b=4, m=7, n=13, l=6, r=9),
        (7, 15), 1.0, (0.65, 1.0),
        ((100, 0.0), (1000, 0.0), (4000, 1.0), (7000, -2.0)), (50.0, 7800.0),
        45.0, -3.0, 0.0, None, -22.0),
    # Small room, head-mounted microphone, British English, acted by researchers.
    "savee": CorpusStyle(
        "savee", 44100, _ENGLISH_VOWELS,
        _frequencies(s=9, sh=3, th=5, f=4, h=5, z=5, v=4, t=11, k=6, p=4, d=8, b=4, m=6, n=11, l=7, r=5, w=5, j=2),
        (8, 16), 1.05, (0.55, 1.0),
        ((100, -4.0), (300, 0.0), (3000, 4.0), (8000, 1.0), (15000, -6.0)), (90.0, 16000.0),
        32.0, -4.5, 0.15, None, -26.0),
    # Office rooms, camcorder microphone, non-native English speakers (weaker acting).
    "enterface": CorpusStyle(
        "enterface", 48000, _ACCENTED_VOWELS,
        _frequencies(s=8, sh=2, th=2, f=4, h=3, z=3, v=3, t=13, k=9, p=6, d=8, b=5, m=6, n=10, l=7, r=7, w=4, j=2),
        (6, 13), 0.95, (0.45, 0.95),
        ((100, -8.0), (250, -2.0), (1500, 3.0), (5000, -1.0), (10000, -8.0)), (150.0, 11000.0),
        22.0, -1.5, 0.35, -38.0, -24.0),
}
"""The three corpora the project synthesises."""

EXTRA_FORMANTS = (3500.0, 4500.0)
"""F4, F5 of an adult male, Hz."""
BANDWIDTHS = np.array([70.0, 100.0, 140.0, 200.0, 260.0])
"""Formant bandwidths of a modal voice, Hz (breathy voices widen them)."""
CONSONANT_GAIN = 8.0
"""Consonant noise re unit white noise: about the gain the formant resonances give a vowel."""
CONTROL_RATE = 400
"""Control curves (F0, gates, formants) are built at this rate, Hz, then interpolated."""

# --------------------------------------------------------------------------- synthesis


@dataclass(frozen=True)
class Syllable:
    """One consonant + vowel syllable of a sentence."""

    consonant: str
    """Key of :data:`CONSONANTS`."""
    vowel: int
    """Index into the language's :attr:`CorpusStyle.vowels`."""
    stressed: bool
    """Carries a pitch accent, is longer and louder."""
    phrase_end: bool
    """A pause follows."""


def phone_content(text: str, style: CorpusStyle) -> list[Syllable]:
    """The syllable sequence of sentence ``text`` in the corpus's language (deterministic)."""
    rng = np.random.default_rng(zlib.crc32(f"{style.name}/{text}".encode()))
    n = int(rng.integers(style.syllables[0], style.syllables[1] + 1))
    names = [name for name, _ in style.consonants]
    weights = np.array([weight for _, weight in style.consonants], dtype=float)
    consonants = rng.choice(len(names), size=n, p=weights / weights.sum())
    vowels = rng.integers(len(style.vowels), size=n)
    stressed = rng.random(n) < 0.35
    breaks = np.cumsum(rng.integers(4, 8, size=n))
    phrase_end = np.zeros(n, bool)
    phrase_end[breaks[breaks < n - 1]] = True
    return [Syllable(names[c], int(v), bool(s), bool(p))
            for c, v, s, p in zip(consonants, vowels, stressed, phrase_end)]


def emotion_parameters(emotion: str, speaker: Speaker, style: CorpusStyle, rng: np.random.Generator
                       ) -> dict[str, float]:
    """One utterance's numeric prosody: prototype scaled by an acted intensity, the speaker's
    habitual deviation, and this utterance's random deviation."""
    if emotion not in PROSODY:
        raise ValueError(f"unknown emotion {emotion!r}; synthesisable: {', '.join(PROSODY)}")
    target, neutral = PROSODY[emotion], PROSODY["neutral"]
    intensity = rng.uniform(*style.intensity) if emotion != "neutral" else 0.0
    own = np.random.default_rng([speaker.style_seed, list(PROSODY).index(emotion)])
    params: dict[str, float] = {}
    for name in _NUMERIC:
        base, goal = getattr(neutral, name), getattr(target, name)
        params[name] = base + intensity * (goal - base)
    # Ratios vary multiplicatively, levels additively: speaker habit, then this utterance.
    for name, habit, here in (("f0_scale", 0.06, 0.06), ("f0_range", 0.20, 0.25), ("rate", 0.06, 0.07),
                              ("pause", 0.15, 0.2), ("jitter", 0.25, 0.25), ("shimmer", 0.2, 0.2),
                              ("breathiness", 0.3, 0.3)):
        params[name] *= float(np.exp(own.normal(0, habit) + rng.normal(0, here)))
    for name, habit, here in (("energy_db", 1.5, 2.0), ("tilt_db", 0.6, 0.7), ("open_quotient", 0.03, 0.03)):
        params[name] += float(own.normal(0, habit) + rng.normal(0, here))
    params["tremor"] = max(0.0, params["tremor"] + abs(rng.normal(0, 0.004)))
    params["open_quotient"] = float(np.clip(params["open_quotient"], 0.35, 0.8))
    params["intensity"] = intensity
    for i, (base, goal) in enumerate(zip(neutral.formant_shift, target.formant_shift)):
        params[f"formant_shift{i}"] = (base + intensity * (goal - base)) * float(np.exp(rng.normal(0, 0.015)))
    return params


def synthesize(emotion: str, speaker: Speaker, text: str, corpus: str | CorpusStyle,
               rng: np.random.Generator, duration: float | None = None) -> np.ndarray:
    """One utterance, float32 mono at the corpus's sample rate (``CORPUS_STYLES[corpus].sample_rate``).

    Parameters
    ----------
    emotion : a canonical emotion name (any key of :data:`PROSODY`).
    speaker : the voice (:func:`make_speaker`).
    text : sentence id; fixes the phone content.
    corpus : "emodb", "savee", "enterface" or a :class:`CorpusStyle`.
    rng : all randomness of this utterance.
    duration : seconds; ``None`` = as long as the sentence takes at this rate.
        With a duration, syllables of the sentence (repeated if needed) fill it
        at the emotion's rate and the rest is silence.
    """
    style = CORPUS_STYLES[corpus] if isinstance(corpus, str) else corpus
    sr = style.sample_rate
    p = emotion_parameters(emotion, speaker, style, rng)
    control = _control_curves(phone_content(text, style), PROSODY[emotion].contour, speaker, style, p, rng,
                              duration)
    n = int(round(control["duration"] * sr))
    t = np.arange(n) / sr
    tc = np.arange(len(control["f0"])) / CONTROL_RATE

    # Glottal source: Rosenberg pulse derivative with per-cycle jitter and shimmer, plus aspiration.
    f0 = np.interp(t, tc, control["f0"])
    n_cycles = int(np.sum(f0) / sr) + 2
    cycle = np.minimum((np.cumsum(f0) / sr).astype(np.int64), n_cycles - 1)
    f0 *= (1.0 + p["jitter"] * np.clip(rng.standard_normal(n_cycles), -3, 3))[cycle]
    phase = np.cumsum(f0) / sr  # float64: thousands of cycles must not drift
    cycle = np.minimum(phase.astype(np.int64), n_cycles - 1)
    table = _glottal_cycle(round(float(p["open_quotient"]), 3))
    flow = table[((phase - np.floor(phase)) * (table.size - 1)).astype(np.int64)]
    shimmer = (1.0 + p["shimmer"] * np.clip(rng.standard_normal(n_cycles, dtype=np.float32), -3, 3))[cycle]
    pulse = np.diff(flow, prepend=np.float32(0.0)) * shimmer
    pulse /= np.sqrt(np.mean(pulse ** 2)) + 1e-12
    white = rng.standard_normal(2 * n, dtype=np.float32)
    breath = p["breathiness"] + speaker.breathiness
    voicing = np.interp(t, tc, control["voicing"]).astype(np.float32)
    source = voicing * (pulse + np.float32(breath) * (0.4 + flow) * white[:n])

    # Vocal-tract filter and consonant noise, frame by frame. One white-noise STFT serves
    # both the consonants (gated, band-shaped) and the recording's noise floor.
    n_fft = 1 << int(round(np.log2(0.02 * sr)))
    hop = n_fft // 4
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr).astype(np.float32)
    voiced_stft = librosa.stft(source, n_fft=n_fft, hop_length=hop)
    noise_stft = librosa.stft(white[n:], n_fft=n_fft, hop_length=hop)
    frame_times = np.arange(voiced_stft.shape[1]) * hop / sr
    formants = np.stack([np.interp(frame_times, tc, control["formants"][:, k]) for k in range(5)], axis=1)
    bandwidths = BANDWIDTHS * (1.0 + 2.0 * breath) * (1.0 + 0.3 * (p["open_quotient"] - 0.6))
    vocal_tract = _resonances(formants.astype(np.float32), bandwidths.astype(np.float32), freqs)
    nearest = np.minimum(np.rint(frame_times * CONTROL_RATE).astype(np.int64), len(tc) - 1)
    kinds = control["consonant"][nearest]
    gate = np.interp(frame_times, tc, control["noise"]).astype(np.float32)
    shapes = _consonant_shapes(sr, n_fft, speaker.formant_scale)
    spectrum = voiced_stft * vocal_tract.T + noise_stft * (shapes[kinds] * (CONSONANT_GAIN * gate)[:, None]).T

    # Voice tilt, then the channel; noise floor at the corpus SNR through the same channel.
    octaves = np.log2(np.maximum(freqs, 500.0) / 500.0)
    tilt = 10.0 ** ((p["tilt_db"] + speaker.tilt_db) * octaves / 20.0)
    channel = _channel_response(sr, n_fft, style)
    spectrum *= (tilt * channel)[:, None]
    speech_power = float(np.mean(spectrum.real ** 2 + spectrum.imag ** 2))
    colour = 10.0 ** (style.noise_slope_db * np.log2(np.maximum(freqs, 100.0) / 1000.0) / 20.0) * channel
    white_power = 0.375 * n_fft * float(np.mean(colour ** 2))  # E|STFT|^2 of unit white noise, Hann window
    snr = style.snr_db + rng.normal(0.0, 3.0)
    colour *= np.float32(np.sqrt(speech_power / white_power / 10.0 ** (snr / 10.0)))
    spectrum += noise_stft * colour[:, None]
    signal = librosa.istft(spectrum, hop_length=hop, n_fft=n_fft, length=n)

    if style.reverb_s > 0:
        signal = _reverberate(signal, style.reverb_s * float(np.exp(rng.normal(0, 0.15))), sr, rng)
    rms = float(np.sqrt(np.mean(signal ** 2))) + 1e-12
    if style.hum_db is not None:
        period = np.arange(sr // 50) / sr  # 50 Hz mains: one period, tiled
        hum = sum(np.sin(2 * np.pi * 50.0 * h * period + rng.uniform(0, 2 * np.pi)) / h for h in (1, 2, 3))
        signal += (rms * 10.0 ** ((style.hum_db + rng.normal(0, 3)) / 20.0) * np.resize(hum, n)).astype(np.float32)
    # Level: the corpus's recording level, the emotion's energy, this take's gain; a loud take
    # is turned down to a 0.95 peak rather than clipped.
    signal *= np.float32(10.0 ** ((style.level_db + p["energy_db"] + rng.normal(0.0, 2.0)) / 20.0) / rms)
    peak = float(np.max(np.abs(signal)))
    if peak > 0.95:
        signal *= np.float32(0.95 / peak)
    return signal.astype(np.float32, copy=False)


@functools.lru_cache(maxsize=64)
def _glottal_cycle(open_quotient: float, size: int = 2048) -> np.ndarray:
    """One cycle of Rosenberg glottal flow (opening 62 %, closing 38 % of the open phase)."""
    frac = np.linspace(0.0, 1.0, size)
    opening, closing = 0.62 * open_quotient, 0.38 * open_quotient
    flow = np.where(frac < opening, 0.5 * (1 - np.cos(np.pi * frac / opening)),
                    np.where(frac < opening + closing,
                             np.cos(0.5 * np.pi * np.clip((frac - opening) / closing, 0, 1)), 0.0))
    flow = flow.astype(np.float32)
    flow.setflags(write=False)
    return flow


def _control_curves(syllables: list[Syllable], contour: str, speaker: Speaker, style: CorpusStyle,
                    p: dict[str, float], rng: np.random.Generator, duration: float | None) -> dict[str, np.ndarray]:
    """F0, voicing, consonant noise, consonant kind and formant curves at :data:`CONTROL_RATE`."""
    rate = speaker.rate * style.rate * p["rate"]
    lead = rng.uniform(0.08, 0.2)
    events: list[tuple[float, float, str, object]] = []  # (start, end, what, detail)
    now, index = lead, 0
    limit = duration - 0.08 if duration is not None else np.inf
    while True:
        syl = syllables[index % len(syllables)]
        length = (1.0 / rate) * (1.3 if syl.stressed else 0.9) * float(np.exp(rng.normal(0, 0.12)))
        cons = CONSONANTS[syl.consonant]
        c_len = min(cons.duration * float(np.exp(rng.normal(0, 0.1))) / p["rate"], 0.45 * length)
        if now + length > limit:
            break
        events.append((now, now + c_len, "consonant", syl.consonant))
        events.append((now + c_len, now + length, "vowel", syl))
        now += length
        index += 1
        if syl.phrase_end:
            now += 0.18 * p["pause"] * float(np.exp(rng.normal(0, 0.2)))
        if duration is None and index >= len(syllables):
            break
    total = duration if duration is not None else now + rng.uniform(0.1, 0.25)
    n = int(np.ceil(total * CONTROL_RATE)) + 1
    t = np.arange(n) / CONTROL_RATE

    voicing = np.zeros(n)
    noise = np.zeros(n)
    consonant = np.zeros(n, dtype=np.int64)
    scale = speaker.formant_scale * np.array([p["formant_shift0"], p["formant_shift1"], p["formant_shift2"], 1.0, 1.0])
    neutral_vowel = np.array([500.0, 1500.0, 2500.0, *EXTRA_FORMANTS])
    formants = np.tile(neutral_vowel * scale, (n, 1))
    accents = np.zeros(n)
    loudness = np.ones(n)
    kind_index = {name: i + 1 for i, name in enumerate(CONSONANTS)}
    for start, end, what, detail in events:
        a, b = int(start * CONTROL_RATE), max(int(end * CONTROL_RATE), int(start * CONTROL_RATE) + 1)
        if what == "vowel":
            vowel = np.array([*style.vowels[detail.vowel], *EXTRA_FORMANTS]) * float(np.exp(rng.normal(0, 0.03)))
            formants[a:b] = vowel * scale
            voicing[a:b] = 1.0
            if detail.stressed:
                centre = 0.5 * (start + end)
                accents += rng.uniform(0.6, 1.4) * np.exp(-0.5 * ((t - centre) / (0.3 * (end - start))) ** 2)
                loudness[a:b] = 10.0 ** (rng.uniform(1.0, 3.0) / 20.0)
            continue
        cons = CONSONANTS[detail]
        formants[a:b, :3] = np.array(cons.formants) * scale[:3]
        level = 10.0 ** (cons.level_db / 20.0)
        if cons.kind in ("nasal", "liquid"):
            voicing[a:b] = level
        elif cons.kind == "fricative":
            noise[a:b] = level
            voicing[a:b] = 0.3 if cons.voiced else 0.0
            consonant[a:b] = kind_index[detail]
        else:  # plosive: closure (voice bar if voiced), then a short burst
            burst = max(a + 1, b - int(0.018 * CONTROL_RATE))
            voicing[a:burst] = 0.15 if cons.voiced else 0.0
            noise[burst:b] = level
            consonant[burst:b] = kind_index[detail]

    # F0 in semitones re the emotion's level: global contour, accents, slow drift, tremor.
    u = t / max(total, 1e-3)
    shapes = {"fall": -3.0 * u, "flat": -0.8 * u, "rise": -1.5 * u + 7.0 * np.clip((u - 0.75) / 0.25, 0, 1) ** 2,
              "risefall": 3.0 * np.sin(np.pi * np.clip(u * 1.1, 0, 1)) - 2.0 * u}
    shape = (1.0 - p["intensity"]) * shapes[PROSODY["neutral"].contour] + p["intensity"] * shapes[contour]
    drift = np.cumsum(rng.normal(0, 1, n)) / np.sqrt(CONTROL_RATE)
    drift = (drift - drift.mean()) * 0.6
    semitones = p["f0_range"] * (shape + 3.0 * accents + drift)
    tremor = p["tremor"] * np.sin(2 * np.pi * rng.uniform(5, 7) * t + rng.uniform(0, 2 * np.pi))
    f0 = speaker.f0 * p["f0_scale"] * 2.0 ** (semitones / 12.0) * (1.0 + tremor)

    smooth = np.hanning(int(0.03 * CONTROL_RATE) + 2)[1:-1]
    smooth /= smooth.sum()
    formants = np.stack([np.convolve(np.pad(formants[:, k], len(smooth), mode="edge"), smooth, "same")
                         [len(smooth):-len(smooth)] for k in range(5)], axis=1)
    return dict(duration=total, f0=np.clip(f0, 50.0, 600.0),
                voicing=np.convolve(voicing * loudness, smooth, "same"),
                noise=np.convolve(noise * loudness, smooth, "same"), consonant=consonant, formants=formants)


def _resonances(formants: np.ndarray, bandwidths: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """Magnitude of a cascade of second-order resonances, ``(n_frames, n_bins)``, 1 at 0 Hz.

    Each resonance is ``F^2 / sqrt((F^2 - f^2)^2 + (B f)^2)`` (an analogue
    two-pole section): a peak of about F/B at F, -12 dB/octave above.
    """
    f2 = freqs[None, :] ** 2
    gain = np.ones((formants.shape[0], freqs.size), dtype=np.float32)
    for k in range(formants.shape[1]):
        fk2 = formants[:, k:k + 1] ** 2
        gain *= fk2 / np.sqrt((fk2 - f2) ** 2 + (bandwidths[k] * freqs[None, :]) ** 2 + 1e-6)
    return gain


@functools.lru_cache(maxsize=32)
def _consonant_shapes(sample_rate: int, n_fft: int, formant_scale: float) -> np.ndarray:
    """Noise-band magnitude of each consonant class (row 0 = none), ``(1 + n_classes, n_bins)``."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    rows = [np.zeros_like(freqs)]
    for cons in CONSONANTS.values():
        if cons.kind in ("fricative", "plosive"):
            octaves = np.log2(np.maximum(freqs, 20.0) / (cons.centre_hz * formant_scale))
            rows.append(np.exp(-0.5 * (octaves / (0.5 * cons.width_octaves)) ** 2))
        else:
            rows.append(np.zeros_like(freqs))
    shapes = np.asarray(rows, dtype=np.float32)
    shapes.setflags(write=False)
    return shapes


@functools.lru_cache(maxsize=16)
def _channel_response(sample_rate: int, n_fft: int, style: CorpusStyle) -> np.ndarray:
    """Magnitude of the corpus's microphone/room colouring and pass band."""
    freqs = np.maximum(np.fft.rfftfreq(n_fft, 1.0 / sample_rate), 1.0)
    points = np.array(style.eq, dtype=float)
    eq_db = np.interp(np.log2(np.maximum(freqs, 20.0)), np.log2(points[:, 0]), points[:, 1])
    low, high = style.band
    highpass = 1.0 / np.sqrt(1.0 + (low / freqs) ** 8)
    lowpass = 1.0 / np.sqrt(1.0 + (freqs / high) ** 16)
    response = (10.0 ** (eq_db / 20.0) * highpass * lowpass).astype(np.float32)
    response.setflags(write=False)
    return response


def _reverberate(signal: np.ndarray, rt60: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Convolve with a direct path plus an exponentially decaying noise tail (RT60 ``rt60`` s)."""
    length = int(rt60 * sample_rate)
    decay = np.exp(-6.9 * np.arange(length) / length)  # -60 dB at rt60
    tail = rng.standard_normal(length) * decay
    tail[: int(0.003 * sample_rate)] = 0.0  # first reflections arrive after the direct sound
    response = np.concatenate([[1.0], 0.25 * tail / np.sqrt(np.sum(tail ** 2) / sample_rate * 50.0 + 1e-12)])
    return fftconvolve(signal, response)[: signal.size]
