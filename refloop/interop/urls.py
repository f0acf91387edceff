from django.urls import path

from refloop.interop import views_apikeys

app_name = "interop"
urlpatterns = [
    path("", views_apikeys.apikey_list, name="apikeys"),
    path("<int:key_id>/revoke/", views_apikeys.apikey_revoke_view, name="apikey_revoke"),
]
