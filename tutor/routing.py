from django.urls import path

from tutor.consumers import SessionConsumer

websocket_urlpatterns = [
    path("ws/learn/<slug:slug>/", SessionConsumer.as_asgi()),
]
