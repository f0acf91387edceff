from refloop.interop.api import urlpatterns as api_patterns

app_name = "api"
urlpatterns = api_patterns()
