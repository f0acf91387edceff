from django.urls import path

from refloop.referrals import views

app_name = "referrals"
urlpatterns = [
    path("", views.home, name="home"),
]
