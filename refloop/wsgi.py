import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refloop.settings")
application = get_wsgi_application()

if os.environ.get("REFLOOP_WARM") == "1":  # set by `refloop serve`, whose gunicorn master loads this once (--preload)
    from refloop.lib.warm import warm

    warm()
