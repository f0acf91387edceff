"""Pages without a login (listed as PUBLIC in tests/accounts/test_role_access.py)."""

from django.urls import path

from refloop.letters import public

app_name = "letters_public"
urlpatterns = [
    path("r/<str:token>/", public.status, name="status"),
    path("r/<str:token>/reports/<int:letter_id>/<int:number>/", public.status_document, name="status_document"),
    path("l/<str:token>/", public.letter, name="letter"),
    path("l/<str:token>/<int:number>/", public.letter_document, name="letter_document"),
    path("refer/", public.refer, name="refer"),
    path("refer/<str:office>/", public.refer, name="refer_office"),
]
