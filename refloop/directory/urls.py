from django.urls import path

from refloop.directory import views

app_name = "directory"
urlpatterns = [
    path("", views.home, name="home"),
]
