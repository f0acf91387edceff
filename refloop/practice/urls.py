from django.urls import path

from refloop.practice import views

app_name = "practice"
urlpatterns = [
    path("", views.settings_home, name="settings"),
    path("practice/", views.practice_edit, name="practice_edit"),
    path("locations/new/", views.location_edit, name="location_new"),
    path("locations/<int:location_id>/", views.location_edit, name="location_edit"),
    path("clinicians/new/", views.clinician_edit, name="clinician_new"),
    path("clinicians/<int:clinician_id>/", views.clinician_edit, name="clinician_edit"),
    path("holidays/new/", views.holiday_edit, name="holiday_new"),
    path("holidays/<int:holiday_id>/delete/", views.holiday_delete, name="holiday_delete"),
    path("territories/new/", views.territory_edit, name="territory_new"),
    path("territories/<int:territory_id>/", views.territory_edit, name="territory_edit"),
    path("security/", views.security_edit, name="security_edit"),
    path("users/new/", views.user_edit, name="user_new"),
    path("users/<int:user_id>/", views.user_edit, name="user_edit"),
]
