from django.urls import path

from refloop.directory import views
from refloop.directory.duplicates_urls import urlpatterns as duplicate_urlpatterns

app_name = "directory"
urlpatterns = [
    path("", views.home, name="home"),
    *duplicate_urlpatterns,
]
