from django.urls import path

from tutor.consumers import SessionConsumer
from tutor.ta.consumers import TAConsumer

websocket_urlpatterns = [
    path("ws/learn/<slug:slug>/", SessionConsumer.as_asgi()),
    path("ws/learn/<slug:slug>/ask/", TAConsumer.as_asgi()),
]
