"""The widget in the customer's language: a French browser meets a French widget, interface included."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Site


@pytest.fixture
def french_page(browser: Browser, site: Site) -> Iterator[Page]:
    # Playwright's locale sets what a French browser shows: navigator.language and Accept-Language.
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    context.set_default_timeout(10_000)
    site.cable.restore()
    page = context.new_page()
    page.goto(site.host_url)  # the shop's page says <html lang="en">: the customer's browser wins
    yield page
    context.close()


def test_a_french_browser_gets_the_widget_in_french(french_page: Page, output_dir: Path) -> None:
    page = french_page
    page.get_by_role("button", name="Ouvrir le chat").click()
    expect(page.get_by_role("dialog", name="Acme Support")).to_be_visible()
    expect(page.locator(".msg.bot").first).to_contain_text("Bonjour ! Je suis l'assistant d'Acme.")
    expect(page.locator(".quick button")).to_have_text(
        ["Suivre ma commande", "Faire un retour", "Réinitialiser mon mot de passe", "Parler à une personne"])
    expect(page.get_by_role("button", name="Envoyer")).to_be_visible()
    expect(page.get_by_role("button", name="Fermer le chat")).to_be_visible()
    box = page.get_by_role("textbox", name="Écrivez votre message")
    box.fill("Merci beaucoup")
    box.press("Enter")
    expect(page.locator(".msg.bot").nth(1)).to_contain_text("Avec plaisir ! Puis-je vous aider pour autre chose ?")
    expect(page.locator(".msg.user .sr").first).to_have_text("Vous :")
    box.evaluate("(el, text) => { el.value = text; }", "x" * 2001)  # set by a script, past maxlength
    box.press("Enter")
    expect(page.get_by_role("alert")).to_have_text("Votre message est trop long (2000 caractères maximum)")
    page.screenshot(path=output_dir / "widget-french.png")
