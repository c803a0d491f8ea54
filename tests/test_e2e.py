"""End to end in a real browser: Playwright drives Debian's Chromium (headless) against the app on 127.0.0.1.

Uploads a dataset and sees its report, asks a question in Compare and sees every arm answer, votes in the Arena
and sees the arms revealed; saves a screenshot of every tab to docs/screenshots/. Run with `make e2e`.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DATASET = [
    {"instruction": f"What is item {i}?", "input": "", "output": f"Item {i} is a sample. Hope this helps!"}
    for i in range(20)
]
DOCS = {"tower.txt": "The Eiffel Tower is in Paris. It was finished in 1889 and is 330 metres tall."}
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, models_dir, lm):
    """The full app on a fresh workspace with an adapter run and a knowledge base, served on a free port."""
    import app
    from common.workspace import Workspace
    from rag import IndexConfig
    from ui.services import Services

    root = tmp_path_factory.mktemp("e2e")
    ws = Workspace(root / "ws")
    (ws.root / "models").rmdir()
    (ws.root / "models").symlink_to(models_dir, target_is_directory=True)
    save_random_adapter(ws, lm)
    services = Services(ws)
    services.set_lm(lm)
    (root / "tower.txt").write_text(DOCS["tower.txt"], encoding="utf-8")
    services.kb("landmarks", IndexConfig(chunk_size=64, overlap=8), create=True).add_paths(
        [root / "tower.txt"]
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = app.launch(app.parse_args(["--port", str(port)]), services, prevent_thread_lock=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def save_random_adapter(ws, lm) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(lm.model.config)
    config = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(ws.runs_dir / "demo-run")
    ws.record_run("demo-run", ws.runs_dir / "demo-run", "finished", dataset="demo.json")


@pytest.fixture(scope="module")
def page(app_url):
    if not CHROMIUM.exists():
        pytest.skip("Chromium not installed: run `make e2e` (it installs it with apt)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(app_url)
        page.wait_for_selector("text=Fine-tune or RAG?")
        yield page
        browser.close()


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def visible(page, selector: str):
    return page.locator(f"{selector} >> visible=true")


def set_max_tokens(page, tokens: int) -> None:
    box = visible(page, 'input[aria-label="number input for Max new tokens"]')
    box.fill(str(tokens))
    box.press("Enter")


def wait_idle(page) -> None:
    """Wait until no output is still streaming (Gradio shows a status tracker on pending outputs)."""
    page.wait_for_function(
        "() => !document.querySelector('.generating, [data-testid=status-tracker]:not(.hide)')"
    )


def test_upload_compare_and_vote_in_a_browser(page, tmp_path):
    data = tmp_path / "demo.json"
    data.write_text(json.dumps(DATASET), encoding="utf-8")
    open_tab(page, "Data")
    page.locator("input[type=file][accept*='.jsonl']").first.set_input_files(str(data))
    page.wait_for_selector("text=Saved as")
    assert page.get_by_text("usable of 20 rows (alpaca)").is_visible()
    wait_idle(page)
    shot(page, "data")

    for tab in ("Train", "Knowledge"):
        if page.get_by_role("tab", name=tab, exact=True).count():
            open_tab(page, tab)
            page.wait_for_timeout(1500)
            shot(page, tab.lower())

    open_tab(page, "Compare")
    visible(page, "button:has-text('Refresh lists')").click()
    page.wait_for_timeout(1500)
    for arm in ("base+RAG", "fine-tuned+RAG"):
        page.get_by_label(arm, exact=True).check()
    page.get_by_text("Generation settings").click()
    set_max_tokens(page, 16)
    visible(page, "textarea[placeholder='Ask every arm at once']").fill("How tall is the Eiffel Tower?")
    visible(page, "button:has-text('Ask')").first.click()
    page.wait_for_function("() => document.querySelectorAll('[data-testid=\"bot\"]').length >= 4")
    wait_idle(page)
    answers = visible(page, '[data-testid="bot"]')
    assert answers.count() == 4 and all(answers.nth(i).inner_text().strip() for i in range(4))
    assert visible(page, ".badge-row").count() == 4
    assert page.get_by_text("Sources (1)").count() == 2
    shot(page, "compare")

    open_tab(page, "Arena")
    set_max_tokens(page, 16)
    visible(page, "textarea[placeholder='Ask a question, or draw one']").fill("Where is the Eiffel Tower?")
    visible(page, "button:has-text('Ask A and B')").click()
    page.wait_for_selector("text=Vote to reveal")
    visible(page, "button:has-text('A is better')").click()
    page.wait_for_selector("text=You voted")
    assert page.get_by_text("A was").is_visible()
    shot(page, "arena")

    for tab in ("Evaluate", "Report"):
        if page.get_by_role("tab", name=tab, exact=True).count():
            open_tab(page, tab)
            page.wait_for_timeout(1500)
            shot(page, tab.lower())
