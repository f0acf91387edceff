from django.urls import path

from refloop.referrals import views
from refloop.referrals.import_urls import urlpatterns as import_urlpatterns

app_name = "referrals"
urlpatterns = [
    path("", views.home, name="home"),
    *import_urlpatterns,
]
