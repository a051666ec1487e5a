from django.urls import path

from courses import views

app_name = "teach"

urlpatterns = [
    path("", views.index, name="index"),
    path("import/", views.import_upload, name="import"),
    path("import/<int:pk>/", views.import_job, name="import_job"),
    path("<slug:slug>/", views.course_overview, name="course"),
    path("<slug:slug>/graph/edge/", views.edge_add, name="edge_add"),
    path("<slug:slug>/graph/edge/remove/", views.edge_remove, name="edge_remove"),
    path("<slug:slug>/graph/confirm/", views.graph_confirm, name="graph_confirm"),
    path("<slug:slug>/settings/", views.course_settings, name="settings"),
    path("<slug:slug>/concepts/new/", views.concept_new, name="concept_new"),
    path("<slug:slug>/concepts/<slug:concept>/", views.concept_edit, name="concept"),
    path("<slug:slug>/concepts/<slug:concept>/generate/", views.concept_generation, name="concept_generation"),
    path("<slug:slug>/concepts/<slug:concept>/delete/", views.concept_delete, name="concept_delete"),
    path("<slug:slug>/concepts/<slug:concept>/items/new/", views.item_new, name="item_new"),
    path("<slug:slug>/items/<int:pk>/", views.item_edit, name="item"),
    path("<slug:slug>/items/<int:pk>/delete/", views.item_delete, name="item_delete"),
    path("<slug:slug>/try/", views.item_try, name="try"),
    path("<slug:slug>/preview/", views.preview, name="preview"),
    path("<slug:slug>/review/", views.review_queue, name="review"),
    path("<slug:slug>/review/<int:pk>/", views.review_decide, name="review_decide"),
    path("<slug:slug>/history/", views.history, name="history"),
    path("<slug:slug>/history/<int:pk>/revert/", views.version_revert, name="revert"),
    path("<slug:slug>/export/", views.export, name="export"),
]
