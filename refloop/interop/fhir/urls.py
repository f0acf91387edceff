from django.urls import path, re_path

from refloop.interop.fhir import views

app_name = "fhir"

urlpatterns = [
    path("", views.base, name="base"),
    path("metadata", views.metadata, name="metadata"),
    path("ServiceRequest", views.service_request_create, name="servicerequest-create"),
    path("ServiceRequest/<str:pk>", views.service_request_read, name="servicerequest-read"),
    path("Bundle", views.bundle_create, name="bundle-create"),
    path("Task", views.task_search, name="task-search"),
    path("Task/<str:pk>", views.task_read, name="task-read"),
    path("DocumentReference/<str:pk>", views.document_reference_read, name="documentreference-read"),
    re_path(r"^(?P<rest>.*)$", views.not_found, name="not-found"),
]
