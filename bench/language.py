"""The cost of choosing each message's language: the detector's load once per process, its CPU per
message, and how often it is right on short and whole-sentence customer messages.

The detector is py3langid restricted to the sample configuration's languages (en, es, fr, de), as
the server runs it; each message then goes through ``Texts.choose`` as a conversation's first
message (no hint, no earlier language). CPU is process time, so other processes do not inflate it.

    .venv/bin/python bench/language.py [--runs 2000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from parley.settings import load_settings  # noqa: E402
from parley.stores.language import LangidDetector  # noqa: E402

SENTENCES = {
    "en": ["Where is my package? It has been a week", "How do I change the email on my account",
           "My card was charged twice for the same order", "Can I return shoes I already wore once"],
    "es": ["¿Dónde está mi paquete? Ya pasó una semana", "¿Cómo cambio el correo de mi cuenta?",
           "Me cobraron dos veces el mismo pedido", "¿Puedo devolver unos zapatos que ya usé?"],
    "fr": ["Où est mon colis ? Cela fait une semaine", "Comment changer l'adresse e-mail de mon compte",
           "Ma carte a été débitée deux fois pour la même commande", "Puis-je retourner des chaussures portées"],
    "de": ["Wo ist mein Paket? Es ist schon eine Woche her", "Wie ändere ich die E-Mail meines Kontos",
           "Meine Karte wurde für dieselbe Bestellung zweimal belastet", "Kann ich getragene Schuhe zurückgeben"],
}
SHORT = {"en": ["hello", "thanks", "refund please"], "es": ["hola", "gracias", "mi pedido"],
         "fr": ["bonjour", "merci", "ma commande"], "de": ["hallo", "danke", "mein Paket"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    texts = load_settings(ROOT / "config" / "parley.yaml", environ={}).catalog
    started = time.process_time()
    detect = LangidDetector(texts.languages).load()
    print(f"detector load (once per process): {time.process_time() - started:.2f} s CPU")
    messages = [m for group in (SENTENCES, SHORT) for ms in group.values() for m in ms]
    started = time.process_time()
    for n in range(args.runs):
        texts.choose(current=None, hint=None, text=messages[n % len(messages)], detect=detect)
    per = (time.process_time() - started) / args.runs * 1000
    print(f"choose() per message, detector included: {per:.3f} ms CPU ({args.runs} runs)")
    for name, group in (("whole sentences", SENTENCES), ("one or two words", SHORT)):
        right = sum(texts.choose(current=None, hint=None, text=m, detect=detect) == language
                    for language, ms in group.items() for m in ms)
        total = sum(len(ms) for ms in group.values())
        print(f"right language, {name}: {right}/{total}")


if __name__ == "__main__":
    main()
