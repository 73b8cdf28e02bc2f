"""nginx terminating TLS in front of ursa, as the README's configuration
does: nginx sends X-Forwarded-Proto, ursa trusts it from 127.0.0.1
(--forwarded-allow-ips' default) and sets wsgi.url_scheme, so a Django
site with SECURE_SSL_REDIRECT and secure cookies, and no
SECURE_PROXY_SSL_HEADER, logs in to its admin over HTTPS (CSRF's origin
checks pass) and redirects plain HTTP once, without a loop.

The certificate is made for the test with openssl, for 127.0.0.1.
"""
import os
import re
import shutil
import subprocess

import pytest

from support.processes import STOP_TIMEOUT, free_port

from .harness import APPS_DIR, PYTHON, process_env
from .test_nginx import NGINX, nginx_main_config, start_nginx

requests = pytest.importorskip("requests")
pytest.importorskip("django", reason="Django is not installed (requirements-dev.txt)")
OPENSSL = shutil.which("openssl")
ADMIN_PASSWORD = "correct horse battery staple"

pytestmark = [
    pytest.mark.skipif(not os.path.exists(NGINX), reason="nginx is not installed (apt-get install nginx)"),
    pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed (apt-get install openssl)"),
]


def make_certificate(directory):
    """A self-signed certificate for 127.0.0.1 and app.example: (cert, key)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", key,
                    "-out", cert, "-subj", "/CN=app.example",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:app.example"],
                   check=True, capture_output=True, timeout=STOP_TIMEOUT)
    return cert, key


def tls_nginx_config(cert, key, upstream, plain_ports):
    """The README's TLS-terminating configuration (its server blocks), with
    the test's files and ports. Each attempt's plain HTTP port is appended
    to `plain_ports` (start_nginx retries when a port was taken meanwhile)."""
    # The same for HTTPS and plain HTTP: the app redirects to HTTPS itself.
    location = """
                location / {
                    proxy_pass http://ursa;
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                    proxy_set_header Host $http_host;
                    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                    proxy_set_header X-Forwarded-Proto $scheme;
                }"""

    def config_of(directory, port):
        plain_ports.append(free_port())
        return nginx_main_config(directory, None, f"""
            upstream ursa {{
                server {upstream};
                keepalive 8;
            }}
            server {{
                listen 127.0.0.1:{port} ssl;
                server_name app.example;
                ssl_certificate {cert};
                ssl_certificate_key {key};
                {location}
            }}
            server {{
                listen 127.0.0.1:{plain_ports[-1]};
                server_name app.example;
                {location}
            }}""")
    return config_of


@pytest.fixture
def django_behind_tls(procs, tmp_path):
    """(https_base, http_base, cert): the Django site served by ursa (two
    workers) behind nginx, which terminates TLS."""
    database = tmp_path / "site.sqlite3"
    env = {"DJANGOSITE_DB": str(database), "DJANGOSITE_ADMIN_PASSWORD": ADMIN_PASSWORD}
    subprocess.run([PYTHON, "-c", "import djangosite; djangosite.prepare()"], cwd=APPS_DIR, env=process_env(env),
                   check=True, capture_output=True, timeout=120)
    cert, key = make_certificate(tmp_path)
    ursa = procs.ursa("-b", "127.0.0.1:0", "-w", "2", "djangosite:application", env=env)
    plain_ports = []
    port, _ = start_nginx(procs, tmp_path, config_of=tls_nginx_config(cert, key, ursa.address[len("http://"):],
                                                                      plain_ports))
    return f"https://127.0.0.1:{port}", f"http://127.0.0.1:{plain_ports[-1]}", cert


def csrf_token_of(html):
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def test_django_admin_login_over_https_passes_csrf(django_behind_tls):
    https_base, _, cert = django_behind_tls
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would replace the test's certificate
    session.verify = str(cert)
    login_page = session.get(f"{https_base}/admin/login/?next=/admin/", allow_redirects=False, timeout=STOP_TIMEOUT)
    assert login_page.status_code == 200, login_page.text[:500]
    # Django made the CSRF cookie Secure, which it does only over HTTPS.
    assert "csrftoken" in session.cookies
    reply = session.post(f"{https_base}/admin/login/?next=/admin/", timeout=STOP_TIMEOUT, allow_redirects=False,
                         headers={"Referer": f"{https_base}/admin/login/", "Origin": https_base},
                         data={"csrfmiddlewaretoken": csrf_token_of(login_page.text), "username": "admin",
                               "password": ADMIN_PASSWORD, "next": "/admin/"})
    # A 403 here is CSRF's "Origin checking failed": Django took the request for plain HTTP.
    assert (reply.status_code, reply.headers.get("Location")) == (302, "/admin/"), reply.text[:500]
    admin = session.get(f"{https_base}/admin/", allow_redirects=False, timeout=STOP_TIMEOUT)
    assert admin.status_code == 200
    assert "Site administration" in admin.text


def test_ssl_redirect_sends_plain_http_to_https_once_and_https_is_served(django_behind_tls):
    https_base, http_base, cert = django_behind_tls
    plain = requests.get(f"{http_base}/admin/login/", allow_redirects=False, timeout=STOP_TIMEOUT)
    assert plain.status_code == 301
    assert plain.headers["Location"] == f"https://127.0.0.1:{http_base.rsplit(':', 1)[1]}/admin/login/"
    # Over HTTPS the same page is served, not redirected again (the loop
    # SECURE_SSL_REDIRECT makes when the server says "http" behind TLS).
    secure = requests.get(f"{https_base}/admin/login/", allow_redirects=False, timeout=STOP_TIMEOUT,
                          verify=str(cert))
    assert secure.status_code == 200
