"""URLs of the bulk referral import pages (included by referrals/urls.py)."""

from django.urls import path

from refloop.referrals import import_views

urlpatterns: list = [
    path("import/", import_views.import_upload, name="import"),
    path("import/<str:token>/", import_views.import_preview, name="import_preview"),
    path("import/<str:token>/dry-run/", import_views.import_dry_run, name="import_dry_run"),
    path("import/<str:token>/run/", import_views.import_run, name="import_run"),
    path("import/<str:token>/rejected.csv", import_views.import_rejected, name="import_rejected"),
]
