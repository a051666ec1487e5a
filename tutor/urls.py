from django.contrib import admin
from django.urls import include, path

from tutor import views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("courses/<slug:slug>/enroll/", views.enroll, name="enroll"),
    path("learn/<slug:slug>/", views.session, name="session"),
    path("learn/<slug:slug>/map/", views.knowledge_map_view, name="knowledge_map"),
    path("admin/", admin.site.urls),
]
