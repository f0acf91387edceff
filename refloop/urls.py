from django.contrib.auth import views as auth_views
from django.urls import include, path

from refloop import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(template_name="accounts/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("search/", views.search, name="search"),
    path("account/", include("refloop.accounts.urls")),
    path("referrals/", include("refloop.referrals.urls")),
    path("directory/", include("refloop.directory.urls")),
    path("outreach/", include("refloop.outreach.urls")),
    path("insights/", include("refloop.insights.urls")),
    path("settings/", include("refloop.practice.urls")),
    path("letters/", include("refloop.letters.urls")),
    path("", include("refloop.letters.public_urls")),
    path("api/", include("refloop.interop.api.urls")),
    path("fhir/", include("refloop.interop.fhir.urls")),
    path("settings/api-keys/", include("refloop.interop.urls")),
    path("interfaces/", include("refloop.interop.urls_messages")),
]
