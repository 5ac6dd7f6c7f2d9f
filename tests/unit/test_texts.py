"""The ``texts:`` section: validated at start, per-language variants with fallback, and the
language a conversation speaks (the real offline detector, restricted to the configured languages)."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest
import yaml

from parley.core.dialogue import Dialogue, Policy
from parley.core.engine import RetrievalEngine
from parley.core.envelope import Envelope
from parley.core.handoff import BusinessHours, HandoffRules
from parley.core.texts import KEYS
from parley.errors import ConfigError
from parley.settings import load_settings
from parley.settings.texts import TextsSettings
from parley.stores.language import LangidDetector
from parley.stores.memory import MemorySessionStore
from tests.conftest import CONFIG, ROOT

SAMPLE = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))


def load_with(tmp_path: Path, texts: dict) -> object:
    file = tmp_path / "parley.yaml"
    file.write_text(yaml.safe_dump({"texts": texts}), encoding="utf-8")
    return load_settings(file, environ={"PARLEY_KNOWLEDGE": str(ROOT / "config" / "knowledge")})


@pytest.mark.parametrize(("texts", "reason"), [
    ({"greetin": {"en": "Hi"}}, "texts.greetin: unknown key (check the spelling)"),
    ({"languages": ["en", "es"], "outside_hours": {"es": "Volvemos {cuando}"}},
     "texts.outside_hours: Value error, es: unknown placeholder {cuando} (this text may use: {day}, {time}, "
     "{zone})"),
    ({"joined": {"en": "{name joined"}}, "texts.joined: Value error, en: "),
    ({"languages": ["en", "es"], "thanks": {"ed": "Thanks"}},
     "texts: Value error, thanks.ed: language not in texts.languages (en, es)"),
    ({"default_language": "english"}, "texts.default_language: Value error, 'english' is not a two- or"),
    ({"default_language": "es", "greeting": {"es": "Hola"}},
     "no es text, and es is the default language (every text needs one)"),
    ({"desk": {"claimd_note": "Übernommen von {actor}."}}, "texts.desk: Value error, claimd_note: not a desk text"),
    ({"desk": {"claimed_note": "Übernommen von {name}."}},
     "texts.desk: Value error, claimed_note: unknown placeholder {name} (this text may use: {actor})"),
    ({"desk": {"reply_hint": "Notizen beginnen mit {prefix"}}, "texts.desk: Value error, reply_hint: "),
    ({"desk_language": "deutsch"}, "texts.desk_language: Value error, 'deutsch' is not a two- or"),
    ({"desk": {"rated_note": "Bewertung {score:d}/5"}},
     "rated_note: {score:d}: write {score} alone (no conversion or format spec)"),
    ({"desk": {"claim": "  "}}, "texts.desk: Value error, claim: empty (leave the key out to keep the default)"),
])
def test_a_wrong_texts_section_fails_at_start_naming_file_key_and_reason(tmp_path: Path, texts: dict,
                                                                         reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_with(tmp_path, texts)
    assert str(caught.value).startswith(f"{tmp_path / 'parley.yaml'}: ")
    assert reason in str(caught.value)


def test_a_missing_variant_reads_the_default_language_and_is_listed(tmp_path: Path) -> None:
    settings = load_with(tmp_path, {"languages": ["en", "fr"], "greeting": {"en": "Hello!", "fr": "Bonjour !"},
                                    "rated": {"en": "Thanks for rating!"}})
    texts = settings.catalog
    assert texts.get("greeting", "fr") == "Bonjour !"
    assert texts.get("rated", "fr") == "Thanks for rating!"  # not written in French
    assert "texts.rated.fr: not written, en is used" in settings.texts.gaps()
    assert "texts.greeting.fr: not written, en is used" not in settings.texts.gaps()


def test_the_sample_configuration_is_complete_in_four_languages() -> None:
    settings = load_settings(CONFIG, environ={})
    assert settings.texts.all_languages == ("en", "es", "fr", "de")
    assert settings.texts.gaps() == []
    assert SAMPLE["texts"]["quick_replies"]["de"][-1] == settings.catalog.replies("de")[-1]


@pytest.fixture(scope="module")
def dialogue() -> Dialogue:
    settings = load_settings(CONFIG, environ={"PARLEY_KNOWLEDGE": str(ROOT / "config" / "knowledge"),
                                              "PARLEY_EMBEDDING_MODEL": "off"})
    from parley.stores.knowledge import load_index
    from parley.wiring import policy_of

    return Dialogue(engine=RetrievalEngine(load_index(settings.knowledge.path)),
                    sessions=MemorySessionStore(ttl=3600), policy=policy_of(settings),
                    detect=LangidDetector(settings.texts.all_languages))


def say(dialogue: Dialogue, conversation: str, text: str, n: int, language: str | None = None) -> str:
    envelope = Envelope(channel="test", conversation_id=conversation, message_id=f"{conversation}-{n}",
                        sender="c", text=text, language=language)
    return dialogue.handle(envelope)[0].text


def test_the_language_comes_from_the_words_and_stays_on_a_short_message(dialogue: Dialogue) -> None:
    assert say(dialogue, "a", "Hola", 1).startswith("¡Hola! Soy el asistente de Acme")
    say(dialogue, "a", "ok", 2)  # one word is no reason to switch
    assert dialogue.sessions.load("a").language == "es"
    assert say(dialogue, "a", "gracias", 3) == "¡De nada! ¿Puedo ayudarte con algo más?"
    assert say(dialogue, "a", "thanks", 4) == "¡De nada! ¿Puedo ayudarte con algo más?"
    # A whole sentence in another language is: the customer switched.
    assert say(dialogue, "a", "Merci, j'ai encore une question sur ma commande", 5).startswith("Je ne suis pas")


def test_the_channels_hint_sets_the_language_of_a_short_first_message(dialogue: Dialogue) -> None:
    assert say(dialogue, "b", "hi", 1, language="de-AT").startswith("Hallo! Ich bin der Acme-Assistent")
    assert say(dialogue, "c", "hi", 1, language="pt-BR").startswith("Hi! I'm the Acme assistant")
    # The hint does not outweigh what the customer plainly writes.
    assert "reset" in say(dialogue, "d", "How do I reset my password?", 1, language="es").lower()


def test_a_fallback_offers_a_person_in_the_customers_language_and_the_button_works() -> None:
    settings = load_settings(CONFIG, environ={"PARLEY_KNOWLEDGE": str(ROOT / "config" / "knowledge"),
                                              "PARLEY_EMBEDDING_MODEL": "off"})
    from parley.stores.knowledge import load_index
    from parley.wiring import policy_of

    hours = BusinessHours(timezone="UTC", days=(6,), opens=time(8), closes=time(9))
    policy = Policy.speaking(settings.catalog, handoff=HandoffRules(desk=True, hours=hours),
                             min_confidence=policy_of(settings).min_confidence)
    sunday_noon = 1764504000.0  # 2025-11-30 12:00 UTC, a Sunday: people are back next Sunday
    talk = Dialogue(engine=RetrievalEngine(load_index(settings.knowledge.path)),
                    sessions=MemorySessionStore(ttl=3600), policy=policy, clock=lambda: sunday_noon,
                    detect=LangidDetector(settings.texts.all_languages))
    envelope = Envelope(channel="test", conversation_id="f", message_id="f-1", sender="c",
                        text="Je voudrais savoir la couleur préférée de votre directeur", language="fr")
    [reply] = talk.handle(envelope)
    assert reply.text.startswith("Je ne suis pas sûr") and reply.quick_replies == ("Parler à une personne",)
    pressed = Envelope(channel="test", conversation_id="f", message_id="f-2", sender="c",
                       text="Parler à une personne")
    told = talk.handle(pressed)[0].text
    assert told.startswith("Notre équipe d'assistance est absente") and "revient dimanche à 08:00 (UTC)" in told


def test_check_config_warns_of_each_text_a_language_lacks(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from parley.cli import main

    sample = dict(SAMPLE)
    texts = {key: dict(value) if isinstance(value, dict) else value for key, value in sample["texts"].items()}
    del texts["rated"]["de"], texts["ui_send"]["fr"]
    config = tmp_path / "parley.yaml"
    config.write_text(yaml.safe_dump({**sample, "texts": texts}, allow_unicode=True), encoding="utf-8")
    result = CliRunner(mix_stderr=False).invoke(main, ["--config", str(config), "check-config"],
                                env={"PARLEY_KNOWLEDGE": str(ROOT / "config" / "knowledge"),
                                     "PARLEY_EMBEDDING_MODEL": "off", "PARLEY_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert "warning: texts.rated.de: not written, en is used" in result.stderr
    assert "warning: texts.ui_send.fr: not written, en is used" in result.stderr
    assert result.stderr.count("warning:") == 2
    assert "texts in en, es, fr, de" in result.stdout


def test_the_desk_reads_its_own_language_and_braces_as_written() -> None:
    french = {key: {"fr": "texte"} for key in KEYS}  # every customer text in French, none for the desk
    assert TextsSettings(default_language="fr", **french).desk_texts().language == "en"  # "Monday", not "lundi"
    german = TextsSettings(desk={"claim": "Übernehmen", "home_empty": "Niemand {{wartet}}"}, desk_language="de")
    texts = german.desk_texts()
    assert (texts.language, texts.claim, texts.home_empty) == ("de", "Übernehmen", "Niemand {wartet}")
    assert texts.claimed_note == "Claimed by {actor}."  # not written: the English one
