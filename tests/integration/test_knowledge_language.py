"""A knowledge base in another language is read with that language's stemmer (``knowledge.language``).

A small Spanish knowledge base, TF-IDF only (``embedding_model: off``, at its measured threshold
0.14), asked through the widget: "olvidándola otra vez" ("forgetting it again") shares no word with
the password article as written, only stems ("olvid-": olvidé, olvidaste) once Spanish Snowball
has read both.
"""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest
import yaml
from flask.testing import FlaskClient

from parley.core.knowledge import Stem
from parley.errors import ConfigError
from parley.settings import load_settings
from parley.webhooks.app import create_app
from tests.conftest import CONFIG

SAMPLE = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
ARTICLES = {
    "contrasena": ("Restablecer la contraseña", "olvidé mi contraseña",
                   "Abre Iniciar sesión y elige Olvidaste tu contraseña. "
                   "Te enviaremos un enlace por correo."),
    "cancelar": ("Cancelar la suscripción Acme Plus", "dar de baja Acme Plus",
                 "Entra en Mi cuenta, abre Acme Plus y pulsa Cancelar. "
                 "Sigue activa hasta el final del periodo."),
    "envios": ("Plazos de envío", "cuándo llega mi pedido",
               "Los pedidos salen del almacén en 24 horas y llegan en 3 a 5 días laborables."),
    "facturas": ("Descargar una factura", "necesito una factura",
                 "Las facturas están en Mis pedidos: abre el pedido y pulsa Descargar factura."),
}
PARAPHRASE = "olvidándola otra vez"


def config_file(tmp_path: Path, **knowledge: object) -> Path:
    articles = tmp_path / "kb"
    articles.mkdir(exist_ok=True)
    for article_id, (title, question, body) in ARTICLES.items():
        front = f"---\nid: {article_id}\ntitle: {title}\nquestions:\n  - {question}\n---\n"
        (articles / f"{article_id}.md").write_text(front + body + "\n", encoding="utf-8")
    config = copy.deepcopy(SAMPLE)
    config["knowledge"] = {"path": str(articles), "min_confidence": 0.14, "embedding_model": "off",
                           **knowledge}
    file = tmp_path / "parley.yaml"
    file.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return file


def answer(tmp_path: Path, language: str) -> str:
    settings = load_settings(config_file(tmp_path, language=language),
                             environ={"PARLEY_DATA_DIR": str(tmp_path / "var")})
    app = create_app(settings)
    try:
        client: FlaskClient = app.test_client()
        response = client.post("/widget/api/messages", json={"text": PARAPHRASE, "language": "es"})
        assert response.status_code == 200, response.get_json()
        return response.get_json()["replies"][0]["text"]
    finally:
        app.extensions["parley"].close()


def test_a_spanish_knowledge_base_answers_a_paraphrase_its_stemmer_recognises(tmp_path: Path) -> None:
    assert "Te enviaremos un enlace por correo" in answer(tmp_path, "es")


def test_read_with_english_stems_the_same_paraphrase_is_not_understood(tmp_path: Path) -> None:
    text = answer(tmp_path, "en")
    assert "Te enviaremos un enlace" not in text
    assert text.startswith("No estoy seguro de poder responder a eso.")  # the customer's language still


@pytest.mark.parametrize("language", ["klingon", "ja", ""])
def test_a_language_without_a_stemmer_fails_at_start_naming_file_key_and_reason(tmp_path: Path,
                                                                                 language: str) -> None:
    file = config_file(tmp_path, language=language)
    with pytest.raises(ConfigError) as caught:
        load_settings(file, environ={"PARLEY_DATA_DIR": str(tmp_path / "var")})
    message = str(caught.value)
    assert message.startswith(f"{file}: ") and "knowledge.language" in message
    assert "has no Snowball stemmer; use one of: arabic," in message and "spanish" in message


# The bytes ``pickle.dumps(Stem())`` wrote before stemmers had a language: trained artefacts hold them.
PICKLED_BEFORE = (b"\x80\x04\x95)\x00\x00\x00\x00\x00\x00\x00\x8c\x15parley.core.knowledge\x94"
                  b"\x8c\x05_Stem\x94\x93\x94)\x81\x94}\x94b.")


def test_a_stemmer_names_its_language_and_english_stays_as_pickled_before() -> None:
    spanish = Stem("es")
    assert repr(Stem()) == "Stem('english')" and repr(spanish) == "Stem('spanish')"  # cache keys
    assert pickle.dumps(Stem()) == PICKLED_BEFORE
    assert pickle.loads(PICKLED_BEFORE)("Forgotten passwords") == "forgotten password"
    again = pickle.loads(pickle.dumps(spanish))
    assert repr(again) == "Stem('spanish')" and again("olvidándola olvidé") == "olvid olvid"


def test_models_of_the_knowledge_base_stem_in_its_language(tmp_path: Path) -> None:
    # What `parley train` and the start's knowledge model learn from: the same articles, the same stems.
    from parley.data.training import knowledge_examples, train
    from parley.stores.knowledge import load_articles

    config_file(tmp_path)
    examples = knowledge_examples(load_articles(tmp_path / "kb"))
    words = {}
    for language in ("es", "en"):
        model, _ = train(examples, kind="tfidf-logreg", holdout=0.0, language=language)
        view = dict(model.pipeline.named_steps["features"].transformer_list)["words"]
        words[language] = set(view.vocabulary_)
        assert pickle.loads(pickle.dumps(model.pipeline)).predict([PARAPHRASE]) == model.pipeline.predict([PARAPHRASE])
    assert {"olvid", "contraseñ", "factur"} <= words["es"]  # olvidé, contraseña, facturas: Spanish stems
    assert "olvid" not in words["en"] and "olvidé" in words["en"]
    # The start's model of the knowledge base (the default kind, with embeddings), as the index reads it.
    from parley.data.knowledge_model import knowledge_model_of
    from parley.stores.embeddings import load_embedder
    from parley.stores.knowledge import load_index

    index = load_index(tmp_path / "kb", embedder=load_embedder(None), language="es")
    fitted = knowledge_model_of(index, cache_dir=tmp_path, embedding_model=None)
    assert fitted is not None
    view = dict(fitted.pipeline.named_steps["features"].transformer_list)["words"]
    assert "olvid" in view.vocabulary_
