from django.urls import path

from refloop.directory import views
from refloop.directory.duplicates_urls import urlpatterns as duplicate_urlpatterns

app_name = "directory"
urlpatterns = [
    path("", views.home, name="home"),
    path("providers.csv", views.provider_export, name="provider_export"),
    path("providers/new/", views.provider_new, name="provider_new"),
    path("providers/<int:provider_id>/", views.provider_detail, name="provider"),
    path("providers/<int:provider_id>/edit/", views.provider_edit, name="provider_edit"),
    path("providers/<int:provider_id>/practices/pick/", views.practice_pick, name="practice_pick"),
    path("providers/<int:provider_id>/practices/add/", views.affiliation_add, name="affiliation_add"),
    path("affiliations/<int:affiliation_id>/remove/", views.affiliation_remove, name="affiliation_remove"),
    path("practices/", views.practice_index, name="practices"),
    path("practices.csv", views.practice_export, name="practice_export"),
    path("practices/new/", views.practice_new, name="practice_new"),
    path("practices/<int:practice_id>/", views.practice_detail, name="practice"),
    path("practices/<int:practice_id>/edit/", views.practice_edit, name="practice_edit"),
    path("practices/<int:practice_id>/locations/new/", views.location_new, name="location_new"),
    path("locations/<int:location_id>/edit/", views.location_edit, name="location_edit"),
    path("practices/<int:practice_id>/staff/new/", views.staff_new, name="staff_new"),
    path("staff/", views.staff_index, name="staff"),
    path("staff/<int:contact_id>/edit/", views.staff_edit, name="staff_edit"),
    path("sources/", views.source_index, name="sources"),
    path("sources/new/", views.source_new, name="source_new"),
    path("sources/<int:source_id>/edit/", views.source_edit, name="source_edit"),
    *duplicate_urlpatterns,
]
