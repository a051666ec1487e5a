"""ASGI entry point: HTTP through Django, websockets through Channels with the same session auth."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (Django must be set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from inference import sandbox  # noqa: E402
from tutor.routing import websocket_urlpatterns  # noqa: E402
from tutor.ta.services import ta_preload  # noqa: E402
from tutor.teachback.services import scorer_preload  # noqa: E402

ta_preload()  # TUTOR_TA_PRELOAD: the embedding model in memory before this process takes a request
scorer_preload()  # TUTOR_TEACHBACK_PRELOAD: the teach-back scorer's int8 model too
if settings.TUTOR_SANDBOX_WARM:
    sandbox.warm()  # the answer checker's first worker (and its forkserver) started before the first answer

# What is loaded by now (Django, the app's modules, the embedding model) lives as long as the process. Out of the
# cyclic collector's sight it is not scanned again: a full collection over its half a million objects is a pause
# of a few hundred milliseconds for every student of the process at once.
gc.freeze()

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
})
