"""A Django site with its admin, set up as a deployment behind a TLS-
terminating proxy sets it: SECURE_SSL_REDIRECT on, secure cookies, and no
SECURE_PROXY_SSL_HEADER, so that Django believes a request is HTTPS only
when the server's wsgi.url_scheme says so (ursa reads X-Forwarded-Proto
from a trusted proxy).

$DJANGOSITE_DB is the SQLite database file. `python -c "import djangosite;
djangosite.prepare()"` creates its tables and the superuser admin, whose
password is $DJANGOSITE_ADMIN_PASSWORD.
"""
import os

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="djangosite-test-only-" + "x" * 40,
    ALLOWED_HOSTS=["127.0.0.1", "localhost", "app.example"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
                    "django.contrib.sessions", "django.contrib.messages"],
    MIDDLEWARE=["django.middleware.security.SecurityMiddleware",
                "django.contrib.sessions.middleware.SessionMiddleware",
                "django.middleware.common.CommonMiddleware",
                "django.middleware.csrf.CsrfViewMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware",
                "django.contrib.messages.middleware.MessageMiddleware"],
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
                "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                                   "django.contrib.auth.context_processors.auth",
                                                   "django.contrib.messages.context_processors.messages"]}}],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3",
                           "NAME": os.environ.get("DJANGOSITE_DB", ":memory:")}},
    STATIC_URL="/static/",
    USE_TZ=True,
    SECURE_SSL_REDIRECT=True,
    SESSION_COOKIE_SECURE=True,
    CSRF_COOKIE_SECURE=True,
)
django.setup()

from django.contrib import admin  # noqa: E402  (needs the settings above)
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.urls import path  # noqa: E402

urlpatterns = [path("admin/", admin.site.urls)]
application = get_wsgi_application()


def prepare():
    from django.contrib.auth.models import User
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    User.objects.create_superuser("admin", "admin@app.example", os.environ["DJANGOSITE_ADMIN_PASSWORD"])
