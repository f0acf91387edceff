from django.urls import path

from refloop.interop import views_messages

app_name = "interfaces"

urlpatterns = [
    path("", views_messages.message_list, name="messages"),
    path("<int:message_id>/retry/", views_messages.message_retry, name="retry"),
]
