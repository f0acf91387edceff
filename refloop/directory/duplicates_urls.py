"""URLs of the duplicates page and merges (included by directory/urls.py)."""

from django.urls import path

from refloop.directory import views_duplicates as views

urlpatterns: list = [
    path("duplicates/", views.duplicates, name="duplicates"),
    path(
        "duplicates/<str:kind>/<int:first_id>/<int:second_id>/",
        views.merge_confirm,
        name="merge_confirm",
    ),
    path("merges/<int:merge_id>/reverse/", views.merge_reverse, name="merge_reverse"),
]
