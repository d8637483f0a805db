#!/usr/bin/env python3
"""Log in through a Gatehouse-protected page with a real browser (headless Chromium driven by Selenium).

Usage:
    .venv-test/bin/python scripts/browser/login.py --start-url URL --user NAME --password SECRET
        [--screenshots DIR] [--timeout SECONDS] [--chromium PATH] [--chromedriver PATH]

Needs Debian's `chromium` and `chromium-driver` packages (/usr/bin/chromium, /usr/bin/chromedriver; Selenium
Manager is never used, so nothing is downloaded) and Selenium from scripts/requirements-test.txt.

It starts headless Chromium with a fresh profile (--headless=new --no-sandbox --disable-dev-shm-usage, no
proxy, no background network), opens --start-url, which must lead (through redirects) to the login page of
the OpenID provider (Canaille 0.3.6, see scripts/oidc/canaille_provider.py), saves DIR/idp-login.png, fills
the login page (field `login`, button `answer`), then the password page (field `password`; the page also has
a decoy text input `username` for password managers, left alone) and, if it appears, accepts the consent
page (button `answer` = `accept`). It then waits until the browser is back on the origin of --start-url with
the document loaded, saves DIR/final-page.png and prints ONE JSON line on stdout:

    {"ok": true, "final_url": ..., "title": ..., "body_text": <document.body.innerText>,
     "cookies": [names of the cookies the browser holds for the final URL], "consent": true|false,
     "steps": ["login", "password", ...]}

On failure it prints {"ok": false, "error": ..., "url": <current URL or null>, "page_excerpt": ...}, saves
DIR/failure.png when it can, and exits 1. Every wait is a WebDriverWait bounded by --timeout (also the page
load timeout); each WebDriver command is bounded by --timeout + 30 s. Logs go to stderr.

Seen with Chromium 156 (Debian 12) and Canaille 0.3.6 on http loopback:
- Cookies do not depend on the port: with the provider and the protected site both on 127.0.0.1, "cookies"
  also lists the provider's cookies (`canaille`, `canaille_login_history`), the protected site receives
  them, and the provider receives the site's cookies.
- 127.0.0.1:A and 127.0.0.1:B are the same site, so SameSite=Strict cookies come along on the callback.
  With the site on http://localhost:PORT and the provider on 127.0.0.1 (two sites), SameSite=Strict cookies
  are NOT sent on the callback nor on the redirect that follows it; Lax and None cookies are.
- Secure and __Host- cookies set over plain http on 127.0.0.1 or localhost are kept and sent (both are
  potentially trustworthy origins).
- Consent: the provider script's startup logins already consented for alice and bob, so no consent page
  appears unless the authorization request carries prompt=consent (then "consent" is in "steps").
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
import urllib.parse

PROG = "browser_login"
MAX_STEPS = 8  # login, password, consent, plus a few repeats before giving up


class Failure(Exception):
    """A login flow error, reported in the JSON line."""


def log(message: str) -> None:
    print(f"[{PROG}] {message}", file=sys.stderr, flush=True)


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, separators=(", ", ": ")) + "\n")
    sys.stdout.flush()


def origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), (parts.netloc or "").lower()


def make_driver(args, profile_dir: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = args.chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",  # we run as root in the test containers
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile_dir}",
        "--window-size=1280,900",
        "--no-first-run",
        "--no-default-browser-check",
        "--no-proxy-server",  # loopback only, whatever http_proxy says
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-gpu",
        "--password-store=basic",
    ):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs",
        {
            "credentials_enable_service": False,
            "profile.password_manager_enabled": False,
            "profile.password_manager_leak_detection": False,
        },
    )
    options.page_load_strategy = "normal"
    # Bounds every WebDriver HTTP command: Selenium's client takes the default socket timeout.
    socket.setdefaulttimeout(args.timeout + 30)
    service = Service(executable_path=args.chromedriver, log_output=os.path.join(profile_dir, "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(args.timeout)
    driver.set_script_timeout(args.timeout)
    return driver


def page_text(driver, limit: int = 2000) -> str | None:
    try:
        text = driver.execute_script("return document.body ? document.body.innerText : null;")
    except Exception:
        return None
    return text[:limit] if isinstance(text, str) else None


def screenshot(driver, directory: str | None, name: str) -> None:
    if not directory:
        return
    path = os.path.join(directory, name)
    if driver.save_screenshot(path):
        log(f"saved {path}")
    else:
        log(f"could not save {path}")


def detect_state(driver, start_origin, started: bool):
    """The loaded page: "login", "password", "consent", "back" (on the start origin after the login page),
    "neterror" (Chromium's error page: refused, unsafe port...), "other" (a page elsewhere that is none of
    these: an error page) or None (loading, or still on the start origin before the login page, which a
    script or meta refresh may yet leave)."""
    from selenium.webdriver.common.by import By

    if driver.execute_script("return document.readyState;") != "complete":
        return None
    if driver.find_elements(By.CSS_SELECTOR, "body.neterror"):  # Chromium's own error page, e.g. refused
        return "neterror"
    if origin(driver.current_url) == start_origin:
        return "back" if started else None
    if driver.find_elements(By.CSS_SELECTOR, "form input[name='login']"):
        return "login"
    if driver.find_elements(By.CSS_SELECTOR, "form input[name='password'][type='password']"):
        return "password"
    if driver.find_elements(By.CSS_SELECTOR, "form button[name='answer'][value='accept']"):
        return "consent"
    return "other"


def wait_state(driver, timeout: float, start_origin, steps: list[str]) -> str:
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    def condition(d):
        try:
            return detect_state(d, start_origin, bool(steps)) or False
        except StaleElementReferenceException:
            return False

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)
    except TimeoutException:
        if not steps:
            raise Failure(f"the start URL did not lead to the provider's login page within {timeout:g} s") from None
        raise Failure(f"no provider page and not back on the start origin within {timeout:g} s "
                      f"after the {steps[-1]} page") from None


def submit_and_wait(driver, timeout: float, field, button) -> None:
    """Click the form's button and wait until the page was replaced (the field went stale)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    button.click()
    try:
        WebDriverWait(driver, timeout, poll_frequency=0.1).until(EC.staleness_of(field))
    except TimeoutException:
        raise Failure(f"the page did not change within {timeout:g} s after the form was submitted") from None


