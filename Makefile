# sigfoxsite: `make run` serves it, `make test` tests it. Both set up .venv and
# node_modules first, so a fresh clone needs only Python 3.11+ and Node/npm.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# Sync workers: two per core keeps the cores busy while others wait on the database.
WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) * 2 )))
PYTEST_ARGS ?=

.PHONY: run test install install-dev static migrate firmware-uno clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements.txt $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed
install-dev: $(VENV)/.installed-dev node_modules/.installed

# A first try needs no configuration: a local .env gets a random SECRET_KEY
# (kept across runs) and plain-HTTP settings, since there is no TLS here. It
# trusts no forwarded header: behind ngrok, callbacks need no proxy trust,
# and turning the HTTPS redirect off is enough (the suite never reads it).
.env:
	@echo "Creating .env for a local trial (see .env.example for production settings)"
	@printf '%s\n' \
	  "SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" \
	  "ALLOWED_HOSTS=localhost,127.0.0.1,[::1],.ngrok-free.app,.ngrok.io" \
	  "CSRF_TRUSTED_ORIGINS=https://*.ngrok-free.app,https://*.ngrok.io" \
	  "SECURE_SSL_REDIRECT=false" \
	  "SECURE_COOKIES=false" \
	  "SECURE_HSTS_SECONDS=0" > $@

static: install
	$(PY) manage.py collectstatic --noinput --verbosity 0

migrate: install .env
	$(PY) manage.py migrate --noinput

# gunicorn.conf.py: an access log that masks ?token= and never writes Authorization.
# The worker (manage.py runworker: device states, alerts) runs beside it; Ctrl-C
# stops both, and the worker goes too when gunicorn exits.
run: install .env migrate static
	$(PY) -u manage.py runworker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(VENV)/bin/gunicorn sigfoxsite.wsgi --config gunicorn.conf.py --bind $(HOST):$(PORT) \
	  --workers $(WORKERS) --access-logfile - --forwarded-allow-ips='127.0.0.1,::1'

# The suite runs on SQLite unless DATABASE_URL names another database.
test: install-dev
	npm test
	DEBUG=false SIGFOXSITE_READ_DOT_ENV=false SECRET_KEY=test-only-secret-key-not-for-production \
	  $(PY) manage.py collectstatic --noinput --verbosity 0
	SECRET_KEY=test-only-secret-key-not-for-production $(PY) -m pytest $(PYTEST_ARGS)

firmware-uno:
	firmware/build-uno.sh

clean:
	rm -rf $(VENV) node_modules staticfiles
