from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.static import serve

from tutor import account_views, api_views, faculty_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", account_views.ThrottledLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("account/", account_views.account, name="account"),
    path("account/export/", account_views.account_export, name="account_export"),
    path("account/delete/", account_views.account_delete, name="account_delete"),
    path("courses/<slug:slug>/enroll/", views.enroll, name="enroll"),
    path("learn/<slug:slug>/", views.session, name="session"),
    path("learn/<slug:slug>/map/", views.knowledge_map_view, name="knowledge_map"),
    path("api/learn/<slug:slug>/answers", api_views.answers_submit, name="api_answers"),
    path("teach/<slug:slug>/dashboard/", faculty_views.dashboard, name="dashboard"),
    path("teach/<slug:slug>/dashboard.csv", faculty_views.dashboard_csv, name="dashboard_csv"),
    path("teach/", include("courses.urls")),
    path("status/", views.system_status, name="system_status"),
    path("admin/", admin.site.urls),
    # Course figures. Fine for one machine; behind a proxy at scale, serve MEDIA_ROOT from the proxy instead.
    path(f"{settings.MEDIA_URL.strip('/')}/courses/<path:path>", serve,
         {"document_root": settings.MEDIA_ROOT / "courses"}, name="course_asset"),
]