def form_of(element):
    from selenium.webdriver.common.by import By

    return element.find_element(By.XPATH, "./ancestor::form[1]")


def run(args, driver) -> dict:
    from selenium.webdriver.common.by import By

    start_origin = origin(args.start_url)
    steps: list[str] = []
    log(f"opening {args.start_url}")
    driver.get(args.start_url)
    for _ in range(MAX_STEPS):
        state = wait_state(driver, args.timeout, start_origin, steps)
        log(f"{state} at {driver.current_url}")
        if state == "back":
            break
        if state == "neterror":
            raise Failure(f"the browser could not load {driver.current_url}")
        if state == "other":
            raise Failure(f"unexpected page (title {driver.title!r}) after {steps[-1] if steps else 'the start URL'}")
        if state in steps:
            what = "consent" if state == "consent" else "user name or password"
            raise Failure(f"the {state} page came back (rejected {what}?)")
        steps.append(state)
        if state == "login":
            screenshot(driver, args.screenshots, "idp-login.png")
            field = driver.find_element(By.CSS_SELECTOR, "form input[name='login']")
            field.clear()
            field.send_keys(args.user)
            button = form_of(field).find_element(By.CSS_SELECTOR, "button[type='submit'][name='answer']")
        elif state == "password":
            field = driver.find_element(By.CSS_SELECTOR, "form input[name='password'][type='password']")
            field.clear()
            field.send_keys(args.password)
            button = form_of(field).find_element(By.CSS_SELECTOR, "button[type='submit']")
        else:  # consent
            button = driver.find_element(By.CSS_SELECTOR, "form button[name='answer'][value='accept']")
            field = button
        submit_and_wait(driver, args.timeout, field, button)
    else:
        raise Failure(f"not back on the start origin after {MAX_STEPS} pages ({', '.join(steps)})")
    if "login" not in steps:  # a provider session cannot exist in a fresh profile, but say so if it did
        raise Failure(f"back on the start origin without the login page ({', '.join(steps)})")

    screenshot(driver, args.screenshots, "final-page.png")
    return {
        "ok": True,
        "final_url": driver.current_url,
        "title": driver.title,
        "body_text": driver.execute_script("return document.body ? document.body.innerText : '';"),
        "cookies": sorted(c["name"] for c in driver.get_cookies()),
        "consent": "consent" in steps,
        "steps": steps,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Browser login through a Gatehouse-protected page.")
    parser.add_argument("--start-url", required=True, help="a Gatehouse-protected page")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--screenshots", help="directory for idp-login.png, final-page.png (and failure.png)")
    parser.add_argument("--timeout", type=float, default=30.0, help="bound of every wait in seconds")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = parser.parse_args(argv)
    if origin(args.start_url)[0] not in ("http", "https"):
        parser.error("--start-url must be an http or https URL")
    if args.screenshots:
        os.makedirs(args.screenshots, exist_ok=True)

    started = time.monotonic()
    driver = None
    with tempfile.TemporaryDirectory(prefix="gatehouse-chromium-") as profile_dir:
        try:
            try:
                import selenium  # noqa: F401
            except ImportError as exc:
                raise Failure(f"{exc} (interpreter {sys.executable}); install scripts/requirements-test.txt") from exc
            for path in (args.chromium, args.chromedriver):
                if not os.access(path, os.X_OK):
                    raise Failure(f"{path} is missing; apt-get install chromium chromium-driver")
            driver = make_driver(args, profile_dir)
            log(f"browser {driver.capabilities.get('browserVersion')} up after {time.monotonic() - started:.2f} s")
            result = run(args, driver)
            log(f"logged in after {time.monotonic() - started:.2f} s: {result['final_url']}")
            emit(result)
            return 0
        except Exception as exc:
            if isinstance(exc, Failure):
                message = str(exc)
            else:  # Selenium's exceptions keep the driver's message in .msg, without its stack trace
                message = f"{type(exc).__name__}: {getattr(exc, 'msg', None) or exc}".strip()
            url = excerpt = None
            if driver is not None:
                try:
                    url = driver.current_url
                except Exception:
                    pass
                excerpt = page_text(driver)
                try:
                    screenshot(driver, args.screenshots, "failure.png")
                except Exception:
                    pass
            log(f"failed: {message.splitlines()[0] if message else type(exc).__name__}")
            emit({"ok": False, "error": message, "url": url, "page_excerpt": excerpt})
            return 1
        finally:
            if driver is not None:
                try:
                    driver.quit()
                except Exception as exc:
                    log(f"quitting the browser failed: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
