from django.urls import path

from tutor.lti import views

app_name = "lti"

urlpatterns = [
    path("login/", views.login, name="login"),
    path("launch/", views.launch, name="launch"),
    path("jwks/", views.jwks, name="jwks"),
    path("canvas.json", views.canvas_config, name="canvas_config"),
    path("configuration/", views.configuration, name="configuration"),
    path("deep-link/", views.deep_link_choose, name="deep_link_choose"),
    path("learn/<slug:slug>/concept/<slug:concept>/", views.concept, name="concept"),
    path("roster/<slug:slug>/refresh/", views.roster_refresh, name="roster_refresh"),
]
