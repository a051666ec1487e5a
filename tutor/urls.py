from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.static import serve

from tutor import api_views, faculty_views, views
from tutor.accounts import views as account_views
from tutor.ta import views as ta_views
from tutor.teachback import views as teachback_views

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", account_views.ThrottledLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("account/", account_views.account, name="account"),
    path("account/export/", account_views.account_export, name="account_export"),
    path("account/delete/", account_views.account_delete, name="account_delete"),
    path("courses/<slug:slug>/enroll/", views.enroll, name="enroll"),
    path("learn/<slug:slug>/", views.session, name="session"),
    path("learn/<slug:slug>/map/", views.knowledge_map_view, name="knowledge_map"),
    path("learn/<slug:slug>/ask/", ta_views.ask, name="ta_ask"),
    path("learn/<slug:slug>/ask/<int:pk>/escalate/", ta_views.question_escalate, name="ta_escalate"),
    path("learn/<slug:slug>/ask/<int:pk>/delete/", ta_views.question_delete, name="ta_delete"),
    path("learn/<slug:slug>/concept/<slug:concept>/", ta_views.concept_page, name="concept_page"),
    path("learn/<slug:slug>/concept/<slug:concept>/items/<str:item>/", ta_views.item_page, name="item_page"),
    path("learn/<slug:slug>/faq/<int:pk>/", ta_views.faq_entry, name="ta_faq"),
    path("learn/<slug:slug>/documents/<int:pk>/", ta_views.document, name="ta_document"),
    path("api/learn/<slug:slug>/answers", api_views.answers, name="api_answers"),
    path("teach/<slug:slug>/dashboard/", faculty_views.dashboard, name="dashboard"),
    path("teach/<slug:slug>/dashboard.csv", faculty_views.dashboard_csv, name="dashboard_csv"),
    path("teach/<slug:slug>/questions/", ta_views.faculty_questions, name="ta_questions"),
    path("teach/<slug:slug>/questions/<int:pk>/answer/", ta_views.faculty_answer, name="ta_faculty_answer"),
    path("teach/<slug:slug>/questions/reindex/", ta_views.reindex, name="ta_reindex"),
    path("teach/<slug:slug>/questions/documents/", ta_views.document_upload, name="ta_document_upload"),
    path("teach/<slug:slug>/questions/documents/<int:pk>/delete/", ta_views.document_delete,
         name="ta_document_delete"),
    path("teach/<slug:slug>/questions/documents/<int:pk>/confirm/", ta_views.document_confirm,
         name="ta_document_confirm"),
    path("teach/<slug:slug>/dashboard/key-ideas/", teachback_views.coverage, name="teachback_coverage"),
    path("teach/<slug:slug>/concepts/<slug:concept>/beginners/", teachback_views.beginners, name="teachback_beginners"),
    path("teach/<slug:slug>/concepts/<slug:concept>/beginners/novice/", teachback_views.novice_questions,
         name="teachback_novice"),
    path("teach/<slug:slug>/concepts/<slug:concept>/beginners/faq/<int:pk>/", teachback_views.faq_create,
         name="teachback_faq"),
    path("teach/", include("courses.urls")),
    path("status/", views.system_status, name="system_status"),
    path("admin/", admin.site.urls),
    path("lti/", include("tutor.lti.urls")),
    # Course figures. Fine for one machine; behind a proxy at scale, serve MEDIA_ROOT from the proxy instead.
    path(f"{settings.MEDIA_URL.strip('/')}/courses/<path:path>", serve,
         {"document_root": settings.MEDIA_ROOT / "courses"}, name="course_asset"),
]
