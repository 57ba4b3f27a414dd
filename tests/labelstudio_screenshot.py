"""A PNG of a task in Label Studio's labeling page, by headless Chromium (run by a Python with playwright)."""

import argparse
import sys
import tempfile

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", help="Label Studio, e.g. http://127.0.0.1:8080")
    parser.add_argument("email")
    parser.add_argument("password")
    parser.add_argument("project", type=int)
    parser.add_argument("task", type=int)
    parser.add_argument("output", help="the PNG to write")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    arguments = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            profile, executable_path=arguments.chromium, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 760})
        page = browser.new_page()
        page.goto(f"{arguments.url}/user/login/")
        page.fill("input[name=email]", arguments.email)
        page.fill("input[name=password]", arguments.password)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login" not in url, timeout=60_000)
        page.goto(f"{arguments.url}/projects/{arguments.project}/data?task={arguments.task}")
        page.wait_for_selector(".htx-highlight, [class*=htx-highlight]", timeout=120_000)
        page.wait_for_timeout(2000)  # the regions' colours and the side panel settle
        page.screenshot(path=arguments.output)
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
